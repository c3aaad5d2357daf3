"""Runners: put a study's trials on workers. The Optuna study in its storage is the single source of truth.

* :func:`run_local` (:mod:`search.runners.local`) -- Optuna alone, one worker process per device.
* :func:`run_ray` (:mod:`search.runners.ray`) -- Ray Tune, trials spread over the GPUs / CPUs of a cluster.
* :mod:`search.runners.queue` and :mod:`search.runners.ray_queue` -- a campaign's one queue of trials over
  many studies, on local processes or Ray tasks.

All of them open a study the same way (:mod:`search.runners.setup`) and run each trial through the one trial
step (:mod:`search.runners.step`). Ray is imported only by the Ray runners; the runners load on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from search.runners.local import run_local
    from search.runners.ray import run_ray
    from search.runners.setup import WorkerSetup

__all__ = ["WorkerSetup", "run_local", "run_ray"]

_WHERE = {"WorkerSetup": "search.runners.setup", "run_local": "search.runners.local", "run_ray": "search.runners.ray"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
