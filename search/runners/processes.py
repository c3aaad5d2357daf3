"""Worker processes on this host, for a study (:mod:`search.runners.local`) or a campaign
(:mod:`search.runners.queue`): spawn them, wait while a progress display refreshes, and bring bad
input met in a worker back to the driver as the one line it would have been there.

Workers are *spawned*, not forked: each builds its own torch threads and model context. CPU workers
share the host's cores evenly (:func:`cpu_threads`).
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from search.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Terminated, WorkerError, on_sigterm_raise, user_error_types
from search.interrupts import interrupts_held

__all__ = ["STOP_GRACE_S", "cpu_threads", "run_workers", "worker_body"]

_logger = logging.getLogger(__name__)


def cpu_threads(devices: Sequence[str], workers: int) -> int:
    """torch threads per CPU worker when ``workers`` are spread over ``devices`` in turn: the host's
    cores shared evenly by the workers on ``cpu`` (at least 1)."""
    on_cpu = sum(1 for k in range(workers) if devices[k % len(devices)] == "cpu")
    return max(1, (os.cpu_count() or 1) // max(on_cpu, 1))


#: Seconds the workers get, together, to re-queue their trials after Ctrl-C or SIGTERM before they are killed.
STOP_GRACE_S = 60.0


def run_workers(target: Callable[..., None], arguments: Sequence[tuple], *, name: str,
                refresh: Callable[[], None], what: str, after: Callable[[], None] | None = None) -> None:
    """Run ``target(*arguments[k], errors)`` in one spawned process per k and wait for all of them.

    ``refresh`` runs about once a second while any is alive. ``errors`` is a queue on which a worker
    puts ``(one-line message, exit code)`` of bad input (see :func:`worker_body`); the first of them is
    raised here as :class:`search.errors.WorkerError`. A worker that exits otherwise non-zero raises
    RuntimeError naming ``what`` (e.g. "study FBNELL/fixed"). On Ctrl-C (which every worker gets too)
    or SIGTERM (passed on to the workers here) the workers get :data:`STOP_GRACE_S` seconds together to
    re-queue their trials; one still alive then is killed, and the KeyboardInterrupt propagates.

    after: called once every worker has exited, however the run ends (also on Ctrl-C): the caller fails
    and re-queues the trials a worker left RUNNING when it died without its own clean-up (killed, or an
    error inside it) -- :func:`search.study.budget.recover_dead_trials` -- so that no trial of this run
    stays RUNNING under a dead worker.
    """
    spawn = multiprocessing.get_context("spawn")
    errors = spawn.SimpleQueue()
    processes = [spawn.Process(target=target, name=f"{name}-{k}", args=(*args, errors))
                 for k, args in enumerate(arguments)]
    for process in processes:
        process.start()
    try:
        while alive := [process.sentinel for process in processes if process.is_alive()]:
            multiprocessing.connection.wait(alive, timeout=1.0)
            refresh()
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, Terminated):  # Ctrl-C reached every worker; SIGTERM only this process
            for process in processes:
                if process.is_alive():
                    process.terminate()
        _stop(processes, STOP_GRACE_S)
        _after(after)
        for message, _ in _drain(errors):
            _logger.warning("%s: a worker stopping after the interrupt: %s", what, message)
        raise
    _after(after)
    reported = _drain(errors)
    if reported:
        message, code = reported[0]
        raise WorkerError(message, code)
    failed = [f"worker {k} exited with code {process.exitcode}" for k, process in enumerate(processes)
              if process.exitcode != 0]
    if failed:
        raise RuntimeError(f"{what}: " + "; ".join(failed))


def _stop(processes: Sequence[multiprocessing.process.BaseProcess], grace_s: float) -> None:
    """Wait up to ``grace_s`` seconds in all for ``processes`` to exit, then kill those still alive."""
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            _logger.warning("worker %s did not stop within %.0f s of the interrupt: killed", process.name, grace_s)
            process.kill()
            process.join()


def _after(after: Callable[[], None] | None) -> None:
    """Run ``after`` (see :func:`run_workers`) with SIGTERM and Ctrl-C held (:func:`search.interrupts.interrupts_held`),
    so that a second signal cannot cut the clean-up short; a signal that arrives meanwhile is raised once it is
    done."""
    if after is not None:
        with interrupts_held():
            after()


def _drain(errors: multiprocessing.queues.SimpleQueue) -> list[tuple[str, int]]:
    """Everything the workers put on ``errors``, in order."""
    out = []
    while not errors.empty():
        out.append(errors.get())
    return out


def worker_body(body: Callable[[], Any], *, device: str, threads: int, log_level: int,
                errors: multiprocessing.queues.SimpleQueue) -> None:
    """What a spawned worker runs around its ``body``: logging at the driver's ``log_level``, ``threads``
    torch threads on the CPU; Ctrl-C or SIGTERM ends it quietly with EXIT_INTERRUPTED (its trial is re-queued by
    the runner); bad input goes on ``errors`` as one line with its exit code, and it exits with that code."""
    import torch

    from search.logs import configure_logging

    configure_logging(log_level)
    on_sigterm_raise()
    if device == "cpu":
        torch.set_num_threads(threads)
    try:
        body()
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except user_error_types() as error:
        code = getattr(error, "exit_code", EXIT_BAD_INPUT)
        errors.put((" ".join(str(error).split()) or type(error).__name__, code))
        raise SystemExit(code) from None

