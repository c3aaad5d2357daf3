"""``are-search report``: plots of a study, and its best setting against the baselines on test.

What a report holds (all in one folder):

* ``optimization_history.png`` -- validation MRR per trial and the best so far (Optuna's helper);
* ``weights_scatter.png`` -- fixed mode: every complete trial at (w_sim, w_prompt), coloured by its
  validation MRR, the best one starred; learnable mode: the initial similarity weight against the
  fusion learning rate;
* ``param_importances.png`` -- importances from Optuna's default evaluator (no scikit-learn needed);
* ``summary.md`` and ``summary.json`` -- the best trial next to the checkpoint's own fusion, the fixed
  0.2/0.8 and no enhancement (0/0): validation MRR (taken from the study's trials when one ran that
  exact setting, else evaluated now) and the test metrics, with a paired bootstrap 95% interval of
  the test MRR difference best - baseline.

This is the only place the test split is used, and only to report settings chosen on validation.
A learnable study's best trial is reported through the fusion weights its fine-tuning learned,
applied as fixed weights to the checkpoint's model (fine-tuning is not re-run).
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import Tensor

from are_model.evaluate import ranking_metrics
from search.export import best_trial
from search.studies import StudyError, StudyName

__all__ = [
    "BootstrapInterval",
    "paired_bootstrap",
    "SettingResult",
    "Report",
    "baseline_settings",
    "trial_counts",
    "write_report",
]

_logger = logging.getLogger(__name__)

#: Two weight pairs closer than this in both coordinates are the same setting.
WEIGHT_TOLERANCE = 1e-6
#: Resample-by-query entries held in memory at once (index matrix of int64).
_BOOTSTRAP_BLOCK = 4_000_000


# ---------------------------------------------------------------------------------------------
# paired bootstrap


@dataclass(frozen=True)
class BootstrapInterval:
    """MRR(a) - MRR(b) on the full query set and its percentile bootstrap interval."""

    diff: float
    low: float
    high: float
    confidence: float
    n_boot: int
    seed: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(ranks_a: Tensor | Sequence[int], ranks_b: Tensor | Sequence[int], *, n_boot: int = 2000,
                     seed: int = 0, confidence: float = 0.95) -> BootstrapInterval:
    """Paired bootstrap interval of MRR(ranks_a) - MRR(ranks_b).

    ranks_a, ranks_b: [Q] ranks of the same queries under two settings. Each resample draws Q query
    indices with replacement -- the same ones for both vectors -- so the interval reflects how much
    the difference depends on which queries happen to be in the split. The index matrix
    [n_boot, Q] is drawn in blocks from a generator seeded with ``seed`` (same seed, same interval).
    """
    a = torch.as_tensor(ranks_a).reshape(-1).double()
    b = torch.as_tensor(ranks_b).reshape(-1).double()
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs rank vectors of one length, got {a.numel()} and {b.numel()}")
    if a.numel() == 0:
        raise ValueError("paired bootstrap needs at least one query")
    if (a < 1).any() or (b < 1).any():
        raise ValueError("ranks must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    delta = 1.0 / a - 1.0 / b                                        # [Q] per-query reciprocal-rank gain
    total = delta.numel()
    generator = torch.Generator().manual_seed(int(seed))
    block = max(1, _BOOTSTRAP_BLOCK // total)
    means = []
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        index = torch.randint(total, (rows, total), generator=generator)   # [rows, Q]
        means.append(delta[index].mean(dim=1))
    samples = torch.cat(means)
    tail = (1.0 - confidence) / 2.0
    low, high = torch.quantile(samples, torch.tensor([tail, 1.0 - tail], dtype=torch.float64)).tolist()
    return BootstrapInterval(float(delta.mean()), float(low), float(high), float(confidence), int(n_boot), int(seed))


# ---------------------------------------------------------------------------------------------
# settings to compare


@dataclass
class SettingResult:
    """One fusion setting in the report: its weights, validation MRR and test metrics."""

    label: str
    weights: tuple[float, float]
    valid_mrr: float | None = None
    valid_source: str = ""
    test: dict[str, float] = field(default_factory=dict)
    diff_vs_best: dict[str, float] | None = None


@dataclass
class Report:
    """What ``write_report`` wrote, and the numbers of ``summary.json``."""

    out_dir: Path
    files: list[Path]
    summary: dict[str, Any]


def baseline_settings(checkpoint_weights: Sequence[float]) -> list[tuple[str, tuple[float, float]]]:
    """(label, weights) of the baselines: the checkpoint's own fusion, 0.2/0.8 and 0/0."""
    own = tuple(float(w) for w in checkpoint_weights)
    return [("checkpoint", (own[0], own[1])), ("0.2/0.8", (0.2, 0.8)), ("no enhancement", (0.0, 0.0))]


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(float(x) - float(y)) <= WEIGHT_TOLERANCE for x, y in zip(a, b))


def _trial_weights(trial: FrozenTrial) -> tuple[float, float] | None:
    """The fixed weights a trial applied (fixed mode), from its settings user attr."""
    settings = trial.user_attrs.get("settings")
    if not isinstance(settings, dict) or settings.get("use_learnable_fusion"):
        return None
    try:
        return float(settings["similarity_enhancer_weight"]), float(settings["prompt_enhancer_weight"])
    except (KeyError, TypeError, ValueError):
        return None


def _learned_weights(trial: FrozenTrial) -> tuple[float, float]:
    settings = trial.user_attrs.get("settings")
    learned = settings.get("learned_weights") if isinstance(settings, dict) else None
    if not isinstance(learned, (list, tuple)) or len(learned) != 2:
        raise StudyError(f"trial {trial.number} of a learnable study has no 'learned_weights' in its settings")
    return float(learned[0]), float(learned[1])


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """How many trials of ``study`` are in each state (states without trials left out)."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# plots


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _placeholder(path: Path, title: str, message: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _plot_history(study: optuna.Study, path: Path) -> Path:
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_optimization_history(study)
    ax.set_ylabel("validation MRR")
    return _save(ax.figure, path)


def _plot_weights(study: optuna.Study, mode: str, best: FrozenTrial, path: Path) -> Path:
    from matplotlib.figure import Figure

    trials = _complete(study)
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    if mode == "fixed":
        points = [(w, t) for t in trials if (w := _trial_weights(t)) is not None]
        xs = [w[0] for w, _ in points]
        ys = [w[1] for w, _ in points]
        best_xy = _trial_weights(best)
        ax.set_xlabel("similarity_enhancer_weight (w_sim)")
        ax.set_ylabel("prompt_enhancer_weight (w_prompt)")
        title = "fixed fusion weights"
    else:
        points = [(t.user_attrs["settings"], t) for t in trials if isinstance(t.user_attrs.get("settings"), dict)]
        points = [(s, t) for s, t in points if "fusion_lr" in s and "similarity_enhancer_weight" in s]
        xs = [float(s["similarity_enhancer_weight"]) for s, _ in points]
        ys = [float(s["fusion_lr"]) for s, _ in points]
        settings = best.user_attrs.get("settings", {})
        best_xy = (float(settings["similarity_enhancer_weight"]), float(settings["fusion_lr"])) \
            if "fusion_lr" in settings else None
        ax.set_yscale("log")
        ax.set_xlabel("initial similarity weight")
        ax.set_ylabel("fusion_lr")
        title = "learnable fusion: starting point"
    values = [t.value for _, t in points]
    if points:
        scatter = ax.scatter(xs, ys, c=values, cmap="viridis", s=40, edgecolors="k", linewidths=0.3)
        fig.colorbar(scatter, ax=ax, label="validation MRR")
        if best_xy is not None:
            ax.scatter([best_xy[0]], [best_xy[1]], marker="*", s=260, facecolors="none", edgecolors="red",
                       linewidths=1.5, label=f"best (trial {best.number})")
            ax.legend(loc="best", fontsize="small")
    ax.set_title(f"{study.study_name}: {title}")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _plot_importances(study: optuna.Study, path: Path) -> Path:
    title = f"{study.study_name}: parameter importances"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # "too few trials to compute importances": expected in a small study, the plot says it anyway
        warnings.filterwarnings("ignore", message=".*too small to compute importances.*")
        try:
            from optuna.visualization.matplotlib import plot_param_importances

            ax = plot_param_importances(study)
            return _save(ax.figure, path)
        except Exception as error:  # the helper needs extras in some Optuna versions; fall back below
            _logger.debug("optuna's importance plot failed (%s); drawing the bar chart directly", error)
        try:
            importances = optuna.importance.get_param_importances(study)
        except Exception as error:  # e.g. fewer than two complete trials, or no parameter varies
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return _placeholder(path, title, f"importances unavailable: {reason}")
    if not importances:
        return _placeholder(path, title, "importances unavailable: no searched parameter")
    from matplotlib.figure import Figure

    names = list(importances)[::-1]
    fig = Figure(figsize=(6, 0.6 * len(names) + 1.5))
    ax = fig.subplots()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (normalised)")
    ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


# ---------------------------------------------------------------------------------------------
# the report


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Study {summary['study']}",
        "",
        f"- dataset: {summary['dataset']}; mode: {summary['mode']}; checkpoint: {summary['checkpoint']} "
        f"(profile {summary['profile']}); text encoder: {summary['encoder']}",
        "- trials: " + ", ".join(f"{k.lower()} {v}" for k, v in summary["trials"].items()),
        f"- best: trial {summary['best']['trial']}, validation MRR {summary['best']['value']:.4f}",
        "",
        "Settings are chosen on the validation split; the test split is used here only to report them.",
    ]
    if summary.get("note"):
        lines += ["", f"**Note:** {summary['note']}"]
    boot = summary["bootstrap"]
    lines += [
        "",
        f"| setting | w_sim | w_prompt | valid MRR | valid from | test MRR | test MR | test H@1 | test H@3 "
        f"| test H@10 | test Δ MRR best − setting [{int(boot['confidence'] * 100)}% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["settings"]:
        test = row["test"]
        diff = row["diff_vs_best"]
        delta = "—" if diff is None else f"{diff['diff']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
        lines.append(
            f"| {row['label']} | {row['weights'][0]:.4f} | {row['weights'][1]:.4f} | {_fmt(row['valid_mrr'])} "
            f"| {row['valid_source']} | {_fmt(test['mrr'])} | {_fmt(test['mr'], 1)} | {_fmt(test['hits@1'])} "
            f"| {_fmt(test['hits@3'])} | {_fmt(test['hits@10'])} | {delta} |"
        )
    lines += [
        "",
        f"Test queries: {summary['settings'][0]['test']['num_queries']}. Intervals: paired bootstrap over test "
        f"queries ({boot['n_boot']} resamples, seed {boot['seed']}, percentile); an interval that excludes 0 "
        "marks a difference larger than the split's sampling noise.",
        "",
        "Plots: " + ", ".join(f"`{name}`" for name in summary["plots"]),
        "",
    ]
    return "\n".join(lines)


def write_report(study: optuna.Study, context: Any, out_dir: str | Path, *, n_boot: int = 2000, seed: int = 0,
                 show_progress: bool = False) -> Report:
    """Write the plots, ``summary.md`` and ``summary.json`` of ``study`` into ``out_dir``.

    context: the :class:`search.engine.SearchContext` of the study's dataset and checkpoint (it
    evaluates the settings no trial measured on validation, and every setting on test).
    """
    name = StudyName.parse(study.study_name)
    model = context.model
    if not model.has_enhancers:
        raise StudyError(f"study {name}: checkpoint profile {model.profile} has no enhancers to compare")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trials = _complete(study)
    best = best_trial(study)

    note = None
    if name.mode == "fixed":
        best_weights = _trial_weights(best)
        if best_weights is None:
            raise StudyError(f"study {name}: best trial {best.number} has no fixed weights in its settings")
        best_row = SettingResult(f"best (trial {best.number})", best_weights, float(best.value), f"trial {best.number}")
    else:
        best_weights = _learned_weights(best)
        best_row = SettingResult(f"best learned (trial {best.number})", best_weights)
        note = (f"learnable study: trial {best.number} reached validation MRR {best.value:.4f} after fine-tuning; "
                f"its learned weights {best_weights[0]:.4f} / {best_weights[1]:.4f} are evaluated here as fixed "
                "weights on the checkpoint's model (fine-tuning is not re-run for this report).")
    rows = [best_row] + [SettingResult(label, weights)
                         for label, weights in baseline_settings(model.checkpoint_fusion_weights())]

    # validation: from a complete trial with exactly that setting, else evaluated now
    fixed_trials = [(w, t) for t in trials if (w := _trial_weights(t)) is not None]
    for row in rows:
        if row.valid_mrr is not None:
            continue
        match = [t for w, t in fixed_trials if _same(w, row.weights)]
        if match:
            trial = min(match, key=lambda t: t.number)
            row.valid_mrr, row.valid_source = float(trial.value), f"trial {trial.number}"

    cache: dict[tuple[str, tuple[float, float]], Tensor] = {}

    def ranks_of(split: str, weights: tuple[float, float]) -> Tensor:
        for (s, w), ranks in cache.items():
            if s == split and _same(w, weights):
                return ranks
        _, ranks = context.evaluate(split, list(weights))
        cache[(split, weights)] = ranks
        return ranks

    jobs = [("valid", row) for row in rows if row.valid_mrr is None] + [("test", row) for row in rows]
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=f"report {name}", unit="setting", leave=False)
    try:
        for split, row in jobs:
            if bar is not None:
                bar.set_postfix_str(f"{split} {row.label}")
            ranks = ranks_of(split, row.weights)
            if split == "valid":
                row.valid_mrr, row.valid_source = float((1.0 / ranks.double()).mean()), "evaluated"
            else:
                row.test = ranking_metrics(ranks)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    best_ranks = ranks_of("test", best_row.weights)
    for row in rows[1:]:
        interval = paired_bootstrap(best_ranks, ranks_of("test", row.weights), n_boot=n_boot, seed=seed)
        row.diff_vs_best = {"diff": interval.diff, "low": interval.low, "high": interval.high,
                            "excludes_zero": interval.excludes_zero}

    files = [_plot_history(study, out / "optimization_history.png"),
             _plot_weights(study, name.mode, best, out / "weights_scatter.png"),
             _plot_importances(study, out / "param_importances.png")]
    summary: dict[str, Any] = {
        "study": str(name),
        "dataset": name.dataset,
        "mode": name.mode,
        "checkpoint": str(context.info.path),
        "profile": model.profile,
        "encoder": _encoder_name(context),
        "trials": trial_counts(study),
        "best": {"trial": best.number, "value": float(best.value), "params": dict(best.params),
                 "settings": best.user_attrs.get("settings")},
        "note": note,
        "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": 0.95, "metric": "test MRR, best - setting"},
        "settings": [{**asdict(row), "weights": list(row.weights)} for row in rows],
        "plots": [path.name for path in files],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(_markdown(summary), encoding="utf-8")
    files += [out / "summary.md", out / "summary.json"]
    _logger.info("report of %s written to %s", name, out)
    return Report(out, files, summary)


def _encoder_name(context: Any) -> str | None:
    """The text encoder that built the test split's relation graph (None for ULTRA)."""
    if context.model.profile == "ultra":
        return None
    try:
        return context.split("test").encoder
    except Exception:  # the encoder name is informative only
        return None
