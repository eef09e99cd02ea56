"""The results tables: operating points summarised over seeds, and their markdown.

The points themselves (the knob chosen on dev, reported on test) are chosen by
`early_exit.exits.operating_points`; this module only presents them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.support.atomic import write_text


def summary_table(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each (method, policy) operating point."""
    cols = ["test_score_full", "test_score", "test_speedup", "test_flops", "threshold"]
    grouped = points.groupby(["task", "method", "policy", "metric", "test_split"], sort=True)
    table = grouped[cols].agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table["seeds"] = grouped.size()
    return table.reset_index()


def select_criteria(
    frame: pd.DataFrame, criteria: dict[str, str], include_oracle: bool = True
) -> pd.DataFrame:
    """Rows of each method under its own criterion (its paper's policy), plus the oracle."""
    wanted = frame.policy == frame.method.map(criteria).fillna("single-exit")
    if include_oracle:
        wanted |= frame.policy == "oracle"
    return frame[wanted]


def mean_std(mean: float, std: float, scale: float = 1.0, digits: int = 1) -> str:
    """`mean ± std` scaled (std NaN: one seed, the mean alone; mean NaN: a dash)."""
    if pd.isna(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def _column(
    summary: pd.DataFrame, name: str, scale: float = 1.0, digits: int = 1, suffix: str = ""
) -> list[str]:
    pairs = zip(summary[f"{name}_mean"], summary[f"{name}_std"], strict=True)
    return [mean_std(m, s, scale, digits) + (suffix if not pd.isna(m) else "") for m, s in pairs]


def results_markdown(summary: pd.DataFrame, max_drop: float, title: str) -> str:
    """A results table as markdown with a heading (it becomes a slide as is)."""
    knob = ["–" if pd.isna(t) else f"{t:.3g}" for t in summary.threshold_mean]
    columns = {"Method": summary.method, "Policy": summary.policy}
    if summary.test_split.nunique() > 1:  # e.g. MNLI matched and mismatched, kept apart
        columns["Split"] = summary.test_split
    rows = pd.DataFrame(
        columns
        | {
            f"Full model ({summary.metric.iloc[0]})": _column(summary, "test_score_full", 100),
            "Early exit": _column(summary, "test_score", 100),
            "Speed-up": _column(summary, "test_speedup", digits=2, suffix="×"),
            "GFLOPs/example": _column(summary, "test_flops", 1e-9, digits=2),
            "Knob": knob,
            "Seeds": summary.seeds,
        }
    )
    note = (
        f"Test split. Knob (threshold or patience) chosen on dev: the fastest whose dev score "
        f"is within {max_drop * 100:g} percentage points of the same model's full-model score; "
        f"scores ×100, mean ± std over seeds."
    )
    return f"# {title}\n\n{rows.to_markdown(index=False)}\n\n{note}\n"


def write_markdown(path: str | Path, text: str) -> None:
    write_text(path, text)
