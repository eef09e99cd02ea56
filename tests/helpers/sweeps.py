"""Hand-made sweep tables for the analysis tests."""


def sweep_rows(task, method, seed, dev, test, policy="entropy", flops_per_layer=1e8, full=None):
    """dev/test: lists of (threshold, score, speedup); 6-layer model. `full`: the
    full-depth (dev, test) scores; by default the slowest row's."""
    rows = []
    for i, (split, points) in enumerate((("dev", dev), ("test", test))):
        full_score = full[i] if full else min(points, key=lambda p: p[2])[1]
        for threshold, score, speedup in points:
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "seed": seed,
                    "split": split,
                    "policy": policy,
                    "threshold": threshold,
                    "metric": "accuracy",
                    "score": score,
                    "accuracy": score,
                    "avg_exit_layer": 6 / speedup,
                    "layer_fraction_used": 1 / speedup,
                    "speedup": speedup,
                    "avg_flops": flops_per_layer * 6 / speedup,
                    "full_score": full_score,
                    "full_flops": flops_per_layer * 6,
                }
            )
    return rows
