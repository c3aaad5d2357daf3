"""Several fixed-mode trials per entity pass: ask K trials, rank their settings together, tell each.

A worker with ``settings_per_pass: K`` (fixed mode) takes up to K trials at once instead of running
``study.optimize(n_trials=1)``: it asks them one after another, suggesting each one's settings before
asking the next, so the sampler sees the earlier ones as running (the GP's pending points, TPE's
constant liar) and spreads the K proposals. The settings not already completed are then ranked together,
stage by stage (:meth:`search.objectives.fusion.FusionObjective.fixed_many`); every trial reports its own MRR
after each stage, is pruned on its own, and is told its own outcome. What ``study.optimize`` does per
trial is done here for each of the K: its owner is recorded, a trial beyond the budget ends FAIL
without running (:func:`search.study.budget.within_budget`), stale trials of other hosts are failed first and
each running trial sends heartbeats (server and SQLite storages). On Ctrl-C the K trials stay RUNNING,
owned by this process, for the caller to fail and re-queue.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import TrialState

from search.compat import heartbeat_enabled, heartbeat_thread, storage_of
from search.study.budget import mark_trial_owner, within_budget
from search.objectives.fusion import FusionObjective
from search.study.settings import TrialSettings

__all__ = ["run_batch"]

_logger = logging.getLogger(__name__)


def run_batch(study: optuna.Study, objective: FusionObjective, total_trials: int, size: int) -> list[int]:
    """Ask up to ``size`` trials of ``study``, run them together and tell each; returns their numbers.

    total_trials: the study's budget (a trial beyond it is failed unrun and ends the batch). An
    exception other than a pruning fails every trial of the batch and propagates; KeyboardInterrupt
    leaves them RUNNING (see the module docstring).
    """
    if heartbeat_enabled(storage_of(study)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    asked: list[tuple[optuna.Trial, TrialSettings]] = []
    try:
        with contextlib.ExitStack() as beats:
            for _ in range(size):
                trial = _ask(study)
                beats.enter_context(heartbeat_thread(trial, storage_of(study)))
                mark_trial_owner(trial)
                if not within_budget(trial, total_trials):
                    _logger.info("study %s: trial %d is beyond the budget of %d trials; not run", study.study_name,
                                 trial.number, total_trials)
                    study.tell(trial, state=TrialState.FAIL)
                    break
                asked.append((trial, objective.suggest(trial)))
            outcomes = objective.fixed_many(asked)
    except Exception:
        for trial, _ in asked:
            with contextlib.suppress(UpdateFinishedTrialError, ValueError):  # failed meanwhile (heartbeat)
                study.tell(trial, state=TrialState.FAIL)
        raise
    for (trial, _), outcome in zip(asked, outcomes):
        if isinstance(outcome, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
            _logger.info("trial %d pruned: %s", trial.number, outcome)
        else:
            study.tell(trial, outcome)
            _logger.info("trial %d finished with validation MRR %.4f", trial.number, outcome)
    return [trial.number for trial, _ in asked]


def _ask(study: optuna.Study) -> optuna.Trial:
    """``study.ask()`` without Optuna's warning that heartbeats belong to ``optimize`` (they are sent here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
        return study.ask()
