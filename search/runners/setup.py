"""What every runner does before its first trial: a worker's setup, the study opened with its sampler and
pruner, and the known points enqueued in a study created now.

The local runner, the Ray runner and the campaign queue open a study the same way (:func:`open_study`), so a
study can be run, killed, and resumed by any of them.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from are_model.checkpoint import load_checkpoint
from search.study.bounds import ensure_bounds
from search.objectives.context import SearchContext, get_context
from search.options import LoadOptions
from search.pruners import make_pruner
from search.samplers import SoftBoundsSampler, make_sampler
from search.study.spec import StudySpec
from search.storage import StorageURL, create_or_load_study, open_storage

__all__ = ["WorkerSetup", "open_study", "enqueue_known_points", "known_points_only_warning", "enqueue_flags_point",
           "study_sampler"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to build its SearchContext: the checkpoint file, the load options
    (roots, cache, offline, batch size: absolute paths, so workers may run anywhere), the device and
    the text encoder spec of the study."""

    checkpoint_path: str
    options: LoadOptions
    device: str = "cpu"
    encoder: str = "auto"

    def on(self, device: str) -> "WorkerSetup":
        """This setup on another device."""
        return dataclasses.replace(self, device=device)

    def context(self, dataset: str, seed: int) -> SearchContext:
        """This process's warm context for ``dataset`` (built on first use, see engine.get_context)."""
        options = self.options
        return get_context(dataset, self.checkpoint_path, data_root=options.data_root, text=options.text(self.encoder),
                           device=self.device, batch_size=options.batch_size, cache_dir=options.cache_dir,
                           stage_seed=seed, download=options.download)


def study_sampler(spec: StudySpec, study_size: int, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The spec's sampler, seeded from the spec's seed, the worker and how many trials the study has.

    Workers of one run, and runs that resume a study, must not replay one random stream: they would
    propose the same points again.
    """
    seed = spec.seed + 7919 * worker + study_size
    space = spec.search_space()
    searched = sum(param.searched for param in space.params.values())
    # A GP needs one point more than the space has dimensions before its fit means anything; the
    # known points enqueued first count towards these. Only a fixed-weight MRR is deterministic.
    if spec.sampler == "grid":  # a fixed grid over the soft bounds, built now: nothing to narrow
        return make_sampler("grid", seed, search_space=space.grid())
    return SoftBoundsSampler(make_sampler(spec.sampler, seed, startup_trials=searched + 1,
                                          deterministic=spec.mode == "fixed"))


def enqueue_known_points(study: optuna.Study, spec: StudySpec, checkpoint_weights: tuple[float, float]) -> int:
    """Enqueue the space's known points (user attr ``known_point``); returns how many."""
    points = spec.search_space().known_points(checkpoint_weights)
    for name, params in points:
        study.enqueue_trial(params, user_attrs={"known_point": name})
    _logger.info("study %s: enqueued known points %s", study.study_name, ", ".join(name for name, _ in points))
    return len(points)


def known_points_only_warning(study: optuna.Study, spec: StudySpec) -> str | None:
    """The warning of a run whose budget covers only the study's known points (``spec.trials`` no more than
    the trials enqueued or run as known points, none other finished yet): such a run searches nothing, and
    its report says "known points only". None when the budget leaves room for a searched trial."""
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
    trials = study.get_trials(deepcopy=False, states=states)
    known = [t.user_attrs["known_point"] for t in sorted(trials, key=lambda t: t.number) if "known_point" in t.user_attrs]
    searched = [t for t in trials if "known_point" not in t.user_attrs and t.state.is_finished()]
    if not known or searched or spec.trials > len(known):
        return None
    return (f"study {study.study_name}: a budget of {spec.trials} trial{'' if spec.trials == 1 else 's'} is no more "
            f"than its {len(known)} known points ({', '.join(known)}), which run first: nothing is searched, and its "
            f"report will say 'known points only'; give --trials {len(known) + 1} or more to search")


def open_study(spec: StudySpec, storage: StorageURL, checkpoint_path: str | os.PathLike, *, worker: int = 0,
               pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, bool]:
    """Open (or create) the study of ``spec`` in ``storage`` (opened for writing, once per process: see
    :func:`search.storage.open_storage`); a study created now gets the known points enqueued.

    worker: this worker's number (its sampler's seed); pruner: overrides the spec's (Ray workers leave
    pruning to the Tune scheduler). Returns ``(study, created_now)``; a resumed study is never re-enqueued.
    Raises StorageError when the storage cannot be opened, CheckpointError for a checkpoint that cannot be
    read (a study created now).
    """
    storage = open_storage(storage)  # a writable SQLite file: a LockedSQLiteStorage
    sampler = study_sampler(spec, _size(storage, str(spec.name)), worker)
    study, created = create_or_load_study(storage, spec.name, sampler=sampler,
                                          pruner=pruner if pruner is not None else make_pruner(spec.pruner))
    ensure_bounds(study, spec.search_space())
    if created:
        model, _ = load_checkpoint(checkpoint_path)
        enqueue_known_points(study, spec, model.checkpoint_fusion_weights())
    return study, created


def _size(storage: optuna.storages.BaseStorage, name: str) -> int:
    """How many trials the study ``name`` has in ``storage`` (0 when there is no such study)."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def enqueue_flags_point(study: optuna.Study, spec: StudySpec, point: Any, *, bounds: Any = None) -> bool:
    """Queue the fusion weights of a user's flags file (a :class:`search.flags.current.FlagsPoint`) as a known
    point of ``study`` (user attr ``known_point`` = ``point.label``) and record it on the study
    (:data:`search.flags.current.FLAGS_POINT_ATTR`). bounds: the study's current bounds (a grown range), default
    the spec's. Returns False, queuing nothing, when a trial of the study (not failed) has these settings
    already. Raises UsageError (one line naming the file) when a fixed-mode weight lies outside the search range.
    """
    from search.errors import UsageError
    from search.flags.current import FLAGS_POINT_ATTR

    space = spec.search_space() if bounds is None else spec.search_space().with_bounds(bounds)
    params = space.point_of(point.weights)
    if params is None:
        ranges = ", ".join(f"{name} [{p.low:g}, {p.high:g}]" for name, p in space.params.items() if p.searched)
        weights = ", ".join(f"{w:g}" for w in point.weights)
        raise UsageError(f"{point.path}: its fusion weights {weights} lie outside the search range ({ranges}) of "
                         f"study {study.study_name}: give --soft-high (up to --weight-cap) to take them in")
    study.set_user_attr(FLAGS_POINT_ATTR, point.to_attr())
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
    for trial in study.get_trials(deepcopy=False, states=states):
        if (trial.params or trial.system_attrs.get("fixed_params")) == params:
            _logger.info("study %s: %s not queued: trial %d has these settings", study.study_name, point.label,
                         trial.number)
            return False
    study.enqueue_trial(params, user_attrs={"known_point": point.label})
    _logger.info("study %s: enqueued %s", study.study_name, point.label)
    return True
