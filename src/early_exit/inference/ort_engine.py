"""The early-exit engine on ONNX Runtime: an export directory (`early-exit export`) answering
text, exiting early for real.

The export holds one graph per piece the torch engine walks (embeddings, each layer,
each exit head, Sledgehammer's per-layer mix state). This engine runs them one at a time
on numpy arrays and, between them, does what `early_exit.inference.engine` does: after
each exit the policy's runtime form (`early_exit.exits.policies`, the same objects the
torch engine uses) decides which rows leave; those rows leave the hidden states, the
attention mask, the mix states and the policy's state, and padding no remaining row needs
is trimmed. It is an `EarlyExitEngine` in everything else: the same policies and knobs
(`policy`, `threshold="auto"` reading the knob the export recorded), tokenising, answers
and `classify`; only loading, the FLOPs table and the walk itself are its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from early_exit.exits.policies import RuntimePolicy
from early_exit.inference.engine import Decisions, EarlyExitEngine
from early_exit.inference.onnx_export import (
    CARD,
    FORMAT,
    MANIFEST,
    TOKENIZER,
    VERSION,
    requirement,
)
from early_exit.support.atomic import sha256_file
from early_exit.support.errors import ConfigError, DataError
from early_exit.training.batching import sorted_batches

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


class OrtEngine(EarlyExitEngine):
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
        # Not the torch engine's constructor: there is no torch model to place.
        self.export_dir = export_dir
        self.manifest = manifest
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.meta = manifest["model"]
        self.temperatures = temperatures
        self.points = points
        self.device = device
        self.run_dir = None
        self.fields = list(manifest["fields"])
        self.task_type = self.meta.get("task_type", "classification")
        self.label_names = list(self.meta.get("label_names", []))
        self.max_length = int(self.meta["max_length"])
        self.exit_layers = list(manifest["exit_layers"])
        self._exit_index = {layer: i for i, layer in enumerate(self.exit_layers)}
        self._flops = np.asarray(manifest["flops"], dtype=np.float64)
        self._trim = manifest.get("padding_side", "right") == "right"
        self._inputs = {
            key: [i.name for i in session.get_inputs()] for key, session in self._all_sessions()
        }

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

    def _all_sessions(self):
        yield "embeddings", self.sessions["embeddings"]
        for i, s in enumerate(self.sessions["layers"]):
            yield f"layer{i}", s
        for i, s in enumerate(self.sessions["exits"]):
            yield f"exit{i}", s
        if self.sessions["mix"] is not None:
            yield "mix", self.sessions["mix"]

    @property
    def num_layers(self) -> int:
        return int(self.manifest["num_layers"])

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

    # ------------------------------------------------------------------ running

    def flops_polynomial(self) -> np.ndarray:
        return self._flops

    def _call(self, key: str, session, **arrays) -> list[np.ndarray]:
        return session.run(None, {name: arrays[name] for name in self._inputs[key]})

    def run(
        self,
        features: list[dict],
        policy: RuntimePolicy | None,
        batch_size: int = 32,
        sort_by_length: bool = True,
        inference_mode: bool = True,
        progress: bool = False,
    ) -> Decisions:
        """Exit every example under `policy` (None: full depth, the last exit only).
        `inference_mode` is accepted for the torch engine's signature; ONNX Runtime keeps
        no autograd state anyway."""
        self._check_gate(policy, bool(self.manifest["gate"]), "export")
        lengths = np.array([len(f["input_ids"]) for f in features])
        batches = sorted_batches(lengths, batch_size, sort_by_length)
        out = self._empty_decisions(len(features))
        names = self.manifest["inputs"]
        for idx in tqdm(batches, desc="classify", disable=not progress, mininterval=1):
            pad = self.tokenizer.pad([features[i] for i in idx], return_tensors="np")
            batch = {name: np.asarray(pad[name], dtype=np.int64) for name in names}
            self._run_batch(batch, idx, policy, out)
        return out

    def _run_batch(self, batch: dict, rows: np.ndarray, policy, out: Decisions) -> None:
        """One padded batch through the graphs; rows leave as their policy fires."""
        attn = batch["attention_mask"]
        (hidden,) = self._call("embeddings", self.sessions["embeddings"], **batch)
        state = policy.start(len(rows)) if policy is not None else None
        last = len(self.exit_layers) - 1
        mix = self.sessions["mix"]
        mixed: list[np.ndarray] = []
        for index in range(self.exit_layers[-1]):
            layer = self.sessions["layers"][index]
            (hidden,) = self._call(f"layer{index}", layer, hidden=hidden, attention_mask=attn)
            if mix is not None:
                mixed.append(self._call("mix", mix, hidden=hidden, attention_mask=attn)[0])
            exit_index = self._exit_index.get(index + 1)
            if exit_index is None or (policy is None and exit_index != last):
                continue
            given = {"hidden": hidden, "attention_mask": attn}
            if mix is not None:
                given = {"mixed": np.stack(mixed[: self.exit_layers[exit_index]], axis=-1)}
            results = self._call(f"exit{exit_index}", self.sessions["exits"][exit_index], **given)
            logits, scores = results[0], (results[1] if len(results) > 1 else None)
            fired = np.ones(len(rows), dtype=bool)
            if policy is not None:
                fired = policy.fires(exit_index, logits, scores, state) | (exit_index == last)
            done = rows[fired]
            out.exit_index[done] = exit_index
            out.logits[done] = logits[fired]
            if policy is not None:
                out.score[done] = state["score"][fired]
            if fired.all():
                return
            if not fired.any():
                continue
            keep = ~fired
            rows, state = rows[keep], policy.keep(state, keep)
            hidden, attn = hidden[keep], attn[keep]
            mixed = [m[keep] for m in mixed]
            if self._trim:
                width = int(attn.sum(1).max())
                hidden, attn = hidden[:, :width], attn[:, :width]
            hidden, attn = np.ascontiguousarray(hidden), np.ascontiguousarray(attn)
