"""Exit maps: training lowers the KL to the final layer; saved and read back; bad files."""

import pytest
import torch
from tiny_decoder import tiny_llama, training_text

from early_exit.decoder.exits import ExitMaps, check_layers, load_exits, save_exits, train_exits
from early_exit.decoder.stack import DecoderStack
from early_exit.support.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def stack():
    return DecoderStack(tiny_llama())


def test_training_lowers_the_kl_to_the_final_layer(stack):
    exits, report = train_exits(
        stack, training_text(), [1, 2], epochs=3, batch=32, learning_rate=3e-3
    )
    assert report.tokens == 8 * 24
    for layer in (1, 2):
        assert report.kl_after[layer] < 0.9 * report.kl_before[layer]
        assert 0 <= report.agreement[layer] <= 1
    # the identity map at init is the model's own head on that layer
    untouched = ExitMaps(32, [1])
    hidden = torch.randn(3, 32)
    assert torch.equal(untouched.mapped(1, hidden), hidden)


def test_the_same_seed_gives_the_same_maps(stack):
    first, _ = train_exits(stack, training_text(4), [2], epochs=1, batch=32)
    second, _ = train_exits(stack, training_text(4), [2], epochs=1, batch=32)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_saved_and_read_back(stack, tmp_path):
    exits, _ = train_exits(stack, training_text(4), [1, 3], epochs=1, batch=32)
    path = save_exits(exits, tmp_path, {"model": "tiny"})
    again, meta = load_exits(path, 32, 4)
    assert meta == {"model": "tiny"}
    assert again.layers == [1, 3]
    for name, tensor in exits.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor)
    assert [p.name for p in tmp_path.iterdir()] == ["exits.safetensors"]  # no temporary left


def test_bad_exit_files(stack, tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_exits(tmp_path / "none.safetensors", 32, 4)
    exits, _ = train_exits(stack, training_text(2), [1], epochs=1, batch=32)
    path = save_exits(exits, tmp_path, {})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="cannot read exit maps"):
        load_exits(path, 32, 4)
    save_exits(exits, tmp_path, {})
    with pytest.raises(DataError, match="do not fit"):
        load_exits(path, 48, 4)
    with pytest.raises(DataError, match="layers: 1 is not a layer in 1..0"):
        load_exits(path, 32, 1)


@pytest.mark.parametrize(
    ("layers", "named"),
    [
        ([], "non-empty"),
        ([0], "0 is not a layer"),
        ([4], "4 is not a layer"),
        ([1, 1], "repeated"),
        ([1.5], "1.5 is not"),
        ("2", "non-empty list"),
    ],
)
def test_exit_layers_out_of_range(layers, named):
    with pytest.raises(ConfigError, match=named):
        check_layers(layers, 4)


@pytest.mark.parametrize(("key", "value"), [("epochs", 0), ("batch", -1), ("learning_rate", 0.0)])
def test_training_knobs_out_of_range(stack, key, value):
    settings = {"epochs": 1, "batch": 8, "learning_rate": 1e-3, key: value}
    with pytest.raises(ConfigError, match=key):
        train_exits(stack, training_text(2), [1], **settings)


def test_no_text_to_train_on(stack):
    with pytest.raises(DataError, match="no text"):
        train_exits(stack, [], [1])


def test_held_out_perplexity_per_exit(stack):
    from early_exit.decoder.exits import held_out_perplexity

    exits, _ = train_exits(stack, training_text(4), [1, 3], epochs=1, batch=32)
    held_out = training_text(3, seed=9)
    found = held_out_perplexity(stack, exits, held_out)
    assert set(found) == {1, 3, 4}
    # the last layer's figure is the model's own loss on the same text
    losses = [stack.model(torch.tensor([ids]), labels=torch.tensor([ids])).loss for ids in held_out]
    assert found[4] == pytest.approx(float(torch.exp(torch.stack(losses).mean())), rel=1e-4)
    with pytest.raises(DataError, match="two tokens"):
        held_out_perplexity(stack, exits, [[5]])
