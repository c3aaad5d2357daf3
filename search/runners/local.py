"""Run a study with Optuna alone: one worker process per device, all sharing the study's storage.

Each worker builds its SearchContext once and then loops ``study.optimize(n_trials=1)`` while the
study's trial budget is not reached (:func:`search.study.budget.remaining_budget`); a trial that a race put
beyond the budget ends FAIL without running (:func:`search.runners.setup.budgeted`). With
``settings_per_pass: K`` (fixed mode) each step runs up to K trials together instead
(:func:`search.runners.batch.run_batch`), and the stopping rule is checked after each such step. Before the workers start,
the trials left RUNNING by dead workers are failed and their settings re-queued
(:func:`search.study.budget.recover_dead_trials`), so a study stopped by Ctrl-C or ``kill -9`` resumes where it
stopped: completed trials are kept and never re-run.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.queues
import os
from collections.abc import Collection, Sequence

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.study.budget import BudgetReached, recover_dead_trials, remaining_budget
from search.objectives.fusion import FusionObjective
from search.runners.setup import WorkerSetup, budgeted, open_study
from search.runners.batch import run_batch
from search.runners.processes import cpu_threads, run_workers, worker_body
from search.runners.progress import progress_bar
from search.study.spec import StudySpec
from search.study.stopping import StopRule, record_stop, stop_reason, stop_record

__all__ = ["run_local"]

_logger = logging.getLogger(__name__)


def run_local(spec: StudySpec, storage_url: str, setup: WorkerSetup, *, devices: Sequence[str] | None = None,
              n_workers: int | None = None, show_progress: bool | str | None = True) -> optuna.Study:
    """Run the study ``spec`` in ``storage_url`` until it has ``spec.trials`` complete + pruned trials.

    setup: checkpoint, load options, device and encoder of every worker; devices: spread the workers
    over these devices in turn (default: ``setup.device``); n_workers: worker processes (default one
    per device). With one worker it runs in this process. Returns the study.
    """
    devices = [setup.device] if not devices else list(devices)
    n_workers = len(devices) if n_workers is None else n_workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers: expected a positive integer, got {n_workers!r}")
    setup = setup.on(devices[0])
    study, _ = open_study(spec, storage_url, setup.checkpoint_path)
    recover_dead_trials(study)
    if remaining_budget(study, spec.trials) == 0:
        _logger.info("study %s already has its %d trials", spec.name, spec.trials)
        return study
    if n_workers == 1:
        _work(study, spec, setup, show_progress=show_progress)
        return study
    threads = cpu_threads(devices, n_workers)
    level = logging.getLogger().getEffectiveLevel()
    with progress_bar(study, spec, show_progress) as bar:
        run_workers(_worker_main, [(spec, storage_url, setup.on(devices[k % len(devices)]), k, threads, level)
                                   for k in range(n_workers)],
                    name="are-search-worker", refresh=lambda: bar.refresh_from(study), what=f"study {spec.name}")
    return study


def _worker_main(spec: StudySpec, storage_url: str, setup: WorkerSetup, worker: int, threads: int,
                 log_level: int, errors: multiprocessing.queues.SimpleQueue) -> None:
    """Entry point of a spawned worker process (logs like its driver: ``log_level``).

    Bad input (a missing dataset with --offline, a missing extra...) goes back to the driver as one
    line on ``errors`` with its exit code (2 for most); Ctrl-C ends the worker quietly once its trial is re-queued.
    """
    def body() -> None:
        study, _ = open_study(spec, storage_url, setup.checkpoint_path, worker=worker)
        _work(study, spec, setup, show_progress=False)

    worker_body(body, device=setup.device, threads=threads, log_level=log_level, errors=errors)


def _work(study: optuna.Study, spec: StudySpec, setup: WorkerSetup, *, show_progress: bool | str | None) -> None:
    """Run trials of ``study`` in this process until the budget is reached or the study stops early."""
    objective = FusionObjective(spec, setup.context(spec.dataset, spec.seed))
    run = budgeted(objective, spec.trials)
    rule = StopRule.of(spec)
    per_pass = spec.settings_per_pass if spec.mode == "fixed" else 1
    with progress_bar(study, spec, show_progress) as bar:
        while (left := remaining_budget(study, spec.trials)) > 0 and stop_record(study) is None:
            before = study.get_trials(deepcopy=False)
            last = max((t.number for t in before), default=-1)
            waiting = {t.number for t in before if t.state == TrialState.WAITING}  # enqueued: keep their numbers
            try:
                if per_pass > 1:  # several trials, their settings ranked in shared entity passes
                    run_batch(study, objective, spec.trials, min(per_pass, left))
                else:
                    study.optimize(run, n_trials=1, catch=(BudgetReached,), gc_after_trial=False)
            except KeyboardInterrupt:
                _requeue_interrupted(study, last, waiting)
                raise
            bar.refresh_from(study)
            reason = stop_reason(study, rule)
            if reason is not None and stop_record(study) is None:
                record_stop(study, reason)


def _requeue_interrupted(study: optuna.Study, last: int, waiting: Collection[int] = ()) -> None:
    """After Ctrl-C: fail the trials this process had started (any trial after number ``last``, or among
    ``waiting``, the enqueued trials before it started, that is RUNNING unowned or owned by this pid, or
    that Optuna already failed for it) and queue their settings again. Ctrl-C may land before the
    objective starts (during sampling): the trial then has no owner and, unless it was an enqueued one,
    no settings yet; it is failed and the sampler proposes anew."""
    for trial in study.get_trials(deepcopy=False):
        owner = trial.user_attrs.get("worker_pid")
        started_here = trial.number > last or trial.number in waiting
        if not started_here or owner not in (None, os.getpid()) or trial.state not in (TrialState.RUNNING,
                                                                                       TrialState.FAIL):
            continue
        if trial.state == TrialState.RUNNING:
            try:
                study.tell(trial.number, state=TrialState.FAIL)
            except (UpdateFinishedTrialError, ValueError):
                continue  # finished meanwhile
        params = dict(trial.params) or dict(trial.system_attrs.get("fixed_params") or {})
        if params:
            study.enqueue_trial(params, skip_if_exists=False,
                                user_attrs={"retry_of": trial.number,
                                            "retry_count": int(trial.user_attrs.get("retry_count", 0)) + 1})
            _logger.info("study %s: trial %d was interrupted; re-queued %s", study.study_name, trial.number, params)
