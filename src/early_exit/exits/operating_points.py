"""Operating points: the knob chosen on dev, reported on test (computed once, by one rule).

Protocol: for every run (task, method, seed) and policy, the knob value is chosen on
**dev** (the fastest whose dev score is within `max_drop` of the same model's
full-depth dev score, every example at the last exit; the best dev score when no knob
value comes that close) and the **test** numbers at that value are reported; seeds
are aggregated as mean and standard deviation. The workflow's `operating_points` rule
writes them to `results/analysis/operating_points.tsv` (`operating_points` here, with
the intervals `early_exit.analysis.operating_point_tables` adds; `write_operating_points`
writes the bare table, for benchmarks and tests that need one without the rule);
the notebooks, the slides and the latency stage read that file
(`load_operating_points`) instead of choosing again. Every caller that needs "the knob for
this run" (the engines, the ONNX export, the latency and serving stages, the CLI) asks
`knob_for` (or `point_rows`, the whole rows), which holds the one fallback: the workflow's
table when it lists the run, else chosen again from the run's sweep.tsv with
`DEFAULT_MAX_DROP`, the config schema's default of `analysis.max_drop` (a test checks the
two agree).

A second protocol, beside that point rule, chooses a knob with a guarantee
(`Guarantee`, `guaranteed`): Learn-then-Test (Angelopoulos et al. 2021; CALM, Schuster
et al. 2022, calibrates its exit thresholds this way). Given a tolerance delta and a
risk level epsilon, it picks the fastest knob whose risk (disagreement with the same
model's full-depth predictions, label-free; or, with labels, the share of examples the
full model gets right and the early exit wrong, which bounds the drop) is at most delta
with probability at least 1 - epsilon over the draw of the calibration (dev) split: each
knob's null "risk > delta" is tested with the exact binomial tail, in a fixed sequence
from the most conservative knob to the most aggressive, stopping at the first it cannot
reject. The analysis stage adds its columns to the operating points
(`early_exit.analysis.operating_point_tables`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from early_exit.support.errors import ConfigError, DataError
from early_exit.support.layout import operating_points_file, parse_run_dir
from early_exit.support.tables import read_table, write_table

# analysis.max_drop's default (workflow/schemas/config.schema.yaml; a test checks they
# agree): the allowed dev drop when a knob is chosen outside the workflow's table.
DEFAULT_MAX_DROP = 0.01

KEYS = ["task", "method", "seed", "policy"]
# What readers of the two tables need (checked on read, naming the file that lacks one)
SWEEP_COLUMNS = (*KEYS, "split", "threshold", "metric", "score", "speedup", "avg_flops")
POINTS_COLUMNS = (*KEYS, "test_split", "metric", "threshold", "test_score", "test_speedup")


def load_sweeps(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate sweep tables, naming any missing, empty or older one."""
    frames = []
    for path in paths:
        frame = read_table(path, "sweep table", "rule sweep", columns=SWEEP_COLUMNS)
        if "full_score" not in frame:
            raise DataError(f"{path}: no full_score column (an older sweep): rerun rule sweep")
        frames.append(frame)
    if not frames:
        raise DataError("no sweep tables given")
    return pd.concat(frames, ignore_index=True)


def full_depth(split: pd.DataFrame) -> tuple[float, float]:
    """Score and FLOPs of the full model (every example at the last exit) on one split.

    Read from the sweep's `full_score` / `full_flops` columns, computed from the last
    exit's logits: a policy's own rows need not contain the full model (the oracle has
    one row; a patience grid without t = E-1 never reaches the last exit for all).
    """
    return float(split.full_score.iloc[0]), float(split.full_flops.iloc[0])


def choose(score: np.ndarray, full_score: np.ndarray, speedup: np.ndarray, max_drop: float):
    """The protocol's choice, vectorised: per row of `score` / `speedup` [R, K] (R
    resamples or one run, K knob values) and full-model score [R], the index of the
    fastest knob whose score is within max_drop of the full model's (ties: the best
    score, then the first); the best score when no knob comes that close (a grid
    without the full model). The bootstrap re-chooses with it on resampled dev sets."""
    score, speedup = np.atleast_2d(score), np.atleast_2d(speedup)
    ok = score >= np.reshape(full_score, (-1, 1)) - max_drop
    none = ~ok.any(1)
    ok[none] = score[none] == score[none].max(1, keepdims=True)
    fast = np.where(ok, speedup, -np.inf)
    fastest = fast == fast.max(1, keepdims=True)
    return np.where(fastest, score, -np.inf).argmax(1)


@dataclass(frozen=True)
class Guarantee:
    """`analysis.guarantee` of the config: the Learn-then-Test knob."""

    delta: float = 0.05  # tolerated risk (share of examples)
    epsilon: float = 0.1  # the chance, over the dev split, that the knob's risk exceeds delta
    risk: str = "disagreement"  # or "drop": full model right and early exit wrong

    RISKS = ("disagreement", "drop")

    @classmethod
    def from_config(cls, section: dict | None) -> Guarantee:
        found = cls(**(section or {}))
        if found.risk not in cls.RISKS:
            raise ConfigError(
                f"analysis.guarantee.risk: {found.risk!r} is not one of {', '.join(cls.RISKS)}"
            )
        if not (0 < found.delta < 1 and 0 < found.epsilon < 1):
            raise ConfigError("analysis.guarantee: delta and epsilon must lie between 0 and 1")
        return found

    def losses(self, preds: np.ndarray, full_preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per knob and example [K, n], 0 or 1: the risk's loss."""
        differ = preds != full_preds[None, :]
        if self.risk == "disagreement":
            return differ
        return (full_preds == labels)[None, :] & (preds != labels[None, :])


def ltt_p_values(counts: np.ndarray, n: int, delta: float) -> np.ndarray:
    """Valid p-values of "risk > delta" from loss counts of n examples (0/1 losses): the
    binomial tail P(Bin(n, delta) <= count) (scipy.stats.binom), which only shrinks for a
    larger true risk."""
    from scipy.stats import binom

    return binom.cdf(np.asarray(counts), n, delta)


def conservative_order(layers: np.ndarray) -> np.ndarray:
    """Knob positions from the most conservative (most layers on average) to the most
    aggressive, ties in grid order. Every policy here is monotone in its knob (a larger
    entropy threshold exits every example no later), so this is the knob order itself on
    any data: fixed before the losses are seen, as the fixed-sequence test needs."""
    layers = np.asarray(layers, dtype=float)
    return np.lexsort((np.arange(len(layers)), -layers))


def guaranteed(counts: np.ndarray, n: int, order: np.ndarray, delta: float, epsilon: float):
    """Learn-then-Test with fixed-sequence testing, vectorised: per row of loss `counts`
    [R, K] (R calibration draws or one run, K knobs, n examples each), the position of the
    fastest knob certified (its p-value and every more conservative one's at most
    epsilon), -1 when not even the first is. The family-wise error of the sequence is at
    most epsilon, so P(risk of the chosen knob > delta) <= epsilon."""
    p = ltt_p_values(np.atleast_2d(counts), n, delta)
    rejected = np.cumprod(p[:, order] <= epsilon, axis=1).sum(1)
    return np.where(rejected > 0, np.asarray(order)[np.maximum(rejected - 1, 0)], -1)


def _choose(dev: pd.DataFrame, max_drop: float) -> int:
    """Position of the knob chosen on one run's dev rows."""
    full = full_depth(dev)[0]
    return int(choose(dev.score.to_numpy(), np.array([full]), dev.speedup.to_numpy(), max_drop)[0])


def operating_points(sweeps: pd.DataFrame, max_drop: float) -> pd.DataFrame:
    """One row per (task, method, seed, policy, test split): the knob chosen on dev,
    measured on that test split (most tasks have one, `test`; MNLI also has
    `test_mismatched`, reported apart). Dev and test rows share the knob grid, row for row.
    """
    rows = []
    for key, run in sweeps.groupby(KEYS, sort=True):
        dev = run[run.split == "dev"].reset_index(drop=True)
        chosen = _choose(dev, max_drop)
        for test_split in sorted(s for s in run.split.unique() if s.startswith("test")):
            test = run[run.split == test_split].reset_index(drop=True)
            if not np.array_equal(dev.threshold, test.threshold, equal_nan=True):
                raise DataError(f"{key}: dev and {test_split} sweeps use different knob grids")
            full_score, full_flops = full_depth(test)
            rows.append(
                dict(zip(KEYS, key, strict=True))
                | {
                    "test_split": test_split,
                    "metric": dev.metric[chosen],
                    "threshold": dev.threshold[chosen],
                    "dev_score": dev.score[chosen],
                    "dev_score_full": full_depth(dev)[0],
                    "dev_speedup": dev.speedup[chosen],
                    "test_score_full": full_score,
                    "test_score": test.score[chosen],
                    "test_speedup": test.speedup[chosen],
                    "test_flops": test.avg_flops[chosen],
                    "test_flops_full": full_flops,
                }
            )
    return pd.DataFrame(rows)


def write_operating_points(sweep_paths: list[str | Path], max_drop: float, out: Path) -> None:
    """The workflow's `operating_points` rule: every run's operating points, one TSV."""
    points = operating_points(load_sweeps(sweep_paths), max_drop)
    write_table(points, out)


def load_operating_points(path: str | Path) -> pd.DataFrame:
    """Read `operating_points.tsv`, naming a missing, empty, cut-short or garbled file."""
    return read_table(
        path, "operating points table", "rule operating_points", columns=POINTS_COLUMNS
    )


def _run_rows(points: pd.DataFrame, key: dict) -> pd.DataFrame:
    """One run's rows (on the `test` split) of an operating-points table."""
    return points[
        (points.task.astype(str) == str(key["task"]))
        & (points.method.astype(str) == str(key["method"]))
        & (points.seed.astype(str) == str(key["seed"]))
        & (points.test_split == "test")
    ]


def run_key(run_dir: str | Path | None) -> dict | None:
    """{task, method, seed} of a run directory in the results layout, else None."""
    if run_dir is None:
        return None
    try:
        task, method, seed = parse_run_dir(Path(run_dir).resolve())
    except DataError:  # a run outside the workflow's layout
        return None
    return {"task": task, "method": method, "seed": seed}


def point_rows(
    run_dir: str | Path | None,
    max_drop: float | None = None,
    *,
    key: dict | None = None,
    points: str | Path | None = None,
    sweep: str | Path | None = None,
    fallback: bool = True,
) -> dict[str, dict]:
    """Policy -> the operating-point row (knob `threshold`, dev and test scores, and
    `chosen_from`) of one run, every policy it has one for. The one place that decides
    which knob a run uses:

    - `max_drop` not given: the row of the workflow's operating-points table (`points`;
      default: `results/analysis/operating_points.tsv` beside a run in the results
      layout) for this run (`key`: task, method, seed; default: parsed from `run_dir`);
    - otherwise, or for a policy the table does not list (when `fallback`; without it
      the table must exist, as the timed stages need): chosen again
      from the run's sweep table (`sweep`; default `run_dir/sweep.tsv`) with `max_drop`
      (default `DEFAULT_MAX_DROP`).

    A broken table is named (DataError), not skipped."""
    key = key if key is not None else run_key(run_dir)
    if points is None and key is not None and run_dir is not None:
        points = operating_points_file(run_dir)
    if sweep is None and run_dir is not None:
        sweep = Path(run_dir) / "sweep.tsv"
    tables = []
    usable = points is not None and key is not None and (not fallback or Path(points).is_file())
    if max_drop is None and usable:  # without a fallback, a missing table is named
        table = _run_rows(load_operating_points(points), key)
        tables.append((table, "the workflow's results/analysis/operating_points.tsv"))
    if (fallback or max_drop is not None) and sweep is not None and Path(sweep).is_file():
        drop = DEFAULT_MAX_DROP if max_drop is None else max_drop
        table = operating_points(load_sweeps([sweep]), drop)
        tables.append((table[table.test_split == "test"], f"the run's sweep.tsv (max_drop {drop})"))
    rows: dict[str, dict] = {}
    for table, source in tables:
        for row in table.to_dict("records"):
            rows.setdefault(row["policy"], row | {"chosen_from": source})
    return rows


def knob_for(
    run_dir: str | Path | None,
    policy: str,
    max_drop: float | None = None,
    *,
    key: dict | None = None,
    points: str | Path | None = None,
    sweep: str | Path | None = None,
    fallback: bool = True,
) -> float:
    """The knob value chosen on dev for one run and policy (`point_rows` says where it
    comes from); DataError naming what is missing when there is none."""
    row = point_rows(run_dir, max_drop, key=key, points=points, sweep=sweep, fallback=fallback).get(
        policy
    )
    if row is not None:
        return float(row["threshold"])
    if not fallback and max_drop is None:
        key = key if key is not None else run_key(run_dir)
        raise DataError(f"{points}: no operating point for {key} under {policy}")
    if sweep is None and run_dir is not None:
        sweep = Path(run_dir) / "sweep.tsv"
    if sweep is None or not Path(sweep).is_file():
        raise DataError(
            f"{sweep}: no sweep table, so no operating point chosen on dev; run the "
            "rule sweep for this run or give a number as threshold"
        )
    raise ConfigError(f"threshold auto: {sweep} has no sweep of policy {policy!r}")
