"""The fence around Optuna's internals: every private module, private attribute or version-dependent name
of Optuna that this project uses is reached through a function of this module, and only here.

Checked against the Optuna versions in :data:`CHECKED_OPTUNA` (``tests/test_compat.py`` runs each function on
a real SQLite study; ``pyproject.toml`` allows ``optuna>=4.5,<6``). When Optuna moves one of these names, this
module is the one place to change. What is reached, and why:

* ``Study._storage``, ``Study._study_id``, ``FrozenTrial._trial_id`` / ``Trial._trial_id`` -- the trial step
  sends a trial's heartbeats through the study's storage (as ``study.optimize`` does), and the heartbeat table
  is keyed by trial id;
* ``optuna.storages._cached_storage._CachedStorage`` -- the cache Optuna wraps an RDB storage in;
  :func:`backend_of` unwraps it to the storage that was opened;
* ``Study._get_trials`` -- the trial list GPSampler reads (with ``use_cache``);
* ``optuna.storages._heartbeat`` -- a trial's heartbeat thread outside ``study.optimize`` (batched trials);
* ``optuna.storages._rdb.models`` -- the heartbeat table, read to tell a live worker from a silent one;
* ``RetryHeartbeatStaleTrialCallback`` / ``heartbeat_stale_trial_callback`` (Optuna >= 4.9), which were
  ``RetryFailedTrialCallback`` / ``failed_trial_callback`` before.
"""
from __future__ import annotations

import datetime as _dt
import inspect
from collections.abc import Callable, Container
from types import ModuleType
from typing import Any, ContextManager

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "CHECKED_OPTUNA",
    "storage_of",
    "backend_of",
    "study_id",
    "trial_id",
    "get_trials",
    "heartbeat_enabled",
    "heartbeat_thread",
    "rdb_models",
    "retry_callback",
    "heartbeat_options",
    "heartbeat_ages",
]

#: The Optuna versions this module (and tests/test_compat.py) was checked against.
CHECKED_OPTUNA = ("4.5.0", "5.0.0")


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes through (``study._storage``): for an RDB storage, Optuna's cache
    around the storage that was opened (write through this one, so the cache stays current)."""
    return study._storage


def backend_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """``storage`` without Optuna's ``_CachedStorage`` around it: the object that was opened (an RDBStorage,
    ours included, or a JournalStorage); any other storage is returned as it is."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of ``study`` (``study._study_id``; not its name)."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (``_trial_id``, unique across studies; not its number), for a Trial or a
    FrozenTrial."""
    return trial._trial_id


def get_trials(study: Any, *, deepcopy: bool = True, states: Container[TrialState] | None = None,
               use_cache: bool = False) -> list[FrozenTrial]:
    """``study._get_trials``: the study's trials, optionally filtered by ``states``; ``use_cache`` reads the
    copy Optuna keeps for the current trial (what GPSampler reads), instead of asking the storage again.
    ``study`` is an optuna.Study or a view that forwards to one."""
    return study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    """Whether ``storage`` keeps heartbeats (an RDB storage opened with a heartbeat interval)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def heartbeat_thread(trial: optuna.Trial | FrozenTrial, storage: optuna.storages.BaseStorage) -> ContextManager[None]:
    """A context manager that records ``trial``'s heartbeat in ``storage`` every heartbeat interval while it is
    entered (what ``study.optimize`` does around each trial); it does nothing when the storage keeps no
    heartbeats. Pass :func:`storage_of` the trial's study."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    return get_heartbeat_thread(trial_id(trial), storage)


def rdb_models() -> ModuleType:
    """Optuna's SQLAlchemy models of the RDB schema (``optuna.storages._rdb.models``: ``TrialModel``,
    ``TrialHeartbeatModel``, ...)."""
    from optuna.storages._rdb import models

    return models


def retry_callback(max_retry: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """Optuna's callback that re-queues a trial the heartbeat failed, at most ``max_retry`` times per setting
    (``RetryHeartbeatStaleTrialCallback`` from Optuna 4.9, ``RetryFailedTrialCallback`` before)."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:  # Optuna < 4.9
        cls = optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=max_retry)


def heartbeat_options(interval_s: int, grace_period_s: int, max_retry: int) -> dict[str, Any]:
    """The keyword arguments of ``optuna.storages.RDBStorage`` for heartbeats every ``interval_s`` seconds, a
    trial silent for ``grace_period_s`` seconds failed, and its setting re-queued up to ``max_retry`` times
    (the callback's argument is ``heartbeat_stale_trial_callback`` from Optuna 4.9, ``failed_trial_callback``
    before). RDBStorage warns that these are experimental: catch ``ExperimentalWarning`` around it."""
    params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    name = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    return {"heartbeat_interval": interval_s, "grace_period": grace_period_s, name: retry_callback(max_retry)}


def heartbeat_ages(study: optuna.Study) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial of ``study`` that has one, by trial id
    (:func:`trial_id`). Read from the heartbeat table with the database's own clock, as Optuna's own check
    does; empty for storages without a heartbeat table (journals, in-memory). Only reads."""
    storage = backend_of(storage_of(study))
    if not isinstance(storage, optuna.storages.RDBStorage):
        return {}
    import sqlalchemy

    models = rdb_models()
    beat, trial = models.TrialHeartbeatModel, models.TrialModel
    with storage.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        rows = connection.execute(
            sqlalchemy.select(beat.trial_id, beat.heartbeat)
            .join(trial, trial.trial_id == beat.trial_id)
            .where(trial.study_id == study_id(study))
            .where(trial.state == TrialState.RUNNING)
        ).all()
    if isinstance(now, str):  # SQLite's CURRENT_TIMESTAMP comes back as text
        now = _dt.datetime.fromisoformat(now)
    now = now.replace(tzinfo=None)
    return {tid: (now - when.replace(tzinfo=None)).total_seconds() for tid, when in rows}
