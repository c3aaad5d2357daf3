"""A sampler wrapper that keeps proposals inside a study's soft bounds (:mod:`search.study.bounds`).

Every trial is suggested from the study's hard distributions; this wrapper hands the inner sampler
the search space narrowed to the current soft range, so the inner sampler (GP, TPE, random, QMC,
CMA-ES) sees one distribution per parameter across the whole study and learns from every earlier
trial, which always lies inside the current range because bounds only grow. The wrapper only reads the
bounds: they grow, and the trial's owner is recorded, in the trial step (:mod:`search.runners.step`),
for every sampler alike.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.study.bounds import read_bounds

__all__ = ["SoftBoundsSampler"]


class SoftBoundsSampler(optuna.samplers.BaseSampler):
    """``inner`` with proposals restricted to the study's current soft bounds (read, never written).

    A study without stored bounds (see :func:`search.study.bounds.ensure_bounds`) is sampled as ``inner``
    alone would.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner

    def _narrow(self, study: optuna.Study, space: dict[str, BaseDistribution]) -> dict[str, BaseDistribution]:
        bounds = read_bounds(study)
        return {name: (bounds[name].restricted() if name in bounds and isinstance(dist, FloatDistribution) else dist)
                for name, dist in space.items()}

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._narrow(study, self.inner.infer_relative_search_space(study, trial))

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        narrowed = self._narrow(study, {param_name: param_distribution})[param_name]
        return self.inner.sample_independent(study, trial, param_name, narrowed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
