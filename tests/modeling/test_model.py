import pytest
import torch
from tiny import make_tiny_bert

from early_exit.modeling.backbone import LayerStack, load_pretrained, resolve_backbone
from early_exit.modeling.model import ExitConfig, MultiExitModel, pool
from early_exit.support.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def batch(tokenizer, texts):
    return tokenizer(texts, padding=True, return_tensors="pt")


def build(tiny_dir, **kw):
    encoder, tokenizer = load_pretrained(str(tiny_dir))
    reference = load_pretrained(str(tiny_dir))[0].eval()  # untouched copy for comparison
    cfg = ExitConfig(num_labels=4, exit_layers=kw.pop("exit_layers", "all"), **kw)
    torch.manual_seed(0)
    return MultiExitModel(encoder, cfg).eval(), tokenizer, reference


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_every_exit_matches_the_encoders_hidden_state_at_its_layer(tiny_dir, pooling):
    model, tok, reference = build(tiny_dir, pooling=pooling)
    inputs = batch(tok, ["the market shares", "film music star award win"])
    out = model(**inputs)
    assert out.logits.shape == (2, 3, 4)
    assert out.exit_layers == [1, 2, 3]
    hidden = reference(**inputs, output_hidden_states=True).hidden_states  # [emb, l1, l2, l3]
    for i, layer in enumerate(out.exit_layers):
        pooled = pool(hidden[layer], inputs["attention_mask"], pooling)
        expected = model.classifiers[i](model.poolers[i](pooled))
        torch.testing.assert_close(out.logits[:, i], expected)


def test_cls_pooling_takes_token_zero_and_mean_ignores_padding():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])
    expected = torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)])
    torch.testing.assert_close(pool(hidden, mask, "mean"), expected)


def test_mean_pooled_logits_do_not_depend_on_padding(tiny_dir):
    model, tok, _ = build(tiny_dir, pooling="mean")
    alone = model(**batch(tok, ["the market"])).logits
    padded = model(**batch(tok, ["the market", "film music star award win lose"]))
    torch.testing.assert_close(padded.logits[:1], alone, atol=1e-5, rtol=1e-5)


def test_exit_subset_and_truncated_forward(tiny_dir):
    model, tok, _ = build(tiny_dir, exit_layers=[3, 1])
    inputs = batch(tok, ["the market"])
    assert model.exit_layers == [1, 3]
    full = model(**inputs)
    part = model(**inputs, up_to_layer=2)
    assert part.exit_layers == [1]
    torch.testing.assert_close(part.logits[:, 0], full.logits[:, 0])


def test_poolers_start_from_the_pretrained_pooler(tiny_dir):
    encoder, _ = load_pretrained(str(tiny_dir))
    dense = encoder.pooler.dense.weight.detach().clone()
    model = MultiExitModel(encoder, ExitConfig(num_labels=2, exit_layers="all"))
    assert len(model.poolers) == 3
    for pooler in model.poolers:
        torch.testing.assert_close(pooler.dense.weight, dense)
    assert model.encoder.pooler is None  # replaced by the exit poolers
    shared = MultiExitModel(
        load_pretrained(str(tiny_dir))[0],
        ExitConfig(num_labels=2, exit_layers="all", head="shared_pooler"),
    )
    assert len(shared.poolers) == 1
    linear = MultiExitModel(
        load_pretrained(str(tiny_dir))[0],
        ExitConfig(num_labels=2, exit_layers="all", head="linear"),
    )
    assert len(linear.poolers) == 0


@pytest.mark.parametrize("layers", [[0], [4], [1, 1], []])
def test_exit_layers_outside_the_backbone_are_rejected(tiny_dir, layers):
    encoder, _ = load_pretrained(str(tiny_dir))
    with pytest.raises(ConfigError, match="exit_layers"):
        MultiExitModel(encoder, ExitConfig(num_labels=2, exit_layers=layers))


def test_packaged_minilm_is_a_6_layer_bert_whose_manual_loop_matches_model_call():
    encoder, tok = load_pretrained("packaged:minilm-l6")
    encoder.eval()
    stack = LayerStack(encoder)
    assert (stack.num_layers, stack.hidden_size) == (6, 384)
    inputs = batch(tok, ["Shares rose sharply on Monday", "Film wins award"])
    hidden, mask = stack.embed(
        inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
    )
    for i in range(stack.num_layers):
        hidden = stack.layer(i, hidden, mask)
    torch.testing.assert_close(hidden, encoder(**inputs).last_hidden_state)


def test_backbone_names_resolve_or_fail_clearly(tmp_path):
    assert resolve_backbone("bert-base-uncased") == "bert-base-uncased"  # hub id: left alone
    with pytest.raises(ConfigError, match="unknown packaged backbone"):
        resolve_backbone("packaged:nope")
    with pytest.raises(ConfigError, match="not a model directory"):
        resolve_backbone(str(tmp_path))
    with pytest.raises(ConfigError, match="not a model directory"):
        resolve_backbone("./does/not/exist")


@pytest.mark.parametrize("family", ["roberta", "albert"])
def test_other_bert_families_walk_layer_by_layer_like_their_own_forward(tmp_path, family):
    """RoBERTa and ALBERT (shared layer groups) backbones of the paper config."""
    from transformers import AlbertConfig, AlbertModel, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    if family == "roberta":
        encoder = RobertaModel(
            RobertaConfig(
                vocab_size=50,
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=40,
                pad_token_id=1,
            )
        )
    else:
        encoder = AlbertModel(
            AlbertConfig(
                vocab_size=50,
                embedding_size=16,
                hidden_size=32,
                num_hidden_layers=4,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=40,
            )
        )
    encoder.eval()
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    stack = LayerStack(encoder)
    hidden, ext = stack.embed(ids, mask)
    for i in range(stack.num_layers):
        hidden = stack.layer(i, hidden, ext)
    torch.testing.assert_close(
        hidden, encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    )
    pretrained = stack.pretrained_pooler().weight.detach().clone()
    model = MultiExitModel(encoder, ExitConfig(num_labels=2, exit_layers="all")).eval()
    assert model(ids, mask).logits.shape == (2, stack.num_layers, 2)
    torch.testing.assert_close(model.poolers[0].dense.weight, pretrained)


@pytest.mark.parametrize(
    "kw",
    [{"head": "pooler"}, {"head": "shared_pooler"}, {"head": "linear"}, {"head": "tanh"},
     {"head": "pooler", "exit_gate": "lte"}],
)  # fmt: skip
def test_exit_inputs_then_the_heads_give_the_forward_pass(tiny_dir, kw):
    """What a frozen-encoder stage trains on: the heads fed with cached exit inputs."""
    model, tok, _ = build(tiny_dir, pooling="mean", exit_layers=[1, 3], **kw)
    inputs = batch(tok, ["the market shares", "film music star award win"])
    out, inputs_per_exit = model(**inputs), model.exit_inputs(**inputs)
    assert inputs_per_exit.shape == (2, 2, model.stack.hidden_size)
    again = model.from_exit_inputs(inputs_per_exit)
    torch.testing.assert_close(again.logits, out.logits)
    assert again.exit_layers == out.exit_layers
    if "exit_gate" in kw:
        torch.testing.assert_close(again.exit_scores, out.exit_scores)


def test_layer_mix_heads_have_no_exit_inputs_to_cache(tiny_dir):
    model, tok, _ = build(tiny_dir, head="layer_mix")
    with pytest.raises(ConfigError, match="layer_mix heads read every layer"):
        model.exit_inputs(**batch(tok, ["the market"]))


def test_mean_pooling_without_a_mask_is_the_masked_mean_bit_for_bit():
    """The engine pools an unpadded batch without its all-ones mask: the same bits."""
    torch.manual_seed(0)
    for seq in (1, 5, 24, 48):
        hidden = torch.randn(3, seq, 32) * 3
        ones = torch.ones(3, seq, dtype=torch.long)
        assert torch.equal(pool(hidden, None, "mean"), pool(hidden, ones, "mean"))
        assert torch.equal(pool(hidden, None, "cls"), pool(hidden, ones, "cls"))
