"""The early-exit engine on ONNX Runtime: an export directory (`early-exit export`) answering
text, exiting early for real.

The export holds one graph per piece the torch engine walks (embeddings, each layer,
each exit head, Sledgehammer's per-layer mix state). `OrtBackend` runs them one at a time
on numpy arrays; the walk between them is the torch engine's own
(`early_exit.inference.cohort.Cohort`: after each exit the policy's runtime form decides
which rows leave; those rows leave the hidden states, the attention mask, the mix states
and the policy's state, and padding no remaining row needs is trimmed), so serving's
refilling scheduler runs an export as it runs a run directory. `OrtEngine` is an
`inference.engine.Engine` like the torch engine: the same policies and knobs (`policy`,
`threshold="auto"` reading the knob the export recorded), tokenising, answers and
`classify`; only loading and the backend are its own.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from early_exit.inference.engine import EarlyExitEngine, Engine, find_model_dir
from early_exit.inference.onnx_export import (
    CARD,
    FORMAT,
    MANIFEST,
    TOKENIZER,
    VERSION,
    export_model,
    requirement,
)
from early_exit.modeling.checkpoint import load_model_dir
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import ConfigError, DataError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def looks_like_export(path: str | Path) -> bool:
    """Whether `path` is (or was meant to be) an export directory rather than a run: it has
    an export.json, or ONNX graphs without one (a partial copy)."""
    path = Path(path)
    return (path / MANIFEST).is_file() or (path.is_dir() and any(path.glob("*.onnx")))


def read_manifest(export_dir: Path) -> dict:
    """export.json, checked: its format, and every file it lists present with its checksum."""
    path = export_dir / MANIFEST
    if not path.is_file():
        raise DataError(
            f"{export_dir}: an incomplete ONNX export (no {MANIFEST}); export the run again "
            "with early-exit export"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable export manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not an early-exit ONNX export (format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise DataError(
            f"{path}: export format version {manifest.get('version')}, this version reads "
            f"{VERSION}; export the run again"
        )
    for name, digest in manifest.get("files", {}).items():
        file = export_dir / name
        if not file.is_file():
            raise DataError(
                f"{file}: missing from the export (a partial copy?); export again with "
                "early-exit export"
            )
        if sha256_file(file) != digest:
            raise DataError(
                f"{file}: corrupt (its checksum differs from {MANIFEST}); export again "
                "with early-exit export"
            )
    return manifest


class OrtBackend:
    """The walk's pieces as ONNX Runtime sessions on numpy arrays: the embeddings, one
    graph per layer, per exit head and (layer-mix models) the per-layer mix state. Every
    graph takes the attention mask itself, so `masks` is the mask as it is."""

    kind = "export"

    def __init__(self, sessions: dict, manifest: dict, device: str):
        self.sessions = sessions
        self.device = device
        self.num_layers = int(manifest["num_layers"])
        self.exit_layers = list(manifest["exit_layers"])
        self.layer_mix = sessions["mix"] is not None
        self.gated = bool(manifest["gate"])
        self._exit_index = {layer: i for i, layer in enumerate(self.exit_layers)}
        self._flops = np.asarray(manifest["flops"], dtype=np.float64)
        self._inputs = {
            key: [i.name for i in session.get_inputs()] for key, session in self._all_sessions()
        }

    def _all_sessions(self):
        yield "embeddings", self.sessions["embeddings"]
        for i, s in enumerate(self.sessions["layers"]):
            yield f"layer{i}", s
        for i, s in enumerate(self.sessions["exits"]):
            yield f"exit{i}", s
        if self.sessions["mix"] is not None:
            yield "mix", self.sessions["mix"]

    def _call(self, key: str, session, **arrays) -> list[np.ndarray]:
        return session.run(None, {name: arrays[name] for name in self._inputs[key]})

    def flops_polynomial(self) -> np.ndarray:
        return self._flops

    def no_grad(self, inference_mode: bool = True):
        return contextlib.nullcontext()  # ONNX Runtime keeps no autograd state

    def exit_index(self, layer: int) -> int | None:
        return self._exit_index.get(layer)

    def embed(self, inputs: dict[str, np.ndarray]):
        (hidden,) = self._call("embeddings", self.sessions["embeddings"], **inputs)
        return hidden, inputs["attention_mask"]

    def masks(self, hidden, attn, padded: bool):
        return attn

    def layer(self, index: int, hidden, masks):
        session = self.sessions["layers"][index]
        return self._call(f"layer{index}", session, hidden=hidden, attention_mask=masks)[0]

    def mix(self, hidden, masks):
        return self._call("mix", self.sessions["mix"], hidden=hidden, attention_mask=masks)[0]

    def exit(self, exit_index: int, hidden, masks, mixed: list):
        given = {"hidden": hidden, "attention_mask": masks}
        if self.layer_mix:
            given = {"mixed": np.stack(mixed[: self.exit_layers[exit_index]], axis=-1)}
        results = self._call(f"exit{exit_index}", self.sessions["exits"][exit_index], **given)
        return results[0], (results[1] if len(results) > 1 else None)

    def take(self, tensors: list, keep: np.ndarray) -> list:
        return [t[keep] for t in tensors]

    def narrow(self, tensors: list, width: int) -> list:
        return [np.ascontiguousarray(t[:, :width]) for t in tensors]

    def join(self, a, b, width: int | None, left: bool):
        def pad(t: np.ndarray) -> np.ndarray:
            extra = 0 if width is None else width - t.shape[1]
            if extra == 0:
                return t
            zeros = np.zeros((t.shape[0], extra, *t.shape[2:]), dtype=t.dtype)
            return np.concatenate([zeros, t] if left else [t, zeros], 1)

        return np.concatenate([pad(a), pad(b)])


class OrtEngine(Engine):
    """An exported multi-exit model on ONNX Runtime that exits early for real."""

    def __init__(
        self,
        export_dir: Path,
        manifest: dict,
        sessions: dict,
        tokenizer,
        temperatures: np.ndarray | None,
        points: dict,
        device: str,
    ):
        backend = OrtBackend(sessions, manifest, device)
        meta, fields = manifest["model"], manifest["fields"]
        super().__init__(backend, tokenizer, meta, temperatures, None, fields)
        self.export_dir = export_dir
        self.manifest = manifest
        self.points = points

    @classmethod
    def from_dir(
        cls, export_dir: str | Path, device: str = "auto", threads: int | None = None
    ) -> OrtEngine:
        """Load an export directory; `threads`: ONNX Runtime's intra-op threads (default:
        its own choice, every core)."""
        from transformers import AutoTokenizer

        from early_exit.exits.sweep import load_temperatures

        export_dir = Path(export_dir)
        ort = requirement("onnxruntime")
        manifest = read_manifest(export_dir)
        providers = cls._providers(ort, device)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no per-session notes on stderr
        if threads:
            options.intra_op_num_threads = int(threads)
        # one piece runs at a time: idle sessions' threads must not spin and steal cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(name: str):
            try:
                return ort.InferenceSession(str(export_dir / name), options, providers=providers)
            except Exception as err:  # a graph ONNX Runtime cannot load
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise DataError(
                    f"{export_dir / name}: ONNX Runtime cannot load it ({first})"
                ) from None

        sessions = {
            "embeddings": session(manifest["embeddings"]),
            "layers": [session(name) for name in manifest["layers"]],
            "exits": [session(name) for name in manifest["exits"]],
            "mix": None if manifest.get("mix") is None else session(manifest["mix"]),
        }
        try:
            tokenizer = AutoTokenizer.from_pretrained(export_dir / TOKENIZER)
        except (OSError, ValueError) as err:
            raise DataError(
                f"{export_dir / TOKENIZER}: cannot load the tokenizer ({err})"
            ) from None
        calibration = manifest.get("calibration")
        temps = None if calibration is None else load_temperatures(export_dir / calibration)
        points = json.loads((export_dir / manifest["operating_points"]).read_text())
        return cls(export_dir, manifest, sessions, tokenizer, temps, points, providers[0])

    @staticmethod
    def _providers(ort, device: str) -> list[str]:
        available = ort.get_available_providers()
        kind = device.split(":")[0]
        if kind == "auto":
            kind = "cuda" if PROVIDERS["cuda"] in available else "cpu"
        if kind not in PROVIDERS:
            raise ConfigError(f"--device: {device!r} is not auto, cpu or cuda[:N]")
        if PROVIDERS[kind] not in available:
            raise ConfigError(
                f"--device {device}: this onnxruntime has no {PROVIDERS[kind]} "
                f"(available: {', '.join(available)})"
            )
        return [PROVIDERS[kind]] + ([PROVIDERS["cpu"]] if kind != "cpu" else [])

    @property
    def card(self) -> str:
        """The export's model card (README.md)."""
        return (self.export_dir / CARD).read_text()

    # ------------------------------------------------------------------ policies

    def operating_point(self, policy: str, max_drop: float | None = None) -> float:
        """The knob chosen on dev that the export recorded (what the torch engine's
        `threshold="auto"` gave on the run); with `max_drop`, chosen again from the
        exported sweep.tsv."""
        from early_exit.exits.operating_points import knob_for

        if max_drop is None and policy in self.points:
            return float(self.points[policy]["knob"])
        sweep = self.manifest.get("sweep")
        if sweep is None:
            raise DataError(
                f"{self.export_dir}: no operating point for policy {policy!r} and no sweep "
                "table in the export; give a number as threshold"
            )
        return knob_for(None, policy, max_drop, sweep=self.export_dir / sweep)


def load_export(
    run_dir: str | Path,
    engine: EarlyExitEngine,
    scratch: Path,
    device: str = "auto",
    threads: int | None = None,
) -> OrtEngine:
    """The run on ONNX Runtime as a user would deploy it: exported afresh from its
    checkpoint (`engine`, the same run on torch, gives the rest) to `scratch`/onnx, with
    `threads` intra-op threads. ONNX Runtime on CUDA needs the onnxruntime-gpu build: on a
    torch device other than the CPU it takes CUDA where it has it, else the CPU."""
    model, _, _ = load_model_dir(find_model_dir(Path(run_dir))[1])  # unfused, to trace
    export_model(model, engine, scratch / "onnx")
    ort_device = "cpu" if device == "cpu" else "auto"
    return OrtEngine.from_dir(scratch / "onnx", device=ort_device, threads=threads)
