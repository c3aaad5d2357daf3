"""RUNNING trials that no live worker vouches for, whatever the storage: named, and failed when stale.

A RUNNING trial holds a place in the study's budget (:func:`search.study.budget.remaining_budget`), so one
whose worker is gone would block a study for good. Each RUNNING trial is put in one of five cases:

* ``alive`` -- its worker is a live process of this host (pid and process start time match);
* ``heartbeat`` -- an RDB storage holds a heartbeat of it younger than the grace period (another
  host's worker that is alive);
* ``dead`` -- its worker was a process of this host that is gone, or no worker was recorded and every
  process that may have asked it is a process of this host that is gone (failed at once by
  :func:`search.study.budget.recover_dead_trials`);
* ``silent`` -- its heartbeat is older than the grace period (failed by Optuna's heartbeat check);
* ``unknown`` -- nothing can tell: another host's worker on a journal storage (journals keep no
  heartbeat), a trial without a heartbeat row, or no worker recorded at all.

``alive`` and ``heartbeat`` trials are never failed. ``status`` names the others and changes nothing.
``launch`` / ``resume`` (:func:`settle_stale`) fail and re-queue a not provably alive trial when its age
exceeds :func:`stale_bound_s`, or at once with ``--fail-stale``; a study whose budget is still not
reached because of such a trial stops with one line naming it and the option
(:func:`blocking_error`).

The age bound is ``max(10 x the median duration of the study's finished trials, 10 min)``. Trials of one
study repeat one computation (one dataset, one split, one mode; pruned trials are shorter), so their
durations spread little: a trial ten times older than the typical one has lost its worker, unless the
machine stalled, which the 10-minute floor absorbs for studies of trials of a few seconds (a paused
laptop, a busy shared file system). A study without a finished trial has no scale: its trials are not
failed on age, only with ``--fail-stale``.
"""
from __future__ import annotations

import datetime as _dt
import logging
import socket
import statistics
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.compat import heartbeat_ages, trial_id
from search.errors import StudyError
from search.storage import GRACE_PERIOD_S
from search.study.budget import FINISHED, Asker, asker_dead, askers, fail_and_requeue, owner_dead, recover_dead_trials

__all__ = [
    "STALE_FACTOR",
    "STALE_FLOOR_S",
    "HEARTBEAT_GRACE_S",
    "RunningTrial",
    "StaleCheck",
    "running_trials",
    "stale_bound_s",
    "settle_stale",
    "blocking_error",
]

_logger = logging.getLogger(__name__)

#: A not provably alive trial older than this many times the median duration of the study's finished
#: trials is failed and re-queued by launch / resume.
STALE_FACTOR = 10.0
#: ... but never before it is this many seconds old.
STALE_FLOOR_S = 600.0
#: Seconds since its last heartbeat after which an RDB trial is no longer vouched for: the grace period
#: of the storages that launch / resume open (search.storage.open_storage).
HEARTBEAT_GRACE_S = float(GRACE_PERIOD_S)
#: The cases that prove a worker alive.
ALIVE = ("alive", "heartbeat")


@dataclass(frozen=True)
class RunningTrial:
    """A RUNNING trial and what is known of its worker.

    number: the trial's number; host, pid: its recorded worker (None when none was recorded);
    started: when the trial started (local time of the worker that started it); age_s: seconds since
    then (None without a start time); heartbeat_s: seconds since its last heartbeat (None: no heartbeat
    row, or not an RDB storage); case: ``alive`` | ``heartbeat`` | ``dead`` | ``silent`` | ``unknown``
    (module docstring); why: the case in words.
    """

    number: int
    host: str | None
    pid: int | None
    started: _dt.datetime | None
    age_s: float | None
    heartbeat_s: float | None
    case: str
    why: str

    @property
    def provably_alive(self) -> bool:
        """True when a live local process or a fresh heartbeat vouches for the trial."""
        return self.case in ALIVE

    def describe(self) -> str:
        """``trial 3 (host h1, pid 4242, started 2026-11-30 20:16:44, 12 min 5 s ago)``."""
        started = "-" if self.started is None else self.started.strftime("%Y-%m-%d %H:%M:%S")
        age = "age unknown" if self.age_s is None else f"{_duration(self.age_s)} ago"
        return (f"trial {self.number} (host {self.host or 'unknown'}, pid {self.pid if self.pid is not None else 'unknown'}, "
                f"started {started}, {age})")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in seconds, start time in ISO 8601)."""
        return {"trial": self.number, "host": self.host, "pid": self.pid,
                "started": None if self.started is None else self.started.isoformat(timespec="seconds"),
                "age_s": None if self.age_s is None else round(self.age_s, 1),
                "heartbeat_s": None if self.heartbeat_s is None else round(self.heartbeat_s, 1),
                "case": self.case, "why": self.why}


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min 5 s``, ``3 h 2 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    return f"{seconds // 3600} h" + (f" {seconds % 3600 // 60} min" if seconds % 3600 // 60 else "")


def _classify(trial: FrozenTrial, heartbeat_s: float | None, now: _dt.datetime, recorded: list[Asker]) -> RunningTrial:
    attrs = trial.user_attrs
    owner_recorded = attrs.get("worker_trial") == trial.number
    host = attrs.get("worker_host") if owner_recorded else None
    pid = attrs.get("worker_pid") if owner_recorded and isinstance(attrs.get("worker_pid"), int) else None
    started = trial.datetime_start
    age_s = None if started is None else max(0.0, (now - started.replace(tzinfo=None)).total_seconds())
    here = socket.gethostname()
    if host == here and pid is not None:
        if owner_dead(trial):
            case, why = "dead", f"its worker, pid {pid} on this host, is gone"
        else:
            case, why = "alive", f"its worker, pid {pid} on this host, is alive"
    elif not owner_recorded and (asker := asker_dead(trial, recorded)) is not None:
        case, why = "dead", f"it was asked by pid {asker.pid} on this host, which is gone, before a worker was recorded"
    elif heartbeat_s is not None and heartbeat_s <= HEARTBEAT_GRACE_S:
        case, why = "heartbeat", f"its worker sent a heartbeat {_duration(heartbeat_s)} ago"
    elif heartbeat_s is not None:
        case, why = "silent", f"no heartbeat for {_duration(heartbeat_s)}"
    elif host is not None:
        case, why = "unknown", f"its worker runs on another host ({host}) and the storage keeps no heartbeat of it"
    else:
        case, why = "unknown", "no worker was recorded for it and the storage keeps no heartbeat of it"
    return RunningTrial(trial.number, host, pid, started, age_s, heartbeat_s, case, why)


def running_trials(study: optuna.Study, *, now: _dt.datetime | None = None) -> list[RunningTrial]:
    """Every RUNNING trial of ``study`` with its case (module docstring), by number; changes nothing.

    now: the time ages are measured to (default: this machine's local time, the clock Optuna stamps
    ``datetime_start`` with).
    """
    now = _dt.datetime.now() if now is None else now
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not trials:
        return []
    beats = heartbeat_ages(study)  # by trial id
    recorded = askers(study)
    return [_classify(trial, beats.get(trial_id(trial)), now, recorded) for trial in sorted(trials, key=lambda t: t.number)]


def stale_bound_s(study: optuna.Study) -> float | None:
    """Seconds after which a not provably alive RUNNING trial of ``study`` is failed by launch / resume.

    ``max(STALE_FACTOR x the median duration of its finished (COMPLETE, PRUNED) trials, STALE_FLOOR_S)``;
    None when no trial has finished (no scale: only ``--fail-stale`` fails such a trial).
    """
    durations = [(t.datetime_complete - t.datetime_start).total_seconds()
                 for t in study.get_trials(deepcopy=False, states=FINISHED)
                 if t.datetime_start is not None and t.datetime_complete is not None]
    if not durations:
        return None
    return max(STALE_FACTOR * statistics.median(durations), STALE_FLOOR_S)


@dataclass(frozen=True)
class StaleCheck:
    """What :func:`settle_stale` did: the trials it failed and re-queued (dead workers, stale ones),
    those left RUNNING without a live worker (``waiting``), and the age bound in seconds (None: none)."""

    failed: list[RunningTrial]
    waiting: list[RunningTrial]
    bound_s: float | None


def settle_stale(study: optuna.Study, *, fail_stale: bool = False) -> StaleCheck:
    """Fail and re-queue the RUNNING trials of ``study`` that no live worker vouches for and that are stale.

    Dead workers of this host and silent heartbeats first (:func:`search.study.budget.recover_dead_trials`);
    then every trial that is not provably alive and either older than :func:`stale_bound_s` or, with
    ``fail_stale``, of any age. Trials of live local processes and trials with a fresh heartbeat are
    never touched. Each failure is logged with the trial named (number, host, pid, start time, age).
    """
    before = {trial.number: trial for trial in running_trials(study)}
    dead = recover_dead_trials(study)
    failed = [before[number] for number in dead if number in before]
    bound = stale_bound_s(study)
    waiting: list[RunningTrial] = []
    frozen = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    for entry in running_trials(study):
        if entry.provably_alive or entry.number not in frozen:
            continue
        old = bound is not None and entry.age_s is not None and entry.age_s > bound
        if not (fail_stale or old):
            waiting.append(entry)
            later = ("no trial has finished yet to bound its age" if bound is None
                     else f"it is failed once it is {_duration(bound)} old")
            _logger.warning("study %s: %s is RUNNING and no live worker vouches for it (%s); %s, or now with "
                            "--fail-stale", study.study_name, entry.describe(), entry.why, later)
            continue
        reason = "--fail-stale" if fail_stale else f"older than {_duration(bound)}"
        why = f"{entry.describe()}: {entry.why}; {reason}"
        if fail_and_requeue(study, frozen[entry.number], why):
            _logger.warning("study %s: failed and re-queued %s", study.study_name, why)
            failed.append(entry)
    return StaleCheck(failed, waiting, bound)


def blocking_error(study: optuna.Study, budget: int) -> StudyError | None:
    """The one-line error of a study held below its ``budget`` by trials no live worker vouches for, or None.

    None when the study's finished trials reach ``budget`` or every RUNNING trial is provably alive.
    """
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if finished >= budget:
        return None
    blocking = [entry for entry in running_trials(study) if not entry.provably_alive]
    if not blocking:
        return None
    named = "; ".join(f"{entry.describe()}: {entry.why}" for entry in blocking)
    if all(entry.case in ("dead", "silent") for entry in blocking):
        return StudyError(f"study {study.study_name} has {finished} of {budget} finished trials and is held by "
                          f"{named}; run resume again: it fails and re-queues such a trial first")
    bound = stale_bound_s(study)
    when = ("no trial has finished yet to bound its age" if bound is None
            else f"launch / resume fail it by themselves once it is {_duration(bound)} old")
    return StudyError(f"study {study.study_name} has {finished} of {budget} finished trials and is held by "
                      f"{named}; to fail and re-queue it now, run again with --fail-stale ({when})")
