"""A tiny random LlamaForCausalLM (4 layers, vocabulary 96), built in memory or saved as a
local model directory with a word-level tokenizer: the decoder tests need no download."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 96
END = 2  # the end-of-sequence id


def tiny_llama(seed: int = 0, layers: int = 4) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=END,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init: sharper, more varied output
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.3)
    model.eval()
    model.requires_grad_(False)
    return model


def save_tiny_llama(directory: Path) -> Path:
    """The tiny model and a word-level tokenizer (`w0` .. `w95`) as a local model folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tiny_llama().save_pretrained(directory)
    vocab = {f"w{i}": i for i in range(VOCAB)}
    vocab["<unk>"] = VOCAB - 1
    del vocab[f"w{VOCAB - 1}"]
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", eos_token="w2", bos_token="w1", pad_token="w0"
    )
    tokenizer.save_pretrained(directory)
    return directory


def prompts(count: int, seed: int = 1) -> list[list[int]]:
    """Random prompts of 3 to 12 tokens, none of them the end token."""
    generator = torch.Generator().manual_seed(seed)
    found = []
    for _ in range(count):
        length = int(torch.randint(3, 13, (1,), generator=generator))
        found.append(torch.randint(3, VOCAB, (length,), generator=generator).tolist())
    return found


def training_text(count: int = 8, seed: int = 5, length: int = 24) -> list[list[int]]:
    """Random token sequences (no special tokens) to train the tiny model's exits on."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (length,), generator=generator).tolist() for _ in range(count)]
