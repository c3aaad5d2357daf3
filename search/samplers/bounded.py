"""A sampler wrapper that keeps proposals inside a study's soft bounds and grows them (search.study.bounds).

Every trial is suggested from the study's hard distributions; this wrapper hands the inner sampler
the search space narrowed to the current soft range, so the inner sampler (GP, TPE, random, QMC,
CMA-ES) sees one distribution per parameter across the whole study and learns from every earlier
trial, which always lies inside the current range because bounds only grow. Before each new trial
it grows a soft bound the best complete trial sits on (:func:`search.study.bounds.grow_bounds`). As the
first hook of every trial it also records the trial's owner (:func:`search.study.budget.mark_new_trial_owner`).
"""
from __future__ import annotations

import logging
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.study.bounds import grow_bounds, read_bounds
from search.study.budget import mark_new_trial_owner

__all__ = ["SoftBoundsSampler"]

_logger = logging.getLogger(__name__)


class SoftBoundsSampler(optuna.samplers.BaseSampler):
    """``inner`` with proposals restricted to the study's soft bounds, which grow as the optimum needs.

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
        for growth in grow_bounds(study, trial.number):
            _logger.info("study %s: the best trial %d (validation MRR %.4f) sits on the %s bound of %s: "
                         "range grown from %g to %g", study.study_name, growth["best_trial"],
                         growth["best_value"], growth["side"], growth["param"], growth["from"], growth["to"])
        return self._narrow(study, self.inner.infer_relative_search_space(study, trial))

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        narrowed = self._narrow(study, {param_name: param_distribution})[param_name]
        return self.inner.sample_independent(study, trial, param_name, narrowed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        mark_new_trial_owner(study, trial)  # the trial is RUNNING from now on: say whose it is at once
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
