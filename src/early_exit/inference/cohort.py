"""The engines' one walk: rows at one depth crossing the layers together, leaving at exits.

Both engines run this walk, the torch engine (`early_exit.inference.engine`) and the ONNX
Runtime engine (`early_exit.inference.ort_engine`); what differs between them is a small
`Backend`: how a batch is embedded, how one layer, one layer-mix state and one exit head
run, and how rows are taken out of, cut from or joined into its arrays (torch tensors on a
device, or numpy arrays fed to ONNX Runtime sessions).

A `Cohort` is a batch of rows at the same depth. Each `step` runs the next layer; at an
exit the head's logits (and gate scores) come to the host once, the policy's runtime form
(`early_exit.exits.policies`) decides there, and the rows whose policy fired leave: they
are dropped from the hidden states, the attention mask, the per-layer states a layer-mix
head needs and the policy's state (e.g. patience counters), and padding no remaining row
needs is trimmed. Which rows leave, how much padding remains and whether the batch has
padding at all are known on the host from the rows' lengths, without asking the device.
Two cohorts at the same depth `merge` (the serving scheduler's refill,
`early_exit.serving.scheduler`): their arrays are padded to the wider one, where the
attention mask hides the padding.

No torch here: the walk is the same whichever backend runs the pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class Batch:
    """Model inputs of some rows, padded to their longest row (numpy int64, [n, width])."""

    inputs: dict[str, np.ndarray]  # input_ids, attention_mask[, token_type_ids]
    lengths: np.ndarray  # [n] unpadded lengths
    left: bool = False  # padding on the left (the tokenizer's padding_side)


@dataclass
class Packed:
    """Every example's token features padded once into one array per key, [N, W]: a
    batch is a slice of rows, cut to its own longest row (dynamic padding)."""

    arrays: dict[str, np.ndarray]  # input_ids, attention_mask[, token_type_ids], int64
    lengths: np.ndarray  # [N] unpadded lengths
    left: bool = False  # padding on the left (the tokenizer's padding_side)

    def batch(self, rows: np.ndarray) -> Batch:
        """The padded model inputs of `rows`, as `tokenizer.pad` builds them."""
        width = int(self.lengths[rows].max())
        cut = slice(-width, None) if self.left else slice(0, width)
        inputs = {key: values[rows, cut] for key, values in self.arrays.items()}
        return Batch(inputs, self.lengths[rows], self.left)


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
class Exited:
    """The rows of a cohort that answered at one exit."""

    rows: np.ndarray  # the row ids the cohort was given (input positions, request ids)
    exit_index: int
    logits: np.ndarray  # [n, C]
    score: np.ndarray  # [n] the deciding score (NaN at full depth)


@dataclass
class Decisions:
    """Raw per-example results of a run, in input order."""

    exit_index: np.ndarray  # [N] index into the model's exits
    logits: np.ndarray  # [N, C] logits of the exit that answered
    score: np.ndarray  # [N] the deciding score (NaN at full depth)

    @classmethod
    def empty(cls, n: int, n_labels: int) -> Decisions:
        return cls(np.zeros(n, np.int64), np.zeros((n, n_labels), np.float32), np.full(n, np.nan))

    def record(self, exited: Exited | None) -> None:
        """Put the rows that answered (their ids are input positions) in their places."""
        if exited is not None:
            self.exit_index[exited.rows] = exited.exit_index
            self.logits[exited.rows] = exited.logits
            self.score[exited.rows] = exited.score


class Backend(Protocol):
    """The pieces one engine runs, on its own arrays ("tensors": torch tensors on a device,
    or numpy arrays); `masks` is whatever its layers and heads read of the attention mask."""

    kind: str  # what the model was loaded from, for messages: "run" or "export"
    device: Any
    num_layers: int
    exit_layers: list[int]  # 1-based layers with an exit after them
    layer_mix: bool  # the exits read every layer's mix state (Sledgehammer)
    gated: bool  # the exits have a learned gate (BERxiT): policies can read its scores

    def flops_polynomial(self) -> np.ndarray:
        """[E, 3] FLOPs per exit as c0 + c1 s + c2 s^2 of the length s."""

    def no_grad(self, inference_mode: bool = True) -> Any:
        """A context in which no autograd state is kept (torch's inference mode or no_grad)."""

    def exit_index(self, layer: int) -> int | None:
        """Position of the exit after `layer` (1-based) among the exits; None if none."""

    def embed(self, inputs: dict[str, np.ndarray]) -> tuple[Any, Any]:
        """(hidden states, attention mask) of a padded batch, in the backend's arrays."""

    def masks(self, hidden, attn, padded: bool) -> Any:
        """What the layers and heads read of `attn`, built once per batch shape (`padded`:
        whether any row is shorter than the batch)."""

    def layer(self, index: int, hidden, masks) -> Any:
        """Layer `index` (0-based) on `hidden`."""

    def mix(self, hidden, masks) -> Any:
        """The layer-mix state of this layer's output (layer-mix models only)."""

    def exit(self, exit_index: int, hidden, masks, mixed: list) -> tuple[np.ndarray, Any]:
        """The exit's logits [n, C] and gate scores [n] (or None) as float32 numpy: the
        exit's one host transfer."""

    def take(self, tensors: list, keep: np.ndarray) -> list:
        """Rows `keep` (row indices, ascending) of every tensor."""

    def narrow(self, tensors: list, width: int) -> list:
        """The first `width` positions of every [rows, positions, ...] tensor."""

    def join(self, a, b, width: int | None, left: bool) -> Any:
        """`a`'s rows then `b`'s, each padded with zeros to `width` positions (on the left
        with `left`; None: no position axis)."""


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

    def __init__(self, backend: Backend, batch: Batch, rows, policy):
        self.backend, self.policy = backend, policy
        self.rows, self.lengths = np.asarray(rows), np.asarray(batch.lengths)
        self.left = batch.left  # padding on the left: never trimmed
        self.hidden, self.attn = backend.embed(batch.inputs)
        self.width = int(self.hidden.shape[1])
        self.state = policy.start(len(self.rows)) if policy is not None else None
        self.mixed: list = []
        self.depth = 0  # layers run so far
        self._masks()

    def _masks(self) -> None:
        # no padding (always so at batch size 1): the torch backend builds no mask
        self.padded = bool((self.lengths < self.width).any())
        self.masks = self.backend.masks(self.hidden, self.attn, self.padded)

    def step(self) -> Exited | None:
        """Run the next layer; the rows that answer at its exit leave (returned)."""
        backend, policy, index = self.backend, self.policy, self.depth
        self.hidden = backend.layer(index, self.hidden, self.masks)
        self.depth += 1
        if backend.layer_mix:
            self.mixed.append(backend.mix(self.hidden, self.masks))
        exit_index = backend.exit_index(index + 1)
        last = len(backend.exit_layers) - 1
        if exit_index is None or (policy is None and exit_index != last):
            return None
        logits, scores = backend.exit(exit_index, self.hidden, self.masks, self.mixed)
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
        kept = backend.take([self.hidden, self.attn, *self.mixed], np.flatnonzero(keep))
        self.hidden, self.attn, self.mixed = kept[0], kept[1], kept[2:]
        if not self.left and int(self.lengths.max()) < self.width:
            self.width = int(self.lengths.max())
            self.hidden, self.attn = backend.narrow([self.hidden, self.attn], self.width)
        self._masks()
        return exited

    def merge(self, other: Cohort) -> None:
        """Take `other`'s rows (same depth) into this cohort: one layer call for both."""
        if other.depth != self.depth:
            raise ValueError(f"cohorts at depths {self.depth} and {other.depth} cannot merge")
        width, join = max(self.width, other.width), self.backend.join
        self.hidden = join(self.hidden, other.hidden, width, self.left)
        self.attn = join(self.attn, other.attn, width, self.left)
        pairs = zip(self.mixed, other.mixed, strict=True)
        self.mixed = [join(a, b, None, self.left) for a, b in pairs]
        self.rows = np.concatenate([self.rows, other.rows])
        self.lengths = np.concatenate([self.lengths, other.lengths])
        self.state = merge_state(self.state, other.state)
        self.width = width
        self._masks()


def walk(backend: Backend, batch: Batch, rows: np.ndarray, policy, out: Decisions) -> None:
    """One padded batch through the layers to its end: every row answers into `out`."""
    cohort = Cohort(backend, batch, rows, policy)
    while cohort.rows.size:
        out.record(cohort.step())
