"""Gaussian-process Bayesian optimisation that also learns from pruned trials.

Optuna's :class:`~optuna.samplers.GPSampler` fits its GP to COMPLETE trials only. Next to a pruner that
is a trap: a proposal that gets pruned teaches the GP nothing, so the next fit proposes the same point
again, is pruned again, and the study spins in place (on Metafam with fusion.pth it asked for
(1, 1) twenty-six times in a row).

Our trials report on a shared time axis: a fixed-mode trial's step k is the MRR on the same first
queries of one seeded order for every setting (see :mod:`search.objectives.context`), a learnable trial's step k is
the validation MRR after epoch k. The gap between a trial's step-k value and its final value therefore
varies little from one setting to the next, and a pruned trial stopped at step k with value v gets the
estimate ``v + median(final - value at k)`` over the completed trials. The GP sees these estimates as
completed trials; the study keeps them PRUNED, so they are never reported or exported as best.

The GP is most useful in this project's small spaces (two or three parameters, costly trials), where it
needs far fewer trials than TPE to find a corner optimum.
"""
from __future__ import annotations

import statistics
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from search.compat import get_trials

__all__ = ["StagedGPSampler", "estimate_pruned"]


def estimate_pruned(completed: Sequence[FrozenTrial], pruned: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE stand-ins for ``pruned`` trials, valued at their estimated final value.

    A pruned trial whose last step no completed trial reported (or that reported nothing) is left out.
    """
    estimates = []
    for trial in pruned:
        if not trial.intermediate_values:
            continue
        step = max(trial.intermediate_values)
        gaps = [done.value - done.intermediate_values[step] for done in completed
                if done.value is not None and step in done.intermediate_values]
        if not gaps:
            continue
        estimates.append(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=trial.intermediate_values[step] + statistics.median(gaps),
            params=trial.params, distributions=trial.distributions))
    return estimates


class _StudyWithEstimates:
    """A read view of a study whose trial lists also hold the estimates of its pruned trials."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        trials = get_trials(self._study, deepcopy=deepcopy, states=states, use_cache=use_cache)
        if states is not None and TrialState.COMPLETE not in states:
            return trials
        completed = [t for t in trials if t.state == TrialState.COMPLETE]
        pruned = get_trials(self._study, deepcopy=False, states=(TrialState.PRUNED,), use_cache=use_cache)
        return trials + estimate_pruned(completed, pruned)


class StagedGPSampler(optuna.samplers.GPSampler):
    """:class:`optuna.samplers.GPSampler` whose fit also sees pruned trials, at their estimated value.

    Same arguments as GPSampler. Parallel workers are handled by GPSampler itself: running trials enter
    its acquisition as pending points (q-batch log EI), so workers do not all propose one point.
    """

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return super().sample_relative(_StudyWithEstimates(study), trial, search_space)
