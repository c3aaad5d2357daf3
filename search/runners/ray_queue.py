"""A campaign on a Ray cluster: ``max_concurrent`` Ray tasks, each one campaign worker (:func:`work`).

Each task holds ``gpus_per_worker`` GPUs (a fraction shares one) and ``cpus_per_worker`` CPUs, and runs
the same queue as a local worker: it pulls the next trial of the next unfinished study from the shared
storage and keeps its dataset's context warm. The storage stays the single source of truth, so a
campaign run on Ray lands in the same studies as a local one and either can resume the other. A task
lost with its node is run again on another node (``max_retries``); the trial it was running stays
RUNNING until the storage's heartbeat fails it (PostgreSQL) or ``campaign resume --fail-stale`` does.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from search.errors import user_error_types
from search.runners.queue import CampaignProgress, Job, open_studies, work
from search.runners.ray import init_ray
from search.storage import MAX_RETRY

__all__ = ["run_campaign_ray"]

_logger = logging.getLogger(__name__)


def _ray_worker(job: Job, worker: int, threads: int) -> int:
    """One Ray task: campaign worker ``worker`` with ``threads`` torch threads; returns how many steps it took."""
    import torch

    torch.set_num_threads(threads)
    return work(job, worker)


def run_campaign_ray(job: Job, *, gpus_per_worker: float = 0, cpus_per_worker: float = 1, max_concurrent: int = 2,
                     address: str | None = None, show_progress: bool | str | None = None) -> None:
    """Run the campaign with ``max_concurrent`` Ray workers on the cluster at ``address`` (None: start a
    local one). The storage must be reachable from every node (a server database or a shared file). Workers
    get their environment through Ray's runtime environment (:func:`search.runners.ray.init_ray`). Raises
    ValueError for bad resources, UsageError for a cluster that cannot be reached or lacks the CPUs / GPUs
    one worker asks for, a worker's bad input as its own error, KeyboardInterrupt on Ctrl-C."""
    import ray

    if gpus_per_worker < 0 or cpus_per_worker <= 0:
        raise ValueError(f"resources: expected gpus_per_trial >= 0 and cpus_per_trial > 0, "
                         f"got {gpus_per_worker} and {cpus_per_worker}")
    started_here = init_ray(address, cpus_per_worker * max_concurrent, cpus_per_trial=cpus_per_worker,
                            gpus_per_trial=gpus_per_worker)
    try:
        job = replace(job, setup=job.setup.on("cuda" if gpus_per_worker > 0 else "cpu"))
        task = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_retries=MAX_RETRY)(_ray_worker)
        refs = [task.remote(job, k, max(1, int(cpus_per_worker))) for k in range(max_concurrent)]
        pending = list(refs)
        with CampaignProgress(job, open_studies(job), show_progress) as progress:
            while pending:
                _, pending = ray.wait(pending, timeout=1.0)
                progress.refresh()
        try:
            ray.get(refs)
        except ray.exceptions.RayTaskError as error:  # bad input met by a worker: its own error, one line
            cause = getattr(error, "cause", None)
            if isinstance(cause, user_error_types()):
                raise cause from None
            raise
    finally:
        if started_here:
            ray.shutdown()
