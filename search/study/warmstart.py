"""Warm starts that transfer: a new study first tries the best settings of the most similar finished studies.

A study launched with ``warm_start_from`` (spec key; ``--warm-start-from STUDY ...`` on ``are-search
launch``; a campaign's ``warm_start_from``) enqueues, right after its known points, the best complete
trial's parameters of the ``warm_start_k`` source studies whose graphs are nearest to its own
(:func:`search.study.similarity.distance`). Each such trial carries the user attrs ``warm_start_from`` (the
source study) and ``distance``; the study records what it was offered in its user attr ``warm_start``:
``[{"from", "distance", "params", "trial", "value", "enqueued"}]`` (``enqueued`` false when a trial
with the same parameters was already there, e.g. a known point).

A source qualifies when it has a complete trial, the target's mode and another dataset than the
target. Its parameters are restricted to the target's searched parameters (a parameter the target
pins is left out, one the source lacks is left to the sampler) and clipped into the target's hard
bounds (:mod:`search.study.bounds`), so every warm point is a setting the target could have sampled.

Every study records the :class:`~search.study.similarity.GraphStats` of its dataset as the user attr
``graph_stats`` when it is launched, so a source is compared without loading its dataset; a study
without it (made before warm starts existed) has its dataset loaded once for the comparison.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import optuna

from search.errors import NoCompleteTrialError, StudyError
from search.study.names import StudyName, canonical_dataset
from search.options import LoadOptions
from search.study.similarity import GraphStats, graph_stats, nearest
from search.study.spec import SPEC_ATTR, StudySpec

__all__ = ["GRAPH_STATS_ATTR", "WARM_START_ATTR", "WarmPoint", "dataset_stats", "study_stats",
           "record_graph_stats", "warm_start_points", "enqueue_warm_start", "apply_warm_start", "load_sources"]

_logger = logging.getLogger(__name__)

#: Study user attr: the :class:`GraphStats` of the study's dataset (``GraphStats.to_attr()``).
GRAPH_STATS_ATTR = "graph_stats"
#: Study user attr: the warm points the study was offered, in order (see the module docstring).
WARM_START_ATTR = "warm_start"


@dataclass(frozen=True)
class WarmPoint:
    """One setting a new study tries after its known points.

    source: the source study's name; distance: the graphs' distance (:func:`search.study.similarity.distance`,
    decades plus penalties); params: the source's best complete trial's parameters, restricted to the
    target's searched parameters and clipped to its hard bounds; trial, value: that trial's number and
    validation MRR in the source study.
    """

    source: str
    distance: float
    params: dict[str, Any]
    trial: int
    value: float

    def to_attr(self, enqueued: bool) -> dict[str, Any]:
        """The JSON-ready record of the study user attr ``warm_start``."""
        return {"from": self.source, "distance": self.distance, "params": dict(self.params), "trial": self.trial,
                "value": self.value, "enqueued": enqueued}


def dataset_stats(dataset: str, options: LoadOptions) -> GraphStats:
    """The GraphStats of ``dataset`` (any spelling), loaded with ``options`` (roots, cache, downloads).

    Raises UnknownDatasetError / DataRootError / MissingRawFileError / ... (one line, from
    :func:`are_model.data.load_dataset`).
    """
    from are_model.data import load_dataset
    from search.inputs.roots import naming_unset_root, root_is_set

    with naming_unset_root("data_root", root_is_set("data_root", options.data_root, options.cache_dir)):
        data = load_dataset(dataset, options.data_root, cache_dir=options.cache_dir, download=options.download)
    return graph_stats(data)


def _study_dataset(study: optuna.Study) -> str:
    """The canonical dataset of ``study``: from its stored spec, else from its name."""
    stored = study.user_attrs.get(SPEC_ATTR)
    if isinstance(stored, Mapping) and isinstance(stored.get("dataset"), str):
        return canonical_dataset(stored["dataset"])
    return canonical_dataset(StudyName.parse(study.study_name).dataset)


def study_stats(study: optuna.Study, options: LoadOptions | None) -> GraphStats:
    """The GraphStats stored on ``study`` (user attr ``graph_stats``), else of its dataset loaded now.

    The study is not written to (a source may sit in a read-only storage). Raises StudyError when the
    attr is missing or malformed and ``options`` is None, and the loader's errors when loading fails.
    """
    stored = study.user_attrs.get(GRAPH_STATS_ATTR)
    if isinstance(stored, Mapping):
        try:
            return GraphStats.from_attr(stored)
        except (KeyError, TypeError, ValueError) as exc:
            _logger.warning("study %s: ignoring a malformed %s attr (%s)", study.study_name, GRAPH_STATS_ATTR, exc)
    if options is None:
        raise StudyError(f"study {study.study_name} has no {GRAPH_STATS_ATTR} and no load options were given "
                         f"to load its dataset")
    return dataset_stats(_study_dataset(study), options)


def record_graph_stats(study: optuna.Study, spec: StudySpec, options: LoadOptions,
                       stats: GraphStats | None = None) -> GraphStats:
    """Store the GraphStats of ``spec.dataset`` on ``study`` (user attr ``graph_stats``) and return them.

    stats: already computed (else the dataset is loaded with ``options``). A study that has them keeps
    its stored value. Raises the loader's errors.
    """
    stored = study.user_attrs.get(GRAPH_STATS_ATTR)
    if isinstance(stored, Mapping):
        try:
            return GraphStats.from_attr(stored)
        except (KeyError, TypeError, ValueError):
            pass  # malformed: written again below
    stats = stats if stats is not None else dataset_stats(spec.dataset, options)
    study.set_user_attr(GRAPH_STATS_ATTR, stats.to_attr())
    return stats


def _hard_ranges(spec: StudySpec, bounds: Mapping[str, Any] | None) -> dict[str, tuple[float, float] | None]:
    """Searched parameter -> its hard (low, high), from the study's stored bounds, else the spec's space;
    None for a categorical one (learnable mode's ``body``)."""
    space = spec.search_space()
    ranges: dict[str, tuple[float, float] | None] = {}
    for name, param in space.params.items():
        if not param.searched:
            continue
        bound = (bounds or {}).get(name)
        ranges[name] = ((float(bound.hard_low), float(bound.hard_high)) if bound is not None
                        else (float(param.hard_low), float(param.hard_high)))
    if spec.mode != "fixed" and "body_lr" in ranges:
        ranges["body"] = None  # the categorical frozen / trained choice in front of body_lr
    return ranges


def _restrict(params: Mapping[str, Any], ranges: Mapping[str, tuple[float, float] | None]) -> dict[str, Any]:
    """``params`` restricted to the target's searched parameters and clipped into their hard ranges."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in ranges:
            continue
        hard = ranges[name]
        if hard is None:
            if value in ("frozen", "trained"):
                out[name] = value
            continue
        number = float(value)
        if math.isfinite(number):
            out[name] = min(max(number, hard[0]), hard[1])
    if out.get("body") == "frozen":
        out.pop("body_lr", None)
    return out


def warm_start_points(target: GraphStats, sources: Sequence[optuna.Study], k: int, *, spec: StudySpec,
                      bounds: Mapping[str, Any] | None = None,
                      options: LoadOptions | None = None) -> list[WarmPoint]:
    """The warm points of the target study ``spec`` with graph ``target``: the best settings of the
    ``k`` nearest qualifying ``sources``, nearest first (ties by name).

    bounds: the target study's stored bounds (:func:`search.study.bounds.read_bounds`; None: the spec's
    space); options: to load a source's dataset when it has no ``graph_stats`` attr. A source
    qualifies with a complete trial, ``spec.mode`` and another dataset than ``spec.dataset``; the
    others are skipped (logged). Raises UsageError for a ``k`` below 1, StudyError / the loader's
    errors when a source's graph cannot be had.
    """
    from search.flags.export import best_trial
    from search.values import positive_int

    k = positive_int(k, "warm_start_k")
    ranges = _hard_ranges(spec, bounds)
    target_dataset = canonical_dataset(spec.dataset)
    candidates: dict[str, GraphStats] = {}
    best: dict[str, tuple[dict[str, Any], int, float]] = {}
    stats_by_dataset: dict[str, GraphStats] = {}
    for source in sources:
        name = source.study_name
        if name in candidates:
            continue
        try:
            source_name = StudyName.parse(name)
        except StudyError:
            _logger.warning("warm start of %s: skipping %s (not a <dataset>/<mode> study)", spec.name, name)
            continue
        dataset = _study_dataset(source)
        if source_name.mode != spec.mode:
            _logger.info("warm start of %s: skipping %s (mode %s, not %s)", spec.name, name, source_name.mode, spec.mode)
            continue
        if dataset == target_dataset:
            _logger.info("warm start of %s: skipping %s (the same dataset)", spec.name, name)
            continue
        try:
            trial = best_trial(source)
        except NoCompleteTrialError:
            _logger.info("warm start of %s: skipping %s (no complete trial)", spec.name, name)
            continue
        params = _restrict(trial.params, ranges)
        if not params:
            _logger.info("warm start of %s: skipping %s (no parameter the target searches)", spec.name, name)
            continue
        if GRAPH_STATS_ATTR in source.user_attrs or dataset not in stats_by_dataset:
            stats_by_dataset[dataset] = study_stats(source, options)
        candidates[name] = stats_by_dataset[dataset]
        best[name] = (params, trial.number, float(trial.value))
    return [WarmPoint(name, dist, *best[name]) for name, dist in nearest(target, candidates, k)]


def enqueue_warm_start(study: optuna.Study, points: Sequence[WarmPoint]) -> list[WarmPoint]:
    """Enqueue ``points`` on ``study`` in order (after whatever is queued already: the known points of a
    new study) and record them all in its user attr ``warm_start``; returns those enqueued.

    Each trial gets the user attrs ``warm_start_from`` and ``distance``. A point whose parameters a
    trial of the study already has (queued or run) is not enqueued again (``enqueued: false``).
    """
    done: list[WarmPoint] = []
    record = []
    for point in points:
        before = len(study.get_trials(deepcopy=False))
        study.enqueue_trial(dict(point.params), user_attrs={"warm_start_from": point.source, "distance": point.distance},
                            skip_if_exists=True)
        added = len(study.get_trials(deepcopy=False)) > before
        record.append(point.to_attr(added))
        if added:
            done.append(point)
    study.set_user_attr(WARM_START_ATTR, record)
    if points:
        _logger.info("study %s: warm start from %s", study.study_name,
                     ", ".join(f"{p.source} (distance {p.distance:.3f}{'' if p in done else ', already there'})"
                               for p in points))
    return done


def apply_warm_start(study: optuna.Study, spec: StudySpec, sources: Sequence[optuna.Study], options: LoadOptions,
                     k: int) -> list[WarmPoint]:
    """Warm-start ``study`` (of ``spec``) from the ``k`` nearest of ``sources``; returns the points enqueued.

    Call it on a study whose known points are queued (:func:`search.runners.setup.open_study` does that when
    it creates one). Stores the target's GraphStats (user attr ``graph_stats``, the dataset loaded with
    ``options`` unless stored already), enqueues the points (:func:`enqueue_warm_start`) and records
    them (user attr ``warm_start``, written even when no source qualifies). Idempotent: a study that has
    a ``warm_start`` attr gets nothing more (returns []). Raises UsageError for a ``k`` below 1,
    StudyError / the loader's errors when a graph cannot be had.
    """
    if WARM_START_ATTR in study.user_attrs:
        return []
    from search.study.bounds import read_bounds

    target = record_graph_stats(study, spec, options)
    points = warm_start_points(target, sources, k, spec=spec, bounds=read_bounds(study), options=options)
    return enqueue_warm_start(study, points)


def load_sources(storage_url: Any, names: Sequence[str]) -> list[optuna.Study]:
    """The studies ``names`` (``<dataset>/<mode>``, any spelling of the dataset) of the storage at
    ``storage_url``, each once, opened read-only. Raises StudyError naming the first one that is not
    there (or whose dataset is unknown)."""
    from search.storage import StorageURL, load_study, open_storage, storage_state

    url = StorageURL.parse(storage_url)
    state = storage_state(url)
    if state.state in ("missing", "empty"):
        raise StudyError(f"warm-start source {names[0]}: no such study, storage {state.describe()}")
    from are_model.data import DatasetError

    storage = open_storage(url, read_only=True)
    found: dict[str, optuna.Study] = {}
    for name in names:
        try:
            study = load_study(storage, StudyName.parse(name), where=url.safe)
        except (StudyError, DatasetError) as exc:  # DatasetError: an unknown dataset in the name
            raise StudyError(f"warm-start source {name}: {exc}") from None
        found.setdefault(study.study_name, study)
    return list(found.values())
