"""Run a study with Ray Tune: trials spread over the CPUs / GPUs (or fractions of GPUs) of a Ray cluster.

The Optuna study in its storage stays the single source of truth. Ray's OptunaSearch is not used: it
keeps its own sampler and would record a trial stopped early by the scheduler as COMPLETE with a
partial MRR. Instead each Tune trial is a function that, inside its worker, takes exactly one trial step
on the shared storage (:func:`search.runners.step.run_step`: ask, owner, heartbeats, evaluate, tell), reporting
the MRR after each stage / epoch to Tune as well. Pruning is decided by the study's own pruner inside the
worker (``pruner: asha`` is Optuna's asynchronous successive halving, ``median``, ``hyperband``) on the
reports every worker writes to the shared study, so a Ray run and a local run prune alike. Tune runs
FIFO and never stops a running trial: a trial stopped by Tune's scheduler from outside leaves its
function thread mid-evaluation, and Ray then refuses to reuse that worker ("Trainable runner reuse
requires reset_config()"), which lost trials under load. A local run and a Ray run of one study see the
same trials, and a stopped Ray run resumes by running again (never ``Tuner.restore``).

Workers keep their SearchContext warm between trials (``reuse_actors=True``; the context registry of
:mod:`search.objectives.context` lives in the worker process). A Tune trial runs one setting: a spec's
``settings_per_pass`` (several fixed-mode trials per entity pass) applies to local workers only.

Workers get what they need through Ray's runtime environment (:data:`WORKER_ENV` and this package on their
PYTHONPATH, see :func:`init_ray`) and their own arguments; nothing is written into this process's environment.

A lost worker -- its process killed, its node gone -- errors its Tune trial. The driver's callback then
fails the Optuna trial that worker was running (found by its user attr ``tune_trial``, the Tune trial
id, recorded as soon as the trial starts) and queues its parameters again
(:func:`search.study.budget.fail_and_requeue`), and Tune runs the Tune trial again, on any node with room
(``FailureConfig(max_failures=MAX_RETRY)``), where it takes the re-queued parameters first. So a node
lost mid-trial costs that trial's time, not a place in the budget, and no trial is counted twice.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.objectives.fusion import FusionObjective
from search.runners.progress import progress_bar
from search.runners.setup import WorkerSetup, open_study
from search.runners.step import run_step
from search.storage import MAX_RETRY, StorageURL, load_study, open_storage
from search.study.budget import fail_and_requeue, recover_dead_trials, remaining_budget
from search.study.spec import StudySpec
from search.study.stopping import StopRule, stop_record

__all__ = ["METRIC", "STEP", "TRIAL", "TUNE_ATTR", "WORKER_ENV", "CONNECT_TIMEOUT_S", "check_resources", "init_ray",
           "run_ray"]

_logger = logging.getLogger(__name__)

#: The metric and step names every Tune result carries.
METRIC, STEP, TRIAL = "mrr", "step", "optuna_trial"
#: The Optuna trial's user attr naming the Tune trial (its id) that runs it.
TUNE_ATTR = "tune_trial"
#: Environment of every Ray worker, set through Ray's runtime environment (:func:`init_ray`): workers log
#: every line, stay in their working directory, and a reused actor waits for the previous trial's thread to
#: end (it may still be telling the study that the trial was pruned): Ray's default of 2 s makes a loaded
#: worker refuse its next trial.
WORKER_ENV = {"RAY_DEDUP_LOGS": "0", "RAY_CHDIR_TO_TRIAL_DIR": "0", "TUNE_FUNCTION_THREAD_TIMEOUT_S": "120"}
#: Ray's sockets live under its temp dir; AF_UNIX paths are limited to 107 bytes.
_MAX_TEMP_DIR = 40


@dataclass(frozen=True)
class _Job:
    """What every Tune trial of a run gets: the study's spec, its parsed storage, the worker setup, torch
    threads, and the number of trials the study had when the run began (its samplers' seeds)."""

    spec: StudySpec
    storage: StorageURL
    setup: WorkerSetup
    threads: int
    first_sample: int


def _tune_trial(config: dict[str, Any], job: _Job) -> None:
    """One Tune trial: one Optuna trial of the study, run inside this Ray worker."""
    import torch
    from ray import tune

    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def report(trial: optuna.Trial, step: int, value: float, final: bool) -> None:
        trial.report(value, step)
        if final:
            return  # the final value goes to Tune after the study has it (below)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (MRR {value:.4f})")
        tune.report({METRIC: value, STEP: step, TRIAL: trial.number})

    objective = FusionObjective(job.spec, job.setup.context(job.spec.dataset, job.spec.seed), report=report)
    study, _ = open_study(job.spec, job.storage, job.setup.checkpoint_path,
                          worker=job.first_sample + int(config["sample"]))
    if stop_record(study) is not None:  # the study stopped early (search.study.stopping): this sample is not run
        return
    tune_id = tune.get_context().get_trial_id()

    def tag(trial: optuna.Trial) -> None:  # lets the driver find this trial should this worker be lost
        trial.set_user_attr(TUNE_ATTR, tune_id)

    (trial,) = run_step(study, objective, job.spec.trials, rule=StopRule.of(job.spec), on_start=tag)
    if trial.state == TrialState.COMPLETE:
        tune.report({METRIC: trial.value, STEP: objective.steps, TRIAL: trial.number})


def _study_callback(storage: StorageURL, spec: StudySpec, show_progress: bool):
    """A Tune callback on the driver: a trial Tune ended while its Optuna trial is still RUNNING is told
    PRUNED (stopped by the scheduler); one whose worker was lost (an error: Tune retries it, or gives up)
    is failed and its parameters queued again; a tqdm bar follows the study's finished trials."""
    from ray import tune

    class StudyCallback(tune.Callback):
        def __init__(self) -> None:
            self.study = load_study(open_storage(storage), spec.name, where=storage.safe)
            self.bar = progress_bar(self.study, spec, show_progress, announce_when_running=True)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._settle(trial, TrialState.PRUNED)

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._lost(trial, "Tune runs it again")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._lost(trial, f"Tune gave up after {MAX_RETRY} retries")

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            self.bar.close()

        def _settle(self, tune_trial: Any, state: TrialState) -> None:
            number = (tune_trial.last_result or {}).get(TRIAL)
            if number is not None and self.study.get_trials(deepcopy=False)[int(number)].state == TrialState.RUNNING:
                try:
                    self.study.tell(int(number), state=state)
                    _logger.info("study %s: trial %s ended by Tune, marked %s", spec.name, number, state.name)
                except (UpdateFinishedTrialError, ValueError):
                    pass  # the worker told it first
            self.bar.refresh_from(self.study)

        def _lost(self, tune_trial: Any, then: str) -> None:
            """Fail and re-queue the Optuna trials still RUNNING for ``tune_trial``, whose worker errored."""
            number = (tune_trial.last_result or {}).get(TRIAL)
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if trial.user_attrs.get(TUNE_ATTR) == tune_trial.trial_id or trial.number == number:
                    why = (f"its Ray worker, pid {trial.user_attrs.get('worker_pid')} on "
                           f"{trial.user_attrs.get('worker_host')}, was lost with Tune trial {tune_trial.trial_id}")
                    if fail_and_requeue(self.study, trial, why):
                        _logger.warning("study %s: trial %d failed: %s; its settings are queued again and %s",
                                        spec.name, trial.number, why, then)
            self.bar.refresh_from(self.study)

    return StudyCallback()


def _ray_temp_base() -> str:
    """The folder Ray makes its temp dir in by default (``RAY_TMPDIR``, else ``TMPDIR``, else /tmp), asked of Ray."""
    try:
        from ray._common.utils import get_default_system_temp_dir  # Ray >= 2.4x
    except ImportError:
        try:
            from ray._private.utils import get_user_temp_dir as get_default_system_temp_dir  # older Ray
        except ImportError:
            return tempfile.gettempdir()
    return get_default_system_temp_dir()


def _temp_dir() -> str | None:
    """A short Ray temp dir when the default would be too long for Ray's sockets, else None."""
    return None if len(_ray_temp_base()) <= _MAX_TEMP_DIR else f"/tmp/ray-{os.getuid()}"


#: Seconds a connection to ``--address`` may take before the cluster is called unreachable.
CONNECT_TIMEOUT_S = 10.0


def _probe(address: str) -> None:
    """UsageError ``cannot reach the Ray cluster at HOST:PORT: <reason>`` unless a TCP connection to the
    address's host and port opens within :data:`CONNECT_TIMEOUT_S` (``ray.init`` itself retries for minutes).
    ``auto`` and addresses without a numeric port are left to Ray."""
    import socket

    from search.errors import UsageError

    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"cannot reach the Ray cluster at {target}: {reason} (--address)") from None


def check_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """UsageError (one line) when one trial (or campaign worker) asks for more CPUs or GPUs than the whole
    connected Ray cluster has (``--gpus-per-trial 1 but the Ray cluster has 0 GPUs``): Tune would wait for
    them forever. Fractions are compared as they are (0.5 GPU fits a cluster of 1)."""
    import ray

    from search.errors import UsageError

    have = ray.cluster_resources()
    for flag, asked, key in (("--gpus-per-trial", gpus_per_trial, "GPU"), ("--cpus-per-trial", cpus_per_trial, "CPU")):
        total = float(have.get(key, 0.0))
        if asked > total + 1e-9:
            raise UsageError(f"{flag} {asked:g} but the Ray cluster has {total:g} {key}{'' if total == 1 else 's'}")


def init_ray(address: str | None, cpus_needed: float, *, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None) -> bool:
    """Connect to the Ray cluster at ``address``, or start a local one with at least ``cpus_needed`` CPUs,
    unless Ray is already initialised; returns whether this call started it (then the caller shuts it
    down). Workers get :data:`WORKER_ENV` and this package first on their PYTHONPATH (the node's own
    PYTHONPATH after it), through Ray's runtime environment.

    An ``address`` that does not answer within :data:`CONNECT_TIMEOUT_S` is UsageError ``cannot reach the
    Ray cluster at HOST:PORT`` (so is a connection ``ray.init`` gives up on); given ``cpus_per_trial`` /
    ``gpus_per_trial``, a cluster without that much of either is UsageError naming both (:func:`check_resources`),
    and a cluster started here is shut down again first."""
    import ray

    from search.errors import UsageError

    if ray.is_initialized():
        if cpus_per_trial is not None or gpus_per_trial is not None:
            check_resources(cpus_per_trial or 0.0, gpus_per_trial or 0.0)
        return False
    if address is not None:
        _probe(address)
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = f"{package_root}{os.pathsep}${{PYTHONPATH}}"  # Ray expands ${PYTHONPATH} on the node
    init: dict[str, Any] = dict(address=address, include_dashboard=False, log_to_driver=False,
                                ignore_reinit_error=True, logging_level=logging.WARNING,
                                runtime_env={"env_vars": {**WORKER_ENV, "PYTHONPATH": python_path}})
    if address is None:
        init["num_cpus"] = max(os.cpu_count() or 1, math.ceil(cpus_needed))
        temp_dir = _temp_dir()
        if temp_dir is not None:
            init["_temp_dir"] = temp_dir
    try:
        ray.init(**init)
    except (ConnectionError, TimeoutError) as exc:
        reason = (" ".join(str(exc).split()) or type(exc).__name__)[:200]
        raise UsageError(f"cannot reach the Ray cluster at {address}: {reason} (--address)") from None
    if cpus_per_trial is not None or gpus_per_trial is not None:
        try:
            check_resources(cpus_per_trial or 0.0, gpus_per_trial or 0.0)
        except UsageError:
            ray.shutdown()
            raise
    return True


@contextlib.contextmanager
def _tune_console_hidden() -> Iterator[None]:
    """Tune's console output prints an experiment table on stdout even at ``verbose=0`` (only the variable
    RAY_AIR_NEW_OUTPUT=0 would turn it off, and this package writes no environment): stdout goes nowhere
    while the Tuner runs. This package's progress and logs are on stderr; stdout stays the command's result."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def run_ray(spec: StudySpec, storage: StorageURL, setup: WorkerSetup, *, gpus_per_trial: float = 0,
            cpus_per_trial: float = 1, max_concurrent: int = 2, address: str | None = None,
            show_progress: bool = True) -> optuna.Study:
    """Run the study ``spec`` in ``storage`` on Ray Tune until it has ``spec.trials`` finished trials.

    setup: checkpoint, load options and encoder of every trial (its device follows from
    ``gpus_per_trial``); gpus_per_trial: GPUs per trial, fractions allowed (0: CPU); cpus_per_trial:
    CPUs per trial (also its torch threads); max_concurrent: trials at once; address: an existing Ray
    cluster (None: start a local one). The storage must be reachable from every node (a server
    database or a shared file). Returns the study. Raises ValueError for bad resources, UsageError for a cluster
    that cannot be reached or lacks what one trial asks for (:func:`init_ray`), RuntimeError when
    Ray trials failed, KeyboardInterrupt on Ctrl-C.
    """
    if gpus_per_trial < 0 or cpus_per_trial <= 0:
        raise ValueError(f"resources: expected gpus_per_trial >= 0 and cpus_per_trial > 0, "
                         f"got {gpus_per_trial} and {cpus_per_trial}")
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
        raise ValueError(f"max_concurrent: expected a positive integer, got {max_concurrent!r}")
    if spec.settings_per_pass > 1:
        _logger.warning("study %s: a Ray trial runs one setting at a time; settings_per_pass %d applies to local "
                        "workers only (the values are the same)", spec.name, spec.settings_per_pass)
    setup = setup.on("cuda" if gpus_per_trial > 0 else "cpu")
    study, _ = open_study(spec, storage, setup.checkpoint_path)
    recover_dead_trials(study)
    samples = remaining_budget(study, spec.trials)
    if samples == 0:
        _logger.info("study %s already has its %d trials", spec.name, spec.trials)
        return study

    import ray
    from ray import tune

    started_here = init_ray(address, cpus_per_trial * max_concurrent, cpus_per_trial=cpus_per_trial,
                            gpus_per_trial=gpus_per_trial)
    job = _Job(spec, storage, setup, threads=max(1, int(cpus_per_trial)), first_sample=len(study.trials))
    results_dir = tempfile.mkdtemp(prefix="are-tune-")
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_tune_trial, job=job),
                                {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
            param_space={"sample": tune.grid_search(list(range(samples)))},
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=tune.schedulers.FIFOScheduler(),
                                        max_concurrent_trials=max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(name=re.sub(r"[^A-Za-z0-9_.-]", "_", str(spec.name)),
                                      storage_path=results_dir, verbose=0,
                                      callbacks=[_study_callback(storage, spec, show_progress)],
                                      failure_config=tune.FailureConfig(max_failures=MAX_RETRY)),
        )
        with _tune_console_hidden():
            results = tuner.fit()
    finally:
        shutil.rmtree(results_dir, ignore_errors=True)
        if started_here:
            ray.shutdown()
    errors = results.errors
    if errors:
        first = str(errors[0]).strip().splitlines()
        raise RuntimeError(f"study {spec.name}: {len(errors)} Ray trial(s) failed; first: {first[-1] if first else errors[0]!r}")
    return study
