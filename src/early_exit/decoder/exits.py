"""Exit maps into the final layer's space, and a cheap confidence signal per exit.

Tuned-lens / EE-Tuning style: for each exit layer E an affine map A_E (initialised to the
identity, so an untrained exit is the model's own head on layer E) takes the residual
stream after layer E to an estimate of the stream after the last layer; the model's final
norm and head then give the exit's next-token distribution. The backbone stays frozen; the
maps are trained by KL(final || exit) on the next-token distributions of packaged text.

The head (49,152 x 576 for SmolLM2) costs as much as ~8 of its layers, so no method may
evaluate it at every exit to decide whether to stop. Each exit therefore also gets a
confidence classifier (CALM's "early-exit classifier"): one linear unit on the mapped
state, trained after the maps to predict whether the exit's top token equals the final
layer's, 576 multiply-adds per token. The head runs only where a token exits.

Saved as safetensors (`exits.safetensors`) with a JSON header of the layers and the model.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from early_exit.support.atomic import atomic_path
from early_exit.support.errors import ConfigError, DataError

FILE = "exits.safetensors"

log = logging.getLogger(__name__)


class ExitMaps(nn.Module):
    """One affine map and one confidence unit per exit layer (layers counted from 1)."""

    def __init__(self, hidden: int, layers: list[int]):
        super().__init__()
        self.layers = sorted(layers)
        self.maps = nn.ModuleDict({str(e): nn.Linear(hidden, hidden) for e in self.layers})
        self.confidence = nn.ModuleDict({str(e): nn.Linear(hidden, 1) for e in self.layers})
        with torch.no_grad():
            for linear in self.maps.values():
                linear.weight.copy_(torch.eye(hidden))
                linear.bias.zero_()
            for unit in self.confidence.values():
                unit.weight.zero_()
                unit.bias.zero_()

    def mapped(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """The exit's estimate of the last layer's residual stream."""
        return self.maps[str(layer)](hidden)

    def score(self, layer: int, mapped: torch.Tensor) -> torch.Tensor:
        """Probability that this exit's top token is the final layer's (from the mapped state)."""
        return torch.sigmoid(self.confidence[str(layer)](mapped)).squeeze(-1)


def check_layers(layers, num_layers: int, key: str = "decoder exit layers") -> list[int]:
    """Exit layers are distinct integers in 1 .. num_layers - 1."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ConfigError(f"{key}: a non-empty list of layers, got {layers!r}")
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer < num_layers:
            raise ConfigError(f"{key}: {layer!r} is not a layer in 1..{num_layers - 1}")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{key}: repeated layer in {list(layers)}")
    return sorted(layers)


@torch.no_grad()
def collect(stack, sequences: list[list[int]], layers: list[int]) -> dict[int, torch.Tensor]:
    """The residual stream after each exit layer and after the last layer (key
    `stack.num_layers`), for every position of every sequence, concatenated."""
    wanted = set(layers) | {stack.num_layers}
    found: dict[int, list[torch.Tensor]] = {layer: [] for layer in wanted}
    for ids in sequences:
        hidden = stack.embed(torch.tensor([ids]))
        cache = stack.new_cache()
        where = stack.positions(hidden, 0)
        for index in range(stack.num_layers):
            hidden = stack.run(hidden, index, index + 1, cache, 0, where)
            if index + 1 in wanted:
                found[index + 1].append(hidden[0])
    return {layer: torch.cat(parts) for layer, parts in found.items()}


@dataclass
class TrainingReport:
    tokens: int
    steps: int
    seconds: float
    # mean KL(final || exit) in nats over the first KL_TOKENS training tokens
    kl_before: dict[int, float] = field(default_factory=dict)
    kl_after: dict[int, float] = field(default_factory=dict)
    agreement: dict[int, float] = field(default_factory=dict)  # top-1 = final's, after


def teacher(stack, states, rows: torch.Tensor) -> torch.Tensor:
    """The final layer's next-token log-probabilities at `rows` of the collected states."""
    with torch.no_grad():
        return F.log_softmax(stack.logits(states[stack.num_layers][rows]), dim=-1)


def exit_kl(stack, exits: ExitMaps, states, layer: int, rows, target) -> torch.Tensor:
    """Mean KL(final || exit) over `rows` of the collected states (`target`: `teacher`'s)."""
    student = F.log_softmax(stack.logits(exits.mapped(layer, states[layer][rows])), dim=-1)
    return F.kl_div(student, target, log_target=True, reduction="batchmean")


KL_TOKENS = 2048  # the before/after KL is measured on the first tokens only (it costs a head each)


def mean_kl(stack, exits, states, layers, batch) -> dict[int, float]:
    count = min(states[stack.num_layers].shape[0], KL_TOKENS)
    total = dict.fromkeys(layers, 0.0)
    with torch.no_grad():
        for begin in range(0, count, batch):
            rows = torch.arange(begin, min(begin + batch, count))
            target = teacher(stack, states, rows)
            for layer in layers:
                total[layer] += exit_kl(stack, exits, states, layer, rows, target).item() * len(
                    rows
                )
    return {layer: value / count for layer, value in total.items()}


def train_exits(
    stack,
    sequences: list[list[int]],
    layers: list[int],
    epochs: int = 2,
    batch: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 13,
) -> tuple[ExitMaps, TrainingReport]:
    """Train one map per exit layer by KL to the final layer, then each confidence unit by
    logistic regression on whether the trained exit's top token is the final layer's."""
    layers = check_layers(layers, stack.num_layers)
    for key, value in (("epochs", epochs), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"decoder exit training {key}: a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ConfigError(f"decoder exit training learning_rate: positive, got {learning_rate!r}")
    if not sequences or not any(sequences):
        raise DataError("decoder exit training: no text to train on")
    began = time.perf_counter()
    torch.manual_seed(seed)
    states = collect(stack, sequences, layers)
    count = states[stack.num_layers].shape[0]
    hidden = states[stack.num_layers].shape[1]
    exits = ExitMaps(hidden, layers)
    report = TrainingReport(tokens=count, steps=0, seconds=0.0)
    report.kl_before = mean_kl(stack, exits, states, layers, batch)
    optimiser = torch.optim.Adam(exits.maps.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    log.info("exit training: %d tokens, KL before %s", count, report.kl_before)
    for epoch in range(epochs):
        log.info(
            "exit training: epoch %d of %d (%.0f s)", epoch + 1, epochs, time.perf_counter() - began
        )
        order = torch.randperm(count, generator=generator)
        for begin in range(0, count, batch):
            rows = order[begin : begin + batch]
            target = teacher(stack, states, rows)
            loss = sum(exit_kl(stack, exits, states, e, rows, target) for e in layers)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            report.steps += 1
    report.kl_after = mean_kl(stack, exits, states, layers, batch)
    for layer in layers:
        report.agreement[layer] = train_confidence(stack, exits, states, layer, batch, seed)
    report.seconds = time.perf_counter() - began
    return exits, report


def train_confidence(stack, exits, states, layer: int, batch: int, seed: int) -> float:
    """Fit the exit's confidence unit; return the exit's top-1 agreement with the final layer."""
    with torch.no_grad():
        mapped = exits.mapped(layer, states[layer])
        agree = []
        for begin in range(0, mapped.shape[0], batch):
            rows = slice(begin, begin + batch)
            final = stack.logits(states[stack.num_layers][rows]).argmax(-1)
            agree.append(stack.logits(mapped[rows]).argmax(-1) == final)
        target = torch.cat(agree).float()
    unit = exits.confidence[str(layer)]
    torch.manual_seed(seed)
    optimiser = torch.optim.LBFGS(unit.parameters(), max_iter=100, line_search_fn="strong_wolfe")
    features = mapped.detach()

    def closure():
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(unit(features).squeeze(-1), target)
        loss = loss + 1e-4 * unit.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return target.mean().item()


def save_exits(exits: ExitMaps, directory: str | Path, meta: dict) -> Path:
    """`directory/exits.safetensors`, written atomically, the layers and `meta` in its header."""
    from safetensors.torch import save_file

    path = Path(directory) / FILE
    header = {"layers": json.dumps(exits.layers), "meta": json.dumps(meta, sort_keys=True)}
    tensors = {name: t.detach().contiguous() for name, t in exits.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def load_exits(path: str | Path, hidden: int, num_layers: int) -> tuple[ExitMaps, dict]:
    """Exit maps saved by `save_exits`, checked against the model they will run on."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / FILE
    if not path.is_file():
        raise DataError(f"{path}: exit maps not found (train them first)")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
        layers = json.loads(header["layers"])
        meta = json.loads(header.get("meta", "{}"))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise DataError(f"{path}: cannot read exit maps ({err})") from None
    try:
        layers = check_layers(layers, num_layers, f"{path} layers")
    except ConfigError as err:  # a file trained for another model
        raise DataError(f"{err} (exit maps of another model?)") from None
    exits = ExitMaps(hidden, layers)
    try:
        exits.load_state_dict(tensors)
    except RuntimeError as err:
        raise DataError(
            f"{path}: exit maps do not fit this model ({str(err).splitlines()[0]})"
        ) from None
    exits.requires_grad_(False)
    return exits, meta


@torch.no_grad()
def held_out_perplexity(stack, exits: ExitMaps, sequences: list[list[int]]) -> dict[int, float]:
    """Perplexity of held-out text read through each exit (teacher-forced: every position
    predicts the next real token) and through the last layer (key `stack.num_layers`)."""
    if not any(len(ids) > 1 for ids in sequences):
        raise DataError("decoder held-out perplexity: no sequence of two tokens or more")
    states = collect(stack, sequences, exits.layers)
    keep, targets, offset = [], [], 0
    for ids in sequences:  # a position predicts the next token of its own sequence
        keep += range(offset, offset + len(ids) - 1)
        targets += ids[1:]
        offset += len(ids)
    rows, target = torch.tensor(keep, dtype=torch.long), torch.tensor(targets)
    found = {}
    for layer in [*exits.layers, stack.num_layers]:
        hidden = states[layer][rows]
        if layer != stack.num_layers:
            hidden = exits.mapped(layer, hidden)
        found[layer] = float(torch.exp(F.cross_entropy(stack.logits(hidden), target)))
    return found
