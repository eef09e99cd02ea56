"""Real early exiting: classify text layer by layer and stop each example when its policy fires.

The predict stage runs every example through every layer and stores every exit's
logits; the sweeps then *simulate* exiting. The engines do it for real:

- `Engine` is what both engines share: the policies' runtime forms and their knobs,
  tokenising, the walk over batches and the answers. The walk itself is written once,
  in `early_exit.inference.cohort` (`Cohort`: embed, run a layer, at an exit decide and
  let the rows whose policy fired leave, trim the padding no remaining row needs), over
  a small backend: `TorchBackend` here, `ort_engine.OrtBackend` for an ONNX export;
- `EarlyExitEngine` is the engine on torch: it walks the model's own pieces
  (`LayerStack.embeddings`, `LayerStack.layer`, `MultiExitModel.head`), so any backbone
  the model loads runs, whatever the width of each layer (pruned models included);
- batches are built from length-sorted examples (dynamic padding), or in arrival
  order on request; CPU and CUDA share one code path; no autograd state is kept.

What a pass costs besides the layers is kept small (docs/performance.md, "The fixed
cost of a pass"): the examples are padded into one array per run and each batch is a
slice of it; an exit moves its logits (and gate scores) to the host once, the one host
synchronisation of the exit, and the policy decides there with the sweep's own
functions; which rows leave, how much padding remains and whether a mask is needed are
known on the host from the rows' lengths, so the device only sees one index tensor when
rows leave, and a mask is built only when the batch has padding and its shape changed.
The layers run in their fused inference form (`early_exit.modeling.fused`, one QKV
product, no module dispatch), optionally compiled (`compile_mode`).

The decisions are those of `exits.policies` on the stored logits of the same model,
up to floating-point differences between batch shapes (tests/inference/test_engine.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from early_exit.data.prepared import load_manifest
from early_exit.exits.policies import RuntimePolicy, as_numpy, check_runtime, runtime_policy
from early_exit.inference.cohort import Backend, Decisions, pack, walk
from early_exit.modeling.checkpoint import (
    EXIT_CONFIG,
    REWRITE,
    WEIGHTS,
    load_model_dir,
    read_exit_config,
)
from early_exit.modeling.flops import evaluate, exit_flops_polynomial
from early_exit.support.errors import ConfigError, DataError
from early_exit.support.layout import manifest_file
from early_exit.training.batching import sorted_batches
from early_exit.training.runtime import pick_device

REQUIRED_META = ("task", "task_type", "label_names", "max_length")


@dataclass
class Answer:
    """One example's answer and what it cost."""

    label: int | float  # class id, or the predicted value for regression
    label_name: str | None
    exit_layer: int  # 1-based layer whose exit answered
    score_name: str  # what decided: entropy, confidence, patience_counter, ...
    score: float | None
    flops: float  # spent on this example at its real length, exit heads included
    tokens: int  # its length after truncation
    truncated: bool

    def to_json(self) -> dict:
        return asdict(self)


def find_model_dir(run_dir: Path) -> tuple[Path, Path]:
    """(run directory, model directory) for a run directory or a model directory."""
    run_dir = Path(run_dir)
    if (run_dir / "model" / EXIT_CONFIG).is_file():
        return run_dir, run_dir / "model"
    if (run_dir / EXIT_CONFIG).is_file():
        return run_dir.parent, run_dir
    raise DataError(
        f"{run_dir}: not a trained run (expected {run_dir}/model/{EXIT_CONFIG} and "
        f"{WEIGHTS}, as the workflow writes under results/<task>/<method>/seed<seed>; "
        f"{REWRITE})"
    )


def text_fields(run_dir: Path, meta: dict) -> list[str]:
    """The task's text fields: recorded with the model, or in the task's prepared data
    (runs trained before the field was recorded; results/<task>/<method>/seed<n> layout)."""
    if "text_fields" in meta:
        return list(meta["text_fields"])
    try:
        manifest = manifest_file(run_dir, meta["task"])
    except DataError:  # a model directory outside the workflow's layout
        return ["text"]
    if manifest.is_file():
        return list(load_manifest(manifest.parent).get("text_fields", ["text"]))
    return ["text"]


class Engine:
    """A multi-exit model that exits early for real, on some `Backend`: the policies and
    their knobs, tokenising, the walk over length-sorted batches (`cohort.Cohort`) and the
    answers. `EarlyExitEngine` (torch) and `ort_engine.OrtEngine` (ONNX Runtime) differ
    only in how they load and in their backend."""

    def __init__(
        self,
        backend: Backend,
        tokenizer,
        meta: dict,
        temperatures: np.ndarray | None = None,
        run_dir: Path | None = None,
        fields: list[str] | None = None,
    ):
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.temperatures = temperatures
        self.run_dir = run_dir
        self.fields = list(fields or ["text"])
        self.task_type = meta.get("task_type", "classification")
        self.label_names = list(meta.get("label_names", []))
        self.max_length = int(meta["max_length"])
        self.exit_layers = list(backend.exit_layers)

    @property
    def device(self):
        """Where the backend runs: a torch device, or ONNX Runtime's execution provider."""
        return self.backend.device

    @property
    def num_layers(self) -> int:
        """The encoder's depth L (what a layer speed-up L / mean exit layer divides)."""
        return int(self.backend.num_layers)

    @property
    def gated(self) -> bool:
        """Whether the exits have a learned gate whose scores a policy can read (BERxiT)."""
        return bool(self.backend.gated)

    def flops_polynomial(self) -> np.ndarray:
        """[E, 3] FLOPs per exit as c0 + c1 s + c2 s^2 of the length s."""
        return self.backend.flops_polynomial()

    # ------------------------------------------------------------------ policies

    def policy(self, name: str, threshold: float | str, **options) -> RuntimePolicy:
        """The runtime policy `name` at `threshold` ("auto": the knob chosen on dev, with
        `max_drop`); the other `options` are the policy's own (e.g. patience's tau)."""
        check_runtime(name, self.task_type)
        max_drop = options.pop("max_drop", None)
        if threshold == "auto":
            threshold = self.operating_point(name, max_drop)
        return runtime_policy(name, float(threshold), self.task_type, self.temperatures, options)

    def operating_point(self, policy: str, max_drop: float | None = None) -> float:
        """The knob value the workflow chose on dev: its row in the workflow's
        `results/analysis/operating_points.tsv` when that lists this run and `max_drop` is
        not given; otherwise chosen the same way from the run's sweep.tsv
        (`exits.operating_points.knob_for` decides, for every caller)."""
        from early_exit.exits.operating_points import knob_for

        return knob_for(self.run_dir, policy, max_drop)

    # ------------------------------------------------------------------ tokenising

    def encode(self, texts: list, pairs: list | None = None) -> tuple[list[dict], np.ndarray]:
        """Token features per example and whether each was truncated to the max length
        (one tokenisation per text: a fast tokenizer keeps the tokens it cut off)."""
        if pairs is None and len(self.fields) > 1:
            raise DataError(
                f"task {self.meta['task']!r} classifies pairs ({', '.join(self.fields)}); "
                "give both texts of each pair"
            )
        tokens = self.tokenizer(texts, pairs, truncation=True, max_length=self.max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tokens]
        features = [{k: tokens[k][i] for k in keys} for i in range(len(texts))]
        if tokens.encodings is not None:  # a fast tokenizer: what truncation cut off is kept
            truncated = np.array([bool(e.overflowing) for e in tokens.encodings], dtype=bool)
        else:  # a slow one: a second, untruncated pass
            full = self.tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
            truncated = np.array([len(f) > self.max_length for f in full], dtype=bool)
        return features, truncated

    # ------------------------------------------------------------------ running

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
        `inference_mode`: torch's inference mode rather than no_grad (ONNX Runtime keeps no
        autograd state either way)."""
        self.check_gate(policy)
        packed = pack(features, self.tokenizer)
        # the same length-sorted batches as the predict pass (or arrival order)
        batches = sorted_batches(packed.lengths, batch_size, sort_by_length)
        out = self.empty_decisions(len(features))
        with self.backend.no_grad(inference_mode):
            for idx in tqdm(batches, desc="classify", disable=not progress, mininterval=1):
                walk(self.backend, packed.batch(idx), idx, policy, out)
        return out

    def check_gate(self, policy: RuntimePolicy | None) -> None:
        """A policy that reads a learned gate's scores needs a model that has one."""
        if policy is not None and policy.needs_scores and not self.gated:
            raise ConfigError(
                f"policy {type(policy).__name__} needs per-exit scores from the model's exit "
                f"gate (recipe berxit); this {self.backend.kind} has none"
            )

    def empty_decisions(self, n: int) -> Decisions:
        return Decisions.empty(n, len(self.label_names) or 1)

    # ------------------------------------------------------------------ answers

    def answers(self, decisions: Decisions, features, truncated, score_name: str) -> list[Answer]:
        """One Answer per example from the raw decisions (FLOPs at its real length)."""
        lengths = np.array([len(f["input_ids"]) for f in features])
        rows = np.arange(len(lengths))
        flops = evaluate(self.flops_polynomial(), lengths)[rows, decisions.exit_index]
        result = []
        for i, exit_index in enumerate(decisions.exit_index):
            z = decisions.logits[i]
            if self.task_type == "regression":
                label, name = float(z[0]), None
            else:
                label = int(z.argmax())
                name = self.label_names[label]
            score = None if np.isnan(decisions.score[i]) else float(decisions.score[i])
            result.append(
                Answer(
                    label=label,
                    label_name=name,
                    exit_layer=self.exit_layers[exit_index],
                    score_name=score_name,
                    score=score,
                    flops=float(flops[i]),
                    tokens=int(lengths[i]),
                    truncated=bool(truncated[i]),
                )
            )
        return result

    def classify(
        self,
        texts: list[str],
        policy: str = "entropy",
        threshold: float | str = "auto",
        pairs: list[str] | None = None,
        batch_size: int = 32,
        sort_by_length: bool = True,
        progress: bool = False,
        **options,
    ) -> list[Answer]:
        """Classify `texts` (and `pairs`, for a pair task), exiting early under `policy`.

        `policy="full"` runs every layer and answers from the last exit."""
        rule = None if policy == "full" else self.policy(policy, threshold, **options)
        features, truncated = self.encode(list(texts), None if pairs is None else list(pairs))
        decisions = self.run(features, rule, batch_size, sort_by_length, progress=progress)
        name = "none" if rule is None else rule.score_name
        return self.answers(decisions, features, truncated, name)


class TorchBackend:
    """The walk's pieces on the model's own modules (`LayerStack.embeddings`,
    `LayerStack.layer`, `MultiExitModel.mix_state`, `MultiExitModel.head`), on one device.

    A mask is built only when the batch has padding (`masks` is called once per batch
    shape); rows leave through one index tensor per exit at which any row left."""

    kind = "run"

    def __init__(self, model, device, fused: bool = True, compile_mode: str | None = None):
        self.device = device
        self.model = model.eval().to(device)
        self.exit_layers = list(model.exit_layers)
        self.layer_mix = model.cfg.head == "layer_mix"
        self.gated = model.cfg.exit_gate is not None
        self._flops = None
        self.unfused_because = None  # why the layers are not fused, when asked to be
        if fused or compile_mode is not None:
            self.unfused_because = model.stack.fuse(compile_mode)
        else:
            model.stack.unfuse()

    @property
    def num_layers(self) -> int:
        return int(self.model.num_layers)

    def flops_polynomial(self) -> np.ndarray:
        if self._flops is None:
            self._flops = exit_flops_polynomial(self.model)
            self.model.to(self.device)
        return self._flops

    def no_grad(self, inference_mode: bool = True):
        return torch.inference_mode() if inference_mode else torch.no_grad()

    def exit_index(self, layer: int) -> int | None:
        return self.model.exit_index(layer)

    def embed(self, inputs: dict[str, np.ndarray]):
        batch = {key: torch.from_numpy(value).to(self.device) for key, value in inputs.items()}
        hidden = self.model.stack.embeddings(batch["input_ids"], batch.get("token_type_ids"))
        return hidden, batch["attention_mask"]

    def masks(self, hidden, attn, padded: bool):
        """(the layers' mask, the heads' pooling mask); without padding neither: no mask
        is built and heads pool without one."""
        if not padded:
            return None, None
        return self.model.stack.layer_mask(hidden, attn), attn

    def layer(self, index: int, hidden, masks):
        return self.model.stack.layer(index, hidden, masks[0])

    def mix(self, hidden, masks):
        return self.model.mix_state(hidden, masks[1])

    def exit(self, exit_index: int, hidden, masks, mixed: list):
        logits, features = self.model.head(exit_index, hidden, masks[1], mixed)
        return self.host(logits, self.model.gate_score(features))

    def host(self, logits: torch.Tensor, scores: torch.Tensor | None):
        """An exit's logits (and gate scores) as float32 numpy: one transfer, the exit's
        one host synchronisation (on the CPU a view, no copy)."""
        if scores is None:
            return as_numpy(logits), None
        if self.device.type == "cpu":
            return as_numpy(logits), as_numpy(scores)
        both = as_numpy(torch.cat([logits.float(), scores.float()[:, None]], 1))
        return both[:, :-1], both[:, -1]

    def take(self, tensors: list, keep: np.ndarray) -> list:
        kept = torch.from_numpy(keep).to(self.device, non_blocking=True)
        return [t.index_select(0, kept) for t in tensors]

    def narrow(self, tensors: list, width: int) -> list:
        return [t[:, :width] for t in tensors]

    def join(self, a, b, width: int | None, left: bool):
        def pad(t: torch.Tensor) -> torch.Tensor:
            extra = 0 if width is None else width - t.shape[1]
            if extra == 0:
                return t
            shape = (t.shape[0], extra, *t.shape[2:])
            zeros = torch.zeros(shape, dtype=t.dtype, device=t.device)
            return torch.cat([zeros, t] if left else [t, zeros], 1)

        return torch.cat([pad(a), pad(b)])


class EarlyExitEngine(Engine):
    """A trained multi-exit model that exits early for real, on torch."""

    def __init__(
        self,
        model,
        tokenizer,
        meta: dict,
        temperatures: np.ndarray | None = None,
        run_dir: Path | None = None,
        device: str = "auto",
        fields: list[str] | None = None,
        fused: bool = True,
        compile_mode: str | None = None,
    ):
        """`fused`: run the layers in their fused inference form where they have one
        (`LayerStack.fuse`); `compile_mode`: also compile it (`torch.compile`, dynamic
        shapes; "default", or "reduce-overhead" for CUDA graphs). See docs/performance.md
        for what each costs and saves."""
        backend = TorchBackend(model, pick_device(device), fused, compile_mode)
        super().__init__(backend, tokenizer, meta, temperatures, run_dir, fields)

    @property
    def model(self):
        return self.backend.model

    @property
    def unfused_because(self) -> str | None:
        """Why the layers are not fused, when asked to be (None: fused, or not asked)."""
        return self.backend.unfused_because

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        device: str = "auto",
        fused: bool = True,
        compile_mode: str | None = None,
    ) -> EarlyExitEngine:
        """Load `results/<task>/<method>/seed<seed>` (or its `model` directory) with the
        temperatures fitted on dev (the run's calibration.json, written by rule sweep),
        when present."""
        run_dir, model_dir = find_model_dir(Path(run_dir))
        meta = read_exit_config(model_dir)
        missing = [key for key in REQUIRED_META if key not in meta]
        if missing or "exit" not in meta:
            raise DataError(
                f"{model_dir}: a model directory from an older format (no "
                f"{', '.join(missing or ['exit'])} in {EXIT_CONFIG}); retrain it with this "
                "version (rerun rule train)"
            )
        try:
            model, tokenizer, meta = load_model_dir(model_dir)
        except (TypeError, KeyError, RuntimeError) as err:
            raise DataError(
                f"{model_dir}: cannot rebuild the model ({err}); it is from an older format, "
                "retrain it with this version (rerun rule train)"
            ) from err
        temps = None
        calibration = run_dir / "calibration.json"
        if calibration.is_file():
            from early_exit.exits.sweep import load_temperatures

            temps = load_temperatures(calibration)
        fields = text_fields(run_dir, meta)
        return cls(model, tokenizer, meta, temps, run_dir, device, fields, fused, compile_mode)
