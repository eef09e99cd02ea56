"""The README's headline table, generated from a run's tables (never typed by hand).

`scripts/update_headline.py RESULTS_ANALYSIS` copies the run's tables into
`docs/results/` and rewrites the block between the markers in README.md;
`tests/docs/test_headline.py` regenerates the block from `docs/results/` and fails when
README.md says anything else.
"""

from __future__ import annotations

import pandas as pd

from early_exit.analysis.measured import measured_column, measured_summary
from early_exit.analysis.results import interval_text, select_criteria, summary_table

BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
TABLES = ("operating_points.tsv", "intervals.tsv", "elue.tsv", "elue_intervals.tsv")
# read when the run wrote it (the latency stage's whole-split timing): runs documented
# before it have none, and their headline shows the layer speed-up alone
OPTIONAL = ("measured_speedup.tsv",)


def headline_markdown(tables: dict[str, pd.DataFrame], criteria: dict[str, str]) -> str:
    """Per method (under its own criterion) and task: full-depth score -> score at the
    operating point [interval] at its layer speed-up [interval], then the measured
    speed-up of the same test examples [interval] when the tables hold it, and its ELUE
    score."""
    summary = summary_table(tables["operating_points.tsv"], tables["intervals.tsv"])
    chosen = select_criteria(summary[summary.test_split == "test"], criteria, False)
    measured = tables.get("measured_speedup.tsv")
    timed = measured_column(chosen, None if measured is None else measured_summary(measured))
    timed = dict(zip(zip(chosen.task, chosen.method, strict=True), timed, strict=True))
    elue = tables["elue.tsv"].merge(
        tables["elue_intervals.tsv"], on=["task", "method", "policy"], how="left"
    )
    elue = select_criteria(elue, criteria, False).set_index(["task", "method"])
    tasks = sorted(chosen.task.unique())
    rows = []
    for method, runs in chosen.groupby("method", sort=True):
        row = {"method (criterion)": f"{method} ({runs.policy.iloc[0]})"}
        for r in runs.itertuples():
            score = interval_text(r.test_score_mean, r.test_score_lo, r.test_score_hi, 100)
            speed = interval_text(
                r.test_speedup_mean, r.test_speedup_lo, r.test_speedup_hi, 1.0, 2, "×"
            )
            row[r.task] = f"{100 * r.test_score_full_mean:.1f} → {score} at {speed}"
            if timed[(r.task, method)] != "–":
                row[r.task] += f", measured {timed[(r.task, method)]}"
            if (r.task, method) in elue.index:
                e = elue.loc[(r.task, method)]
                row[f"ELUE {r.task}"] = interval_text(e.elue, e.elue_lo, e.elue_hi, 1.0, 2)
        rows.append(row)
    columns = ["method (criterion)", *tasks, *(f"ELUE {t}" for t in tasks)]
    table = pd.DataFrame(rows).reindex(columns=columns).fillna("–")
    return table.to_markdown(index=False, disable_numparse=True)


def replace_block(text: str, block: str) -> str:
    """`text` with what lies between the headline markers replaced by `block`."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{block}\n{text[end:]}"


def current_block(text: str) -> str:
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")
