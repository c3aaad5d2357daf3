"""The figures of a study report (matplotlib, Agg canvas; no display and no pyplot state).

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` so a caller (or a test) can
read back its axes, labels, legend and marker positions; :func:`save_png` writes one atomically.

* :func:`history_figure` -- validation MRR per trial number: sampled and known-point trials, the best so
  far and the baselines as horizontal lines, a dotted line before each trial whose search range had grown;
  pruned trials apart, in panels below (a raced trial at its paired difference against the best, a
  stage-pruned one at its stage MRR), never on the value axis.
* :func:`weights_figure` -- where the trials ran in the study's whole search space: fixed mode
  the first fusion term's weight (x, w_sim) against the second's (y, w_prompt); learnable mode the
  first term's initial share (the initial similarity weight) against the fusion learning rate (log
  axis). Axis names come from :data:`search.study.fusion_terms.FUSION_TERMS`. Complete trials are
  coloured by validation MRR on a scale from their lower quartile up (:func:`colour_range`; those below it
  light grey, as the colour bar says), pruned ones hollow grey; the best trial is starred and the reference
  settings (baselines / known starting points) are marked and named in the legend.
* :func:`importances_figure` -- fANOVA parameter importances, drawn only from
  :data:`MIN_IMPORTANCE_TRIALS` complete trials on (:func:`importances_unavailable` says why not), with a
  note on the method and why optuna-dashboard's PED-ANOVA can rank otherwise (:data:`IMPORTANCE_METHOD`).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from are_model.fileio import atomic_write_bytes
from search.study.bounds import growth_history
from search.study.fusion_terms import FUSION_TERMS
from search.study.settings import TrialSettings
from search.study.spaces import Param, SearchSpace
from search.pruners.paired import RACE_ATTR

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "DPI",
    "COLOUR_CLIP_MIN_TRIALS",
    "IMPORTANCE_METHOD",
    "colour_range",
    "Marker",
    "PRUNED_WEIGHTS_LABEL",
    "history_figure",
    "weights_figure",
    "importances_unavailable",
    "importances_figure",
    "save_png",
]

#: Complete trials needed before parameter importances are drawn: fANOVA fits a random forest to
#: the (parameters -> validation MRR) pairs, and with fewer points it mostly reports noise.
MIN_IMPORTANCE_TRIALS = 10
#: Resolution of the saved PNGs.
DPI = 120
#: The importance figure's note on its method, and why optuna-dashboard (PED-ANOVA by default) can differ.
IMPORTANCE_METHOD = (
    "Method: fANOVA (Optuna's FanovaImportanceEvaluator; Hutter et al., ICML 2014): a random forest fitted to all\n"
    "complete trials, its variance split among the parameters. optuna-dashboard shows PED-ANOVA by default\n"
    "(Watanabe et al., IJCAI 2023): how far the best trials' values differ from all trials'. A parameter can\n"
    "decide where the best trials lie yet explain little of the overall variance, so the rankings can differ.")
#: Complete trials from which the weights figure's colour scale starts at their lower quartile (:func:`colour_range`).
COLOUR_CLIP_MIN_TRIALS = 4
#: Where on the colour map the weights figure's legend draws its "complete trial" marker (not the first
#: trial's colour, which may be the grey below the scale).
_LEGEND_SHADE = 0.7
#: The colour of a complete trial below the weights figure's colour scale.
_BELOW_SCALE = "0.82"


#: The legend entry of pruned trials in the weights figure.
PRUNED_WEIGHTS_LABEL = "pruned trial (stopped early: no value, not coloured)"

#: (label, x, y): a reference setting drawn as an open marker and named in the legend.
Marker = tuple[str, float, float]

#: Reference settings / baselines, in order, get the same colour in every figure.
_COLOURS = ("tab:purple", "tab:brown", "black", "tab:olive", "tab:cyan")
_MARKER_STYLES = tuple(zip(("s", "D", "^", "v", "P"), _COLOURS))
_LINE_STYLES = tuple(zip(_COLOURS, ("--", "-.", ":", "--", "-.")))
_FIRST, _SECOND = FUSION_TERMS[:2]
#: The plane of each mode: fixed the first two terms' weights, learnable the first initial share and the lr.
_AXES: dict[str, tuple[str, str]] = {
    "fixed": (_FIRST.param, _SECOND.param),
    "learnable": (_FIRST.initial_param, "fusion_lr"),
    "learnable_free": (_FIRST.initial_param, "fusion_lr"),
}
_REST = "1 − it" if len(FUSION_TERMS) == 2 else "what the others leave"
_SHORT: dict[str, str] = {
    **{term.param: term.symbol for term in FUSION_TERMS},
    **{term.initial_param: f"initial {term.enhancer} weight" for term in FUSION_TERMS},
    "fusion_lr": "fusion lr",
}
_AXIS_LABELS: dict[str, str] = {
    **{term.param: f"{term.label} {term.symbol}" for term in FUSION_TERMS},
    **{term.initial_param: f"initial {term.enhancer} weight (initial {FUSION_TERMS[-1].enhancer} weight = {_REST})"
       for term in FUSION_TERMS},
    "fusion_lr": "fusion learning rate (per step, log scale)",
}


# ---------------------------------------------------------------------------------------------
# helpers


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (the tight bounding box keeps outside legends)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]


def _pruned(study: optuna.Study) -> list[FrozenTrial]:
    """Pruned trials that reported at least one staged value or were stopped by the paired race."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
            if t.intermediate_values or _race(t) is not None]


def _race(trial: FrozenTrial) -> dict[str, Any] | None:
    """The paired race's record of why it stopped ``trial`` (user attr ``race``), None when it did not."""
    race = trial.user_attrs.get(RACE_ATTR)
    return race if isinstance(race, dict) and race.get("prune") else None


def _last_value(trial: FrozenTrial) -> float:
    return float(trial.intermediate_values[max(trial.intermediate_values)])


def _legend_below(ax: Any, ncol: int = 2) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol, fontsize="small",
                  frameon=False, markerscale=0.7)


def _fmt(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------
# history


def _figure_legend(fig: Figure, axes: Sequence[Any], ncol: int = 2) -> None:
    """One legend under the whole figure with the entries of every panel, in panel order."""
    handles, labels = [], []
    for ax in axes:
        more_handles, more_labels = ax.get_legend_handles_labels()
        handles += more_handles
        labels += more_labels
    if handles:
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize="small",
                   frameon=False, markerscale=0.7)


def _panel_title(ax: Any, text: str) -> None:
    ax.set_title(text, fontsize="small", loc="left")


def history_figure(study: optuna.Study, *, baselines: Sequence[tuple[str, float | None]] = (),
                   sample: str | None = None) -> Figure:
    """Validation MRR against trial number; pruned trials apart, in panels of their own below.

    The top panel holds only values comparable with each other: sampled complete trials (blue dots),
    each known point (user attr ``known_point``) its own marker named in the legend, the red step line
    of the best complete value so far, and the baselines: (label, validation MRR) drawn as labelled
    horizontal lines (None values are skipped). A pruned trial has no such value, so it is never drawn
    there: below, on the same trial axis, a trial stopped by the paired race is drawn at its race's
    Δ MRR against the best at the time on the queries it ranked (± one standard error; user attr
    ``race``), and a trial stopped by a stage pruner at the MRR of the stages it ran (a partial split, or
    a model still fine-tuning: "pruned (stage value, not comparable)"). sample: the validation sample the
    values are on (e.g. ``validation sample: 64 of 624 pairs``), named on the value axis; None for the
    whole split.
    """
    complete, pruned = _complete(study), _pruned(study)
    raced = [t for t in pruned if _race(t) is not None]
    staged = [t for t in pruned if _race(t) is None]
    learnable = any((settings := TrialSettings.maybe_from_trial(t)) is not None and settings.use_learnable_fusion
                    for t in staged)
    extra = int(bool(raced)) + int(bool(staged))
    fig = _figure(7.5, 5.0 + 1.7 * extra)
    axes = fig.subplots(1 + extra, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [3.0] + [1.15] * extra, "hspace": 0.32})[:, 0]
    ax = axes[0]
    race_ax = axes[1] if raced else None
    stage_ax = axes[-1] if staged else None

    sampled = [t for t in complete if "known_point" not in t.user_attrs]
    known = sorted((t for t in complete + pruned if "known_point" in t.user_attrs), key=lambda t: t.number)
    if sampled:
        ax.scatter([t.number for t in sampled], [t.value for t in sampled], marker="o", s=36, color="tab:blue",
                   edgecolors="k", linewidths=0.4, zorder=3, label="sampled trial (complete)")
    # each known point its own marker, in the colour and shape of the reference settings (their order);
    # a pruned one hollow, in the panel of its pruner
    for trial, (shape, colour) in zip(known, _MARKER_STYLES * 4):
        name = trial.user_attrs["known_point"]
        if trial.state == TrialState.COMPLETE:
            ax.scatter([trial.number], [trial.value], marker=shape, s=60, color=colour, edgecolors="k",
                       linewidths=0.5, zorder=4, label=f"known point '{name}' (trial {trial.number})")
            continue
        race = _race(trial)
        target, y = (race_ax, float(race["delta"])) if race is not None else (stage_ax, _last_value(trial))
        target.scatter([trial.number], [y], marker=shape, s=110, facecolors="none", edgecolors=colour,
                       linewidths=1.3, zorder=4, label=f"known point '{name}' (trial {trial.number}, pruned)")
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    last = max(numbers) if numbers else 0
    if complete:
        ordered = sorted(complete, key=lambda t: t.number)
        xs, ys, best = [], [], -math.inf
        for trial in ordered:
            best = max(best, float(trial.value))
            xs.append(trial.number)
            ys.append(best)
        xs.append(max(last, xs[-1]))
        ys.append(ys[-1])
        ax.step(xs, ys, where="post", color="tab:red", linewidth=1.6, zorder=2, label="best so far")
    for (label, value), (colour, style) in zip([b for b in baselines if b[1] is not None], _LINE_STYLES * 4):
        ax.axhline(float(value), color=colour, linestyle=style, linewidth=1.1, zorder=1,
                   label=f"{label}: {float(value):.4f}")
    _mark_growths(axes, growth_history(study))
    ax.set_ylabel("validation MRR" if sample is None else f"validation MRR\n({sample})")
    counts = f"{len(complete)} complete, {len(pruned)} pruned"
    ax.set_title(f"{study.study_name}: validation MRR per trial ({counts})"
                 + ("\ncomplete trials only; pruned trials below, on their own scales" if pruned else ""))

    if race_ax is not None:
        races = [_race(t) for t in raced]
        race_ax.errorbar([t.number for t in raced], [float(r["delta"]) for r in races],
                         yerr=[_finite(r.get("se")) for r in races], fmt="v", markersize=6, color="tab:orange",
                         markeredgecolor="k", markeredgewidth=0.4, ecolor="tab:orange", elinewidth=1.0, capsize=2,
                         zorder=3, label="pruned by the paired race: Δ MRR vs the best at the time, on the queries "
                                         "it ranked (± 1 standard error)")
        race_ax.axhline(0.0, color="tab:red", linewidth=1.0, zorder=1, label="Δ = 0: level with the best at the time")
        low = min(float(r["delta"]) - _finite(r.get("se")) for r in races)
        race_ax.set_ylim(min(low, 0.0) * 1.15 - 1e-3, max(0.0, -0.1 * low) + 1e-3)
        race_ax.set_ylabel("Δ MRR vs best")
        _panel_title(race_ax, "pruned by the paired race (a paired difference, not a value)")
    if stage_ax is not None:
        stage_ax.scatter([t.number for t in staged], [_last_value(t) for t in staged], marker="x", s=40,
                         color="0.45", linewidths=1.4, zorder=3,
                         label=("pruned trial: validation MRR at the last epoch it ran (fine-tuning unfinished)"
                                if learnable else "pruned trial: MRR of the stages it ran (a partial split)"))
        stage_ax.margins(y=0.25)
        stage_ax.set_ylabel("MRR at its last epoch" if learnable else "stage MRR")
        _panel_title(stage_ax, "pruned (stage value, not comparable)" if not learnable
                     else "pruned (value before fine-tuning ended, not comparable)")
    for panel in axes:
        panel.grid(alpha=0.3)
    ax.set_xlim(-0.5, last + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("trial number")
    fig.subplots_adjust(bottom=0.55 / fig.get_figheight())  # the legend starts right under the trial axis
    _figure_legend(fig, axes)
    return fig


def _mark_growths(axes: Sequence[Any], growths: Sequence[dict[str, Any]]) -> None:
    """A vertical dotted green line in every panel just before each trial whose range had grown
    (:func:`search.study.bounds.growth_history`: the growth is made before trial ``trial`` is asked), named
    once in the legend with what grew (``w_prompt high 1 → 1.5``)."""
    by_trial: dict[int, list[str]] = {}
    for growth in growths:
        try:
            text = (f"{_SHORT.get(growth['param'], growth['param'])} {growth['side']} "
                    f"{float(growth['from']):g} → {float(growth['to']):g}")
            by_trial.setdefault(int(growth["trial"]), []).append(text)
        except (KeyError, TypeError, ValueError):  # a record this version cannot read: not drawn
            continue
    for trial, changes in sorted(by_trial.items()):
        for index, panel in enumerate(axes):
            panel.axvline(trial - 0.5, color="tab:green", linestyle=":", linewidth=1.4, zorder=1,
                          label=f"range grown before trial {trial}: {', '.join(changes)}" if index == 0 else None)


def _finite(value: Any) -> float:
    """``value`` as a float, 0 when it is missing or not finite (an error bar of no length)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


# ---------------------------------------------------------------------------------------------
# where the trials ran


def _bounds(param: Param) -> tuple[float, float]:
    """(low, high) of a searched parameter, (value, value) of a pinned one."""
    if param.searched:
        return float(param.low), float(param.high)
    return float(param.value), float(param.value)


def _limits(values: Sequence[float], *, log: bool) -> tuple[float, float]:
    """Axis limits around ``values`` with a margin of 4% of the span (in log space for a log axis)."""
    low, high = min(values), max(values)
    if log:
        a, b = math.log10(low), math.log10(high)
        pad = 0.04 * (b - a) if b > a else 0.3
        return 10 ** (a - pad), 10 ** (b + pad)
    pad = 0.04 * (high - low) if high > low else 0.05
    return low - pad, high + pad


def _coordinates(settings: TrialSettings, mode: str) -> tuple[float, float] | None:
    """(x, y) of a trial on its mode's plane (see _AXES), None when it has no place there."""
    if mode == "fixed":
        return (settings.weights[0], settings.weights[1]) if settings.mode == "fixed" else None
    if settings.mode != mode or settings.fusion_lr is None or settings.fusion_lr <= 0:
        return None
    return settings.weights[0], float(settings.fusion_lr)


def _points(trials: Sequence[FrozenTrial], mode: str) -> list[tuple[FrozenTrial, tuple[float, float]]]:
    points = []
    for trial in trials:
        settings = TrialSettings.maybe_from_trial(trial)
        xy = None if settings is None else _coordinates(settings, mode)
        if xy is not None:
            points.append((trial, xy))
    return points


def colour_range(values: Sequence[float]) -> tuple[float, float]:
    """(low, high) of the weights figure's colour scale over the complete trials' ``values``: from the lower
    quartile (numpy's linear interpolation) to the maximum once there are :data:`COLOUR_CLIP_MIN_TRIALS` values,
    else the whole range. One poor trial (0/0 at 0.351 next to nine trials in [0.392, 0.399]) would otherwise
    stretch the scale so that the good trials all take one colour; values below ``low`` are drawn light grey."""
    import numpy as np

    low, high = float(min(values)), float(max(values))
    if len(values) >= COLOUR_CLIP_MIN_TRIALS:
        low = float(np.quantile(np.asarray(values, dtype=float), 0.25))
    return low, high


def weights_figure(study: optuna.Study, space: SearchSpace, *, markers: Sequence[Marker] = (),
                   best: FrozenTrial | None = None, sample: str | None = None) -> Figure:
    """The trials in the study's whole search space, complete ones coloured by validation MRR.

    space: the study's :class:`SearchSpace`; the axes span its bounds (and anything drawn outside
    them) with a small margin, and a dashed rectangle shows the bounds. Fixed mode: x the first fusion
    term's weight (w_sim), y the second's (w_prompt); with more terms the others are not drawn.
    Learnable mode: x the first term's initial weight (initial similarity weight), y the fusion
    learning rate (log).
    markers: reference settings (label, x, y) drawn as open markers named in the legend; best: the
    trial to star (its starting point in learnable mode). Only complete trials take a colour (and set the
    colour bar's range); pruned trials, which have no value, are hollow grey circles. sample: the validation
    sample the values are on, named on the colour bar (None: the whole split).
    """
    mode = space.mode
    x_name, y_name = _AXES[mode]
    x_param, y_param = space.params[x_name], space.params[y_name]
    log_y = mode != "fixed"
    complete, pruned = _points(_complete(study), mode), _points(_pruned(study), mode)

    fig = _figure(6.4, 6.4)
    ax = fig.subplots()
    (x_low, x_high), (y_low, y_high) = _bounds(x_param), _bounds(y_param)
    xs = [x_low, x_high] + [xy[0] for _, xy in complete + pruned] + [m[1] for m in markers]
    ys = [y_low, y_high] + [xy[1] for _, xy in complete + pruned] + [m[2] for m in markers]
    if log_y:
        ys = [y for y in ys if y > 0]
        ax.set_yscale("log")
    ax.set_xlim(*_limits(xs, log=False))
    ax.set_ylim(*_limits(ys, log=log_y))

    def span(param: Param, low: float, high: float) -> str:
        name = _SHORT[param.name]
        return f"{name} in [{_fmt(low)}, {_fmt(high)}]" if param.searched else f"{name} pinned at {_fmt(low)}"

    ax.add_patch(Rectangle((x_low, y_low), x_high - x_low, y_high - y_low, fill=False, linestyle="--",
                           edgecolor="0.45", linewidth=1.0, zorder=1,
                           label=f"search space: {span(x_param, x_low, x_high)}, {span(y_param, y_low, y_high)}"))
    if complete:
        values = [float(t.value) for t, _ in complete]
        low, high = colour_range(values)
        below = sum(1 for v in values if v < low)
        cmap = matplotlib.colormaps["viridis"].with_extremes(under=_BELOW_SCALE)
        scatter = ax.scatter([xy[0] for _, xy in complete], [xy[1] for _, xy in complete], c=values,
                             cmap=cmap, vmin=low, vmax=high, s=46, edgecolors="k", linewidths=0.4, zorder=3,
                             label="complete trial (colour: validation MRR"
                                   + (f"; {below} below the scale: light grey)" if below else ")"))
        colourbar = fig.colorbar(scatter, ax=ax, shrink=0.8, pad=0.03, extend="min" if below else "neither")
        what = "validation MRR" if sample is None else f"validation MRR ({sample})"
        colourbar.set_label(what if not below else
                            f"{what}\n(scale from the lower quartile {low:.4f} up;\n{below} trial"
                            f"{'s' if below != 1 else ''} below it: light grey)")
    if pruned:
        ax.scatter([xy[0] for _, xy in pruned], [xy[1] for _, xy in pruned], marker="o", s=46, facecolors="none",
                   edgecolors="0.45", linewidths=1.1, zorder=3, label=PRUNED_WEIGHTS_LABEL)
    for (label, x, y), (shape, colour) in zip(markers, _MARKER_STYLES * 4):
        ax.scatter([x], [y], marker=shape, s=170, facecolors="none", edgecolors=colour, linewidths=1.6, zorder=4,
                   label=label)
    if best is not None:
        settings = TrialSettings.maybe_from_trial(best)
        xy = None if settings is None else _coordinates(settings, mode)
        if xy is not None:
            where = "start " if mode != "fixed" else ""
            ax.scatter([xy[0]], [xy[1]], marker="*", s=420, facecolors="none", edgecolors="magenta",
                       linewidths=1.8, zorder=5,
                       label=f"best: trial {best.number}, validation MRR {float(best.value):.4f} "
                             f"({where}{_SHORT[x_name]} {xy[0]:.4g}, {_SHORT[y_name]} {xy[1]:.4g})")
    ax.set_xlabel(_AXIS_LABELS[x_name] if mode != "learnable_free"  # free initial weights: no rest to name
                  else f"initial {_FIRST.enhancer} weight (the other initial weights searched on their own)")
    ax.set_ylabel(_AXIS_LABELS[y_name])
    if not log_y:
        width, height = (ax.get_xlim()[1] - ax.get_xlim()[0]), (ax.get_ylim()[1] - ax.get_ylim()[0])
        if 0.5 <= width / height <= 2:
            ax.set_aspect("equal", adjustable="box")
    ax.grid(alpha=0.25)
    what = "fixed fusion weights tried" if mode == "fixed" else "where fine-tuning started"
    ax.set_title(f"{study.study_name}: {what} ({len(complete)} complete, {len(pruned)} pruned)")
    _legend_below(ax, ncol=1)
    legend = ax.get_legend()
    for handle, text in zip(*((legend.legend_handles, legend.get_texts()) if legend is not None else ((), ()))):
        if text.get_text().startswith("complete trial"):  # the legend would show the first trial's colour
            handle.set_array(None)  # else the colour map paints the handle again when the figure is drawn
            handle.set_facecolor(matplotlib.colormaps["viridis"](_LEGEND_SHADE))
    return fig


# ---------------------------------------------------------------------------------------------
# importances


def _varied_params(complete: Sequence[FrozenTrial]) -> list[str]:
    """The parameters every complete trial has and that take more than one value among them."""
    shared = set.intersection(*(set(t.params) for t in complete)) if complete else set()
    return sorted(name for name in shared if len({repr(t.params[name]) for t in complete}) > 1)


def importances_unavailable(study: optuna.Study, *, min_trials: int = MIN_IMPORTANCE_TRIALS) -> str | None:
    """Why parameter importances are not drawn for ``study`` (None: they are)."""
    complete = _complete(study)
    if len(complete) < min_trials:
        return (f"not drawn: {len(complete)} complete trial{'s' if len(complete) != 1 else ''}; parameter "
                f"importances are drawn from {min_trials} complete trials on (with fewer, fANOVA mostly fits noise)")
    if len(_varied_params(complete)) < 2:
        return "not drawn: fewer than two searched parameters vary across the complete trials"
    return None


def importances_figure(study: optuna.Study, *, min_trials: int = MIN_IMPORTANCE_TRIALS, seed: int = 0) -> Figure:
    """Horizontal bars of fANOVA importances (normalised to sum 1, seeded); ValueError below the minimum."""
    reason = importances_unavailable(study, min_trials=min_trials)
    if reason is not None:
        raise ValueError(f"study {study.study_name}: parameter importances {reason}")
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                          params=_varied_params(_complete(study)))
    names = list(importances)[::-1]                        # largest on top
    values = [float(importances[name]) for name in names]
    fig = _figure(6.4, 1.0 + 0.55 * len(names) + 0.8)
    ax = fig.subplots()
    bars = ax.barh(names, values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=9)
    ax.set_xlim(0, max(1.0, max(values) * 1.15))
    ax.set_xlabel("share of the validation-MRR variance explained (fANOVA, sums to 1)")
    ax.set_ylabel("searched parameter")
    n = len(_complete(study))
    ax.set_title(f"{study.study_name}: parameter importances\n"
                 f"fANOVA on {n} complete trials (seed {seed}); drawn only from {min_trials} complete trials on",
                 fontsize=10)
    ax.annotate(IMPORTANCE_METHOD, xy=(0.0, 0.0), xycoords="axes fraction", xytext=(-150, -40),
                textcoords="offset points", ha="left", va="top", fontsize=7.5, color="0.25")  # under the x label
    return fig
