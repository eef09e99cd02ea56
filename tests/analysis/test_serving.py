"""The serving notebook's figure and table from a serving table."""

import pandas as pd

from early_exit.analysis.serving import serving_figure, serving_markdown


def test_figure_and_table():
    rows = []
    for method in ("pabee", "deebert"):
        for mode, speed in (("full", 1.0), ("shrink", 1.5), ("refill", 2.0)):
            for rate in (10.0, 20.0, 40.0):
                rows.append(
                    {
                        "task": "t",
                        "method": method,
                        "seed": 0,
                        "mode": mode,
                        "offered_rate": rate,
                        "throughput": min(rate, 15 * speed),
                        "p50_ms": 10 / speed,
                        "p95_ms": 20 / speed,
                        "p99_ms": 30 / speed,
                        "rejected": 0,
                    }
                )
    table = pd.DataFrame(rows)
    fig = serving_figure(table)
    assert len(fig.axes) == 2
    text = serving_markdown(table)
    assert "| pabee | refilling scheduler | 30.0 |" in text
