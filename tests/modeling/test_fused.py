"""The fused inference form of a BERT layer computes what the layer computes, and a fused
stack uses it only where it may (no gradients, eval mode, sdpa attention)."""

import pytest
import torch
from tiny import make_tiny_bert

from early_exit.modeling.backbone import LayerStack, load_pretrained
from early_exit.modeling.fused import FusedLayer, fusable
from early_exit.modeling.pruning import prune_layer_heads, prune_layer_neurons


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), num_layers=3)


def encoder_of(tiny):
    torch.manual_seed(0)
    encoder, _ = load_pretrained(str(tiny))
    return encoder.eval()


def inputs():
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 3], [2, 10, 11, 3, 0, 0, 0]])
    mask = torch.tensor([[1] * 7, [1, 1, 1, 1, 0, 0, 0]])
    return ids, mask


def walk(stack, ids, mask):
    hidden, ext = stack.embed(ids, mask)
    for i in range(stack.num_layers):
        hidden = stack.layer(i, hidden, ext)
    return hidden


def test_a_fused_layer_equals_the_layer_bit_for_bit_without_padding(tiny):
    encoder = encoder_of(tiny)
    hidden = torch.randn(1, 9, encoder.config.hidden_size)
    with torch.inference_mode():
        for layer in encoder.encoder.layer:
            assert torch.equal(FusedLayer(layer)(hidden, None), layer(hidden, None))


def test_a_fused_stack_equals_the_encoder_with_padding_and_pruned_widths(tiny):
    encoder = encoder_of(tiny)
    layers = encoder.encoder.layer
    prune_layer_heads(layers[0], [1, 3], size=8)  # 2 of 4 heads
    prune_layer_heads(layers[2], [0], size=8)
    prune_layer_neurons(layers[1], range(0, 64, 3))
    ids, mask = inputs()
    stack = LayerStack(encoder)
    with torch.inference_mode():
        reference = walk(stack, ids, mask)
        assert stack.fuse() is None and stack.fused
        fused = walk(stack, ids, mask)
    assert [f.heads for f in stack._fused] == [2, 4, 1]
    real = mask.bool()  # padded positions are not compared: nobody reads them
    torch.testing.assert_close(fused[real], reference[real], rtol=0, atol=1e-6)


def test_a_fused_stack_runs_the_modules_when_training_or_with_gradients(tiny):
    encoder = encoder_of(tiny)
    stack = LayerStack(encoder)
    stack.fuse()
    calls = []
    encoder.encoder.layer[0].register_forward_hook(lambda *args: calls.append(1))
    hidden = torch.randn(2, 5, encoder.config.hidden_size)
    with torch.inference_mode():
        stack.layer(0, hidden, None)
    assert calls == []  # the fused form ran
    stack.layer(0, hidden, None)  # gradients on: the module, so training sees dropout
    encoder.train()
    with torch.no_grad():
        stack.layer(0, hidden, None)
    assert calls == [1, 1]
    encoder.eval()
    encoder.config._attn_implementation = "eager"  # as the FLOP count asks for
    with torch.inference_mode():
        stack.layer(0, hidden, None)
    assert calls == [1, 1, 1]
    stack.unfuse()
    assert not stack.fused


def test_the_fused_weights_follow_a_move_of_the_model(tiny):
    encoder = encoder_of(tiny)
    fused = FusedLayer(encoder.encoder.layer[0])
    with torch.no_grad():
        encoder.encoder.layer[0].attention.self.query.weight.mul_(2)
    fused.refresh()
    hidden = torch.randn(1, 4, encoder.config.hidden_size)
    with torch.inference_mode():
        assert torch.equal(fused(hidden, None), encoder.encoder.layer[0](hidden, None))


def test_what_cannot_fuse_says_why(tiny):
    from transformers import AlbertConfig, AlbertModel

    albert = AlbertModel(
        AlbertConfig(
            vocab_size=50, embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
        )
    )  # fmt: skip
    assert "ALBERT" in fusable(albert)
    stack = LayerStack(albert)
    assert "ALBERT" in stack.fuse() and not stack.fused
    encoder = encoder_of(tiny)
    encoder.config._attn_implementation = "eager"
    assert "attention implementation 'eager'" in fusable(encoder)
