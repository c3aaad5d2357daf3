"""search.reports.plots: the report's figures, read back from the matplotlib objects.

The studies here are built in memory from trials with real-shaped ``settings`` (what the objective
stores), so each case runs in well under a second; tests/test_reporting.py checks the same figures on a
real Metafam study.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import optuna
import pytest
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from search.reports import plots
from search.study.spaces import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

FIXED_DISTRIBUTIONS = {"similarity_enhancer_weight": FloatDistribution(0.0, 1.0),
                       "prompt_enhancer_weight": FloatDistribution(0.0, 1.0)}
LEARNABLE_DISTRIBUTIONS = {"initial_similarity_weight": FloatDistribution(0.01, 0.99),
                           "fusion_lr": FloatDistribution(1e-4, 1e-1, log=True),
                           "body": CategoricalDistribution(["frozen", "trained"])}


def _fixed_trial(w_sim: float, w_prompt: float, value: float, *, known: str | None = None,
                 pruned_at: dict[int, float] | None = None):
    settings = {"use_learnable_fusion": False, "similarity_enhancer_weight": w_sim, "prompt_enhancer_weight": w_prompt,
                "learned_weights": None, "encoder": "minilm", "split": "valid"}
    attrs = {"settings": settings, **({"known_point": known} if known else {})}
    params = {"similarity_enhancer_weight": w_sim, "prompt_enhancer_weight": w_prompt}
    if pruned_at is not None:
        return create_trial(state=TrialState.PRUNED, params=params, distributions=FIXED_DISTRIBUTIONS,
                            user_attrs=attrs, intermediate_values=pruned_at)
    return create_trial(value=value, params=params, distributions=FIXED_DISTRIBUTIONS, user_attrs=attrs,
                        intermediate_values={0: value - 0.01, 1: value})


def fixed_study(n_sampled: int = 3, *, high: float = 0.23, seed: int = 0) -> optuna.Study:
    """Known points first, then ``n_sampled`` trials all inside [0, high]^2 (the narrow cloud of the old plot),
    then one pruned trial."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name="Metafam/fixed", direction="maximize")
    study.add_trial(_fixed_trial(0.225, 0.775, 0.2542, known="checkpoint"))
    study.add_trial(_fixed_trial(0.2, 0.8, 0.2551, known="0.2/0.8"))
    study.add_trial(_fixed_trial(0.0, 0.0, 0.2348, known="no enhancement"))
    for _ in range(n_sampled):
        w_sim, w_prompt = (float(v) for v in rng.uniform(0, high, 2))
        study.add_trial(_fixed_trial(w_sim, w_prompt, 0.25 - 0.05 * w_sim + 0.02 * w_prompt + rng.normal(0, 1e-3)))
    study.add_trial(_fixed_trial(0.15, 0.05, 0.0, pruned_at={0: 0.2004, 1: 0.2101}))
    return study


def _collection(ax, label: str):
    found = [c for c in ax.collections if c.get_label() == label]
    assert len(found) == 1, (label, [c.get_label() for c in ax.collections])
    return found[0]


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _figure_legend_texts(fig) -> list[str]:
    """The history figure's one legend, under the whole figure (every panel's entries)."""
    assert len(fig.legends) == 1
    return [t.get_text() for t in fig.legends[0].get_texts()]


def _drawn_values(ax) -> list[float]:
    """Every y a marker or line of ``ax`` is drawn at (scatter offsets, line data)."""
    values = [float(y) for c in ax.collections for _, y in c.get_offsets()]
    return values + [float(y) for line in ax.get_lines() for y in line.get_ydata()]


def _raced_trial(w_sim: float, w_prompt: float, *, delta: float, se: float, stage_mrr: float, known: str | None = None):
    """A trial the paired race stopped (its user attr ``race`` as the objective stores it), stage MRR reported."""
    trial = _fixed_trial(w_sim, w_prompt, 0.0, known=known, pruned_at={1: stage_mrr})
    trial.set_user_attr("race", {"prune": True, "delta": delta, "se": se, "p": 0.003, "queries": 96,
                                 "threshold": 0.05 / 3, "incumbent": 1})
    return trial


# -------------------------------------------------------------------------------------- weights


MARKERS = [("checkpoint's own 0.225/0.775", 0.225, 0.775), ("0.2/0.8", 0.2, 0.8), ("no enhancement 0/0", 0.0, 0.0)]


def test_fixed_weights_span_the_whole_space_not_the_sampled_cloud():
    study = fixed_study()
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    fig = plots.weights_figure(study, SearchSpace("fixed"), markers=MARKERS, best=best)
    ax = fig.axes[0]
    for low, high in (ax.get_xlim(), ax.get_ylim()):
        assert low < 0 and high > 1                 # the whole [0, 1] search space ...
        assert low > -0.1 and high < 1.1            # ... with a small margin
    assert ax.get_xlabel() == "similarity enhancer weight w_sim"
    assert ax.get_ylabel() == "prompt enhancer weight w_prompt"
    # the search space drawn as a dashed rectangle
    rectangles = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label().startswith("search space")]
    assert len(rectangles) == 1
    assert (rectangles[0].get_x(), rectangles[0].get_y(), rectangles[0].get_width(), rectangles[0].get_height()) \
        == (0.0, 0.0, 1.0, 1.0)
    texts = _legend_texts(ax)
    assert "search space: w_sim in [0, 1], w_prompt in [0, 1]" in texts
    for label, x, y in MARKERS:
        assert label in texts
        assert _collection(ax, label).get_offsets().tolist() == [[x, y]]
    star = [t for t in texts if t.startswith(f"best: trial {best.number}, validation MRR {best.value:.4f}")]
    assert len(star) == 1
    settings = best.user_attrs["settings"]
    assert _collection(ax, star[0]).get_offsets().tolist() == [[settings["similarity_enhancer_weight"],
                                                                 settings["prompt_enhancer_weight"]]]
    # complete trials coloured by validation MRR, with a labelled colour bar; the pruned one apart
    values = sorted(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    low = float(np.quantile(values, 0.25))
    below = sum(v < low for v in values)
    points = _collection(ax, f"complete trial (colour: validation MRR; {below} below the scale: light grey)")
    assert len(points.get_offsets()) == 6
    assert sorted(points.get_array().tolist()) == values
    fig.canvas.draw()  # the colour as drawn: a colour-mapped handle is repainted at draw time
    legend = ax.get_legend()
    (marker,) = [h for h, t in zip(legend.legend_handles, legend.get_texts()) if t.get_text().startswith("complete")]
    assert tuple(marker.get_facecolor()[0]) == matplotlib.colormaps["viridis"](plots._LEGEND_SHADE)  # not grey
    assert fig.axes[1].get_ylabel() == (f"validation MRR\n(scale from the lower quartile {low:.4f} up;\n{below} "
                                        f"trial{'s' if below != 1 else ''} below it: light grey)")
    pruned = _collection(ax, plots.PRUNED_WEIGHTS_LABEL)       # hollow grey, outside the colour scale
    assert pruned.get_offsets().tolist() == [[0.15, 0.05]]
    assert pruned.get_array() is None and len(pruned.get_facecolors()) == 0
    assert points.get_clim() == (low, max(values))
    assert "Metafam/fixed" in ax.get_title()


def test_the_colour_scale_tells_the_good_trials_apart_despite_one_poor_trial():
    """The case of issue 19: 0/0 at 0.351 next to nine trials in [0.392, 0.399]. On a scale from the minimum
    the nine shared one end of viridis; from the lower quartile up they span it, and 0/0 is light grey (the
    colour bar's 'under' colour, marked by its extension and named in its label)."""
    study = optuna.create_study(study_name="FBNELL/fixed", direction="maximize")
    study.add_trial(_fixed_trial(0.0, 0.0, 0.351, known="no enhancement"))
    good = [0.392 + 0.007 * k / 8 for k in range(9)]
    for k, value in enumerate(good):
        study.add_trial(_fixed_trial(0.1 * k, 0.8, value))
    fig = plots.weights_figure(study, SearchSpace("fixed"))
    points = _collection(fig.axes[0], "complete trial (colour: validation MRR; 3 below the scale: light grey)")
    low, high = points.get_clim()
    assert (low, high) == (float(np.quantile([0.351] + good, 0.25)), max(good)) and low > 0.392
    colours = points.to_rgba(points.get_array())
    assert tuple(colours[0]) == tuple(points.get_cmap().get_under())   # 0/0: below the scale
    top = colours[-4:]                                                  # the four best: four distinct colours
    assert len({tuple(np.round(c, 3)) for c in top}) == 4
    assert np.abs(top[-1] - top[0]).max() > 0.3                         # and far apart on the map
    bar = fig.axes[1]
    assert "lower quartile" in bar.get_ylabel() and "light grey" in bar.get_ylabel()
    assert plots.colour_range([0.30, 0.31, 0.32]) == (0.30, 0.32)      # under COLOUR_CLIP_MIN_TRIALS: whole range


def test_history_marks_each_range_growth():
    """A growth is stored with the trial it came before (search.study.bounds); the history draws a dotted line
    just before that trial in every panel, named once with what grew."""
    from search.study.bounds import GROWTH_ATTR

    study = fixed_study(4)
    study.set_user_attr(GROWTH_ATTR, [
        {"trial": 5, "param": "prompt_enhancer_weight", "side": "high", "from": 1.0, "to": 1.5, "best_trial": 4,
         "best_value": 0.26},
        {"trial": 5, "param": "similarity_enhancer_weight", "side": "high", "from": 1.0, "to": 1.5, "best_trial": 4,
         "best_value": 0.26}])
    fig = plots.history_figure(study)
    label = "range grown before trial 5: w_prompt high 1 → 1.5, w_sim high 1 → 1.5"
    assert _figure_legend_texts(fig).count(label) == 1
    for ax in fig.axes:                                                   # the value panel and the pruned one
        lines = [line for line in ax.get_lines() if list(line.get_xdata()) == [4.5, 4.5]]
        assert len(lines) == 1, [line.get_xdata() for line in ax.get_lines()]
    assert not [line for line in plots.history_figure(fixed_study(4)).axes[0].get_lines()
                if list(line.get_xdata()) == [4.5, 4.5]]                  # no growth: no line


def test_fixed_weights_follow_the_spec_space():
    study = fixed_study()
    space = SearchSpace("fixed", {"similarity_enhancer_weight": [0.1, 0.6], "prompt_enhancer_weight": 0.8})
    fig = plots.weights_figure(study, space)
    ax = fig.axes[0]
    rectangle = next(p for p in ax.patches if p.get_label().startswith("search space"))
    assert (rectangle.get_x(), rectangle.get_y(), rectangle.get_width(), rectangle.get_height()) == \
        pytest.approx((0.1, 0.8, 0.5, 0.0))
    assert rectangle.get_label() == "search space: w_sim in [0.1, 0.6], w_prompt pinned at 0.8"
    x_low, x_high = ax.get_xlim()
    assert x_low < 0 and x_high > 0.6               # the space and every trial drawn (trials at 0 too)


def test_learnable_weights_use_a_log_learning_rate_axis_over_the_space():
    rng = np.random.default_rng(1)
    study = optuna.create_study(study_name="FBNELL/learnable", direction="maximize")
    for k in range(6):
        start, lr = float(rng.uniform(0.3, 0.5)), float(10 ** rng.uniform(-3, -2))
        settings = {"use_learnable_fusion": True, "similarity_enhancer_weight": start,
                    "prompt_enhancer_weight": 1 - start, "fusion_lr": lr, "body_lr": None,
                    "learned_weights": [0.3, 0.7]}
        study.add_trial(create_trial(value=0.39 + 0.001 * k, distributions=LEARNABLE_DISTRIBUTIONS,
                                     params={"initial_similarity_weight": start, "fusion_lr": lr, "body": "frozen"},
                                     user_attrs={"settings": settings}))
    best = study.best_trial
    markers = [("known start 'checkpoint': 0.225, fusion lr 0.005", 0.225, 5e-3)]
    fig = plots.weights_figure(study, SearchSpace("learnable"), markers=markers, best=best)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    x_low, x_high = ax.get_xlim()
    y_low, y_high = ax.get_ylim()
    assert x_low < 0.01 and x_high > 0.99
    assert 1e-5 < y_low < 1e-4 and 1e-1 < y_high < 1.0
    assert ax.get_xlabel().startswith("initial similarity weight")
    assert ax.get_ylabel().startswith("fusion learning rate")
    texts = _legend_texts(ax)
    assert markers[0][0] in texts
    star = next(t for t in texts if t.startswith(f"best: trial {best.number}"))
    settings = best.user_attrs["settings"]
    assert _collection(ax, star).get_offsets().tolist()[0] == pytest.approx(
        [settings["similarity_enhancer_weight"], settings["fusion_lr"]])


# -------------------------------------------------------------------------------------- history


def test_history_axes_baselines_known_points_and_pruned_trials():
    study = fixed_study()
    baselines = [("checkpoint's own 0.225/0.775", 0.2542), ("0.2/0.8", 0.2551), ("no enhancement 0/0", 0.2348)]
    fig = plots.history_figure(study, baselines=baselines)
    ax, stages = fig.axes                                        # the values, and the pruned trial's own panel
    assert fig.axes[-1].get_xlabel() == "trial number" and ax.get_shared_x_axes().joined(ax, stages)
    assert ax.get_ylabel() == "validation MRR"
    locator = ax.xaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator) and locator._integer
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    texts = _figure_legend_texts(fig)
    for label, value in baselines:
        line_label = f"{label}: {value:.4f}"
        assert line_label in texts
        line = next(line for line in ax.get_lines() if line.get_label() == line_label)
        assert set(line.get_ydata()) == {value}
    # known points: each its own marker, named in the legend
    for number, (name, value) in enumerate([("checkpoint", 0.2542), ("0.2/0.8", 0.2551), ("no enhancement", 0.2348)]):
        known = _collection(ax, f"known point '{name}' (trial {number})")
        assert known.get_offsets().tolist() == [[number, value]]
    assert len(_collection(ax, "sampled trial (complete)").get_offsets()) == 3
    # the pruned trial apart, at the MRR of the last stage it ran, in a panel that says it is not comparable
    assert stages.get_title(loc="left") == "pruned (stage value, not comparable)" and stages.get_ylabel() == "stage MRR"
    pruned = _collection(stages, "pruned trial: MRR of the stages it ran (a partial split)")
    assert pruned.get_offsets().tolist() == [[6, 0.2101]]
    assert not [c for c in ax.collections if c.get_label().startswith("pruned")]
    # best so far: non-decreasing, ends at the best value
    best_line = next(line for line in ax.get_lines() if line.get_label() == "best so far")
    values = list(best_line.get_ydata())
    assert values == sorted(values) and values[-1] == pytest.approx(study.best_value)
    assert best_line.get_xdata()[-1] == 6


def test_history_draws_no_pruned_trial_on_the_value_axis():
    """Stage values above the best complete value (stage means run higher than whole-split means) and a
    raced trial: neither is drawn among the values; each sits in its own panel, on its own scale."""
    study = fixed_study()
    best = study.best_value
    study.add_trial(_fixed_trial(0.6, 0.1, 0.0, pruned_at={1: best + 0.02}))
    study.add_trial(_raced_trial(0.9, 0.9, delta=-0.012, se=0.003, stage_mrr=best + 0.03))
    fig = plots.history_figure(study, baselines=[("0.2/0.8", 0.2551)])
    ax, race, stages = fig.axes
    assert max(_drawn_values(ax)) <= best + 1e-12
    assert ax.get_title().endswith("(6 complete, 3 pruned)\ncomplete trials only; pruned trials below, on their own scales")
    assert _collection(stages, "pruned trial: MRR of the stages it ran (a partial split)").get_offsets().tolist() \
        == [[6, 0.2101], [7, pytest.approx(best + 0.02)]]
    assert race.get_title(loc="left") == "pruned by the paired race (a paired difference, not a value)"
    assert race.get_ylabel() == "Δ MRR vs best"
    (bars,) = race.containers                                    # the race's Δ ± one standard error
    marker, _, (segments,) = bars.lines
    assert marker.get_xdata().tolist() == [8] and marker.get_ydata().tolist() == [-0.012]
    assert segments.get_segments()[0].ravel().tolist() == pytest.approx([8, -0.015, 8, -0.009])
    assert race.get_ylim()[1] > 0 > race.get_ylim()[0]          # the Δ = 0 line (the best) in view
    texts = _figure_legend_texts(fig)
    assert "Δ = 0: level with the best at the time" in texts
    assert any(t.startswith("pruned by the paired race: Δ MRR vs the best at the time") for t in texts)


def test_history_marks_a_pruned_known_point():
    study = optuna.create_study(study_name="Metafam/fixed", direction="maximize")
    study.add_trial(_fixed_trial(0.225, 0.775, 0.2542, known="checkpoint"))
    study.add_trial(_fixed_trial(0.0, 0.0, 0.0, known="no enhancement", pruned_at={0: 0.2320, 1: 0.2283}))
    study.add_trial(_raced_trial(0.2, 0.8, delta=-0.004, se=0.001, stage_mrr=0.26, known="0.2/0.8"))
    ax, race, stages = plots.history_figure(study).axes
    assert _collection(stages, "known point 'no enhancement' (trial 1, pruned)").get_offsets().tolist() == [[1, 0.2283]]
    assert _collection(stages, "pruned trial: MRR of the stages it ran (a partial split)").get_offsets().tolist() \
        == [[1, 0.2283]]
    assert _collection(race, "known point '0.2/0.8' (trial 2, pruned)").get_offsets().tolist() == [[2, -0.004]]
    assert _drawn_values(ax) and max(_drawn_values(ax)) == 0.2542


def test_history_without_pruned_trials_is_one_panel_and_names_a_sample():
    study = optuna.create_study(study_name="Metafam/fixed", direction="maximize")
    study.add_trial(_fixed_trial(0.225, 0.775, 0.2542, known="checkpoint"))
    fig = plots.history_figure(study, sample="on a sample: 64 of 624 pairs")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "validation MRR\n(on a sample: 64 of 624 pairs)" and ax.get_xlabel() == "trial number"
    assert ax.get_title() == "Metafam/fixed: validation MRR per trial (1 complete, 0 pruned)"


# -------------------------------------------------------------------------------------- importances


def test_importances_are_not_drawn_below_the_minimum():
    study = fixed_study(n_sampled=plots.MIN_IMPORTANCE_TRIALS - 4)     # 3 known + 6 sampled = 9 complete
    reason = plots.importances_unavailable(study)
    assert reason is not None and "9 complete trials" in reason and str(plots.MIN_IMPORTANCE_TRIALS) in reason
    with pytest.raises(ValueError, match="9 complete trials"):
        plots.importances_figure(study)


def test_importances_from_the_minimum_on():
    study = fixed_study(n_sampled=plots.MIN_IMPORTANCE_TRIALS - 3, high=1.0)   # 10 complete
    assert plots.importances_unavailable(study) is None
    fig = plots.importances_figure(study, seed=0)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(names) == ["prompt_enhancer_weight", "similarity_enhancer_weight"]
    widths = [bar.get_width() for bar in ax.patches]
    assert sum(widths) == pytest.approx(1.0) and all(w >= 0 for w in widths)
    assert ax.get_xlabel().startswith("share of the validation-MRR variance explained")
    title = ax.get_title()
    assert "Metafam/fixed: parameter importances" in title
    assert "on 10 complete trials" in title and f"from {plots.MIN_IMPORTANCE_TRIALS} complete trials on" in title
    notes = [t.get_text() for t in ax.texts if t.get_text().startswith("Method: fANOVA")]
    assert notes == [plots.IMPORTANCE_METHOD] and "PED-ANOVA" in notes[0] and "optuna-dashboard" in notes[0]


def test_save_png_writes_a_png(tmp_path):
    path = plots.save_png(plots.history_figure(fixed_study()), tmp_path / "h.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
