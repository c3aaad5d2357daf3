"""are-search: per-dataset Optuna search of how ARE fuses its enhancers.

The study lifecycle as a library (see :mod:`search.api`)::

    import search
    result = search.launch(dataset="FBNELL", checkpoint="fusion", mode="fixed", trials=40,
                           storage="sqlite:///studies/s.db")
    search.resume("FBNELL/fixed", trials=60, storage="sqlite:///studies/s.db")
    search.export("FBNELL/fixed", flags="flags.yaml", storage="sqlite:///studies/s.db")
    search.status(storage="sqlite:///studies/s.db")
    search.report("FBNELL/fixed", storage="sqlite:///studies/s.db")

Importing the package is cheap: the lifecycle (torch, Optuna) loads on first use.
"""
from __future__ import annotations

from typing import Any

from search.version import __version__

__all__ = ["__version__", "launch", "resume", "export", "status", "report"]

_LIFECYCLE = ("launch", "resume", "export", "status", "report")


def __getattr__(name: str) -> Any:
    if name in _LIFECYCLE:
        from search import api

        return getattr(api, name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")
