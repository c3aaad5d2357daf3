"""The figures of a campaign's cross-dataset report (matplotlib, Agg canvas; no display, no pyplot state).

Each ``*_figure`` function takes the report's rows (:func:`search.reports.campaign.write_campaign_report`;
rows without a best setting are left out) and returns a :class:`matplotlib.figure.Figure`, so a caller or
a test can read back its axes, labels and points; :func:`search.reports.plots.save_png` writes one atomically.

* :func:`delta_figure` (``delta_test_mrr.png``) -- per dataset, test MRR of the best setting − the
  checkpoint's own setting, with its 95% paired-bootstrap interval; datasets grouped by benchmark group
  (bold group headings), a zero line, one marker shape per mode and one colour per verdict.
* :func:`weight_plane_figure` (``weight_plane.png``) -- the best (w_sim, w_prompt) of every study on one
  plane (the first two fusion terms of :data:`search.study.fusion_terms.FUSION_TERMS`), labelled with its
  dataset, coloured by group, with the baselines 0.2/0.8, 0/0 and each checkpoint's own setting marked;
  the axes reach past 1 when a best lies beyond.
* :func:`fixed_vs_learnable_figure` (``fixed_vs_learnable.png``) -- only when some dataset has a best in
  fixed mode and in a learned mode (``learnable``, ``learnable_free``): its test MRR in each mode side by side,
  with the checkpoint's own setting marked.
* :func:`cost_figure` (``cost_vs_edges.png``) -- only when two or more datasets have a cost record (a
  campaign with a time budget): validation pairs ranked per second against the validation graph's edges.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from search.reports.plots import DPI
from search.reports.study_text import interval_text
from search.study.fusion_terms import FUSION_TERMS, KNOWN_WEIGHTS, NONE_LABEL, REFERENCE_LABEL, joined, symbols

__all__ = [
    "DELTA_PNG",
    "PLANE_PNG",
    "MODES_PNG",
    "FIGURES",
    "CAPTIONS",
    "CampaignFigures",
    "campaign_figures",
    "delta_figure",
    "weight_plane_figure",
    "fixed_vs_learnable_figure",
    "cost_figure",
]

DELTA_PNG = "delta_test_mrr.png"
PLANE_PNG = "weight_plane.png"
MODES_PNG = "fixed_vs_learnable.png"
COST_PNG = "cost_vs_edges.png"
#: Every figure a campaign report may hold, in the order campaign.md lists them.
FIGURES = (DELTA_PNG, PLANE_PNG, MODES_PNG, COST_PNG)
#: file name -> (title, one-line caption) for campaign.md.
CAPTIONS: dict[str, tuple[str, str]] = {
    DELTA_PNG: ("Δ test MRR against the checkpoint's own setting",
                "Per dataset, test MRR of the best setting minus the checkpoint's own fusion weights, with its 95% "
                "paired-bootstrap interval; datasets grouped by benchmark group, circles fixed mode, squares "
                "learnable mode, green an interval above 0, red below 0, grey one that contains 0."),
    PLANE_PNG: ("Best fusion weights of every dataset",
                f"The best ({symbols(', ')}) of every study on one plane, coloured by benchmark group (circles fixed "
                f"mode, squares the weights a learnable study learned), with the baselines {REFERENCE_LABEL}, "
                f"{NONE_LABEL} and the checkpoint's own setting as open markers; learned weights lie on "
                f"{symbols(' + ')} = 1 (dashed)."),
    MODES_PNG: ("Fixed against learnable fusion",
                "For each dataset searched in both modes, the test MRR of the best fixed setting and of the best "
                "learnable trial's learned weights, with the checkpoint's own setting as a black tick."),
    COST_PNG: ("Ranking speed against graph size",
               "Per study with a cost record (a campaign with a time budget probes each study before its first "
               "trial), validation (anchor, relation) pairs ranked per second against the edges of the graph they "
               "are ranked on (inverse edges included), both axes logarithmic, coloured by benchmark group; the "
               "dashed line is a cost proportional to the edges through the median study."),
}

_MODE_MARKERS = {"fixed": "o", "learnable": "s", "learnable_free": "D"}
_VERDICT_COLOURS = {"win": "tab:green", "tie": "0.45", "loss": "tab:red", "known_only": "tab:cyan"}
_VERDICT_TEXT = {"win": "interval above 0 (win)", "tie": "interval contains 0 (tie)",
                 "loss": "interval below 0 (loss)",
                 "known_only": "known points only: nothing searched (no win, tie or loss)"}
_GROUP_COLOURS = {"pretraining": "tab:blue", "transductive": "tab:orange", "inductive_e": "tab:green",
                  "inductive_er": "tab:purple", "other": "tab:gray"}
_MODE_COLOURS = {"fixed": "tab:blue", "learnable": "tab:orange", "learnable_free": "tab:purple"}


@dataclass
class CampaignFigures:
    """The figures drawn (file name -> Figure) and the ones left out (file name -> why)."""

    figures: dict[str, Figure] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend_below(fig: Figure, handles: Sequence[Any], ncol: int) -> None:
    """One legend under the axes (outside them), laid out by the figure's constrained layout."""
    fig.legend(handles=list(handles), loc="outside lower center", ncol=ncol, fontsize="small", frameon=False)


def _note_left_out(ax: Any, rows: Sequence[dict[str, Any]], *, title: str) -> None:
    """Set the axes title, with a second (wrapped) line naming the studies left out for want of a best setting."""
    missing = [row["study"] for row in rows if row.get("best") is None]
    if missing:
        note = textwrap.fill("left out, no complete trial: " + ", ".join(missing), width=110)
        ax.set_title(f"{title}\n{note}", fontsize=10)
    else:
        ax.set_title(title, fontsize=11)


def _done(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row.get("best") is not None]


def _group_order(rows: Sequence[dict[str, Any]]) -> list[str]:
    from are_model.data.registry import GROUP_ORDER

    present = {row["group"] for row in rows}
    return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))


def _group_colour(group: str) -> str:
    return _GROUP_COLOURS.get(group, "tab:gray")


def _modes(rows: Sequence[dict[str, Any]]) -> list[str]:
    present = {row["mode"] for row in rows}
    return [m for m in ("fixed", "learnable") if m in present] + sorted(present - {"fixed", "learnable"})


# ---------------------------------------------------------------------------------------------
# Δ test MRR


def delta_figure(rows: Sequence[dict[str, Any]], *, baseline: str = "checkpoint") -> Figure:
    """Δ test MRR (best − ``baseline``) per dataset with its interval, grouped by benchmark group.

    One line per dataset (both modes on it, slightly apart), a bold heading line per group; x: Δ test
    MRR, with a vertical line at 0; each point labelled with its Δ and interval. ValueError without a
    row that has a best setting.
    """
    done = _done(rows)
    if not done:
        raise ValueError("no study has a best setting to draw")
    slots: list[tuple[str, str]] = []  # (kind, text): a group heading or a dataset
    positions: dict[tuple[str, str], float] = {}
    for group in _group_order(done):
        members = [row for row in done if row["group"] == group]
        datasets = sorted({row["dataset"] for row in members}, key=str.lower)
        slots.append(("group", f"{group} ({len(datasets)} dataset{'s' if len(datasets) != 1 else ''})"))
        for dataset in datasets:
            slots.append(("dataset", dataset))
            positions[(group, dataset)] = len(slots) - 1
    modes = _modes(done)
    offsets = {mode: (k - (len(modes) - 1) / 2) * 0.28 for k, mode in enumerate(modes)}

    fig = _figure(8.8, 1.9 + 0.42 * len(slots))
    ax = fig.subplots()
    lows, highs = [0.0], [0.0]
    for row in done:
        delta = row["deltas"][baseline]
        y = positions[(row["group"], row["dataset"])] + offsets[row["mode"]]
        colour = _VERDICT_COLOURS[_shown_verdict(row, baseline)]
        ax.errorbar([delta["delta"]], [y], xerr=[[delta["delta"] - delta["low"]], [delta["high"] - delta["delta"]]],
                    fmt=_MODE_MARKERS.get(row["mode"], "D"), color=colour, ecolor=colour, markersize=7,
                    markeredgecolor="k", markeredgewidth=0.5, elinewidth=1.6, capsize=4, zorder=3)
        ax.annotate(interval_text(delta["delta"], delta["low"], delta["high"])
                    + (", known points only" if row.get("known_points_only") else ""), (delta["high"], y),
                    xytext=(6, 0), textcoords="offset points", va="center", ha="left", fontsize=8, color="0.2")
        lows.append(delta["low"])
        highs.append(delta["high"])
    ax.axvline(0.0, color="k", linewidth=1.0, zorder=1)
    span = max(highs) - min(lows)
    if span < 1e-4:  # every interval is (nearly) the point 0
        ax.set_xlim(-0.005, 0.01)
    else:
        ax.set_xlim(min(lows) - 0.08 * span, max(highs) + 0.55 * span)  # room for the labels on the right
    ax.set_ylim(len(slots) - 0.5, -0.6)
    ax.set_yticks(range(len(slots)))
    ax.set_yticklabels([text if kind == "group" else f"  {text}" for kind, text in slots])
    for tick, (kind, _) in zip(ax.get_yticklabels(), slots):
        if kind == "group":
            tick.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    band = blended_transform_factory(ax.transAxes, ax.transData)
    for index, (kind, _) in enumerate(slots):
        if kind == "group" and index > 0:
            ax.axhline(index - 0.5, color="0.6", linewidth=0.8, zorder=0)
        if kind == "group":
            ax.fill_between([0, 1], index - 0.5, index + 0.5, transform=band, color="0.93", zorder=0)
    ax.grid(axis="x", alpha=0.3)
    title = {"checkpoint": "the checkpoint's own fusion weights", REFERENCE_LABEL: f"fixed {REFERENCE_LABEL}",
             NONE_LABEL: f"no enhancement ({NONE_LABEL})"}.get(baseline, baseline)
    ax.set_xlabel(f"Δ test MRR = best setting − {title} (95% paired-bootstrap interval)")
    handles = [Line2D([], [], linestyle="none", marker=_MODE_MARKERS.get(m, "D"), markerfacecolor="white",
                      markeredgecolor="k", markersize=7, label=f"{m} mode") for m in modes]
    present = [v for v in ("win", "tie", "loss", "known_only") if any(_shown_verdict(r, baseline) == v for r in done)]
    handles += [Line2D([], [], color=_VERDICT_COLOURS[v], marker="s", linestyle="-", linewidth=1.6, markersize=6,
                       label=_VERDICT_TEXT[v]) for v in present]
    _legend_below(fig, handles, ncol=min(3, len(handles)))
    _note_left_out(ax, rows, title=f"Test MRR gained by the best setting over {title}, per dataset")
    return fig


def _shown_verdict(row: dict[str, Any], baseline: str) -> str:
    """The verdict a row is drawn with: ``known_only`` for a study that ran only its known points (it searched
    nothing, so its interval is no win or loss of a search), else the interval's win / tie / loss."""
    return "known_only" if row.get("known_points_only") else row["deltas"][baseline]["verdict"]


# ---------------------------------------------------------------------------------------------
# weight plane


def _place_labels(ax: Any, points: Sequence[tuple[float, float, str, str]],
                  obstacles: Sequence[tuple[float, float]] = ()) -> None:
    """Label each (x, y, text, colour) next to its point.

    Per label, the first of a few offsets whose estimated text box stays inside the axes and overlaps
    no label placed before, no other point and no obstacle (e.g. the large baseline markers at (x, y));
    when none is free, the one with the fewest overlaps.
    """
    fig = ax.figure
    fig.canvas.draw()  # fixes the layout, so data -> pixel is final
    to_pixels = ax.transData.transform
    scale = fig.dpi / 72.0
    frame = ax.get_window_extent()
    placed: list[tuple[float, float, float, float]] = []
    markers = [tuple(to_pixels((x, y))) for x, y, _, _ in points]
    blocks = [(tuple(to_pixels((x, y))), 11 * scale) for x, y in obstacles]
    fontsize = 8
    candidates = [(7, 4, "left", "bottom"), (7, -4, "left", "top"), (-7, 4, "right", "bottom"),
                  (-7, -4, "right", "top"), (0, 10, "center", "bottom"), (0, -10, "center", "top")]
    for far in (14, 24, 36):  # further away, joined to the point by a thin line
        candidates += [(far, far, "left", "bottom"), (far, -far, "left", "top"), (-far, far, "right", "bottom"),
                       (-far, -far, "right", "top"), (0, far + 6, "center", "bottom"), (0, -far - 6, "center", "top")]

    def box_of(px: float, py: float, width: float, height: float, candidate: tuple) -> tuple[float, ...]:
        dx, dy, ha, va = candidate
        left = px + dx * scale - (width if ha == "right" else width / 2 if ha == "center" else 0)
        bottom = py + dy * scale - (height if va == "top" else 0)
        return left, bottom, left + width, bottom + height

    for (x, y, text, colour), (px, py) in zip(points, markers):
        lines = text.split("\n")
        width = max(len(line) for line in lines) * fontsize * 0.6 * scale
        height = len(lines) * fontsize * 1.25 * scale
        scored = []
        for order, candidate in enumerate(candidates):
            box = box_of(px, py, width, height, candidate)
            clashes = sum(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)
            clashes += sum(box[0] - 4 < mx < box[2] + 4 and box[1] - 4 < my < box[3] + 4
                           for mx, my in markers if (mx, my) != (px, py))
            clashes += sum(box[0] - r < bx < box[2] + r and box[1] - r < by < box[3] + r for (bx, by), r in blocks)
            outside = box[0] < frame.x0 or box[2] > frame.x1 or box[1] < frame.y0 or box[3] > frame.y1
            scored.append((clashes + (100 if outside else 0), order, candidate))
        _, _, chosen = min(scored)
        placed.append(box_of(px, py, width, height, chosen))
        dx, dy, ha, va = chosen
        leader = dict(arrowstyle="-", color=colour, linewidth=0.6, shrinkA=0, shrinkB=3) if abs(dy) > 10 else None
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                    color=colour, zorder=6, arrowprops=leader)


def weight_plane_figure(rows: Sequence[dict[str, Any]]) -> Figure:
    """The best (w_sim, w_prompt) of every study with a best setting, on one plane.

    The plane is that of the first two fusion terms (x w_sim, y w_prompt; with more terms the others
    are not drawn). Points coloured by benchmark group, circles for fixed mode and squares for the
    weights a learnable study learned; studies at one point share one label. Baselines as large open
    markers: 0.2/0.8, 0/0 and each distinct checkpoint's own setting. The dashed line w_sim + w_prompt
    = 1 is where learned (softmax) weights lie. Both axes start below 0 and end past 1, or past the
    largest weight drawn. ValueError without a row that has a best setting.
    """
    done = _done(rows)
    if not done:
        raise ValueError("no study has a best setting to draw")
    fig = _figure(7.6, 8.6)
    ax = fig.subplots()
    reference, none = KNOWN_WEIGHTS[REFERENCE_LABEL], KNOWN_WEIGHTS["no enhancement"]
    baselines: list[tuple[str, float, float, str, str]] = [
        (REFERENCE_LABEL, reference[0], reference[1], "D", "black"),
        (f"{NONE_LABEL} (no enhancement)", none[0], none[1], "^", "tab:brown")]
    owns = sorted({(row["checkpoint"], tuple(row["baselines"]["checkpoint"]["weights"])) for row in done})
    for (checkpoint, own), colour in zip(owns, ("tab:red", "tab:pink", "tab:olive", "tab:cyan") * 4):
        baselines.append((f"{checkpoint}'s own {joined(own, '.4f', '/')}", own[0], own[1], "p", colour))
    xs = [row["best"]["weights"][0] for row in done] + [b[1] for b in baselines]
    ys = [row["best"]["weights"][1] for row in done] + [b[2] for b in baselines]
    high = max(1.0, max(xs), max(ys))
    pad = 0.07 * high
    ax.set_xlim(-pad, high + pad)
    ax.set_ylim(-pad, high + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.plot([0, 1], [1, 0], linestyle="--", color="0.55", linewidth=1.0, zorder=1)
    if high > 1.0:
        ax.axvline(1.0, color="0.85", linewidth=0.8, zorder=0)
        ax.axhline(1.0, color="0.85", linewidth=0.8, zorder=0)
    for _, x, y, shape, colour in baselines:
        ax.scatter([x], [y], marker=shape, s=300, facecolors="none", edgecolors=colour, linewidths=1.8, zorder=2)
    for row in done:
        x, y = row["best"]["weights"][:2]
        ax.scatter([x], [y], marker=_MODE_MARKERS.get(row["mode"], "D"), s=60, color=_group_colour(row["group"]),
                   edgecolors="k", linewidths=0.5, zorder=4)
    # one label per distinct point: the datasets there, with the mode when a dataset has both
    both = {row["dataset"] for row in done if sum(r["dataset"] == row["dataset"] for r in done) > 1}
    spots: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for row in done:
        x, y = row["best"]["weights"][:2]
        spots.setdefault((round(x, 6), round(y, 6)), []).append(row)
    labels = []
    for (x, y), members in sorted(spots.items()):
        names = [f"{r['dataset']} ({r['mode']})" if r["dataset"] in both else r["dataset"] for r in members]
        colours = {_group_colour(r["group"]) for r in members}
        labels.append((x, y, "\n".join(names), colours.pop() if len(colours) == 1 else "0.15"))
    ax.set_xlabel(f"{FUSION_TERMS[0].label} {FUSION_TERMS[0].symbol}")
    ax.set_ylabel(f"{FUSION_TERMS[1].label} {FUSION_TERMS[1].symbol}")
    ax.grid(alpha=0.25)
    datasets = len({r["dataset"] for r in done})
    _note_left_out(ax, rows, title=f"Best fusion weights of {len(done)} stud{'y' if len(done) == 1 else 'ies'} "
                                   f"({datasets} dataset{'s' if datasets != 1 else ''})")
    groups = _group_order(done)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor=_group_colour(g),
                      markeredgecolor="k", markeredgewidth=0.5, label=f"group {g}") for g in groups]
    handles += [Line2D([], [], linestyle="none", marker=_MODE_MARKERS.get(m, "D"), markersize=8, markerfacecolor="0.8",
                       markeredgecolor="k", markeredgewidth=0.5,
                       label="fixed mode: best weights" if m == "fixed" else
                       "learnable mode: weights its best trial learned" if m == "learnable" else f"{m} mode")
                for m in _modes(done)]
    handles += [Line2D([], [], linestyle="none", marker=shape, markersize=11, markerfacecolor="none",
                       markeredgecolor=colour, markeredgewidth=1.6, label=f"baseline {label}")
                for label, _, _, shape, colour in baselines]
    handles.append(Line2D([], [], linestyle="--", color="0.55", linewidth=1.0,
                          label=f"{symbols(' + ')} = 1 (softmax-learned weights lie here)"))
    _legend_below(fig, handles, ncol=2)
    obstacles = [(x, y) for _, x, y, _, _ in baselines]
    _place_labels(ax, labels, obstacles)
    return fig


# ---------------------------------------------------------------------------------------------
# fixed vs learnable


#: The learned modes a dataset's fixed study is set against, in drawing order (top to bottom within a dataset).
LEARNED_MODES = ("learnable", "learnable_free")
_LEARNED_WORDS = {"learnable": "learnable", "learnable_free": "free"}


def paired_modes(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(fixed row, its dataset's learned-mode rows) of every dataset with a best setting in fixed mode and in at
    least one learned mode (``learnable``: softmax weights; ``learnable_free``: free non-negative weights), in
    row order; the learned rows in the order of :data:`LEARNED_MODES`."""
    done = _done(rows)
    pairs = []
    for row in done:
        if row["mode"] != "fixed":
            continue
        learned = [r for mode in LEARNED_MODES for r in done if r["dataset"] == row["dataset"] and r["mode"] == mode][:2]
        if learned:
            pairs.append((row, learned))
    return pairs


def fixed_vs_learnable_figure(rows: Sequence[dict[str, Any]]) -> Figure:
    """Per dataset searched in fixed mode and in a learned mode: the test MRR of the best fixed setting (circle,
    just below the dataset's line), of the learned weights of the best trial of each learned mode (``learnable``:
    square; ``learnable_free``: diamond; above it) and of the checkpoint's own setting (black bar), each labelled
    with its value and weights; on the right each learned mode's difference to fixed and the own setting's test
    MRR. ValueError when no dataset has both."""
    pairs = paired_modes(rows)
    if not pairs:
        raise ValueError("no dataset has a best setting in both fixed and learnable mode")
    modes_drawn = sorted({r["mode"] for _, learned in pairs for r in learned}, key=LEARNED_MODES.index)
    fig = _figure(8.8, 2.3 + (0.75 + 0.25 * (len(modes_drawn) - 1)) * len(pairs))
    ax = fig.subplots()
    values = []
    for index, (fixed, learned) in enumerate(pairs):
        own = fixed["baselines"]["checkpoint"]["test_mrr"]
        points = [(fixed, index + 0.14 * len(learned))] + [
            (row, index + 0.14 * len(learned) - 0.28 * (k + 1)) for k, row in enumerate(learned)]
        values += [own] + [row["best"]["test_mrr"] for row, _ in points]
        # fixed just below the dataset's line, the learned modes above it (the y axis runs downwards), so equal
        # values stay visible; the own setting a black bar across all
        ax.plot([own, own], [index - 0.2 - 0.14 * len(learned), index + 0.2 + 0.14 * len(learned)], color="k",
                linewidth=2.4, zorder=2)
        for row, y in points:
            value, mode = row["best"]["test_mrr"], row["mode"]
            weights = joined(row["best"]["weights"], ".3f", "/")
            ax.plot([value], [y], marker=_MODE_MARKERS[mode], markersize=9, color=_MODE_COLOURS[mode],
                    markeredgecolor="k", markeredgewidth=0.5, linestyle="none", zorder=3)
            kind = "learned " if mode != "fixed" else ""
            ax.annotate(f"{value:.4f} ({kind}{weights})", (value, y), xytext=(9, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=8, color=_MODE_COLOURS[mode],
                        bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.85),
                        zorder=4)
        base = fixed["best"]["test_mrr"]
        lines = [f"{_LEARNED_WORDS[row['mode']]} − fixed: {row['best']['test_mrr'] - base:+.4f}" for row in learned]
        ax.annotate("\n".join(lines + [f"own setting: {own:.4f}"]), (1.01, index),
                    xycoords=("axes fraction", "data"), ha="left", va="center", fontsize=9)
    low, high = min(values), max(values)
    span = high - low if high - low > 1e-4 else 0.004
    ax.set_xlim(low - 0.15 * span, high + 0.6 * span)  # room for the labels right of the points
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([fixed["dataset"] for fixed, _ in pairs])
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(f"test MRR (labels: MRR and the {symbols('/')} it was ranked with)")
    _note_left_out(ax, [], title="Fixed against learned fusion: test MRR of each mode's best setting")
    labels = {"learnable": "learnable mode (softmax): learned weights of the best trial",
              "learnable_free": "learnable_free mode (free weights): learned weights of the best trial"}
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=9, color=_MODE_COLOURS["fixed"],
                      markeredgecolor="k", markeredgewidth=0.5, label="fixed mode: best setting")]
    handles += [Line2D([], [], linestyle="none", marker=_MODE_MARKERS[mode], markersize=9, color=_MODE_COLOURS[mode],
                       markeredgecolor="k", markeredgewidth=0.5, label=labels[mode]) for mode in modes_drawn]
    handles.append(Line2D([], [], linestyle="none", marker="|", markersize=14, markeredgewidth=2.4, color="k",
                          label="the checkpoint's own setting"))
    _legend_below(fig, handles, ncol=2)
    return fig


# ---------------------------------------------------------------------------------------------
# cost against graph size


def costed(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with a cost record (``cost.seconds_per_pair`` > 0) and the size of the validation graph it was
    probed on (``graphs.valid.edges``), one per dataset (the first in row order: the modes of a dataset rank
    on one graph)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        cost, graphs = row.get("cost") or {}, row.get("graphs") or {}
        per_pair, edges = cost.get("seconds_per_pair"), (graphs.get("valid") or {}).get("edges")
        if row["dataset"] in seen or not per_pair or per_pair <= 0 or not edges:
            continue
        seen.add(row["dataset"])
        out.append(row)
    return out


def cost_figure(rows: Sequence[dict[str, Any]]) -> Figure:
    """Validation pairs per second (1 / ``cost.seconds_per_pair``) against the validation graph's edges, one
    point per dataset of :func:`costed`, log-log, coloured by group, each labelled with its dataset and
    entities; a dashed line of slope −1 (a cost proportional to the edges) through the median point. The
    devices of the cost records are named in the title. ValueError with fewer than two such datasets."""
    points = costed(rows)
    if len(points) < 2:
        raise ValueError("fewer than two studies have a cost record and a graph size")
    fig = _figure(8.6, 7.0)
    ax = fig.subplots()
    xs = [row["graphs"]["valid"]["edges"] for row in points]
    ys = [1.0 / row["cost"]["seconds_per_pair"] for row in points]
    for row, x, y in zip(points, xs, ys):
        ax.scatter([x], [y], s=50, color=_group_colour(row["group"]), edgecolors="k", linewidths=0.5, zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    order = sorted(range(len(points)), key=lambda i: xs[i] * ys[i])
    mid = order[len(order) // 2]
    low, high = min(xs) / 1.5, max(xs) * 1.5
    ax.plot([low, high], [xs[mid] * ys[mid] / low, xs[mid] * ys[mid] / high], linestyle="--", color="0.55",
            linewidth=1.0, zorder=1)
    ax.set_xlim(low, high)
    ax.set_ylim(min(ys) / 2.5, max(ys) * 2.5)
    ax.set_xlabel("edges of the validation graph (inverse edges included)")
    ax.set_ylabel("validation pairs ranked per second")
    ax.grid(alpha=0.25, which="both")
    devices = sorted({str(row["cost"].get("device") or "?") for row in points})
    ax.set_title(f"Ranking speed of {len(points)} datasets against graph size (device {', '.join(devices)}; "
                 "each study's cost probe)", fontsize=10)
    labels = [(x, y, f"{row['dataset']} ({row['graphs']['valid']['entities']:,} ent.)", _group_colour(row["group"]))
              for row, x, y in zip(points, xs, ys)]
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor=_group_colour(g),
                      markeredgecolor="k", markeredgewidth=0.5, label=f"group {g}") for g in _group_order(points)]
    handles.append(Line2D([], [], linestyle="--", color="0.55", linewidth=1.0,
                          label="cost ∝ edges (through the median dataset)"))
    _legend_below(fig, handles, ncol=3)
    _place_labels(ax, labels)
    return fig


# ---------------------------------------------------------------------------------------------


def campaign_figures(rows: Sequence[dict[str, Any]]) -> CampaignFigures:
    """Every figure the rows allow, and why the others are left out."""
    drawn = CampaignFigures()
    if _done(rows):
        drawn.figures[DELTA_PNG] = delta_figure(rows)
        drawn.figures[PLANE_PNG] = weight_plane_figure(rows)
    else:
        why = "not drawn: no study has a complete trial"
        drawn.omitted[DELTA_PNG] = drawn.omitted[PLANE_PNG] = why
    if paired_modes(rows):
        drawn.figures[MODES_PNG] = fixed_vs_learnable_figure(rows)
    else:
        drawn.omitted[MODES_PNG] = "not drawn: no dataset has a complete study in both fixed and learnable mode"
    if len(costed(rows)) >= 2:
        drawn.figures[COST_PNG] = cost_figure(rows)
    else:
        drawn.omitted[COST_PNG] = ("not drawn: fewer than two studies have a cost record (only a campaign with a "
                                   "time budget probes its studies' cost)")
    return drawn
