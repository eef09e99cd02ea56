import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate
from workflow_cli import run_workflow

from early_exit.analysis.roles import method_info
from early_exit.config.check import check_config, schema_errors, task_policies
from early_exit.recipes.configured_methods import (
    first_stage_source,
    method_instances,
    training_settings,
)
from early_exit.support.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def validated(config):
    validate(config, str(SCHEMA))  # fills in the schema defaults, as the workflow does
    return config


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    schema_errors(config, SCHEMA)
    validate(config, str(SCHEMA))
    check_config(config)
    assert config["training"]["max_grad_norm"] == 1.0  # defaults filled by the schema
    assert config["deck"]["enabled"] is True
    assert config["latency"]["full_depth_tolerance"] == 0.1  # the flag's default tolerance


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["training"].update(epoch=3), "training: .*'epoch' was unexpected"),
        (lambda c: c.pop("seeds"), "'seeds' is a required property"),
        (lambda c: c["tasks"]["bbc-news"].update(max_lenght=3), "tasks.bbc-news: .*max_lenght"),
        (lambda c: c["training"].update(learning_rate="fast"), "training.learning_rate"),
        (lambda c: c["backbone"].update(pooling="max"), "backbone.pooling"),
        (lambda c: c.update(device="gpu"), "device"),
        (
            lambda c: c["latency"].update(full_depth_tolerance=0),
            "latency.full_depth_tolerance",
        ),
    ],
)
def test_schema_errors_name_the_key(edit, message):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        schema_errors(config, SCHEMA)


REGRESSION_TASK = {
    "source": {"type": "files", "format": "tsv", "train": __file__},
    "type": "regression",
}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["tasks"].update({"bbc-sport": {}}), "task 'bbc-sport' is not a builtin"),
        (
            lambda c: c["methods"]["pabee"].update(recipe="deebert2"),
            "methods.pabee.recipe: unknown recipe 'deebert2'; allowed: berxit, costeff, "
            "deebert, elasticbert",
        ),
        (
            lambda c: c["methods"]["deebert"].update(exit_layers=[2, 7]),
            r"methods.deebert.exit_layers: \[7\] outside .* allowed 1..6",
        ),
        (lambda c: c["methods"]["static"].update(layers=[0]), "methods.static.exit_layers"),
        (
            lambda c: c["methods"]["deebert"].update(exit_layers=[1, 3]),
            "methods.deebert.exit_layers: DeeBERT needs .* final classifier at the last layer",
        ),
        (
            lambda c: c["methods"]["pabee"].update(pretrain={"epochs": 1, "learning_rate": 1e-4}),
            "methods.pabee.pretrain: recipe 'pabee' has no pre-training stage "
            r"\(recipes with one: elasticbert\)",
        ),
        (
            lambda c: c["sweep"]["policies"]["patience"].update(values=[2, 6]),
            r"patience \[6\] impossible with 6 exits; allowed: 1..5",
        ),
        (
            lambda c: c["tasks"].update(sts=REGRESSION_TASK),
            "sweep.policies.entropy for task sts .* does not apply to regression tasks; "
            "allowed: patience",
        ),
        (
            lambda c: c["tasks"].update(sts=REGRESSION_TASK | {"policies": ["oracle"]}),
            "'oracle' does not apply to regression",
        ),
        (
            lambda c: c["tasks"]["bbc-news"].update(source={"type": "bbc", "corpus_dir": "/nope"}),
            "tasks.bbc-news.source.corpus_dir: path '/nope' does not exist",
        ),
        (
            lambda c: c["tasks"].update(
                mine={"source": {"type": "files", "format": "tsv", "train": "missing.tsv"}}
            ),
            "tasks.mine.source.train: path 'missing.tsv' does not exist",
        ),
        (lambda c: c["backbone"].update(name="./no/such/model"), "backbone.name"),
        (
            lambda c: c["methods"]["pabee"].update(criterion="patiense"),
            "methods.pabee.criterion: .*unknown policy 'patiense'",
        ),
        (
            lambda c: c["analysis"].update(elue_reference="bert-base-uncased"),
            "analysis.elue_reference: no static baselines on backbone 'bert-base-uncased' "
            r"\(static curves: packaged:minilm-l6\)",
        ),
        (
            lambda c: c["methods"].update(
                static2={"recipe": "static", "layers": [1], "backbone": {"name": "other/bert"}}
            ),
            "analysis.elue_reference: the static baselines use several backbones "
            r"\(packaged:minilm-l6, other/bert\); name the one",
        ),
    ],
)
def test_semantic_errors_name_the_key(edit, message):
    config = validated(default_config())
    edit(config)
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_regression_task_with_patience_only_is_accepted():
    config = validated(default_config())
    config["tasks"]["sts"] = REGRESSION_TASK | {"policies": ["patience"]}
    check_config(config)
    assert list(task_policies(config, "sts")) == ["patience"]


def test_static_layers_expand_into_one_method_per_k():
    config = validated(default_config())
    methods = method_instances(config)
    assert [m for m in methods if m.startswith("static")] == ["static-1", "static-2", "static-4"]
    assert methods["static-2"]["exit_layers"] == [2]
    assert methods["static-2"]["family"] == "static"


def test_method_training_overrides_global_settings():
    config = validated(default_config())
    config["methods"]["pabee"]["training"] = {"epochs": 7}
    merged = training_settings(config, "pabee")
    assert merged["epochs"] == 7
    assert merged["batch_size"] == config["training"]["batch_size"]
    assert training_settings(config, "deebert")["epochs"] == config["training"]["epochs"]


def test_a_broken_config_stops_snakemake_before_any_job(tmp_path):
    config = default_config()
    config["tasks"]["bbc-headlines"]["max_length"] = "long"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run_workflow(tmp_path, bad, timeout=120)
    assert result.returncode != 0
    assert "tasks.bbc-headlines.max_length: 'long' is not of type 'integer'" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_loading_the_workflow_modules_does_not_import_torch():
    # common.smk imports these at every workflow start and in every cluster job
    modules = (
        "early_exit.config.check, early_exit.config.cluster, early_exit.support.download,"
        " early_exit.recipes"
    )
    heavy = "('torch', 'transformers')"
    code = f"import sys, {modules}; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_recipes_carry_their_papers_training_defaults_under_config_overrides():
    config = validated(default_config())
    assert training_settings(config, "sledgehammer")["schedule"] == "linear"  # config override
    del config["methods"]["sledgehammer"]["training"]
    assert training_settings(config, "sledgehammer")["schedule"] == "constant"  # the paper's
    assert "schedule" not in training_settings(config, "pabee")  # the loop's default: linear
    config["methods"]["sledgehammer"]["training"] = {"schedule": "linear"}
    assert training_settings(config, "sledgehammer")["schedule"] == "linear"
    config["training"]["schedule"] = "linear"
    del config["methods"]["sledgehammer"]["training"]
    assert training_settings(config, "sledgehammer")["schedule"] == "linear"


def test_deebert_shares_its_first_stage_only_with_an_identical_finetune_run():
    config = validated(default_config())
    assert first_stage_source(config, "deebert") == "finetune"
    assert first_stage_source(config, "pabee") is None  # one-stage recipe
    other = validated(default_config())
    other["methods"]["finetune"]["training"] = {"learning_rate": 3e-5}  # another stage 1
    assert first_stage_source(other, "deebert") is None
    other = validated(default_config())
    other["methods"]["deebert"]["share_first_stage"] = False
    assert first_stage_source(other, "deebert") is None
    other = validated(default_config())
    del other["methods"]["finetune"]
    assert first_stage_source(other, "deebert") is None


def test_paper_config_scores_every_backbone_against_elasticberts_static_curve():
    config = validated(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    check_config(config)
    info = method_info(config)
    elastic = "fnlp/elasticbert-base"
    curve = sorted((m for m, i in info.items() if i["curve"]), key=lambda m: int(m.split("-")[1]))
    assert curve == [f"static-{k}" for k in range(1, 13)]
    assert {info[m]["backbone"] for m in curve} == {elastic}
    for method in ("finetune-bert", "finetune-roberta", "finetune-albert"):  # off the curve
        assert info[method]["static"] and not info[method]["curve"]
        assert info[method]["reference"] == elastic
    assert info["finetune-roberta"]["backbone"] == "FacebookAI/roberta-base"
    assert {i["reference"] for i in info.values()} == {elastic}


def test_per_backbone_scoring_uses_a_methods_own_static_curve_when_there_is_one():
    config = validated(default_config())
    config["methods"]["static-other"] = {
        "recipe": "static",
        "layers": [1, 2],
        "backbone": {"name": "other/bert"},
    }
    config["methods"]["finetune-other"] = {"recipe": "finetune", "backbone": {"name": "other/bert"}}
    config["analysis"]["elue_reference"] = "packaged:minilm-l6"
    info = method_info(config)
    assert info["finetune-other"]["reference"] == "packaged:minilm-l6"  # the declared curve
    assert info["static-other-1"]["reference"] == "other/bert"  # a curve point: its own
    config["analysis"]["elue_per_backbone"] = True
    info = method_info(config)
    assert info["finetune-other"]["reference"] == "other/bert"
    assert info["pabee"]["reference"] == "packaged:minilm-l6"


def test_finetune_is_the_full_depth_point_of_a_static_curve_that_stops_short():
    config = validated(default_config())  # static 1, 2, 4 on the 6-layer MiniLM, same settings
    info = method_info(config)
    assert info["finetune"]["curve"] and info["static-4"]["curve"]
    assert not info["deebert"]["curve"]
    full = validated(default_config())
    full["methods"]["static"]["layers"] = [1, 3, 6]  # the curve has its own 6-layer model
    assert not method_info(full)["finetune"]["curve"]
    other = validated(default_config())
    other["methods"]["finetune"]["training"] = {"epochs": 3}  # not the static recipe's training
    assert not method_info(other)["finetune"]["curve"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["methods"]["costeff"]["slenderize"].update(heads=13),
            "heads: 13 is not in 1..12",
        ),
        (
            lambda c: c["methods"]["costeff"]["slenderize"].update(heads=5),
            "heads_per_step: 3 does not divide the 7 heads",
        ),
        (
            lambda c: c["methods"]["costeff"]["slenderize"].update(heads=8),
            "heads_per_step: 3 does not divide the 4 heads",
        ),
        (lambda c: c["methods"]["costeff"].update(teacher="nope"), "teacher: 'nope' is not"),
        (lambda c: c["methods"]["costeff"].update(teacher="costeff"), "teacher: 'costeff'"),
        (lambda c: c["methods"]["pabee"].update(teacher="finetune"), "pabee.teacher: only for"),
        (
            lambda c: c["methods"]["costeff"]["slenderize"].update(tasks={"sst2": {}}),
            r"slenderize.tasks: \['sst2'\]",
        ),
    ],
)
def test_costeff_settings_are_checked_against_the_model(edit, message):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError, match=f"methods\\..*{message}"):
        check_config(validated(config))


def test_paper_config_checks_its_costeff_budgets():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    schema_errors(config, SCHEMA)
    validated(config)
    slim = config["methods"]["costeff-a2"]["slenderize"]
    assert slim["heads"] == 2 and slim["intermediate"] == 256 and slim["embedding_rank"] == 128
    assert slim["tasks"]["mrpc"]["prune"]["period"] == 2.0
    assert slim["ta"]["repr_epochs"] == 1 and slim["prune"]["repr_proportion"] == 0.7  # defaults


def test_task_training_overrides_a_methods_settings_for_one_task():
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(config, str(SCHEMA))  # fills the defaults, as the Snakefile does
    teacher = config["methods"]["costeff-a6"]["teacher"]
    # COST-EFF's released teachers: MRPC 12 epochs, SST-2 5, QNLI 5, CoLA 8, the rest 3
    expected = {"mrpc": 12, "sst2": 5, "qnli": 5, "cola": 8, "mnli": 3, "qqp": 3, "rte": 3}
    for task, epochs in expected.items():
        assert training_settings(config, teacher, task)["epochs"] == epochs, task
    assert training_settings(config, teacher)["epochs"] == 3
    config["methods"][teacher]["task_training"]["nope"] = {"epochs": 1}
    with pytest.raises(ConfigError, match=rf"methods.{teacher}.task_training.nope: unknown task"):
        check_config(config)


def test_the_serving_task_is_a_configured_one_or_the_first():
    config = default_config()
    config["serving"]["task"] = "yelp"
    with pytest.raises(ConfigError, match="serving.task: 'yelp' is not one of the configured"):
        check_config(config)
    config["serving"].pop("task")
    check_config(config)
    assert config["serving"]["task"] == next(iter(config["tasks"]))
