"""The measured speed-up over the whole test split, beside the layer speed-up of the same
examples: what the results tables, the method slides and the README's headline show.

Reads `results/analysis/measured_speedup.tsv`, which the latency stage writes
(`inference.whole_split`): per run and engine, the knob chosen on dev over every test
example, timed against full depth in interleaved rounds (one batch each), with a
bootstrap interval over rounds, and the engine's exits checked against the stored outputs
the layer speed-up is simulated from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.support.tables import read_table

FULL = "full"
KEYS = ["task", "method", "policy"]
COLUMNS = ("task", "method", "seed", "engine", "policy", "knob", "batch_size", "examples",
           "rounds", "measured_speedup", "speedup_lo", "speedup_hi", "layer_speedup",
           "differ", "tolerated", "full_depth_spread", "full_depth_disagrees")  # fmt: skip
ENGINE = "torch"  # the engine the results tables show (both: the latency slides)


def load_measured(path: str | Path) -> pd.DataFrame:
    """The latency stage's whole-split table, naming a missing or broken one."""
    return read_table(path, "measured speed-up table", "rule latency", columns=COLUMNS)


def measured_summary(table: pd.DataFrame, engine: str | None = ENGINE) -> pd.DataFrame:
    """Per task, method, policy (and engine): the knob, the measured and the layer speed-up
    of the same examples, means over seeds; the interval is a seed's own with one seed, else the
    lowest low and the highest high over seeds (an envelope); examples, batch size and
    rounds of the timing; how many examples differed from the stored outputs (all near
    the knob, or the stage would have failed), summed over seeds."""
    timed = table[table.policy != FULL]
    if engine is not None:
        timed = timed[timed.engine == engine]
    grouped = timed.groupby([*KEYS, "engine"], sort=True)
    summary = grouped[["knob", "measured_speedup", "layer_speedup"]].mean()
    summary["speedup_lo"] = grouped.speedup_lo.min()
    summary["speedup_hi"] = grouped.speedup_hi.max()
    for key in ("examples", "batch_size", "rounds"):
        summary[key] = grouped[key].first()
    summary["differ"] = grouped.differ.sum()
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def measured_text(measured: float, lo: float, hi: float) -> str:
    """`2.41× [2.20, 2.63]`; the value alone without an interval; `–` without a value."""
    if pd.isna(measured):
        return "–"
    text = f"{measured:.2f}×"
    return text if pd.isna(lo) or pd.isna(hi) else f"{text} [{lo:.2f}, {hi:.2f}]"


def measured_column(summary: pd.DataFrame, measured: pd.DataFrame | None) -> list[str]:
    """For each row of a results summary (task, method, policy, test_split): its measured
    speed-up on the test split, as text (`–` where none was timed: static baselines,
    other policies, other test splits)."""
    if measured is None:
        return ["–"] * len(summary)
    by_key = measured.set_index(KEYS)
    out = []
    for row in summary.itertuples():
        key = (row.task, row.method, row.policy)
        if getattr(row, "test_split", "test") != "test" or key not in by_key.index:
            out.append("–")
            continue
        m = by_key.loc[key]
        out.append(measured_text(m.measured_speedup, m.speedup_lo, m.speedup_hi))
    return out


def measured_note(measured: pd.DataFrame | None) -> str:
    """What the Measured column is, for a table's note (empty without a measurement)."""
    if measured is None or measured.empty:
        return ""
    examples = "/".join(str(int(n)) for n in sorted(set(measured.examples)))
    batch = "/".join(str(int(b)) for b in sorted(set(measured.batch_size)))
    rounds = f"{int(measured.rounds.min())}–{int(measured.rounds.max())}"
    if measured.rounds.min() == measured.rounds.max():
        rounds = str(int(measured.rounds.min()))
    engine = ", ".join(sorted(set(measured.engine)))
    differ = int(measured.differ.sum())
    agreed = "on every example" if differ == 0 else f"but on {differ}, all near the knob"
    return (
        f" Measured: wall-clock speed-up of the {engine} engine exiting for real on the same "
        f"{examples} test examples as Speed-up (batch size {batch}): the split's time at "
        f"full depth over its time at the knob, [95% bootstrap interval over {rounds} "
        "interleaved rounds, one batch each]; Speed-up is the layer speed-up "
        "L / mean exit layer simulated from stored outputs, which the engine's exits and "
        f"answers matched {agreed}."
    )
