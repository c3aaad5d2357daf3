"""The one trial step every runner takes: the local workers (:mod:`search.runners.local`), the Ray trainable
(:mod:`search.runners.ray`) and the campaign queue (:mod:`search.runners.queue`, :mod:`search.runners.ray_queue`).

:func:`run_step` asks one trial, or K at once (fixed mode's ``settings_per_pass``: asked one after another,
each one's settings suggested before the next is asked, so the sampler sees the earlier ones running -- the
GP's pending points, TPE's constant liar -- and spreads the K proposals). For each trial, in this order:

1. its owner is recorded (:func:`search.study.budget.mark_trial_owner`) as soon as it is asked (and, before
   it is asked, that this process asks, :func:`search.study.budget.mark_asking`, a record cleared once the
   step's trials have their owners, :func:`search.study.budget.done_asking`): Optuna
   samples a trial's settings at its first suggestion, so a worker killed while its sampler works (a GP
   fit takes seconds) leaves a trial that :func:`search.study.budget.recover_dead_trials` knows is dead;
   heartbeats are sent while it runs (server and SQLite storages);
2. a trial beyond the budget (:func:`search.study.budget.within_budget`: workers that asked at once) is
   told FAIL unrun and ends the step; it does not count;
3. before the sampler proposes (a trial not enqueued with fixed settings) the soft bounds the best complete
   trial sits on grow (:func:`search.study.bounds.grow_bounds`) -- for every sampler, grid included; the
   sampler only reads them (:class:`search.samplers.SoftBoundsSampler`);
4. it is evaluated: one setting (``objective(trial)``), or the K settings together in shared entity
   passes (:meth:`search.objectives.fusion.FusionObjective.fixed_many`); each reports its validation MRR
   after each stage / epoch and is pruned on its own;
5. it is told its outcome (COMPLETE or PRUNED); a trial settled meanwhile by someone else (the Ray
   driver, a heartbeat) is left as that one settled it.

Then the stopping rule is checked and a stop recorded (:mod:`search.study.stopping`).

On Ctrl-C or SIGTERM (both KeyboardInterrupt, see :mod:`search.errors`) the trials this step started are
failed and their settings queued again, once (:func:`requeue_interrupted`); the interrupt propagates. A
lost worker runs no code: its trial is failed and re-queued by whoever notices
(:func:`search.study.budget.fail_and_requeue`: the Ray driver at once, ``resume`` on this host).
Any other error fails the step's running trials and propagates.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.compat import heartbeat_enabled, heartbeat_thread, storage_of, trial_id
from search.study.bounds import grow_bounds
from search.study.budget import (FIXED_PARAMS, INTERRUPTED_ATTR, done_asking, mark_asking, mark_trial_owner,
                                 within_budget)
from search.study.stopping import StopRule, record_stop, stop_reason, stop_record

__all__ = ["StepStart", "run_step", "requeue_interrupted"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepStart:
    """What a study held when a step began: its highest trial number (``last``, -1 for none) and the
    numbers of its WAITING (enqueued) trials. A trial this step started is one of these WAITING trials
    or a later one."""

    last: int
    waiting: frozenset[int]

    @classmethod
    def of(cls, study: optuna.Study) -> "StepStart":
        """The state of ``study`` now."""
        trials = study.get_trials(deepcopy=False)
        return cls(max((t.number for t in trials), default=-1),
                   frozenset(t.number for t in trials if t.state == TrialState.WAITING))

    def may_have_started(self, trial: FrozenTrial) -> bool:
        """Whether a step begun here may have started ``trial``: a new trial, or one enqueued before."""
        return trial.number > self.last or trial.number in self.waiting


def run_step(study: optuna.Study, objective: Any, total_trials: int, *, size: int = 1, rule: StopRule | None = None,
             on_start: Callable[[optuna.Trial], None] | None = None) -> list[FrozenTrial]:
    """Run one step of ``study`` (see the module docstring); returns the trials it started, as stored after it.

    objective: ``objective(trial) -> value`` (raising optuna.TrialPruned to prune), and for ``size`` > 1
    also ``suggest(trial)`` and ``fixed_many([(trial, settings)])`` as
    :class:`~search.objectives.fusion.FusionObjective` has them; total_trials: the study's budget;
    size: trials run together (K); rule: the stopping rule checked after the step (None: not checked);
    on_start: called with each trial once its owner is recorded (the Ray trainable tags it with its Tune
    trial). Raises what the objective raises other than a pruning (its trials failed first), and
    KeyboardInterrupt after :func:`requeue_interrupted`.
    """
    if size < 1:
        raise ValueError(f"size: expected a positive number of trials, got {size!r}")
    start = StepStart.of(study)
    if heartbeat_enabled(storage_of(study)):  # as study.optimize does before each trial
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    asked: list[optuna.Trial] = []
    asking = False
    runnable: list[tuple[optuna.Trial, Any]] = []
    try:
        with contextlib.ExitStack() as beats:  # heartbeats while the trials run, as study.optimize sends them
            for _ in range(size):
                asking = True
                trial = _ask(study)
                asked.append(trial)
                asking = False
                beats.enter_context(heartbeat_thread(trial, storage_of(study)))
                if not _start(study, trial, total_trials, on_start):
                    break
                runnable.append((trial, objective.suggest(trial) if size > 1 else None))
            done_asking(study)  # every trial asked has its owner: this process's asker record is needed no more
            outcomes = _evaluate(objective, runnable, together=size > 1)
        for (trial, _), outcome in zip(runnable, outcomes):
            _tell(study, trial, outcome)
    except KeyboardInterrupt:
        requeue_interrupted(study, start, [t.number for t in asked], asking=asking)
        raise
    except Exception as error:
        _logger.warning("study %s: trial(s) %s failed: %s", study.study_name,
                        ", ".join(str(t.number) for t in asked) or "being asked", error)
        for trial in asked:
            with contextlib.suppress(UpdateFinishedTrialError):
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    if rule is not None:
        reason = stop_reason(study, rule)
        if reason is not None and stop_record(study) is None:
            record_stop(study, reason)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    return [by_number[t.number] for t in asked]


def _ask(study: optuna.Study) -> optuna.Trial:
    """``study.ask()`` without Optuna's warning that heartbeats belong to ``optimize`` (they are sent here),
    after recording that this process asks (:func:`search.study.budget.mark_asking`: a kill before the owner is
    recorded leaves a trial known dead)."""
    mark_asking(study)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
        return study.ask()


def _start(study: optuna.Study, trial: optuna.Trial, total_trials: int,
           on_start: Callable[[optuna.Trial], None] | None) -> bool:
    """The bookkeeping of a trial just asked (steps 1-3 of the module docstring); False for a trial beyond the
    budget, which is told FAIL here."""
    mark_trial_owner(trial)
    if on_start is not None:
        on_start(trial)
    if not within_budget(trial, total_trials):
        _logger.info("study %s: trial %d is beyond the budget of %d trials; not run", study.study_name, trial.number,
                     total_trials)
        study.tell(trial, state=TrialState.FAIL)
        return False
    if not _enqueued(study, trial.number):
        for growth in grow_bounds(study, trial.number):
            _logger.info("study %s: the best trial %d (validation MRR %.4f) sits on the %s bound of %s: "
                         "range grown from %g to %g", study.study_name, growth["best_trial"],
                         growth["best_value"], growth["side"], growth["param"], growth["from"], growth["to"])
    return True


def _enqueued(study: optuna.Study, number: int) -> bool:
    """Whether trial ``number`` was enqueued with its settings (a known point, a warm-start point, a retry):
    the sampler proposes nothing for it."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number == number:
            return bool(trial.system_attrs.get(FIXED_PARAMS))
    return False


def _evaluate(objective: Any, runnable: list[tuple[optuna.Trial, Any]], *,
              together: bool) -> list[float | optuna.TrialPruned]:
    """One outcome per trial: its value, or the optuna.TrialPruned that stopped it. together: the trials'
    settings are suggested already and ranked in shared entity passes."""
    if not runnable:
        return []
    if together:
        return objective.fixed_many(runnable)
    try:
        return [objective(runnable[0][0])]
    except optuna.TrialPruned as pruned:
        return [pruned]


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: float | optuna.TrialPruned) -> None:
    """Tell ``trial`` its outcome, unless another process (the Ray driver, a heartbeat) settled it first."""
    pruned = isinstance(outcome, optuna.TrialPruned)
    try:
        if pruned:
            told = study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            told = study.tell(trial, outcome, skip_if_finished=True)
    except UpdateFinishedTrialError:  # settled between Optuna's check and its write
        told = study.get_trials(deepcopy=False)[trial.number]
    if told.state == TrialState.COMPLETE and not pruned:
        _logger.info("trial %d finished with validation MRR %.4f", trial.number, outcome)
    elif told.state == TrialState.PRUNED and pruned:
        _logger.info("trial %d pruned: %s", trial.number, outcome)
    else:
        _logger.info("study %s: trial %d is %s (settled elsewhere, or its value %r is no number)", study.study_name,
                     trial.number, told.state.name, None if pruned else outcome)


def requeue_interrupted(study: optuna.Study, start: StepStart, asked: Collection[int] = (), *,
                        asking: bool = False) -> list[int]:
    """After Ctrl-C / SIGTERM in a step begun at ``start``: fail the RUNNING trials it started and queue their
    settings again, each once; returns the numbers of the trials failed.

    asked: the numbers of the trials the step holds; asking: the interrupt came while a trial was being
    asked, before the step held it -- then the RUNNING trial with no owner or this process as owner that is
    new since ``start`` or was WAITING then (:meth:`StepStart.may_have_started`) is the step's too. A trial
    interrupted before its settings were suggested is re-queued with the settings it was enqueued with (a
    known point, a retry); one with none is failed only (the sampler proposes anew). A trial failed here carries
    the user attr ``interrupted`` (:data:`search.study.budget.INTERRUPTED_ATTR`), so that ``status`` counts it
    apart from failures. The retry is a WAITING
    trial with user attrs ``retry_of`` (the failed trial) and ``retry_count`` (one more than the failed
    trial's). A trial another process settled meanwhile is left alone: nothing is queued twice.
    """
    mine = set(asked)
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker_pid")
        caught_asking = asking and start.may_have_started(trial) and owner in (None, os.getpid())
        if trial.number not in mine and not caught_asking:
            continue
        try:  # said before it is failed: a finished trial takes no attrs (status counts it apart from failures)
            storage_of(study).set_trial_user_attr(trial_id(trial), INTERRUPTED_ATTR, True)
            study.tell(trial.number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError):
            continue  # finished or failed meanwhile, by another process
        failed.append(trial.number)
        params = dict(trial.params) or dict(trial.system_attrs.get(FIXED_PARAMS) or {})
        if not params:
            _logger.info("study %s: trial %d was interrupted before its settings were chosen", study.study_name,
                         trial.number)
            continue
        study.enqueue_trial(params, skip_if_exists=False,
                            user_attrs={"retry_of": trial.number,
                                        "retry_count": int(trial.user_attrs.get("retry_count", 0)) + 1})
        _logger.info("study %s: trial %d was interrupted; re-queued %s", study.study_name, trial.number, params)
    return failed
