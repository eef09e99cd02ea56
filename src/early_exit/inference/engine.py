"""Real early exiting: classify text layer by layer and stop each example when its policy fires.

The predict stage runs every example through every layer and stores every exit's
logits; the sweeps then *simulate* exiting. This engine does it for real:

- it walks the model's own pieces (`LayerStack.embed`, `LayerStack.layer`,
  `MultiExitModel.head`), so any backbone the model loads runs, whatever the width
  of each layer (pruned models included);
- an exit head is evaluated only at exit layers; after each exit the rows whose
  policy fired leave the batch: they are dropped from the hidden states, the
  attention mask, the per-layer states a layer-mix head needs and the policy's state
  (e.g. patience counters), and padding no remaining row needs is trimmed. The batch
  shrinks instead of waiting for its slowest row; answers go back to input order;
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


@dataclass
class Packed:
    """Every example's token features padded once into one array per key, [N, W]: a
    batch is a slice of rows, cut to its own longest row (dynamic padding)."""

    arrays: dict[str, np.ndarray]  # input_ids, attention_mask[, token_type_ids], int64
    lengths: np.ndarray  # [N] unpadded lengths
    left: bool = False  # padding on the left (the tokenizer's padding_side)

    def batch(self, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """The padded model inputs of `rows`, as `tokenizer.pad` builds them."""
        width = int(self.lengths[rows].max())
        cut = slice(-width, None) if self.left else slice(0, width)
        return {
            key: torch.from_numpy(values[rows, cut]).to(device)
            for key, values in self.arrays.items()
        }


def pack(features: list[dict], tokenizer) -> Packed:
    """Pad every example once (`tokenizer.pad`'s values: the pad token, mask 0, the pad
    token type), instead of once per batch in Python."""
    lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    pad_values = {
        "input_ids": tokenizer.pad_token_id or 0,
        "attention_mask": 0,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
    }
    keys = [key for key in pad_values if features and key in features[0]]
    arrays = {key: np.full((len(features), width), pad_values[key], np.int64) for key in keys}
    for i, (feature, length) in enumerate(zip(features, lengths, strict=True)):
        cut = slice(width - length, width) if left else slice(0, length)
        for key in keys:
            arrays[key][i, cut] = feature[key]
    return Packed(arrays, lengths, left)


@dataclass
class Decisions:
    """Raw per-example results of a run, in input order."""

    exit_index: np.ndarray  # [N] index into the model's exits
    logits: np.ndarray  # [N, C] logits of the exit that answered
    score: np.ndarray  # [N] the deciding score (NaN at full depth)


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


class EarlyExitEngine:
    """A trained multi-exit model that exits early for real."""

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
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.meta = meta
        self.temperatures = temperatures
        self.run_dir = run_dir
        self.fields = fields or ["text"]
        self.task_type = meta.get("task_type", "classification")
        self.label_names = list(meta.get("label_names", []))
        self.max_length = int(meta["max_length"])
        self.exit_layers = list(model.exit_layers)
        self._flops = None
        # padding can be trimmed after rows leave only when it sits on the right
        self._trim = getattr(tokenizer, "padding_side", "right") == "right"
        self.unfused_because = None  # why the layers are not fused, when asked to be
        if fused or compile_mode is not None:
            self.unfused_because = model.stack.fuse(compile_mode)
        else:
            model.stack.unfuse()

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

    @property
    def num_layers(self) -> int:
        """The encoder's depth L (what a layer speed-up L / mean exit layer divides)."""
        return int(self.model.num_layers)

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

    def flops_polynomial(self) -> np.ndarray:
        if self._flops is None:
            self._flops = exit_flops_polynomial(self.model)
            self.model.to(self.device)
        return self._flops

    def run(
        self,
        features: list[dict],
        policy: RuntimePolicy | None,
        batch_size: int = 32,
        sort_by_length: bool = True,
        inference_mode: bool = True,
        progress: bool = False,
    ) -> Decisions:
        """Exit every example under `policy` (None: full depth, the last exit only)."""
        self._check_gate(policy, self.model.cfg.exit_gate is not None, "run")
        packed = pack(features, self.tokenizer)
        # the same length-sorted batches as the predict pass (or arrival order)
        batches = sorted_batches(packed.lengths, batch_size, sort_by_length)
        out = self._empty_decisions(len(features))
        grad = torch.inference_mode() if inference_mode else torch.no_grad()
        with grad:
            for idx in tqdm(batches, desc="classify", disable=not progress, mininterval=1):
                batch = packed.batch(idx, self.device)
                self._run_batch(batch, idx, packed.lengths[idx], policy, out)
        return out

    @staticmethod
    def _check_gate(policy: RuntimePolicy | None, has_gate: bool, what: str) -> None:
        """A policy that reads a learned gate's scores needs a model that has one."""
        if policy is not None and policy.needs_scores and not has_gate:
            raise ConfigError(
                f"policy {type(policy).__name__} needs per-exit scores from the model's exit "
                f"gate (recipe berxit); this {what} has none"
            )

    def _empty_decisions(self, n: int) -> Decisions:
        n_labels = len(self.label_names) or 1
        return Decisions(
            np.zeros(n, np.int64), np.zeros((n, n_labels), np.float32), np.full(n, np.nan)
        )

    def _host(self, logits: torch.Tensor, scores: torch.Tensor | None):
        """An exit's logits (and gate scores) as float32 numpy: one transfer, the exit's
        one host synchronisation (on the CPU a view, no copy)."""
        if scores is None:
            return as_numpy(logits), None
        if self.device.type == "cpu":
            return as_numpy(logits), as_numpy(scores)
        both = as_numpy(torch.cat([logits.float(), scores.float()[:, None]], 1))
        return both[:, :-1], both[:, -1]

    def _run_batch(
        self, batch: dict, rows: np.ndarray, lengths: np.ndarray, policy, out: Decisions
    ) -> None:
        """One padded batch through the layers; rows leave as their policy fires
        (`Cohort`, one layer per step, which the serving scheduler also refills)."""
        cohort = Cohort(self, batch, rows, lengths, policy)
        while cohort.rows.size:
            exited = cohort.step()
            if exited is not None:
                out.exit_index[exited.rows] = exited.exit_index
                out.logits[exited.rows] = exited.logits
                out.score[exited.rows] = exited.score

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


@dataclass
class Exited:
    """The rows of a cohort that answered at one exit."""

    rows: np.ndarray  # the row ids the cohort was given (input positions, request ids)
    exit_index: int
    logits: np.ndarray  # [n, C]
    score: np.ndarray  # [n] the deciding score (NaN at full depth)


def merge_state(a: dict | None, b: dict | None) -> dict | None:
    """Two policy states of rows at the same depth as one (each value is per row, or None
    before the first exit, as patience's previous logits)."""
    if a is None or b is None:
        return None
    return {k: None if a[k] is None else np.concatenate([a[k], b[k]]) for k in a}


class Cohort:
    """Rows at one depth walking the layers together, one layer per `step`.

    Row bookkeeping is on the host: `rows` (row ids) and `lengths` shrink with the batch,
    so the padding left and whether a mask is needed come without asking the device.
    Two cohorts at the same depth can `merge` (the serving scheduler's refill): their
    hidden states are padded to the wider one, where the mask hides the padding."""

    def __init__(self, engine: EarlyExitEngine, batch: dict, rows, lengths, policy):
        self.engine, self.policy = engine, policy
        stack = engine.model.stack
        self.rows, self.lengths = np.asarray(rows), np.asarray(lengths)
        self.attn = batch["attention_mask"]
        self.hidden = stack.embeddings(batch["input_ids"], batch.get("token_type_ids"))
        self.width = self.hidden.shape[1]
        self.state = policy.start(len(self.rows)) if policy is not None else None
        self.mixed: list[torch.Tensor] = []
        self.depth = 0  # layers run so far
        self._masks()

    def _masks(self) -> None:
        # no padding (always so at batch size 1): no mask, and heads pool without one
        self.padded = bool((self.lengths < self.width).any())
        stack = self.engine.model.stack
        self.mask = stack.layer_mask(self.hidden, self.attn) if self.padded else None
        self.pool_mask = self.attn if self.padded else None

    def step(self) -> Exited | None:
        """Run the next layer; the rows that answer at its exit leave (returned)."""
        engine, model, policy = self.engine, self.engine.model, self.policy
        index = self.depth
        self.hidden = model.stack.layer(index, self.hidden, self.mask)
        self.depth += 1
        if model.cfg.head == "layer_mix":
            self.mixed.append(model.mix_state(self.hidden, self.pool_mask))
        exit_index = model.exit_index(index + 1)
        last = len(engine.exit_layers) - 1
        if exit_index is None or (policy is None and exit_index != last):
            return None
        logits, features = model.head(exit_index, self.hidden, self.pool_mask, self.mixed)
        logits, scores = engine._host(logits, model.gate_score(features))
        if policy is None:
            fired = None  # full depth: every row answers here
        else:
            fired = policy.fires(exit_index, logits, scores, self.state)
            if exit_index == last:
                fired = None
        if fired is None or fired.all():
            score = self.state["score"] if policy is not None else np.full(len(self.rows), np.nan)
            exited = Exited(self.rows, exit_index, logits, np.asarray(score, dtype=float))
            self.rows, self.lengths = self.rows[:0], self.lengths[:0]
            return exited
        if not fired.any():  # nobody exited: no copies, no new mask
            return None
        exited = Exited(
            self.rows[fired],
            exit_index,
            logits[fired],
            np.asarray(self.state["score"][fired], float),
        )
        keep = ~fired
        self.rows, self.lengths = self.rows[keep], self.lengths[keep]
        self.state = policy.keep(self.state, keep)
        kept = torch.from_numpy(np.flatnonzero(keep)).to(self.hidden.device, non_blocking=True)
        self.hidden, self.attn = self.hidden.index_select(0, kept), self.attn.index_select(0, kept)
        self.mixed = [m.index_select(0, kept) for m in self.mixed]
        if engine._trim and int(self.lengths.max()) < self.width:
            self.width = int(self.lengths.max())
            self.hidden, self.attn = self.hidden[:, : self.width], self.attn[:, : self.width]
        self._masks()
        return exited

    def merge(self, other: Cohort) -> None:
        """Take `other`'s rows (same depth) into this cohort: one layer call for both."""
        if other.depth != self.depth:
            raise ValueError(f"cohorts at depths {self.depth} and {other.depth} cannot merge")
        width = max(self.width, other.width)
        left = not self.engine._trim  # padding on the left

        def pad(t: torch.Tensor) -> torch.Tensor:
            extra = width - t.shape[1]
            if extra == 0:
                return t
            shape = (t.shape[0], extra, *t.shape[2:])
            zeros = torch.zeros(shape, dtype=t.dtype, device=t.device)
            return torch.cat([zeros, t] if left else [t, zeros], 1)

        self.hidden = torch.cat([pad(self.hidden), pad(other.hidden)])
        self.attn = torch.cat([pad(self.attn), pad(other.attn)])
        self.mixed = [torch.cat([a, b]) for a, b in zip(self.mixed, other.mixed, strict=True)]
        self.rows = np.concatenate([self.rows, other.rows])
        self.lengths = np.concatenate([self.lengths, other.lengths])
        self.state = merge_state(self.state, other.state)
        self.width = width
        self._masks()
