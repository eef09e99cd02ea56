import numpy as np
import pytest
from tiny import make_tiny_bert

from early_exit.modeling.backbone import load_pretrained
from early_exit.modeling.flops import analytic_layer_flops, exit_flops_polynomial, per_example_flops
from early_exit.modeling.model import ExitConfig, MultiExitModel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.mark.parametrize(
    ("head", "exits"),
    [("pooler", [1, 2, 3]), ("linear", [2, 3]), ("shared_pooler", [1, 3]), ("layer_mix", [1, 3])],
)
def test_counter_matches_the_analytic_formula_at_real_lengths(tiny, head, exits):
    encoder, _ = load_pretrained(str(tiny))
    model = MultiExitModel(encoder, ExitConfig(num_labels=4, exit_layers=exits, head=head))
    lengths = np.array([5, 17, 40, 5])
    flops = per_example_flops(model, lengths)
    h, inter = 32, 64
    for n, s in enumerate(lengths):
        for e, layer in enumerate(exits):
            layers = layer * analytic_layer_flops(s, h, inter)
            heads = (e + 1) * 2 * h * 4  # every classifier up to this exit
            poolers = (
                {"pooler": e + 1, "shared_pooler": e + 1, "linear": 0, "layer_mix": layer}[head]
                * 2
                * h
                * h
            )  # layer_mix pools every layer
            # Sledgehammer's mix: exit j sums its exits[j] pooled layers, 2*h FLOPs per layer
            mix = sum(2 * h * k for k in exits[: e + 1]) if head == "layer_mix" else 0
            assert flops[n, e] == layers + heads + poolers + mix
    assert (flops[0] == flops[3]).all() and (np.diff(flops, axis=1) > 0).all()
    assert model.encoder.config._attn_implementation != "eager"  # restored after counting


def test_minilm_layer_flops_grow_linearly_plus_quadratically():
    encoder, _ = load_pretrained("packaged:minilm-l6")
    model = MultiExitModel(encoder, ExitConfig(num_labels=5, exit_layers="all", pooling="mean"))
    coef = exit_flops_polynomial(model)
    per_layer = np.diff(coef, axis=0)  # one layer + one head: c1 and c2 are the layer's
    h, inter = 384, 1536
    assert per_layer[:, 1] == pytest.approx(8 * h * h + 4 * h * inter)
    assert per_layer[:, 2] == pytest.approx(4 * h)
