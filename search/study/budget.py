"""A study's trial budget and the workers that spend it: who runs a trial, which workers died.

A budget counts *finished* trials (COMPLETE + PRUNED); FAIL trials do not count (their retries do,
once they finish). Each running trial records its owner (host, pid, process start time) so that a
worker killed on this host is noticed at once (:func:`recover_dead_trials`, through psutil: any OS that
psutil supports). A trial has no owner for the few milliseconds between its creation and that record; each
process records in the study, before it asks, that it is asking (:func:`mark_asking`), so a trial whose
asker was killed in that gap is known dead too (:func:`asker_dead`); the record is cleared again once the
trials it asked have their owners (:func:`done_asking`), and recovery clears those of dead processes that no
trial may need (:func:`prune_askers`), so a study does not keep one record per process that ever asked. Trials of other hosts
are left to Optuna's heartbeat (RDB storages, see :mod:`search.storage`), and those that nothing can
vouch for (a journal storage, no heartbeat) to :mod:`search.study.stale`.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import psutil
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.compat import storage_of, study_id, trial_id
from search.errors import StudyError
from search.storage import MAX_RETRY

__all__ = [
    "FINISHED",
    "BudgetReached",
    "INTERRUPTED",
    "INTERRUPTED_ATTR",
    "trial_counts",
    "mark_trial_owner",
    "owner_attrs",
    "owner_dead",
    "Asker",
    "ASKER_CLEARED",
    "mark_asking",
    "done_asking",
    "askers",
    "asker_dead",
    "prune_askers",
    "in_progress",
    "fail_and_requeue",
    "recover_dead_trials",
    "remaining_budget",
    "within_budget",
]

_logger = logging.getLogger(__name__)

#: The states that count towards a budget.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: The system attr in which Optuna keeps an enqueued trial's settings until they are suggested.
FIXED_PARAMS = "fixed_params"


class BudgetReached(optuna.exceptions.OptunaError):
    """Raised by an objective whose trial lies beyond the study's trial budget (see within_budget)."""


#: The user attr of a trial failed because its run was interrupted (Ctrl-C, SIGTERM), set before it is failed
#: (:func:`search.runners.step.requeue_interrupted`); its settings run again as a retry.
INTERRUPTED_ATTR = "interrupted"
#: The key under which :func:`trial_counts` counts those trials apart from ``FAIL`` (``interrupted=True``).
INTERRUPTED = "INTERRUPTED"


def trial_counts(study: optuna.Study, *, interrupted: bool = False) -> dict[str, int]:
    """How many trials of ``study`` are in each state, e.g. ``{"COMPLETE": 12, "PRUNED": 4}``; with ``interrupted``,
    the FAIL trials of an interrupted run (user attr :data:`INTERRUPTED_ATTR`) count as ``INTERRUPTED``, not FAIL."""
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        key = trial.state.name
        if interrupted and trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR):
            key = INTERRUPTED
        counts[key] = counts.get(key, 0) + 1
    return counts


#: Seconds two readings of one process's start time may differ by (a wall clock stepped in between); a
#: re-used pid belongs to a process started after the trial's owner died, seconds after the owner started.
START_TOLERANCE_S = 1.0


def _started_at(pid: int) -> float | None:
    """When the process ``pid`` started, in seconds since the epoch (psutil), or None when it is gone or hidden."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def owner_attrs(number: int) -> dict[str, Any]:
    """The user attrs that say this process runs trial ``number``: ``worker_host``, ``worker_pid``,
    ``worker_trial`` (the trial's own number, so a copy of these attrs carried into a retried trial is
    not mistaken for its owner) and ``worker_started_at`` (the process start time in seconds since the
    epoch, so a re-used pid is not mistaken for it). Version 0.2.0 wrote ``worker_start`` instead (Linux
    clock ticks since boot); :func:`owner_dead` reads both."""
    pid = os.getpid()
    attrs: dict[str, Any] = {"worker_host": socket.gethostname(), "worker_pid": pid, "worker_trial": number}
    started = _started_at(pid)
    if started is not None:
        attrs["worker_started_at"] = round(started, 3)
    return attrs


def mark_trial_owner(trial: optuna.Trial) -> None:
    """Record that this process runs ``trial`` (see :func:`owner_attrs`): the trial step does it as soon as the
    trial is asked, before its settings are sampled, and a Ray worker again when its trainable starts (the Ray
    driver asked the trial). Attrs that already name this process are not written again."""
    attrs = owner_attrs(trial.number)
    recorded = trial.user_attrs
    for key, value in attrs.items():
        if recorded.get(key) != value:
            trial.set_user_attr(key, value)


def owner_dead(trial: FrozenTrial) -> bool:
    """True when ``trial``'s recorded owner ran on this host and is no longer alive.

    Dead: no process has the pid, or it is a zombie (killed, not yet reaped), or a process started at
    another time than ``worker_started_at`` holds the pid now. A trial with no owner of this host (another
    host's, or attrs copied from another trial) is never dead here: the heartbeat settles it. A trial
    recorded by version 0.2.0 (only ``worker_start``) is alive while a process that is not a zombie holds
    its pid.
    """
    attrs = trial.user_attrs
    if attrs.get("worker_host") != socket.gethostname() or attrs.get("worker_trial") != trial.number:
        return False  # another host's trial, or no owner recorded yet: leave it to the heartbeat
    return _process_gone(attrs.get("worker_pid"), attrs.get("worker_started_at"))


def _process_gone(pid: Any, started_at: Any) -> bool:
    """True when the process ``pid`` of this host, started at ``started_at`` (seconds since the epoch; None:
    unknown), is provably gone: no such pid, a zombie, or the pid now held by a process started at another
    time. False for a bad pid, this process, or someone else's live process."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return True
        started = process.create_time()
    except psutil.NoSuchProcess:  # psutil.ZombieProcess included
        return True
    except psutil.AccessDenied:
        return False  # someone else's live process: nothing proves the owner dead
    if isinstance(started_at, (int, float)) and not isinstance(started_at, bool):
        return abs(started_at - started) > START_TOLERANCE_S  # the pid now belongs to someone else
    return False


#: The study system attr prefix under which each process that asks trials records itself (:func:`mark_asking`).
ASKER_PREFIX = "asker:"
#: The value of a cleared asker record (:func:`done_asking`, :func:`prune_askers`). Optuna's storages (RDB,
#: journal, in-memory) can set a study system attr but not delete one, so a record is overwritten with this,
#: which :func:`askers` skips.
ASKER_CLEARED = None
#: Seconds of slack between an asker's clock reading and the trial's start time when matching the two; a
#: wider slack only counts more processes as a trial's possible asker, which can never make a live trial dead.
ASKER_SLACK_S = 1.0


@dataclass(frozen=True)
class Asker:
    """A process that asks trials of a study, as it last recorded itself (:func:`mark_asking`).

    host, pid, started_at: the process (start time in seconds since the epoch, None when unreadable);
    asked_at: when it last began to ask a trial (this host's local time, the clock Optuna stamps a trial's
    ``datetime_start`` with); key: the study system attr that holds the record.
    """

    host: str
    pid: int
    started_at: float | None
    asked_at: _dt.datetime
    key: str = ""


def _own_asker_key() -> tuple[str, str, int, float | None]:
    """This process's asker record key ``asker:<host>:<pid>:<start time>`` (``asker:<host>:<pid>`` when the start
    time cannot be read), with the host, pid and start time. The start time keeps a later process that re-uses
    the pid off a dead one's key, so clearing the dead one's record (:func:`prune_askers`) never clears its."""
    pid = os.getpid()
    host = socket.gethostname()
    started = _started_at(pid)
    started = None if started is None else round(started, 3)
    key = f"{ASKER_PREFIX}{host}:{pid}" + ("" if started is None else f":{started}")
    return key, host, pid, started


def mark_asking(study: optuna.Study) -> None:
    """Record in ``study`` (a system attr ``asker:<host>:<pid>:<start time>``, one per process, overwritten) that
    this process is about to ask a trial; call it right before ``study.ask()``, and :func:`done_asking` once the
    trials asked have their owners recorded.

    Optuna creates a trial (or pops a WAITING one) RUNNING, and only then can its owner be recorded
    (:func:`mark_trial_owner`); a process killed in between leaves a RUNNING trial with no owner. This record,
    made first, names the processes that may have asked such a trial: those whose latest record is no later
    than the trial's start (a process that asked again since has recorded its earlier trial's owner).
    """
    key, host, pid, started = _own_asker_key()
    value = {"host": host, "pid": pid, "started_at": started, "asked_at": _dt.datetime.now().isoformat()}
    storage_of(study).set_study_system_attr(study_id(study), key, value)


def done_asking(study: optuna.Study) -> None:
    """Clear this process's asker record of ``study`` (:data:`ASKER_CLEARED`); call it only once every trial it
    asked since :func:`mark_asking` has its owner recorded (:func:`mark_trial_owner`), as the trial step does
    after its asks. Such a process can have asked no trial that lacks an owner, so no trial needs its record."""
    key, _, _, _ = _own_asker_key()
    storage_of(study).set_study_system_attr(study_id(study), key, ASKER_CLEARED)


def askers(study: optuna.Study) -> list[Asker]:
    """Every process with a live record of asking trials of ``study`` (:func:`mark_asking`); cleared records
    (:data:`ASKER_CLEARED`) and records that do not parse are skipped."""
    found: list[Asker] = []
    attrs = storage_of(study).get_study_system_attrs(study_id(study))
    for key, value in attrs.items():
        if not key.startswith(ASKER_PREFIX) or not isinstance(value, dict):
            continue
        try:
            found.append(Asker(str(value["host"]), int(value["pid"]), value.get("started_at"),
                               _dt.datetime.fromisoformat(value["asked_at"]), key))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def asker_dead(trial: FrozenTrial, recorded: list[Asker]) -> Asker | None:
    """For a RUNNING ``trial`` with no owner recorded: the asker that left it, when every process that may have
    asked it (``recorded`` askers whose latest ask began no later than the trial's start, plus
    :data:`ASKER_SLACK_S`) ran on this host and is gone; else None (an owner recorded, no start time, no such
    asker, or one that is alive or of another host: nothing proves the trial dead)."""
    attrs = trial.user_attrs
    if attrs.get("worker_trial") == trial.number or trial.datetime_start is None:
        return None
    candidates = _possible_askers(trial, recorded)
    here = socket.gethostname()
    if not candidates or any(a.host != here or not _process_gone(a.pid, a.started_at) for a in candidates):
        return None
    return max(candidates, key=lambda a: a.asked_at)


def _possible_askers(trial: FrozenTrial, recorded: list[Asker]) -> list[Asker]:
    """The ``recorded`` askers that may have asked ``trial``: their latest ask began no later than its start
    (plus :data:`ASKER_SLACK_S`); all of them when the trial has no start time."""
    if trial.datetime_start is None:
        return list(recorded)
    start = trial.datetime_start.replace(tzinfo=None) + _dt.timedelta(seconds=ASKER_SLACK_S)
    return [a for a in recorded if a.asked_at.replace(tzinfo=None) <= start]


def _no_owner(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("worker_trial") != trial.number


def prune_askers(study: optuna.Study) -> list[Asker]:
    """Clear (:data:`ASKER_CLEARED`) the asker records of ``study`` whose process ran on this host and is gone,
    unless it may have asked a RUNNING trial that has no owner recorded (then the record is what proves that
    trial dead, :func:`asker_dead`); returns the askers cleared. A record of another host, or of a live process,
    is left alone: its process clears it (:func:`done_asking`)."""
    here = socket.gethostname()
    gone = [a for a in askers(study) if a.host == here and a.key and _process_gone(a.pid, a.started_at)]
    if not gone:
        return []
    # read after the askers were found gone: every trial a gone asker made exists by now
    unowned = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _no_owner(t)]
    needed = {a.key for trial in unowned for a in _possible_askers(trial, gone)}
    cleared = [a for a in gone if a.key not in needed]
    storage = storage_of(study)
    for asker in cleared:
        storage.set_study_system_attr(study_id(study), asker.key, ASKER_CLEARED)
    if cleared:
        _logger.debug("study %s: cleared the asker records of gone pids %s", study.study_name,
                      ", ".join(str(a.pid) for a in cleared))
    return cleared


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial, why: str, *, max_retry: int = MAX_RETRY) -> bool:
    """Set the RUNNING ``trial`` to FAIL and queue its parameters once more; False when it was not RUNNING.

    The retry is a WAITING trial with ``user_attrs={"retry_of": number, "retry_count": n}`` that the next
    optimize runs first, with the trial's parameters, or those it was enqueued with when it died before
    suggesting them (a known point, a retry) -- unless ``trial`` was already the ``max_retry``-th retry of
    its settings, or has neither (it died before sampling: there is nothing to repeat). ``why`` says in words why the
    trial is failed (for the log). Another process that finishes or fails the trial first wins: then
    nothing is changed here and False is returned.
    """
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (UpdateFinishedTrialError, ValueError):
        return False  # another process finished or failed it first
    retry_count = int(trial.user_attrs.get("retry_count", 0)) + 1
    params = dict(trial.params) or dict(trial.system_attrs.get(FIXED_PARAMS) or {})
    if retry_count > max_retry:
        _logger.warning("study %s: trial %d (%s) failed %d times with params %s; not retrying it again",
                        study.study_name, trial.number, why, retry_count, params)
        return True
    if not params:
        _logger.info("study %s: failed trial %d (%s); it had no parameters yet, nothing to re-queue",
                     study.study_name, trial.number, why)
        return True
    study.enqueue_trial(params, user_attrs={"retry_of": trial.number, "retry_count": retry_count},
                        skip_if_exists=False)
    _logger.info("study %s: failed trial %d (%s) and re-queued %s", study.study_name, trial.number, why, params)
    return True


def recover_dead_trials(study: optuna.Study, *, max_retry: int = MAX_RETRY) -> list[int]:
    """Fail the RUNNING trials whose worker died and re-queue their parameters once.

    Trials of other hosts are left to Optuna's heartbeat (:func:`optuna.storages.fail_stale_trials`,
    run here too); a RUNNING trial owned by a dead process of this host, or with no owner and only dead
    askers of this host (:func:`asker_dead`), is set to FAIL now and its params are enqueued (:func:`fail_and_requeue`). COMPLETE and PRUNED trials are never touched.
    Returns the numbers of the trials failed. Trials whose worker is neither provably alive nor
    provably dead are :mod:`search.study.stale`'s.
    """
    running_before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed: list[int] = []
    # the trials before the askers: a trial read here was asked after its asker's record was written, so the
    # record is read below unless it was cleared since -- and then the trial has its owner (checked again)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    recorded = askers(study)
    for trial in running:
        if owner_dead(trial):
            why = f"left running by dead pid {trial.user_attrs.get('worker_pid')}"
        elif (asker := asker_dead(trial, recorded)) is not None and _still_unowned(study, trial):
            why = f"asked by dead pid {asker.pid}, which was killed before it recorded itself as the owner"
        else:
            continue
        if fail_and_requeue(study, trial, why, max_retry=max_retry):
            failed.append(trial.number)
    prune_askers(study)
    stale = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in running_before and t.number not in failed
    }
    if stale:
        _logger.info("study %s: heartbeat failed stale trials %s", study.study_name, sorted(stale))
    return sorted(set(failed) | stale)


def _still_unowned(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether ``trial``, as stored now, is RUNNING with no owner recorded."""
    now = storage_of(study).get_trial(trial_id(trial))
    return now.state == TrialState.RUNNING and _no_owner(now)


def in_progress(trial: FrozenTrial) -> bool:
    """True when ``trial`` is RUNNING and its owner is not known to be dead (:func:`owner_dead`): it holds a
    place in the budget."""
    return trial.state == TrialState.RUNNING and not owner_dead(trial)


def remaining_budget(study: optuna.Study, total_trials: int) -> int:
    """How many more trials to start so that COMPLETE + PRUNED trials reach ``total_trials``.

    FAIL trials do not count (their retries do, once they finish); RUNNING trials of live workers
    count as in progress; RUNNING trials of dead workers of this host do not.
    """
    if isinstance(total_trials, bool) or not isinstance(total_trials, int) or total_trials < 0:
        raise StudyError(f"bad trial budget {total_trials!r}: expected a non-negative integer")
    trials = study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if t.state in FINISHED)
    running = sum(1 for t in trials if in_progress(t))
    return max(0, total_trials - done - running)


def within_budget(trial: optuna.Trial, total_trials: int) -> bool:
    """Whether ``trial`` is one of the first ``total_trials`` of its study (call it at trial start).

    Workers that start a trial at the same moment can together overshoot what
    :func:`remaining_budget` promised. Trial numbers are handed out atomically by the storage, so
    every worker can agree on which trials are surplus: those with at least ``total_trials``
    finished, live running or queued (WAITING) trials before them. An objective that gets False
    should call ``trial.study.stop()`` and raise :class:`BudgetReached` (pass it to
    ``optimize(catch=...)``): the surplus trial ends FAIL without running and is not counted.
    A worker that loops ``while remaining_budget(...) > 0: study.optimize(..., n_trials=1)``
    meets such a trial only in a true race, so a study gets at most ``workers - 1`` of them.
    """
    ahead = 0
    for other in trial.study.get_trials(deepcopy=False):
        if other.number >= trial.number:
            continue
        if other.state in FINISHED or other.state == TrialState.WAITING or in_progress(other):
            ahead += 1
    return ahead < total_trials
