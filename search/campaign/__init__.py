"""Campaigns: every dataset of a benchmark in one command, one queue of trials, one cross-dataset report.

``search.campaign.launch``, ``resume``, ``status``, ``report`` and ``export`` (see
:mod:`search.campaign.api`); ``are-search campaign ...`` is argparse over them (:mod:`search.cli.campaign`).
What a campaign *is* lives here: ``spec`` (campaign specs), ``allocation`` (the trial budget across studies),
``members`` (which studies make up a campaign). How its trials run is a runner's
(:mod:`search.runners.queue`, :mod:`search.runners.ray_queue`); its cross-dataset report is in
:mod:`search.reports.campaign`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["launch", "resume", "status", "report", "export"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so `import search.campaign` stays cheap (no torch, no Optuna).
    if name in __all__:
        from search.campaign import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
