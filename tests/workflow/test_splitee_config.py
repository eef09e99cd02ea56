"""Bad SplitEE and learned-exit settings stop at config time, naming the key."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from early_exit.config.check import check_config, schema_errors
from early_exit.config.splitee_settings import splitee_outputs, transfer_params
from early_exit.support.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def config():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(SCHEMA))
    return cfg


def files_task(tmp_path, name, labels):
    path = tmp_path / f"{name}.tsv"
    path.write_text("text\tlabel\nsome words\t0\n")
    return {
        "source": {"type": "files", "format": "tsv", "train": str(path)},
        "label_names": labels,
    }


def test_default_config_pairs_paths_and_transfer_parameters():
    cfg = config()
    check_config(cfg)
    assert splitee_outputs(cfg, [13]) == [
        "results/splitee/bbc-news/bbc-headlines/elasticbert/seed13/splitee.tsv",
        "results/splitee/bbc-headlines/bbc-news/elasticbert/seed13/splitee.tsv",
    ]
    assert transfer_params(cfg, "bbc-headlines", "bbc-news") == {
        "split": "test",
        "label_map": {},
        "label_key": "splitee.pairs[1]",
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["splitee"].update({"lambda": -0.1}), r"splitee.lambda: -0.1 is outside"),
        (lambda c: c["splitee"].update(alpha=1.5), r"splitee.alpha: 1.5 is outside .*\(0, 1\]"),
        (lambda c: c["splitee"].update(offload_costs=[0.1, -1]), r"splitee.offload_costs\[1\]"),
        (lambda c: c["splitee"].update(orders=0), "splitee.orders: 0 is outside"),
        (lambda c: c["splitee"].update(lambda_depth=0), "splitee.lambda_depth: 0 is outside"),
        (lambda c: c["splitee"].update(alpha=[0.3, 1.2]), r"splitee.alpha\[1\]: 1.2 is outside"),
        (lambda c: c["splitee"]["pairs"][0].update(alpha=0), r"splitee.pairs\[0\].alpha"),
        (lambda c: c["splitee"]["pairs"][1].update(target="imdb"), r"pairs\[1\].target: unknown"),
        (lambda c: c["splitee"]["pairs"][0].update(target="bbc-news"), "same task"),
        (lambda c: c["splitee"].update(methods=["nope"]), r"splitee.methods\[0\]: unknown"),
        (lambda c: c["splitee"].update(methods=["static-1"]), "one exit: no split"),
        (
            lambda c: c["methods"]["pabee"].update(criterion="learned"),
            "methods.pabee.criterion: 'learned' needs a learned exit gate",
        ),
    ],
)
def test_bad_settings_name_the_key(edit, message):
    cfg = config()
    edit(cfg)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_a_target_with_other_labels_needs_a_label_map(tmp_path):
    cfg = config()
    cfg["tasks"]["src"] = files_task(tmp_path, "src", ["negative", "positive"])
    cfg["tasks"]["tgt"] = files_task(tmp_path, "tgt", ["neg", "pos"])
    cfg["splitee"]["pairs"].append({"source": "src", "target": "tgt"})
    with pytest.raises(ConfigError, match=r"splitee.pairs\[2\].label_map: target labels"):
        check_config(copy.deepcopy(cfg))
    cfg["splitee"]["pairs"][2]["label_map"] = {"neg": "negative", "pos": "positive"}
    check_config(cfg)


def test_schema_names_a_mistyped_splitee_key():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["splitee"]["offload"] = [0.1]
    with pytest.raises(ConfigError, match="splitee: .*'offload' was unexpected"):
        schema_errors(cfg, SCHEMA)


def test_default_and_paper_configs_state_lambdas_depth_and_the_paper_orders():
    from early_exit.config.splitee_settings import pair_alpha, splitee_settings

    default = splitee_settings(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    paper = splitee_settings(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    assert default["lambda_depth"] == paper["lambda_depth"] == 12
    assert paper["orders"] == 20  # the released scripts' n_epoch
    # the default draws the trade-off: several thresholds, some below 0.5 (docs/methods.md)
    alphas = pair_alpha(default, default["pairs"][0])
    assert len(alphas) > 1 and min(alphas) < 0.5
    assert all(len(pair_alpha(paper, p)) == 1 for p in paper["pairs"])  # the paper's alphas
