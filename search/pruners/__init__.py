"""The pruners a study can use, by name: ``paired``, ``median``, ``asha``, ``hyperband``, ``none``.

``paired`` is the paired race of :mod:`search.pruners.paired`: it needs each trial's per-query ranks, which
Optuna's pruner interface does not carry, so the objective runs the race itself
(:class:`search.objectives.fusion.FusionObjective`) and the study's Optuna pruner is a NopPruner.

Trials report on a short time axis (a fixed-mode trial's 4 validation stages, a learnable trial's few
epochs), numbered from step 1 (:data:`search.objectives.fusion.Report`), so every pruner here judges from the
first report: ASHA's and Hyperband's first rung is step ``min_resource`` = 1.
"""
from __future__ import annotations

import optuna

from search.errors import StudyError

__all__ = ["PRUNERS", "make_pruner"]

#: The pruner names a study spec and ``--pruner`` accept.
PRUNERS = ("paired", "median", "asha", "hyperband", "none")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The Optuna pruner of ``name``: median, asha (successive halving), hyperband, or none (also for
    ``paired``, whose race the objective runs). StudyError for another name."""
    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner()
    if name == "asha":
        # Trials report few steps (4 stages or a few epochs): rungs start at the first report.
        return pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "hyperband":
        return pruners.HyperbandPruner()
    if name in ("none", "paired"):
        return pruners.NopPruner()
    raise StudyError(f"unknown pruner {name!r}: expected one of {', '.join(PRUNERS)}")
