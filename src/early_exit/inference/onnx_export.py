"""`early-exit export`: a trained run as ONNX graphs an engine can exit between.

ONNX control flow cannot drop rows from a batch, so the model is not one graph: each
piece the torch engine walks (`LayerStack.embed`, `LayerStack.layer`, `MultiExitModel.head`,
and Sledgehammer's per-layer `MultiExitModel.mix_state`) is its own graph with a dynamic
batch and sequence axis, and the host (`early_exit.inference.ort_engine`, the engines' one
walk `early_exit.inference.cohort` on ONNX Runtime) decides between them with the
policies' runtime forms. The export directory:

    export.json                 format, the model's metadata, the pieces, FLOPs per exit,
                                a checksum of every file below
    embeddings.onnx             input_ids, attention_mask[, token_type_ids] -> hidden
    layer_<n>.onnx              hidden, attention_mask -> hidden_out (layer n, 1-based)
    mix.onnx                    hidden, attention_mask -> mix state (layer-mix heads only)
    exit_<n>.onnx               hidden, attention_mask (layer-mix: mixed [B, H, n])
                                -> logits[, gate] (the exit after layer n)
    tokenizer/                  the run's tokenizer
    calibration.json            the run's temperatures fitted on dev (when it has them)
    sweep.tsv                   the run's sweep (when it has one: --max-drop)
    operating_points.json       per policy, the knob chosen on dev and its scores
                                (`early_exit.inference.run_facts`)
    README.md                   the model card (`early_exit.inference.model_card`)

Each graph is traced (torch's TorchScript-based exporter: it needs no package beyond
`onnx`) at one batch shape and checked with ONNX Runtime against the model at another,
so a graph that baked in a shape, or a piece that cannot be exported, is named here
rather than found at prediction time. The directory is built in a temporary sibling and
renamed into place (`early_exit.support.atomic.atomic_dir`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from early_exit.inference.engine import EarlyExitEngine, find_model_dir
from early_exit.inference.model_card import model_card
from early_exit.inference.run_facts import chosen_points, latency_rows
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.modeling.pruning import SHAPES_KEY, num_parameters
from early_exit.support.atomic import atomic_dir, sha256_file, write_json, write_text
from early_exit.support.errors import ConfigError, DataError

FORMAT = "early-exit-onnx"
VERSION = 1
MANIFEST = "export.json"
TOKENIZER = "tokenizer"
CALIBRATION = "calibration.json"
SWEEP = "sweep.tsv"
POINTS = "operating_points.json"
CARD = "README.md"  # not checksummed: a model card may be edited
OPSET = 17
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Shapes of the traced example and of the check at another shape (batch, sequence).
TRACE_SHAPE, CHECK_SHAPE = (2, 8), (3, 5)
CHECK_RTOL, CHECK_ATOL = 1e-3, 1e-4  # fp32 graph against the model: far looser than seen


def requirement(module: str):
    """Import an optional package of the ONNX path, or a ConfigError saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{module} is not installed: the ONNX export and engine need onnx and onnxruntime "
            "(pip install -r requirements.txt -c constraints.txt, or scripts/setup.sh)"
        ) from None


# ----------------------------------------------------------------------------- pieces


class _Embeddings(nn.Module):
    def __init__(self, model, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        given = dict(zip(self.names, inputs, strict=True))
        stack = self.model.stack
        hidden, _ = stack.embed(
            given["input_ids"], given["attention_mask"], given.get("token_type_ids")
        )
        return hidden


class _Layer(nn.Module):
    def __init__(self, model, index: int):
        super().__init__()
        self.model, self.index = model, index

    def forward(self, hidden, attention_mask):
        stack = self.model.stack
        return stack.layer(self.index, hidden, stack.layer_mask(hidden, attention_mask))


class _Mix(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, hidden, attention_mask):
        return self.model.mix_state(hidden, attention_mask)


class _Exit(nn.Module):
    def __init__(self, model, exit_index: int):
        super().__init__()
        self.model, self.exit_index = model, exit_index

    def forward(self, *inputs):
        if self.model.cfg.head == "layer_mix":
            (mixed,) = inputs
            logits, features = self.model.head(self.exit_index, None, None, mixed.unbind(-1))
        else:
            hidden, attention_mask = inputs
            logits, features = self.model.head(self.exit_index, hidden, attention_mask, [])
        score = self.model.gate_score(features)
        return logits if score is None else (logits, score)


@dataclass
class Piece:
    """One graph: what it is called in messages, its file, its module and its interface."""

    name: str
    file: str
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # per-shape example inputs: TRACE_SHAPE and CHECK_SHAPE -> tensors, in `inputs` order
    examples: dict[tuple, list[torch.Tensor]] = field(default_factory=dict)


DYNAMIC = {  # the axes of each named tensor that vary between calls
    "input_ids": {0: "batch", 1: "sequence"},
    "attention_mask": {0: "batch", 1: "sequence"},
    "token_type_ids": {0: "batch", 1: "sequence"},
    "hidden": {0: "batch", 1: "sequence"},
    "hidden_out": {0: "batch", 1: "sequence"},
    "mixed": {0: "batch"},
    "state": {0: "batch"},
    "logits": {0: "batch"},
    "gate": {0: "batch"},
}


def token_inputs(tokenizer) -> tuple[str, ...]:
    """The features the tokenizer gives (and the engine feeds): BERT adds token types."""
    given = tokenizer("a")
    return tuple(name for name in TOKEN_INPUTS if name in given)


def example_tokens(model, names, shape: tuple[int, int], seed: int) -> list[torch.Tensor]:
    """Random token ids of one shape, the last row padded from the middle on."""
    batch, length = shape
    gen = torch.Generator().manual_seed(seed)
    vocab = int(model.encoder.config.vocab_size)
    attention = torch.ones(batch, length, dtype=torch.long)
    attention[-1, length // 2 + 1 :] = 0
    values = {
        "input_ids": torch.randint(0, vocab, (batch, length), generator=gen) * attention,
        "attention_mask": attention,
        "token_type_ids": torch.zeros(batch, length, dtype=torch.long),
    }
    return [values[name] for name in names]


def pieces(model, names: tuple[str, ...]) -> list[Piece]:
    """Every graph of the model, with example inputs at both shapes computed by the model
    itself (each piece is traced and checked on what really reaches it)."""
    gate = ("gate",) if model.cfg.exit_gate is not None else ()
    layer_mix = model.cfg.head == "layer_mix"
    embed = Piece("embeddings", "embeddings.onnx", _Embeddings(model, names), names, ("hidden",))
    reads = ("hidden", "attention_mask")
    layers = [
        Piece(f"layer {i + 1}", f"layer_{i + 1}.onnx", _Layer(model, i), reads, ("hidden_out",))
        for i in range(model.exit_layers[-1])
    ]
    mix = Piece("layer mix", "mix.onnx", _Mix(model), reads, ("state",))
    exits = [
        Piece(
            f"exit after layer {layer}",
            f"exit_{layer}.onnx",
            _Exit(model, e),
            ("mixed",) if layer_mix else ("hidden", "attention_mask"),
            ("logits", *gate),
        )
        for e, layer in enumerate(model.exit_layers)
    ]
    for seed, shape in enumerate((TRACE_SHAPE, CHECK_SHAPE)):
        tokens = example_tokens(model, names, shape, seed)
        attention = tokens[names.index("attention_mask")]
        embed.examples[shape] = tokens
        with torch.no_grad():
            hidden, states = embed.module(*tokens), []
            for index, layer in enumerate(layers):
                layer.examples[shape] = [hidden, attention]
                hidden = layer.module(hidden, attention)
                if layer_mix:
                    mix.examples.setdefault(shape, [hidden, attention])
                    states.append(model.mix_state(hidden, attention))
                exit_index = model.exit_index(index + 1)
                if exit_index is not None:
                    given = [torch.stack(states, -1)] if layer_mix else [hidden, attention]
                    exits[exit_index].examples[shape] = given
    return [embed, *layers, *([mix] if layer_mix else []), *exits]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def _quiet_stdout():
    """Discard what is written to file descriptor 1: on a failure the exporter dumps its
    whole graph there from C++ (its log switch cannot be turned off in torch 2.13), which
    would bury the one-line error."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def export_piece(piece: Piece, path: Path, opset: int = OPSET) -> None:
    """Trace one piece to `path` and check it; a DataError naming the piece if it fails."""
    onnx = requirement("onnx")
    ort = requirement("onnxruntime")
    piece.module.eval()
    dynamic = {name: DYNAMIC[name] for name in (*piece.inputs, *piece.outputs)}
    try:
        with warnings.catch_warnings(), torch.no_grad(), _quiet_stdout():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(
                piece.module,
                tuple(piece.examples[TRACE_SHAPE]),
                str(path),
                dynamo=False,
                input_names=list(piece.inputs),
                output_names=list(piece.outputs),
                dynamic_axes=dynamic,
                opset_version=opset,
                do_constant_folding=True,
            )
        onnx.checker.check_model(str(path))
    except Exception as err:  # whatever the exporter raises, named with the piece
        raise DataError(f"{piece.name}: cannot be exported to ONNX ({_first_line(err)})") from err
    check = piece.examples[CHECK_SHAPE]
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}
        feeds = {
            name: value.numpy() for name, value in zip(piece.inputs, check, strict=True)
            if name in wanted
        }  # fmt: skip
        got = session.run(list(piece.outputs), feeds)
    except Exception as err:
        raise DataError(
            f"{piece.name}: the exported graph does not run in ONNX Runtime ({_first_line(err)})"
        ) from err
    with torch.no_grad():
        want = piece.module(*check)
    want = want if isinstance(want, tuple) else (want,)
    for name, g, w in zip(piece.outputs, got, want, strict=True):
        w = w.float().numpy()
        if g.shape != w.shape or not np.allclose(g, w, rtol=CHECK_RTOL, atol=CHECK_ATOL):
            diff = np.abs(g - w).max() if g.shape == w.shape else f"shape {g.shape} != {w.shape}"
            raise DataError(
                f"{piece.name}: the exported graph's {name} differs from the model's at batch "
                f"shape {CHECK_SHAPE} (max difference {diff}); the piece does not trace to a "
                "shape-independent graph"
            )


# ----------------------------------------------------------------------------- export


def export_model(model, engine: EarlyExitEngine, out_dir: str | Path, opset: int = OPSET) -> Path:
    """Write the export of `model`, as loaded from the run's checkpoint (its own modules,
    which the exporter traces), to `out_dir`, atomically; `engine` (the run on the torch
    engine, `EarlyExitEngine.from_run`) gives the rest: tokenizer, temperatures, the
    knobs chosen on dev, FLOPs per exit."""
    requirement("onnx")
    requirement("onnxruntime")
    out_dir = Path(out_dir)
    replaces = out_dir.exists() and not (out_dir / MANIFEST).is_file()
    if replaces and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DataError(
            f"{out_dir}: exists and is not an ONNX export; refusing to replace it "
            "(give a new or empty directory)"
        )
    model, run_dir = model.eval().cpu(), engine.run_dir
    names = token_inputs(engine.tokenizer)
    points = chosen_points(engine)
    flops = engine.flops_polynomial()
    latency = latency_rows(run_dir)
    with atomic_dir(out_dir) as tmp:
        graphs = pieces(model, names)
        for piece in graphs:
            export_piece(piece, tmp / piece.file, opset)
        engine.tokenizer.save_pretrained(tmp / TOKENIZER)
        for name in (CALIBRATION, SWEEP):
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, tmp / name)
        write_json(tmp / POINTS, points)
        layers = [p.file for p in graphs if p.file.startswith("layer_")]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "source": str(run_dir),
            "model": engine.meta,
            "fields": list(engine.fields),
            "inputs": list(names),
            "padding_side": getattr(engine.tokenizer, "padding_side", "right"),
            "num_layers": int(model.num_layers),
            "exit_layers": [int(x) for x in model.exit_layers],
            "head": model.cfg.head,
            "gate": model.cfg.exit_gate is not None,
            "num_parameters": int(num_parameters(model)),
            "pruned_shapes": getattr(model.encoder.config, SHAPES_KEY, None),
            "flops": np.asarray(flops).tolist(),
            "embeddings": "embeddings.onnx",
            "layers": layers,
            "mix": "mix.onnx" if model.cfg.head == "layer_mix" else None,
            "exits": [f"exit_{layer}.onnx" for layer in model.exit_layers],
            "calibration": CALIBRATION if (tmp / CALIBRATION).is_file() else None,
            "sweep": SWEEP if (tmp / SWEEP).is_file() else None,
            "operating_points": POINTS,
            "opset": opset,
            "torch": torch.__version__,
            "files": {
                str(path.relative_to(tmp)): sha256_file(path)
                for path in sorted(tmp.rglob("*"))
                if path.is_file()
            },
        }
        write_json(tmp / MANIFEST, manifest)
        write_text(tmp / CARD, model_card(manifest, points, latency, engine.temperatures))
    return out_dir


def export_run(run_dir: str | Path, out_dir: str | Path, opset: int = OPSET) -> Path:
    """`early-exit export RUN_DIR OUT_DIR`: load the trained run and export it."""
    requirement("onnx")  # named before the run is loaded
    requirement("onnxruntime")
    engine = EarlyExitEngine.from_run(run_dir, device="cpu")
    model, _, _ = load_model_dir(find_model_dir(Path(run_dir))[1])
    return export_model(model, engine, out_dir, opset)
