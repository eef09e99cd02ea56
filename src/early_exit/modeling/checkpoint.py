"""Checkpoints as safetensors + JSON: nothing is ever unpickled.

Two kinds:
- a *model* directory (the training output): weights, the exit config, the encoder
  config and the tokenizer, enough to rebuild the model with no network, and
  `checksums.json`, the sha256 of each of those files, checked whenever it is loaded;
- a *training state* directory (for resuming an interrupted run): weights,
  optimizer and scheduler state, RNG state and progress counters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from transformers import AutoConfig, AutoModel, AutoTokenizer

from early_exit.modeling.model import ExitConfig, MultiExitModel
from early_exit.modeling.pruning import SHAPES_KEY, apply_pruned_shapes
from early_exit.support.atomic import atomic_dir, existing_dir, write_checksums, write_json
from early_exit.support.atomic import verify_checksums as check_listed
from early_exit.support.errors import DataError

WEIGHTS = "model.safetensors"
EXIT_CONFIG = "exit_config.json"


def save_model_dir(out_dir: Path, model: MultiExitModel, tokenizer, meta: dict) -> None:
    """Write a self-contained model directory atomically, with the checksum of each file."""
    with atomic_dir(out_dir) as tmp:
        save_model(model, str(tmp / WEIGHTS))
        model.encoder.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / EXIT_CONFIG, {"exit": model.cfg.to_dict(), **meta})
        write_checksums(tmp)


REWRITE = "rerun rule train (or slenderize: a COST-EFF model)"


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot read the {what} ({err}); {REWRITE}") from None


def read_exit_config(model_dir: Path) -> dict:
    """A model directory's exit config (`exit_config.json`), or a DataError naming it."""
    return _read_json(Path(model_dir) / EXIT_CONFIG, "exit config")


def verify_checksums(model_dir: Path) -> None:
    """Check every file of a model directory against `checksums.json` (about 0.1 s for a
    90 MB weights file). A model directory written before checksums were recorded has
    none and is read with the structure checks of `load_model_dir` alone."""
    check_listed(model_dir, REWRITE)


def load_model_dir(model_dir: Path) -> tuple[MultiExitModel, Any, dict]:
    """Rebuild a saved multi-exit model (architecture from JSON, weights from safetensors).

    Every piece is checked as it is read: each file against its checksum, then a
    missing, truncated or garbled exit config, backbone config, weights file or tokenizer
    (a directory without checksums) is one DataError naming the file."""
    model_dir = Path(model_dir)
    meta_path = model_dir / EXIT_CONFIG
    if not meta_path.is_file() or not (model_dir / WEIGHTS).is_file():
        raise DataError(f"{model_dir}: not a trained model directory ({REWRITE})")
    verify_checksums(model_dir)
    meta = read_exit_config(model_dir)
    _read_json(model_dir / "config.json", "backbone config")  # named here, not by transformers
    try:
        exit_config = ExitConfig(**meta["exit"])
    except (KeyError, TypeError) as err:
        raise DataError(f"{meta_path}: not an exit config ({err!r}); {REWRITE}") from None
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(model_dir))
    apply_pruned_shapes(encoder)  # a slenderized (COST-EFF) model: widths from config.json
    model = MultiExitModel(encoder, exit_config)
    try:
        load_model(model, str(model_dir / WEIGHTS), strict=True)
    except SafetensorError as err:  # truncated or garbled: the header does not parse
        raise DataError(f"{model_dir / WEIGHTS}: unreadable weights ({err}); {REWRITE}") from None
    except RuntimeError as err:
        if "size mismatch" not in str(err):  # missing or unexpected tensors
            first = str(err).splitlines()[0]
            raise DataError(
                f"{model_dir / WEIGHTS}: weights do not match the model ({first}); {REWRITE}"
            ) from None
        first = next(line.strip() for line in str(err).splitlines() if "size mismatch" in line)
        raise DataError(
            f"{model_dir / WEIGHTS}: weights do not fit the shapes in config.json "
            f"({SHAPES_KEY}: {getattr(encoder.config, SHAPES_KEY, None)}): {first}"
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise DataError(f"{model_dir}: cannot load the tokenizer ({err}); {REWRITE}") from None
    return model, tokenizer, meta


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain["state"].setdefault(str(pid), {})[key] = value
    return tensors, plain


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(k): dict(v) for k, v in plain["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(
    state_dir: Path, model: torch.nn.Module, optimizer, scheduler, progress: dict
) -> None:
    """Everything needed to continue training exactly where it stopped."""
    opt_tensors, opt_plain = _flatten_optimizer(optimizer.state_dict())
    rng = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    with atomic_dir(state_dir) as tmp:
        save_model(model, str(tmp / WEIGHTS))
        save_file({**opt_tensors, **rng}, str(tmp / "state.safetensors"))
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        write_json(
            tmp / "state.json", {"progress": progress, "optimizer": opt_plain, "scheduler": sched}
        )


def load_progress(state_dir: Path) -> dict | None:
    """Progress counters of a saved training state, or None when there is none."""
    found = existing_dir(state_dir)
    if found is None or not (found / "state.json").is_file():
        return None
    return json.loads((found / "state.json").read_text())["progress"]


def restore_training_state(
    state_dir: Path, model: torch.nn.Module, optimizer=None, scheduler=None
) -> dict:
    """Load weights and RNG state, plus optimizer and scheduler state when given.

    At a stage boundary the saved optimizer belongs to the finished stage, so the
    caller passes None and the new stage starts a fresh optimizer.
    """
    found = existing_dir(state_dir)
    if found is None:
        raise DataError(f"{state_dir}: no training state to resume from")
    meta = json.loads((found / "state.json").read_text())
    tensors = load_file(str(found / "state.safetensors"))
    load_model(model, str(found / WEIGHTS), strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    if scheduler is not None:
        scheduler.load_state_dict({**scheduler.state_dict(), **meta["scheduler"]})
    torch.set_rng_state(tensors["rng.cpu"])
    n_cuda = sum(k.startswith("rng.cuda.") for k in tensors)
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(n_cuda)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return meta["progress"]
