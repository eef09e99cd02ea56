import matplotlib
import numpy as np
import pandas as pd
import pytest

from early_exit.analysis import seeds

matplotlib.use("Agg")


def points(seeds=(1,), test_splits=("test",)):
    rows = []
    for seed in seeds:
        for split in test_splits:
            for method, policy, score in (
                ("dyn", "entropy", 0.80),
                ("dyn", "patience", 0.70),
                ("dyn", "oracle", 0.99),
                ("static-2", "single-exit", 0.60),
            ):
                rows.append(
                    {
                        "task": "news",
                        "method": method,
                        "seed": seed,
                        "policy": policy,
                        "test_split": split,
                        "metric": "accuracy",
                        "threshold": 0.5,
                        "test_score": score + seed / 100,
                        "test_speedup": 1.5 + seed / 10,
                    }
                )
    return pd.DataFrame(rows)


def test_each_method_under_its_own_criterion_one_row_per_seed():
    chosen = seeds.seed_points(points((1, 2)), {"dyn": "entropy"})
    assert sorted(zip(chosen.method, chosen.policy, chosen.seed, strict=True)) == [
        ("dyn", "entropy", 1),
        ("dyn", "entropy", 2),
        ("static-2", "single-exit", 1),
        ("static-2", "single-exit", 2),
    ]
    assert chosen.test_score[chosen.method == "dyn"].tolist() == pytest.approx([81.0, 82.0])
    split = seeds.seed_points(points((1,), ("test", "test_mm")), {"dyn": "entropy"})
    assert sorted(set(split.task)) == ["news · test", "news · test_mm"]


def test_table_lists_every_seed_and_says_when_there_is_one():
    chosen = seeds.seed_points(points((1, 2)), {"dyn": "entropy"})
    text = seeds.seeds_markdown(chosen, "Seeds")
    assert "| news   | dyn      | entropy     | 1, 2    | 81.0, 82.0       | 81.5 ± 0.7" in text
    assert "1.60×, 1.70×" in text and "no spread" not in text
    single = seeds.seeds_markdown(seeds.seed_points(points(), {"dyn": "entropy"}), "S")
    assert "One seed per method: no spread to show" in single


def test_figure_says_so_with_a_single_seed():
    static = ["static-2"]
    assert seeds.method_order(["static-2", "dyn", "b"], static) == ["b", "dyn", "static-2"]
    one = seeds.seed_points(points(), {"dyn": "entropy"})
    fig = seeds.seeds_figure(one, {"dyn": "C0"}, static)
    assert "no spread" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes] == ["news", "news"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["accuracy ×100 (test)", "speed-up (test)"]
    two = seeds.seed_points(points((1, 2)), {"dyn": "entropy"})
    assert seeds.seeds_figure(two, {"dyn": "C0"}, static)._suptitle is None


def test_the_figure_is_the_same_on_every_run():
    """seaborn jitters the dots with numpy's global RNG; the figure seeds it, and leaves
    the caller's state as it was."""
    two = seeds.seed_points(points((1, 2, 3)), {"dyn": "entropy"})

    def dots(state_seed):
        np.random.seed(state_seed)
        fig = seeds.seeds_figure(two, {"dyn": "C0"}, ["static-2"])
        after = np.random.random()
        np.random.seed(state_seed)
        assert after == np.random.random()  # the caller's RNG stream unchanged
        return [c.get_offsets().tolist() for ax in fig.axes for c in ax.collections]

    assert dots(1) == dots(2)


def test_the_figure_is_drawn_at_the_slides_size_with_few_ticks():
    """Drawn larger and scaled down, its fonts shrank and four panels' score ticks ran
    together (seen in the five-seed deck): now the slide's size, at most four ticks."""
    from early_exit.analysis.plots import SLIDE_FIGURE_IN

    two = seeds.seed_points(points((1, 2, 3)), {"dyn": "entropy"})
    fig = seeds.seeds_figure(two, {"dyn": "C0"}, ["static-2"])
    assert tuple(fig.get_size_inches()) == SLIDE_FIGURE_IN
    fig.canvas.draw()
    for ax in fig.axes:
        inside = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(inside) <= 4
