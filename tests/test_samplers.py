"""search.samplers: GP-based BO that learns from pruned trials instead of proposing them again."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from search.samplers import StagedGPSampler, estimate_pruned
from search.studies import make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

X, Y = "similarity_enhancer_weight", "prompt_enhancer_weight"
DISTRIBUTIONS = {X: optuna.distributions.FloatDistribution(0, 1), Y: optuna.distributions.FloatDistribution(0, 1)}


def _trial(state, params, intermediate, value=None):
    return optuna.trial.create_trial(state=state, value=value, params=params, distributions=DISTRIBUTIONS,
                                     intermediate_values=intermediate)


def test_a_pruned_trial_is_estimated_from_the_median_gap_at_its_last_step():
    completed = [_trial(TrialState.COMPLETE, {X: 0.1, Y: 0.9}, {0: 0.30, 1: 0.28}, value=0.26),
                 _trial(TrialState.COMPLETE, {X: 0.5, Y: 0.5}, {0: 0.25, 1: 0.22}, value=0.21),
                 _trial(TrialState.COMPLETE, {X: 0.9, Y: 0.1}, {0: 0.20, 1: 0.19}, value=0.16),
                 _trial(TrialState.COMPLETE, {X: 0.0, Y: 0.0}, {}, value=0.99)]  # a repeat: no steps, no gap
    pruned = [_trial(TrialState.PRUNED, {X: 1.0, Y: 1.0}, {0: 0.18}),
              _trial(TrialState.PRUNED, {X: 0.7, Y: 0.7}, {0: 0.24, 1: 0.20}),
              _trial(TrialState.PRUNED, {X: 0.3, Y: 0.3}, {})]
    estimates = estimate_pruned(completed, pruned)
    # Gaps at step 0: -0.04, -0.04, -0.04 -> median -0.04; at step 1: -0.02, -0.01, -0.03 -> -0.02.
    assert [t.params for t in estimates] == [{X: 1.0, Y: 1.0}, {X: 0.7, Y: 0.7}]
    assert [t.value for t in estimates] == pytest.approx([0.14, 0.18])
    assert all(t.state == TrialState.COMPLETE for t in estimates)
    assert estimate_pruned([], pruned) == []


def _staged_objective(trial: optuna.Trial) -> float:
    """A corner optimum at (0, 1) reported over four growing stages, each a little above the last."""
    x, y = trial.suggest_float(X, 0, 1), trial.suggest_float(Y, 0, 1)
    value = 0.25 + 0.03 * y - 0.08 * x
    for step in range(4):
        trial.report(value + 0.01 * (3 - step), step)
        if step < 3 and trial.should_prune():
            raise optuna.TrialPruned()
    return value


def test_gp_with_a_pruner_keeps_moving_after_a_prune():
    study = optuna.create_study(direction="maximize", sampler=StagedGPSampler(seed=0, n_startup_trials=3,
                                                                              deterministic_objective=True),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    for point in ((0.225, 0.775), (0.2, 0.8), (0.0, 0.0)):
        study.enqueue_trial(dict(zip((X, Y), point)))
    study.optimize(_staged_objective, n_trials=14)
    pruned = [(round(t.params[X], 3), round(t.params[Y], 3)) for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the pruner never acted: the test would not show anything"
    assert len(set(pruned)) == len(pruned), f"a pruned setting was proposed again: {pruned}"
    assert study.best_value == pytest.approx(0.28, abs=2e-3)  # found the (0, 1) corner


def test_make_sampler_gp():
    sampler = make_sampler("gp", 3, startup_trials=3, deterministic=True)
    assert isinstance(sampler, StagedGPSampler)
