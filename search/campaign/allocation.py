"""How a campaign's trial budget is shared among its studies.

With ``trials`` each study gets that many finished trials, as a single ``launch`` would. With
``total_trials`` N over S studies each gets ⌊N/S⌋ and the first N mod S studies (campaign order) one
more; a study that stops early (:mod:`search.study.stopping`) gives back what it did not use: its budget
becomes the trials it finished, and the surplus goes, one trial at a time, to the studies still running,
in campaign order. The allocation is a pure function of the stored state (the campaign spec, each
study's stop record and finished count), so every worker computes the same one with no bookkeeping of
its own and a campaign killed at any moment resumes to the same total.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["StudyProgress", "initial_budgets", "allocate"]


@dataclass(frozen=True)
class StudyProgress:
    """What allocation needs of one study: its name, finished (COMPLETE + PRUNED) trials and whether
    it stopped early."""

    name: str
    finished: int
    stopped: bool


def initial_budgets(spec: Any, names: Sequence[str]) -> dict[str, int]:
    """Study name -> budget before any study stopped: ``spec.trials`` each, or ``spec.total_trials`` split."""
    if spec.total_trials is None:
        return {name: int(spec.trials) for name in names}
    base, extra = divmod(int(spec.total_trials), len(names))
    return {name: base + (1 if k < extra else 0) for k, name in enumerate(names)}


def allocate(spec: Any, progress: Sequence[StudyProgress]) -> dict[str, int]:
    """Study name -> current budget (see the module doc); ``progress`` in campaign order.

    Per-study budgets (``spec.trials``) are not redistributed: each study was asked for that many.
    """
    names = [p.name for p in progress]
    budgets = initial_budgets(spec, names)
    if spec.total_trials is None:
        return budgets
    surplus = 0
    for study in progress:
        if study.stopped and study.finished < budgets[study.name]:
            surplus += budgets[study.name] - study.finished
            budgets[study.name] = study.finished
    takers = [p.name for p in progress if not p.stopped]
    k = 0
    while surplus > 0 and takers:
        budgets[takers[k % len(takers)]] += 1
        surplus -= 1
        k += 1
    return budgets


def total(budgets: Mapping[str, int]) -> int:
    """The campaign's total budget."""
    return sum(budgets.values())
