"""The results tables: operating points summarised over seeds, and their markdown.

The points themselves (the knob chosen on dev, reported on test) are chosen by
`early_exit.exits.operating_points`; this module only presents them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.analysis.measured import measured_column, measured_note
from early_exit.exits.policies import bound_names
from early_exit.support.atomic import write_text

GROUP = ["task", "method", "policy", "metric", "test_split"]


def summary_table(points: pd.DataFrame, intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each (method, policy) operating point,
    with the bootstrap intervals over seeds (`intervals.tsv`: `<stat>_lo` / `_hi`,
    `vs_finetune`, `vs_curve`) when given."""
    points = points.assign(test_drop=points.test_score_full - points.test_score)
    cols = ["test_score_full", "test_score", "test_drop", "test_speedup", "test_flops"]
    grouped = points.groupby(GROUP, sort=True)
    table = grouped[[*cols, "threshold"]].agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table["seeds"] = grouped.size()
    table = table.reset_index()
    if intervals is None:
        return table
    keys = ["task", "method", "policy", "test_split"]
    extra = intervals.drop(columns=["seeds"], errors="ignore")
    return table.merge(extra, on=keys, how="left", validate="1:1")


def interval_text(value, lo, hi, scale: float = 1.0, digits: int = 1, suffix: str = "") -> str:
    """`94.1 [92.2, 95.8]` (scaled); the value alone without an interval; `–` without value."""
    if pd.isna(value):
        return "–"
    text = f"{value * scale:.{digits}f}{suffix}"
    if pd.isna(lo) or pd.isna(hi):
        return text
    return f"{text} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def select_criteria(
    frame: pd.DataFrame, criteria: dict[str, str], include_oracle: bool = True
) -> pd.DataFrame:
    """Rows of each method under its own criterion (its paper's policy), plus the upper
    bounds (the oracle: `Policy.bound`)."""
    wanted = frame.policy == frame.method.map(criteria).fillna("single-exit")
    if include_oracle:
        wanted |= frame.policy.isin(bound_names())
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
    """The mean with its interval when the summary has one, else mean ± std over seeds."""
    if f"{name}_lo" in summary:
        cols = (summary[f"{name}_mean"], summary[f"{name}_lo"], summary[f"{name}_hi"])
        return [
            interval_text(m, lo, hi, scale, digits, suffix) for m, lo, hi in zip(*cols, strict=True)
        ]
    pairs = zip(summary[f"{name}_mean"], summary[f"{name}_std"], strict=True)
    return [mean_std(m, s, scale, digits) + (suffix if not pd.isna(m) else "") for m, s in pairs]


def dense_table(table: str) -> str:
    """A markdown table in the deck's smaller table type (slides/styles: `.dense-table`), for
    tables too wide for the body size: the deck build fails on a slide that runs off the
    page (early_exit.slides.pages)."""
    return f'<div class="dense-table">\n\n{table}\n\n</div>'


def results_markdown(
    summary: pd.DataFrame,
    max_drop: float,
    title: str,
    coverage: str | None = None,
    measured: pd.DataFrame | None = None,
) -> str:
    """A results table as markdown with a heading (it becomes a slide as is);
    `coverage` says what the intervals cover (`intervals.coverage`) when there are some;
    `measured` (`analysis.measured.measured_summary`) adds the measured speed-up of the
    same test examples beside the layer speed-up."""
    knob = ["–" if pd.isna(t) else f"{t:.3g}" for t in summary.threshold_mean]
    columns = {"Method": summary.method, "Policy": summary.policy}
    if summary.test_split.nunique() > 1:  # e.g. MNLI matched and mismatched, kept apart
        columns["Split"] = summary.test_split
    rows = pd.DataFrame(
        columns
        | {
            f"Full model ({summary.metric.iloc[0]})": _column(summary, "test_score_full", 100),
            "Early exit": _column(summary, "test_score", 100),
            "Drop": _column(summary, "test_drop", 100),
            "Speed-up": _column(summary, "test_speedup", digits=2, suffix="×"),
            **({"Measured": measured_column(summary, measured)} if measured is not None else {}),
            "GFLOPs/example": _column(summary, "test_flops", 1e-9, digits=2),
            "Knob": knob,
            "Seeds": summary.seeds,
        }
    )
    spread = (
        f"[interval]: {coverage}"
        if coverage and "test_score_lo" in summary
        else "mean ± std over seeds"
    )
    note = (
        f"Test split. Knob (threshold or patience) chosen on dev: the fastest whose dev score "
        f"is within {max_drop * 100:g} percentage points of the same model's full-model score; "
        "Drop: the model's own full model (every example at its last exit) minus its early-exit "
        f"score; scores and drops ×100, mean over seeds; {spread}.{measured_note(measured)}"
    )
    return f"# {title}\n\n{dense_table(rows.to_markdown(index=False))}\n\n{note}\n"


def write_markdown(path: str | Path, text: str) -> None:
    write_text(path, text)
