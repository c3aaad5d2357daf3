"""Run a study with Optuna alone: one worker process per device, all sharing the study's storage.

Each worker builds its SearchContext once and then takes trial steps (:func:`search.runners.step.run_step`:
one trial, or with ``settings_per_pass: K`` in fixed mode up to K together) while the study's trial budget
is not reached (:func:`search.study.budget.remaining_budget`) and the study has not stopped early. Before the
workers start, the trials left RUNNING by dead workers are failed and their settings re-queued
(:func:`search.study.budget.recover_dead_trials`), so a study stopped by Ctrl-C or ``kill -9`` resumes where it
stopped: completed trials are kept and never re-run.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.queues
from collections.abc import Sequence

import optuna

from search.objectives.fusion import FusionObjective
from search.runners.processes import cpu_threads, run_workers, worker_body
from search.runners.progress import progress_bar
from search.runners.setup import WorkerSetup, open_study
from search.runners.step import run_step
from search.storage import StorageURL
from search.study.budget import recover_dead_trials, remaining_budget
from search.study.spec import StudySpec
from search.study.stopping import StopRule, stop_record

__all__ = ["run_local"]

_logger = logging.getLogger(__name__)


def run_local(spec: StudySpec, storage: StorageURL, setup: WorkerSetup, *, devices: Sequence[str] | None = None,
              n_workers: int | None = None, show_progress: bool | str | None = True) -> optuna.Study:
    """Run the study ``spec`` in ``storage`` until it has ``spec.trials`` complete + pruned trials.

    setup: checkpoint, load options, device and encoder of every worker; devices: spread the workers
    over these devices in turn (default: ``setup.device``); n_workers: worker processes (default one
    per device). With one worker it runs in this process. Returns the study. Raises ValueError for a
    bad ``n_workers``, :class:`search.errors.WorkerError` for bad input met by a worker, and
    KeyboardInterrupt (Ctrl-C, SIGTERM) once the interrupted trials are re-queued.
    """
    devices = [setup.device] if not devices else list(devices)
    n_workers = len(devices) if n_workers is None else n_workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers: expected a positive integer, got {n_workers!r}")
    setup = setup.on(devices[0])
    study, _ = open_study(spec, storage, setup.checkpoint_path)
    recover_dead_trials(study)
    if remaining_budget(study, spec.trials) == 0:
        _logger.info("study %s already has its %d trials", spec.name, spec.trials)
        return study
    if n_workers == 1:
        _work(study, spec, setup, show_progress=show_progress)
        return study
    threads = cpu_threads(devices, n_workers)
    level = logging.getLogger().getEffectiveLevel()
    with progress_bar(study, spec, show_progress, announce_when_running=True) as bar:
        run_workers(_worker_main, [(spec, storage, setup.on(devices[k % len(devices)]), k, threads, level)
                                  for k in range(n_workers)],
                    name="are-search-worker", refresh=lambda: bar.refresh_from(study), what=f"study {spec.name}",
                    after=lambda: recover_dead_trials(study))
    return study


def _worker_main(spec: StudySpec, storage: StorageURL, setup: WorkerSetup, worker: int, threads: int,
                log_level: int, errors: multiprocessing.queues.SimpleQueue) -> None:
    """Entry point of a spawned worker process (logs like its driver: ``log_level``).

    Bad input (a missing dataset with --offline, a missing extra...) goes back to the driver as one
    line on ``errors`` with its exit code (2 for most); Ctrl-C ends the worker quietly once its trial is re-queued.
    """
    def body() -> None:
        study, _ = open_study(spec, storage, setup.checkpoint_path, worker=worker)
        _work(study, spec, setup, show_progress=False)

    worker_body(body, device=setup.device, threads=threads, log_level=log_level, errors=errors)


def _work(study: optuna.Study, spec: StudySpec, setup: WorkerSetup, *, show_progress: bool | str | None) -> None:
    """Take trial steps of ``study`` in this process until the budget is reached or the study stops early.

    Raises what a step raises (see :func:`search.runners.step.run_step`).
    """
    objective = FusionObjective(spec, setup.context(spec.dataset, spec.seed))
    rule = StopRule.of(spec)
    per_pass = spec.settings_per_pass if spec.mode == "fixed" else 1
    with progress_bar(study, spec, show_progress) as bar:
        while (left := remaining_budget(study, spec.trials)) > 0 and stop_record(study) is None:
            run_step(study, objective, spec.trials, size=min(per_pass, left), rule=rule)
            bar.refresh_from(study)
