"""Reading sweep tables and choosing operating points (picked on dev, reported on test)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from early_exit.atomic import write_text
from early_exit.errors import DataError

KEYS = ["task", "method", "seed", "policy"]


def load_sweeps(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate sweep tables, naming any missing or empty one."""
    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: sweep table missing (rerun the sweep stage)")
        frame = pd.read_csv(path, sep="\t")
        if frame.empty:
            raise DataError(f"{path}: sweep table is empty")
        frames.append(frame)
    if not frames:
        raise DataError("no sweep tables given")
    return pd.concat(frames, ignore_index=True)


def operating_points(sweeps: pd.DataFrame, max_drop: float) -> pd.DataFrame:
    """Per run: the fastest threshold whose *dev* score is within `max_drop` of the
    final exit's dev score, with the *test* numbers at that threshold.

    The final-exit reference is the row where every example runs all layers
    (the largest avg_exit_layer). Returns one row per (task, method, seed, policy).
    """
    rows = []
    for key, run in sweeps.groupby(KEYS, sort=True):
        dev = run[run.split == "dev"].set_index("threshold")
        test = run[run.split == "test"].set_index("threshold")
        reference = dev.loc[dev.avg_exit_layer.idxmax()]
        ok = dev[dev.score >= reference.score - max_drop]
        chosen = ok.speedup.idxmax()
        full = test.loc[test.avg_exit_layer.idxmax()]
        rows.append(
            dict(zip(KEYS, key, strict=True))
            | {
                "metric": reference.metric,
                "threshold": chosen,
                "dev_score": dev.loc[chosen, "score"],
                "test_score_full": full.score,
                "test_score": test.loc[chosen, "score"],
                "test_speedup": test.loc[chosen, "speedup"],
            }
        )
    return pd.DataFrame(rows)


def summary_table(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each method's operating point."""
    cols = ["test_score_full", "test_score", "test_speedup", "threshold"]
    grouped = points.groupby(["task", "method", "policy", "metric"], sort=True)
    table = grouped[cols].agg(["mean", "std"])
    table.columns = [f"{c}_{stat}" for c, stat in table.columns]
    table["seeds"] = grouped.size()
    return table.reset_index()


def _mean_std(mean: float, std: float, scale: float = 1.0, digits: int = 1) -> str:
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def markdown_table(summary: pd.DataFrame, max_drop: float, title: str) -> str:
    """The results table as markdown, with a heading (it becomes a slide as is)."""
    rows = pd.DataFrame(
        {
            "Task": summary.task,
            "Method": summary.method,
            "Policy": summary.policy,
            "Metric": summary.metric,
            "Final exit (test)": [
                _mean_std(m, s, 100)
                for m, s in zip(
                    summary.test_score_full_mean, summary.test_score_full_std, strict=True
                )
            ],
            "Early exit (test)": [
                _mean_std(m, s, 100)
                for m, s in zip(summary.test_score_mean, summary.test_score_std, strict=True)
            ],
            "Speed-up (test)": [
                _mean_std(m, s, digits=2) + "×"
                for m, s in zip(summary.test_speedup_mean, summary.test_speedup_std, strict=True)
            ],
            "Threshold": [f"{t:.3f}" for t in summary.threshold_mean],
            "Seeds": summary.seeds,
        }
    )
    note = (
        f"Threshold chosen on dev: the fastest whose dev score is within "
        f"{max_drop * 100:g} percentage points of the final exit's. Scores ×100."
    )
    return f"# {title}\n\n{rows.to_markdown(index=False)}\n\n{note}\n"


def write_markdown(path: str | Path, text: str) -> None:
    write_text(path, text)
