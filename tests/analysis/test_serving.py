"""The serving notebook's figure and table from a serving table: capacity under the SLO
and latency at equal load."""

import numpy as np
import pandas as pd

from early_exit.analysis.serving import (
    capacities,
    equal_load,
    serving_figure,
    serving_markdown,
)


def table():
    rows = []
    for method in ("pabee", "deebert"):
        for mode, speed in (("full", 1.0), ("shrink", 1.5), ("refill", 2.0)):
            for multiple in (1, 2, 4):
                rate = 10.0 * multiple
                p50 = 10 / speed * multiple  # latency grows with load, less when faster
                rows.append(
                    {
                        "task": "t",
                        "method": method,
                        "seed": 0,
                        "mode": mode,
                        "offered_rate": rate,
                        "rate_multiple": multiple,
                        "sent": 100,
                        "throughput": min(rate, 15 * speed),
                        "p50_ms": p50,
                        "p50_low_ms": p50 * 0.9,
                        "p50_high_ms": p50 * 1.1,
                        "p90_ms": 2 * p50,
                        "p90_low_ms": 1.8 * p50,
                        "p90_high_ms": np.inf,
                        "p99_ms": 3 * p50,
                        "rows_per_call": 2.0 * multiple,
                        "slo_ms": 30.0,
                        "rejected": 0,
                    }
                )
    return pd.DataFrame(rows)


def test_capacity_is_the_highest_rate_within_the_slo():
    caps = capacities(table()).set_index(["method", "mode"]).capacity
    # p90 = 20 / speed * multiple <= 30: full at 1x, shrink up to 2x, refill up to 2x
    assert caps[("pabee", "full")] == 10.0
    assert caps[("pabee", "shrink")] == 20.0 and caps[("pabee", "refill")] == 20.0
    slow = table().assign(slo_ms=1.0)
    assert (capacities(slow).capacity == 0).all()


def test_equal_load_is_where_full_depth_still_meets_the_slo():
    equal = equal_load(table())
    assert set(equal.rate_multiple) == {1} and len(equal) == 6
    assert set(equal_load(table().assign(slo_ms=1.0)).rate_multiple) == {1}


def test_figure_and_table():
    fig = serving_figure(table())
    assert len(fig.axes) == 2  # one figure: capacity, and latency at equal load
    text = serving_markdown(table())
    assert (
        "| pabee | refilling scheduler | 20.0 | 10.0 | 5.0 [4.5, 5.5] | 10.0 [9.0, ∞] | 100 | 2.0 |"
        in text
    )
