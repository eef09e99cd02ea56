"""One palette: a method has the same colour in every figure, whichever other methods the
figure shows (analysis.plots.method_palette)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from early_exit.analysis import plots  # noqa: E402
from early_exit.analysis.spatial import spatial_figure  # noqa: E402

INFO = {
    "deebert": {"recipe": "deebert"},
    "pabee": {"recipe": "pabee"},
    "deebert-long": {"recipe": "deebert"},  # a second run of one recipe
    "mine": {"recipe": "my-recipe"},  # a recipe the palette does not list
    "finetune": {"recipe": "finetune"},
    "static-2": {"recipe": "static"},
}


def test_a_method_keeps_its_colour_whichever_others_are_shown():
    full = plots.method_palette(list(INFO), INFO)
    for subset in (["pabee"], ["pabee", "mine"], ["deebert-long", "pabee", "static-2"]):
        part = plots.method_palette(subset, INFO)
        assert all(part[m] == full[m] for m in subset), subset
    # without the config, by name: the same colours for methods named like their recipe
    assert plots.method_palette(["pabee", "finetune"])["pabee"] == full["pabee"]
    assert len({full[m] for m in INFO}) == len(INFO)  # every method its own colour
    assert full["static-2"] == mcolors.to_rgb(plots.STATIC_COLOUR)
    assert list(plots.method_palette(["pabee", "deebert", "pabee"])) == ["deebert", "pabee"]
    markers = plots.method_markers(list(INFO), INFO)
    assert len(set(markers.values())) == len(INFO)  # and its own marker
    assert plots.method_markers(["deebert-long"], INFO) == {"deebert-long": markers["deebert-long"]}


def points(methods):
    rows = []
    for k, method in enumerate(methods):
        for threshold in (0.1, 0.5):
            rows.append(
                {
                    "task": "news",
                    "method": method,
                    "policy": "single-exit" if method.startswith("static") else "entropy",
                    "threshold": threshold,
                    "metric": "accuracy",
                    "score": 0.8 + 0.01 * k - threshold / 10,
                    "avg_flops": (1 + k) * 1e9 * (1 - threshold),
                    "num_parameters": 20e6,
                    "seed": 1,
                    "split": "test",
                    "speedup": 1 / (1 - threshold),
                }
            )
    return pd.DataFrame(rows)


def legend_styles(fig) -> dict[str, tuple]:
    """Each legend entry's colour and marker."""
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    styles = {}
    for legend in legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            colour = handle.get_color() if hasattr(handle, "get_color") else None
            if isinstance(colour, str) or (colour is not None and np.ndim(colour) == 1):
                styles[text.get_text()] = (mcolors.to_rgb(colour), handle.get_marker())
    return styles


def test_two_figures_with_different_methods_draw_a_method_in_one_colour():
    """The score-cost figure (every method, baselines included) and the trade-off figure
    (early-exit methods only) give PABEE the same colour: before one palette, each figure
    coloured the sorted subset it showed, so the colours shifted."""
    spatial = spatial_figure(points(["deebert", "finetune", "pabee", "static-2"]), [], "test", INFO)
    sweeps = points(["pabee", "mine"])
    tradeoff = plots.tradeoff_figure(
        sweeps, "test", {"pabee": "entropy", "mine": "entropy"}, [], info=INFO
    )
    a, b = legend_styles(spatial), legend_styles(tradeoff)
    assert a["pabee"][0] == pytest.approx(b["pabee"][0])
    assert a["pabee"][0] == pytest.approx(plots.method_palette(list(INFO), INFO)["pabee"])
    assert a["pabee"][1] == b["pabee"][1] == plots.RECIPE_MARKERS["pabee"]
    assert b["mine"][0] != pytest.approx(a["deebert"][0])
    assert b["mine"][1] not in (a["deebert"][1], a["pabee"][1])


def test_figures_are_drawn_at_the_slide_size_with_legends_outside_the_data():
    """The trade-off figure fills the slide's figure area at the size it is shown and keeps
    every legend (the static curve's too) in a column right of the panels."""
    static = ["static-1", "static-2"]
    sweeps = points(["pabee", *static])
    fig = plots.tradeoff_figure(
        sweeps, "test", {"pabee": "entropy"}, static, curves={"b": static}, info=INFO
    )
    assert not [ax for ax in fig.axes if ax.get_legend()]  # nothing over the data
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "pabee" in labels and "static k layers" in labels
    width, height = fig.get_size_inches()
    # the panels take the slide's width less the legend column, the legend what it needs
    assert plots.SLIDE_FIGURE_IN[0] - plots.LEGEND_IN <= width <= plots.SLIDE_FIGURE_IN[0] + 0.5
    # the panels' height; the title and x label come on top when saved (bbox "tight")
    assert height == pytest.approx(plots.SLIDE_FIGURE_IN[1] - plots.TITLES_IN)


def test_facet_size_fills_the_slide_figure_area():
    size = plots.facet_size(2)
    width = 2 * size["height"] * size["aspect"] + plots.LEGEND_IN
    assert width == pytest.approx(plots.SLIDE_FIGURE_IN[0])
    assert size["height"] + plots.TITLES_IN == pytest.approx(plots.SLIDE_FIGURE_IN[1])
