"""The report of a study: its figures, and its best setting against the baselines on test.

:func:`write_report` fills one folder with

* ``optimization_history.png`` -- validation MRR per trial (see :func:`search.reports.plots.history_figure`);
* ``weights_scatter.png`` -- the trials in the study's search space (:func:`search.reports.plots.weights_figure`);
* ``param_importances.png`` -- only with enough complete trials (:data:`search.reports.plots.MIN_IMPORTANCE_TRIALS`);
  otherwise the file is not written and ``summary.md`` / ``summary.json`` say why;
* ``summary.md`` and ``summary.json`` -- the best trial next to the checkpoint's own fusion, the fixed
  0.2/0.8 and no enhancement (0/0): validation MRR (from the study's trials when one ran that exact
  setting, else evaluated now) and test metrics, with a paired bootstrap interval of the test MRR
  difference best − baseline (:func:`search.reports.stats.paired_bootstrap`). Both name the are-search version,
  sampler, pruner, seed, text encoder and the checkpoint's file name, and hold no absolute path, so a
  report folder can be moved or shared as it is.

A study searched on a validation sample (spec key ``valid_pairs``) says so: its trials' values are MRRs of
the sample's queries, so every validation MRR of the report is taken on the same queries (a setting no
trial measured is ranked on the sample), ``summary.json`` holds ``valid_sample`` (pairs and queries of the
sample and of the split, and the standard error of a paired MRR difference at that size: best against
0.2/0.8 on the sample's queries, finite-population corrected against the split's queries,
:func:`search.pruners.paired.paired_standard_error`), and ``summary.md`` and the history figure name it.
The test numbers are the whole test split's, unless the report is asked for a test sample (``report
--test-pairs N``: for graphs whose whole test split takes hours on this device): then every setting is ranked
on the same N test pairs, ``summary.json`` holds ``test_sample`` and ``summary.md`` says so.

This is the only place the test split is used, and only to report settings chosen on validation.
A learnable (or learnable_free) study's best trial is reported through the fusion weights its fine-tuning
learned, applied as fixed weights to the checkpoint's model (fine-tuning is not re-run); the report says which
fine-tuning budget ran (``summary.json``: ``budget`` and ``budget_text``, the best trial's own record of it).
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any, Sequence

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import Tensor

from are_model.evaluate import ranking_metrics
from are_model.fileio import atomic_write_bytes
from search.campaign.timing import COST_ATTR, GRAPH_SIZE_KEYS, graph_size
from search.objectives.context import stage_plan
from search.pruners.paired import paired_standard_error
from search.reports import plots
from search.errors import StudyError
from search.flags.export import best_trial
from search.study.names import StudyName
from search.study.fusion_terms import FUSION_TERMS, KNOWN_WEIGHTS, NONE_LABEL, REFERENCE_LABEL, joined
from search.study.settings import TrialSettings
from search.study.bounds import growth_history, read_bounds
from search.study.budget import trial_counts
from search.study.spaces import SearchSpace
from search.study.stopping import stop_record
from search.reports.stats import paired_bootstrap
from search.study.ranks import RANKS_ATTR, decode_ranks
from search.reports.study_text import (HISTORY_PNG, IMPORTANCES_PNG, WEIGHTS_PNG, sample_text, space_text,
                                      summary_markdown)

__all__ = [
    "HISTORY_PNG",
    "WEIGHTS_PNG",
    "IMPORTANCES_PNG",
    "SettingResult",
    "Report",
    "baseline_settings",
    "known_points_only",
    "mixed_verdicts",
    "MIXED_METRICS",
    "sample_text",
    "write_report",
]

_logger = logging.getLogger(__name__)

#: Two weight vectors closer than this in every coordinate are the same setting.
WEIGHT_TOLERANCE = 1e-6
#: Confidence level of the bootstrap intervals.
CONFIDENCE = 0.95


@dataclass
class SettingResult:
    """One fusion setting in the report: its weights [E] (fusion-term order), validation MRR and test metrics."""

    label: str
    weights: tuple[float, ...]
    valid_mrr: float | None = None
    valid_source: str = ""
    test: dict[str, float] = field(default_factory=dict)
    diff_vs_best: dict[str, float] | None = None


@dataclass
class Report:
    """What :func:`write_report` wrote: ``files`` (paths under ``out_dir``), the numbers of
    ``summary.json``, and the matplotlib figures it saved, by file name (to inspect or re-save)."""

    out_dir: Path
    files: list[Path]
    summary: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)


def baseline_settings(checkpoint_weights: Sequence[float]) -> list[tuple[str, tuple[float, ...]]]:
    """(label, weights [E]) of the baselines: the checkpoint's own fusion, 0.2/0.8 and 0/0 (no enhancement)."""
    own = tuple(float(w) for w in checkpoint_weights)
    return [("checkpoint", own), *KNOWN_WEIGHTS.items()]


def _flags_rows(study: optuna.Study, rows: Sequence["SettingResult"]) -> list["SettingResult"]:
    """The row of the user's flags file a launch queued as a known point (``launch --from-flags``, user attr
    ``from_flags``), labelled as its trials are (``your flags (flags.yaml)``); none when the study has no such
    record or its weights are those of a row already there."""
    from search.flags.current import FLAGS_POINT_ATTR

    record = study.user_attrs.get(FLAGS_POINT_ATTR)
    if not isinstance(record, dict) or not isinstance(record.get("weights"), list) \
            or len(record["weights"]) != len(FUSION_TERMS):
        return []
    weights = tuple(float(w) for w in record["weights"])
    if any(_same(row.weights, weights) for row in rows):
        return []
    return [SettingResult(str(record.get("label") or "your flags"), weights)]


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(float(x) - float(y)) <= WEIGHT_TOLERANCE for x, y in zip(a, b))


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]


def file_name(value: Any) -> Any:
    """The last component of a path-like string (a checkpoint name such as ``fusion`` stays as it is)."""
    return PurePath(value).name if isinstance(value, str) and value else value


def _portable_settings(settings: TrialSettings | None) -> dict[str, Any] | None:
    """A trial's settings for summary.json, with checkpoint paths reduced to file names."""
    if settings is None:
        return None
    values = settings.to_attr()
    for key in ("checkpoint", "checkpoint_path"):
        values[key] = file_name(values.get(key))
    return values


def _version() -> str:
    from search.version import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
# summary.md


# ---------------------------------------------------------------------------------------------
# the report


def _say(line: str) -> None:
    """One progress line on stderr (a report's ``lines`` mode)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def write_report(study: optuna.Study, context: Any, out_dir: str | Path, *, spec: Any, n_boot: int = 2000,
                 seed: int = 0, show_progress: bool | str | None = None, rank_cache: Any = None,
                 test_pairs: int | None = None) -> Report:
    """Write the figures, ``summary.md`` and ``summary.json`` of ``study`` into ``out_dir``.

    context: the :class:`search.objectives.context.SearchContext` of the study's dataset and checkpoint (it
    evaluates the settings no trial measured on validation, and every setting on test). spec: the
    study's :class:`search.study.spec.StudySpec` (its space bounds the weight figure; its sampler, pruner
    and seed are reported). n_boot, seed: resamples and seed of the bootstrap intervals. rank_cache: a
    :class:`search.reports.rankcache.RankCache` that keeps each evaluation's ranks on disk, so a second report of
    the same settings runs no entity pass (None: every setting is evaluated). show_progress: ``"bar"`` (or True)
    a bar on stderr, ``"lines"`` one line on stderr per setting evaluated (for a log file or a pipe: an entity
    pass over a large test split takes minutes), None/False nothing. test_pairs: rank the test split on a
    sample of this many (anchor, relation) pairs when it has more (:class:`_TestSample`: the head of the
    context's seeded order, stratified by relation and direction; every setting ranks the same queries, so
    the paired intervals stay paired), for graphs whose whole test split would take hours on this device;
    None: the whole split. ``summary.json`` holds ``test_sample`` (None for the whole split).
    """
    name = StudyName.parse(study.study_name)
    if spec.mode != name.mode:
        raise StudyError(f"study {name}: the spec given is for {spec.mode} mode")
    model = context.model
    if not model.has_enhancers:
        raise StudyError(f"study {name}: checkpoint profile {model.profile} has no enhancers to compare")
    space = spec.search_space().with_bounds(read_bounds(study))  # the range as grown, not as first set
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best = best_trial(study)
    best_settings = TrialSettings.from_trial(best, str(name))

    note = None
    if name.mode == "fixed":
        best_row = SettingResult(f"best (trial {best.number})", best_settings.weights, float(best.value),
                                 f"trial {best.number}")
    else:
        if best_settings.learned_weights is None:
            raise StudyError(f"study {name}: trial {best.number} of a {name.mode} study has no learned weights")
        best_weights = best_settings.effective_weights
        best_row = SettingResult(f"best learned (trial {best.number})", best_weights)
        note = (f"{name.mode} study: trial {best.number} reached validation MRR {best.value:.4f} after fine-tuning; "
                f"its learned weights {joined(best_weights)} are evaluated here as fixed "
                "weights on the checkpoint's model (fine-tuning is not re-run for this report).")
    checkpoint_weights = tuple(float(w) for w in model.checkpoint_fusion_weights())
    rows = [best_row] + [SettingResult(label, weights) for label, weights in baseline_settings(checkpoint_weights)]
    rows += _flags_rows(study, rows)

    # validation: from a complete fixed-weight trial with exactly that setting, else evaluated now
    fixed_trials = [(s.weights, t) for t in _complete(study)
                    if (s := TrialSettings.maybe_from_trial(t)) is not None and s.mode == "fixed"]
    for row in rows:
        if row.valid_mrr is not None:
            continue
        match = [t for w, t in fixed_trials if _same(w, row.weights)]
        if match:
            trial = min(match, key=lambda t: t.number)
            row.valid_mrr, row.valid_source = float(trial.value), f"trial {trial.number}"

    cache: list[tuple[str, tuple[float, ...], Tensor]] = []

    def known_ranks(split: str, weights: tuple[float, ...], count_miss: bool = True) -> Tensor | None:
        """The whole split's ranks of ``weights`` when this report or the rank cache has them (no evaluation);
        count_miss: False where another rank-cache lookup follows a miss (:meth:`RankCache.get`)."""
        for s, w, ranks in cache:
            if s == split and _same(w, weights):
                return ranks
        ranks = None if rank_cache is None else rank_cache.get(context, split, weights, count_miss=count_miss)
        if ranks is not None:
            cache.append((split, weights, ranks))
        return ranks

    def ranks_of(split: str, weights: tuple[float, ...]) -> Tensor:
        ranks = known_ranks(split, weights)
        if ranks is None:
            _, ranks = context.evaluate(split, list(weights))
            if rank_cache is not None:
                rank_cache.put(context, split, weights, ranks)
            cache.append((split, weights, ranks))
        return ranks

    test = _TestSample(context, test_pairs, known_ranks, rank_cache) if test_pairs is not None else None
    if test is not None and test.pairs >= test.split_pairs:
        test = None  # the sample would be the whole split

    def test_ranks(weights: tuple[float, ...]) -> Tensor:
        """The test ranks of ``weights``: on the test sample's queries (its ``index`` order), else the split's."""
        return ranks_of("test", weights) if test is None else test.ranks(weights)

    sample = None if spec.valid_pairs is None else _ValidationSample.of(study, context, spec, fixed_trials,
                                                                         known_ranks, ranks_of)
    jobs = [("valid", row) for row in rows if row.valid_mrr is None] + [("test", row) for row in rows]
    bar = None
    if show_progress in (True, "bar"):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=f"report {name}", unit="setting", leave=False)
    elif show_progress == "lines" and jobs:
        _say(f"report {study.study_name}: {len(jobs)} evaluations (a setting on a split) to run")
    try:
        for done, (split, row) in enumerate(jobs, start=1):
            if bar is not None:
                bar.set_postfix_str(f"{split} {row.label}")
            started = time.perf_counter()
            if split == "valid" and sample is not None:  # on the queries the trials' values are on
                row.valid_mrr = float((1.0 / sample.ranks(row.weights).double()).mean())
                row.valid_source = "evaluated on the sample"
            elif split == "valid":
                ranks = ranks_of(split, row.weights)
                row.valid_mrr, row.valid_source = float((1.0 / ranks.double()).mean()), "evaluated"
            else:
                row.test = ranking_metrics(test_ranks(row.weights))
            if bar is not None:
                bar.update(1)
            elif show_progress == "lines":
                mrr = row.valid_mrr if split == "valid" else row.test["mrr"]
                _say(f"report {study.study_name}: {done}/{len(jobs)} {split} {row.label}: MRR {mrr:.4f}, "
                     f"{time.perf_counter() - started:.1f} s")
    finally:
        if bar is not None:
            bar.close()

    best_ranks = test_ranks(best_row.weights)
    for row in rows[1:]:
        interval = paired_bootstrap(best_ranks, test_ranks(row.weights), n_boot=n_boot, seed=seed,
                                    confidence=CONFIDENCE)
        row.diff_vs_best = {"diff": interval.diff, "low": interval.low, "high": interval.high,
                            "excludes_zero": interval.excludes_zero}

    # figures
    suffix = " (fixed weights)" if name.mode != "fixed" else ""
    lines = [(f"{_baseline_label(row)}{suffix}", row.valid_mrr) for row in rows[1:]]
    if name.mode == "fixed":
        markers = [(_baseline_label(row), *row.weights[:2]) for row in rows[1:]]  # the plane of the first two terms
    else:
        markers = _learnable_markers(space, checkpoint_weights)
    valid_sample = None if sample is None else sample.summary(rows)
    on = None if sample is None else f"on a sample: {sample.pairs} of {sample.split_pairs} pairs"
    figures = {HISTORY_PNG: plots.history_figure(study, baselines=lines, sample=on),
               WEIGHTS_PNG: plots.weights_figure(study, space, markers=markers, best=best, sample=on)}
    omitted: dict[str, str] = {}
    reason = plots.importances_unavailable(study)
    if reason is None:
        figures[IMPORTANCES_PNG] = plots.importances_figure(study, seed=seed)
    else:
        omitted[IMPORTANCES_PNG] = reason
        (out / IMPORTANCES_PNG).unlink(missing_ok=True)  # an older report's figure would be stale
    files = [plots.save_png(figure, out / file_name) for file_name, figure in figures.items()]

    summary: dict[str, Any] = {
        "study": str(name),
        "dataset": name.dataset,
        "mode": name.mode,
        "version": _version(),
        "checkpoint": file_name(str(context.checkpoint_path)),
        "profile": model.profile,
        "encoder": _encoder_name(context),
        "sampler": spec.sampler,
        "pruner": spec.pruner,
        "seed": spec.seed,
        "space": {name: bound.to_attr() for name, bound in read_bounds(study).items()},  # as status --json
        "space_spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(spec.space).items()},
        "space_text": space_text(space),
        "budget": spec.fine_tune_budget().for_mode(spec.mode),
        "budget_text": _budget_text(spec, best_settings),
        "valid_sample": valid_sample,
        "test_sample": None if test is None else test.summary(),
        "graphs": graph_sizes(study, context),
        "growth": growth_history(study),
        "stop": stop_record(study),
        "trials": trial_counts(study, interrupted=True),
        "best": {"trial": best.number, "value": float(best.value), "params": dict(best.params),
                 "settings": _portable_settings(best_settings)},
        "note": note,
        "known_points_only": known_points_only(study),
        "mixed": mixed_verdicts(rows),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": CONFIDENCE, "method": "paired, percentile",
                      "metric": "test MRR, best - setting"},
        "settings": [{**asdict(row), "weights": list(row.weights)} for row in rows],
        "plots": [path.name for path in files],
        "omitted": omitted,
        "importances_min_complete_trials": plots.MIN_IMPORTANCE_TRIALS,
    }
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2, default=str) + "\n").encode("utf-8"))
    atomic_write_bytes(out / "summary.md", summary_markdown(summary).encode("utf-8"))
    files += [out / "summary.md", out / "summary.json"]
    _logger.info("report of %s written to %s", name, out)
    return Report(out, files, summary, figures)


def graph_sizes(study: optuna.Study, context: Any) -> dict[str, dict[str, int]]:
    """``graphs`` of summary.json: :func:`search.campaign.timing.graph_size` of the ``valid`` and ``test``
    splits' graphs (entities, relations with inverses, edges with inverses).

    The validation graph's size is read from the study's cost record (user attr ``cost``, written by
    :func:`search.runners.cost.probe_cost` on that graph) when the record holds it, so a report that needs
    nothing else of the validation split does not prepare it (minutes on ConceptNet100k); a study without
    a cost record, or with one from before the record held the size, has its validation split prepared
    here. The test graph is the context's (the report ranks on it anyway).
    """
    cost = study.user_attrs.get(COST_ATTR)
    probed = {key: cost.get(key) for key in GRAPH_SIZE_KEYS} if isinstance(cost, dict) else {}
    if probed and all(isinstance(value, int) and not isinstance(value, bool) for value in probed.values()):
        valid = {key: int(value) for key, value in probed.items()}
    else:
        valid = graph_size(context.split("valid").graph)
    return {"valid": valid, "test": graph_size(context.split("test").graph)}


class _Sample:
    """The first ``limit`` pairs of a seeded, stratified order of one split's (anchor, relation) pairs
    (:func:`search.objectives.context.stage_plan`, one stage), and the queries they hold.

    index: the sample's queries' positions in the split [Q_s] (int64, CPU, ascending); pairs / split_pairs:
    the sample's pairs (``min(limit, P)``) and the split's (P); queries / split_queries: Q_s and the split's
    Q. The order is the context's own (:meth:`search.objectives.context.SearchContext.stage_plan`, kept
    there) when ``seed`` is the context's ``stage_seed``, else one drawn here with ``seed``: the same pairs
    either way. Prepares the split if the context has not yet.
    """

    def __init__(self, context: Any, split: str, limit: int, seed: int) -> None:
        queries, pairs = context.split(split).queries, context.pairs(split)
        if seed == getattr(context, "stage_seed", None):
            plan = context.stage_plan(split, 1, limit)
        else:
            plan = stage_plan(queries, pairs, 1, seed=seed, limit=limit)
        order = plan.order.to(pairs.starts.device)
        self.index = torch.sort(pairs.queries_of(order)[0]).values.cpu()
        self.pairs, self.split_pairs = int(order.numel()), len(pairs)
        self.queries, self.split_queries = int(self.index.numel()), len(queries)
        self.context, self.limit, self.seed = context, int(limit), seed
        self._ranked: list[tuple[tuple[float, ...], Tensor]] = []

    def _sizes(self) -> dict[str, Any]:
        """The sample's pairs and queries, the split's, the seed and what the order is stratified by (the
        keys a summary's ``valid_sample`` and ``test_sample`` share)."""
        return {"pairs": self.pairs, "split_pairs": self.split_pairs, "queries": self.queries,
                "split_queries": self.split_queries, "seed": self.seed, "stratified_by": "relation, head/tail"}


class _TestSample(_Sample):
    """A report's test sample: the first ``limit`` pairs of the context's seeded, stratified order of the test
    split (:meth:`search.objectives.context.SearchContext.stage_plan`, the order a validation sample is drawn
    in), ``index`` its queries' positions in the split [Q], and each setting's ranks there: from the whole
    split's ranks when the report or its rank cache has them, else from ranking the sample alone (kept in the
    rank cache under the sample's key)."""

    def __init__(self, context: Any, limit: int, known: Any, rank_cache: Any) -> None:
        super().__init__(context, "test", limit, context.stage_seed)
        self._known, self._cache = known, rank_cache

    def ranks(self, weights: tuple[float, ...]) -> Tensor:
        """The ranks [q] of the sample's queries (in ``index`` order) with fixed ``weights``."""
        for ranked, ranks in self._ranked:
            if _same(ranked, weights):
                return ranks
        full = self._known("test", weights, count_miss=False)  # a miss counts once, in the sample's lookup
        if full is None and self._cache is not None:
            full = self._cache.get(self.context, "test", weights, sample=self.limit)
        if full is None:
            _, full = self.context.evaluate("test", list(weights), sample=self.limit)
            if self._cache is not None:
                self._cache.put(self.context, "test", weights, full, sample=self.limit)
        ranks = full[self.index]
        if not bool((ranks > 0).all()):
            raise RuntimeError(f"test sample of {self.context.dataset}: a sampled query was not ranked")
        self._ranked.append((weights, ranks))
        return ranks

    def summary(self) -> dict[str, Any]:
        """``test_sample`` of summary.json: the sample's pairs and queries, the split's, and the seed."""
        return self._sizes()


class _ValidationSample(_Sample):
    """The validation sample a study searched on: its queries, and each setting's ranks on them.

    The sample is the first ``valid_pairs`` pairs of the study's seeded, stratified order
    (:func:`search.objectives.context.stage_plan` with the study's seed, as its trials ranked them); ``index``
    holds its queries' positions in the split [Q]. A setting's ranks there come, in this order, from a
    complete trial that stored them (a racing study's, :mod:`search.study.ranks`), from the whole split's
    ranks when the report or its rank cache has them (``known``), from ranking the sample alone when the
    context orders pairs with the study's seed (the cheap way, for the graphs a sample is for; not kept
    in the rank cache, which holds whole splits), else from ranking the whole split (``ranks_of``, cached).
    """

    def __init__(self, context: Any, limit: int, seed: int, stored: list[tuple[tuple[float, ...], np.ndarray]],
                 known: Any, ranks_of: Any) -> None:
        super().__init__(context, "valid", limit, seed)
        self.stored, self._known, self._ranks_of = stored, known, ranks_of

    @classmethod
    def of(cls, study: optuna.Study, context: Any, spec: Any, fixed_trials: list[tuple[tuple[float, ...], FrozenTrial]],
           known: Any, ranks_of: Any) -> "_ValidationSample":
        """The sample of ``study`` (spec ``valid_pairs`` and ``seed``), with the ranks its complete trials stored."""
        stored = [(weights, decode_ranks(trial.user_attrs[RANKS_ATTR])) for weights, trial in fixed_trials
                  if RANKS_ATTR in trial.user_attrs]
        return cls(context, spec.valid_pairs, spec.seed, stored, known, ranks_of)

    def ranks(self, weights: tuple[float, ...]) -> Tensor:
        """The ranks [Q] of the sample's queries (in ``index`` order) with fixed ``weights``."""
        index = self.index.numpy()
        for stored, ranks in self.stored:
            if _same(stored, weights) and ranks.shape == (self.split_queries,) and (ranks[index] > 0).all():
                return torch.from_numpy(ranks[index])
        for ranked, ranks in self._ranked:
            if _same(ranked, weights):
                return ranks
        if getattr(self.context, "stage_seed", None) == self.seed:
            full = self._known("valid", weights)
            if full is None:
                _, full = self.context.evaluate("valid", list(weights), sample=self.limit)  # as the trials ranked it
        else:
            full = self._ranks_of("valid", weights)  # it looks the whole split up first, once
        ranks = full[self.index]
        self._ranked.append((weights, ranks))
        return ranks

    def summary(self, rows: Sequence[SettingResult]) -> dict[str, Any]:
        """``valid_sample`` of summary.json: the sample's pairs and queries, the split's, the seed, and
        ``paired``: the standard error of a paired MRR difference at this size, from the best setting
        (``rows[0]``) against 0.2/0.8 (the checkpoint's own setting when the best is 0.2/0.8) on the sample's
        queries, finite-population corrected against the split's (None with fewer than two queries)."""
        best = rows[0]
        others = [row for row in rows[1:] if row.label == REFERENCE_LABEL and not _same(row.weights, best.weights)]
        others += [row for row in rows[1:] if row.label == "checkpoint" and not _same(row.weights, best.weights)]
        paired = None
        if others and self.queries >= 2:
            against = others[0]
            d = (1.0 / self.ranks(best.weights).double() - 1.0 / self.ranks(against.weights).double()).numpy()
            paired = {"setting": best.label, "against": against.label, "delta": float(d.mean()),
                      "se": paired_standard_error(d, self.split_queries), "queries": self.queries,
                      "population": self.split_queries, "correction": "finite population"}
        return {**self._sizes(), "paired": paired}


def known_points_only(study: optuna.Study) -> bool:
    """Whether every finished (complete or pruned) trial of ``study`` is one of its known points (user attr
    ``known_point``: the checkpoint's own setting, 0.2/0.8, 0/0; :mod:`search.runners.setup`): a budget that
    covered only those searched nothing, so its best is the best known setting, not a searched one."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return bool(finished) and all("known_point" in t.user_attrs for t in finished)


#: The test metrics a mixed verdict looks at besides MRR: (key, name, whether larger is better).
MIXED_METRICS = (("mr", "MR", False), ("hits@10", "Hits@10", True))


def mixed_verdicts(rows: Sequence[SettingResult]) -> list[dict[str, Any]]:
    """The baselines the best setting (``rows[0]``) beats on test MRR but trails on test MR or Hits@10: one
    ``{"against": label, "mrr": [best, baseline], "tie": bool, "worse_on": {"mr": [best, baseline], ...}}``
    each (point estimates on the test queries; MR is better when lower). ``tie``: the paired interval of the
    MRR difference (``diff_vs_best``, set before this is called) contains 0, so the higher MRR is no win.
    Empty when no verdict is mixed (or when a row has no test numbers)."""
    best = rows[0].test
    mixed = []
    for row in rows[1:]:
        other = row.test
        if not best or not other or _same(row.weights, rows[0].weights) or best["mrr"] <= other["mrr"]:
            continue
        worse = {key: [best[key], other[key]] for key, _, higher in MIXED_METRICS
                 if (best[key] < other[key] if higher else best[key] > other[key])}
        if worse:
            tie = row.diff_vs_best is not None and not row.diff_vs_best["excludes_zero"]
            mixed.append({"against": row.label, "mrr": [best["mrr"], other["mrr"]], "tie": tie, "worse_on": worse})
    return mixed


def _baseline_label(row: SettingResult) -> str:
    """How figures name a baseline: its label and weights."""
    if row.label == "checkpoint":
        return f"checkpoint's own {joined(row.weights, '.3f', '/')}"
    if row.label == "no enhancement":
        return f"no enhancement {NONE_LABEL}"
    return row.label


def _budget_text(spec: Any, best: TrialSettings) -> str | None:
    """The fine-tuning budget that ran, in words (None in fixed mode): the best trial's own record when it
    has one (trials since the official budgets), else the spec's budget."""
    if spec.mode == "fixed":
        return None
    recorded = (best.fine_tune or {}).get("budget")
    return recorded if isinstance(recorded, str) else spec.fine_tune_budget().describe()


def _learnable_markers(space: SearchSpace, checkpoint_weights: tuple[float, ...]) -> list[plots.Marker]:
    """The known starting points of a learnable study, as (label, first term's initial share, fusion lr)."""
    start, lr = space.params[FUSION_TERMS[0].initial_param], space.params["fusion_lr"]
    markers = []
    for label, params in space.known_points(checkpoint_weights):
        x = params.get(start.name, start.value)
        y = params.get(lr.name, lr.value)
        if x is None or y is None:
            continue
        markers.append((f"known start '{label}': {float(x):.3f}, fusion lr {float(y):g}", float(x), float(y)))
    return markers


def _encoder_name(context: Any) -> str | None:
    """The text encoder that built the test split's relation graph (None for ULTRA)."""
    if context.model.profile == "ultra":
        return None
    try:
        return context.split("test").encoder
    except Exception:  # the encoder name is informative only
        return None
