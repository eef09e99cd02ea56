"""ElasticBERT checkpoints (fnlp layout) and elastic pre-training."""

import json

import pytest
import torch
from tiny import fnlp_checkpoint, make_examples, make_tiny_bert, tiny_training
from transformers import BertForMaskedLM, BertTokenizer

from early_exit.data.prepare import prepare_task
from early_exit.modeling.backbone import load_backbone, load_pretrained
from early_exit.modeling.elasticbert_io import load_elastic_backbone, save_elastic_backbone
from early_exit.recipes.elastic_pretrain import ElasticMLM, exit_groups, mlm_head_weights
from early_exit.runners.elastic_pretrain import pretrain
from early_exit.runners.finetune import build_model
from early_exit.runners.spec import RunSpec
from early_exit.support.errors import DataError


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_loader_maps_the_fnlp_layout_onto_bert_and_per_layer_poolers(tmp_path, fmt):
    state = fnlp_checkpoint(tmp_path / "ckpt", fmt)
    encoder, tokenizer, poolers = load_elastic_backbone(str(tmp_path / "ckpt"))
    for key, value in encoder.state_dict().items():
        if "position_ids" not in key:
            assert torch.equal(value, state[f"elasticbert.{key}"]), key
    assert sorted(poolers) == [1, 2, 3]
    assert torch.equal(poolers[2].weight, state["elasticbert.encoder.pooler.1.dense.weight"])
    assert tokenizer("the market")["input_ids"] == [2, 5, 7, 3]
    # the elasticbert recipe's exit heads start from the per-layer poolers
    model, _, _ = build_model(
        {"name": str(tmp_path / "ckpt"), "format": "elasticbert"}, {"recipe": "elasticbert"}, 2
    )
    assert torch.equal(
        model.poolers[0].dense.bias, state["elasticbert.encoder.pooler.0.dense.bias"]
    )
    assert model.cfg.gradient_equilibrium


def test_saved_backbone_round_trips(tmp_path):
    fnlp_checkpoint(tmp_path / "ckpt")
    encoder, tokenizer, poolers = load_elastic_backbone(str(tmp_path / "ckpt"))
    save_elastic_backbone(tmp_path / "copy", encoder, poolers, tokenizer)
    again, _, again_poolers = load_backbone(
        {"name": str(tmp_path / "copy"), "format": "elasticbert"}
    )
    for (k, a), b in zip(encoder.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert all(torch.equal(poolers[i].weight, again_poolers[i].weight) for i in poolers)


def test_loader_rejects_other_layouts(tmp_path):
    make_tiny_bert(tmp_path / "bert")  # plain BERT keys, no elasticbert. prefix
    with pytest.raises(DataError, match="not the ElasticBERT layout"):
        load_elastic_backbone(str(tmp_path / "bert"))


def test_exit_groups_follow_the_paper():
    assert exit_groups(12) == [[1, 3, 5, 7, 9, 11, 12], [2, 4, 6, 8, 10, 12]]
    assert exit_groups(6) == [[1, 3, 5, 6], [2, 4, 6]]


def test_mlm_loss_per_exit_only_on_masked_positions(tmp_path):
    encoder, tokenizer = load_pretrained(str(make_tiny_bert(tmp_path / "bert", dropout=0.0)))
    model = ElasticMLM(encoder).eval()
    ids = tokenizer(["the market shares bank"], return_tensors="pt")
    labels = torch.full_like(ids["input_ids"], -100)
    labels[0, 2] = ids["input_ids"][0, 2]
    batch = dict(ids) | {"labels": labels}
    losses = model.layer_losses(batch, [1, 3])
    assert losses.shape == (2,)
    hidden = encoder(**ids, output_hidden_states=True).hidden_states
    expected = torch.nn.functional.cross_entropy(model.head(hidden[3][0, 2:3]), labels[0, 2:3])
    torch.testing.assert_close(losses[1], expected)


def test_pretraining_writes_a_backbone_that_fine_tuning_loads(tmp_path):
    bert = make_tiny_bert(tmp_path / "bert")
    lines = [json.dumps(e) for e in make_examples(40)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    spec = {
        "source": {"type": "files", "format": "jsonl", "train": str(tmp_path / "train.jsonl")},
        "max_length": 12,
    }
    prepare_task("tiny", spec, tmp_path / "data", seed=0)
    training = tiny_training()
    pretraining = {"epochs": 2, "learning_rate": 5e-3, "mlm_probability": 0.3}
    spec = RunSpec(
        tmp_path / "data",
        tmp_path / "out",
        {"name": str(bert)},
        {"recipe": "elasticbert", "pretrain": pretraining},
        training,
        0,
        "cpu",
        1,
        state_dir=tmp_path / "state",
    )
    progress = pretrain(spec)
    assert progress["step"] == 8  # 28 train examples (70% of 40) in batches of 8, two epochs
    original, _ = load_pretrained(str(bert))
    loaded, _, poolers = load_elastic_backbone(str(tmp_path / "out"))
    changed = [
        k for k, v in loaded.state_dict().items() if not torch.equal(v, original.state_dict()[k])
    ]
    assert any("encoder.layer.0" in k for k in changed)
    assert sorted(poolers) == [1, 2, 3]  # copies of the pre-trained pooler, one per layer
    assert torch.equal(poolers[1].weight, original.pooler.dense.weight)
    assert not (tmp_path / "state").exists()


def test_pretraining_starts_from_a_shipped_mlm_head_and_initialises_one_only_without(tmp_path):
    bert = make_tiny_bert(tmp_path / "bert")
    assert mlm_head_weights({"name": str(bert)}) is None  # a BertModel: no head shipped
    torch.manual_seed(1)
    with_head = BertForMaskedLM.from_pretrained(str(bert))  # random head, then saved with it
    with_head.save_pretrained(tmp_path / "mlm")
    BertTokenizer.from_pretrained(str(bert)).save_pretrained(tmp_path / "mlm")
    shipped = with_head.cls.predictions
    weights = mlm_head_weights({"name": str(tmp_path / "mlm")})
    encoder, _ = load_pretrained(str(tmp_path / "mlm"))
    head = ElasticMLM(encoder, weights).head
    assert torch.equal(head.dense.weight, shipped.transform.dense.weight)
    assert torch.equal(head.LayerNorm.bias, shipped.transform.LayerNorm.bias)
    assert torch.equal(head.bias, shipped.bias)
    assert head.word_embeddings is encoder.embeddings.word_embeddings  # still tied
    fresh = ElasticMLM(load_pretrained(str(bert))[0]).head
    assert not torch.equal(fresh.dense.weight, shipped.transform.dense.weight)


def test_the_packaged_minilm_ships_no_mlm_head():
    # so the default workflow's elastic pre-training starts with a new head (documented)
    assert mlm_head_weights({"name": "packaged:minilm-l6"}) is None
