"""CALM-style exits: a threshold that never exits is plain greedy; one that always exits
fills the skipped layers' cache and stops early."""

import pytest
import torch
from tiny_decoder import prompts, tiny_llama, training_text

from early_exit.decoder.calm import calm_generate, full_model_view
from early_exit.decoder.exits import train_exits
from early_exit.decoder.peer import hf_generate
from early_exit.decoder.stack import DecoderStack
from early_exit.support.errors import ConfigError


@pytest.fixture(scope="module")
def tiny():
    model = tiny_llama()
    stack = DecoderStack(model)
    exits, _ = train_exits(stack, training_text(), [1, 3], epochs=1, batch=64)
    return model, stack, exits


def test_a_threshold_that_never_exits_is_greedy(tiny):
    model, stack, exits = tiny
    for prompt in prompts(4):
        out = calm_generate(stack, exits, prompt, 1.0, 16)
        assert out.tokens == hf_generate(model, prompt, 16).tokens
        assert out.stats["exited"] == 0
        assert out.stats["mean_exit_layer"] == stack.num_layers


def test_a_threshold_of_zero_exits_every_token_at_the_first_exit(tiny):
    model, stack, exits = tiny
    prompt = prompts(1)[0]
    out = calm_generate(stack, exits, prompt, 0.0, 12)
    steps = out.stats["steps"]
    assert out.stats["exited"] == steps
    # the first token comes from the prefill (every layer), the others from layer 1
    assert out.stats["mean_exit_layer"] == pytest.approx((steps * 1 + 4) / (steps + 1))


def test_skipped_layers_get_keys_and_values(tiny):
    _, stack, exits = tiny
    prompt = prompts(1)[0]
    cache = stack.new_cache()
    hidden = stack.run(stack.embed(torch.tensor([prompt])), 0, 1, cache, 0)
    stack.fill_kv(hidden, 1, stack.num_layers, cache, 0)
    assert {cache.length(layer) for layer in range(stack.num_layers)} == {len(prompt)}
    # layer 2's keys from the propagated state equal what its projection of that state gives
    layer = stack.layers[1].self_attn
    values = layer.v_proj(stack.layers[1].input_layernorm(hidden))
    assert torch.allclose(cache.values[1][0].transpose(0, 1).reshape(len(prompt), -1), values[0])


def test_the_full_model_agrees_with_its_own_greedy_output(tiny):
    model, stack, _ = tiny
    prompt = prompts(1)[0]
    greedy = hf_generate(model, prompt, 10).tokens
    view = full_model_view(stack, prompt, greedy)
    assert view["full_model_agreement"] == 1.0
    assert view["perplexity"] >= 1.0
    other = full_model_view(stack, prompt, [(t + 7) % 96 for t in greedy])
    assert other["full_model_agreement"] < 1.0
    assert other["perplexity"] > view["perplexity"]


@pytest.mark.parametrize("threshold", [-0.1, 1.2, "high", True])
def test_threshold_out_of_range(tiny, threshold):
    _, stack, exits = tiny
    with pytest.raises(ConfigError, match="threshold"):
        calm_generate(stack, exits, [4, 5, 6], threshold, 4)
