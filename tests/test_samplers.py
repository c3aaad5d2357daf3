"""search.samplers / search.pruners: GP-based BO that learns from pruned trials instead of proposing them
again, and the configuration of every sampler and pruner a study can name."""
from __future__ import annotations

import importlib.util

import optuna
import pytest
from optuna.trial import TrialState

from search.errors import MissingExtra, StudyError
from search.pruners import PRUNERS, make_pruner
from search.samplers import SAMPLERS, StagedGPSampler, estimate_pruned, make_sampler

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


# ------------------------------------------------------------------------------------------ samplers
def _first_points(sampler: optuna.samplers.BaseSampler, n: int = 3) -> list[tuple[float, float]]:
    """The first ``n`` points ``sampler`` proposes on a fresh study of the fixed-mode space."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: t.suggest_float(X, 0, 1) - t.suggest_float(Y, 0, 1), n_trials=n)
    return [(t.params[X], t.params[Y]) for t in study.trials]


GRID = {X: [0.0, 0.5, 1.0], Y: [0.0, 1.0]}


def _check_gp(make):
    sampler = make("gp", 3, startup_trials=3, deterministic=True)
    assert type(sampler) is StagedGPSampler and isinstance(sampler, optuna.samplers.GPSampler)
    assert (sampler._n_startup_trials, sampler._deterministic) == (3, True)
    assert sampler._warn_independent_sampling is False  # learnable mode's conditional body_lr is intended
    default = make("gp", 3)
    assert (default._n_startup_trials, default._deterministic) == (10, False)
    learnable = make("gp", 3, startup_trials=4, deterministic=False)
    assert (learnable._n_startup_trials, learnable._deterministic) == (4, False)


def _check_tpe(make):
    sampler = make("tpe", 3)
    assert type(sampler) is optuna.samplers.TPESampler
    assert sampler._constant_liar is True  # parallel workers must not all propose one point


def _check_random(make):
    assert type(make("random", 3)) is optuna.samplers.RandomSampler


def _check_qmc(make):
    sampler = make("qmc", 3)
    assert type(sampler) is optuna.samplers.QMCSampler and sampler._seed == 3


def _check_grid(make):
    sampler = make("grid", 3, search_space=GRID)
    assert type(sampler) is optuna.samplers.GridSampler and sampler._search_space == GRID
    assert sorted(_first_points(make("grid", 3, search_space=GRID), 6)) == sorted(
        (x, y) for x in GRID[X] for y in GRID[Y])  # every grid point once
    with pytest.raises(StudyError, match="^sampler 'grid' needs a search space"):
        make("grid", 3)


def _check_cmaes(make):
    if importlib.util.find_spec("cmaes") is None:  # an optional package: refused in one line, by name
        with pytest.raises(MissingExtra, match=r"^sampler 'cmaes' needs the optional extra \[cmaes\]: "
                                               r"pip install 'are-search\[cmaes\]' \(missing module cmaes\)"):
            make("cmaes", 3)
        return
    sampler = make("cmaes", 3)
    assert type(sampler) is optuna.samplers.CmaEsSampler


SAMPLER_CHECKS = {"gp": _check_gp, "tpe": _check_tpe, "random": _check_random, "qmc": _check_qmc,
                  "grid": _check_grid, "cmaes": _check_cmaes}


def test_every_sampler_name_is_checked():
    assert set(SAMPLER_CHECKS) == set(SAMPLERS) and len(SAMPLERS) == len(set(SAMPLERS))


@pytest.mark.parametrize("name", SAMPLERS)
def test_make_sampler_configuration(name):
    SAMPLER_CHECKS[name](make_sampler)


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "cmaes" or importlib.util.find_spec("cmaes")])
def test_make_sampler_is_seeded(name):
    """The same seed proposes the same points (resumed and parallel studies rely on the seed)."""
    kwargs = {"search_space": GRID} if name == "grid" else {}
    first = _first_points(make_sampler(name, 11, **kwargs))
    assert first == _first_points(make_sampler(name, 11, **kwargs))
    if name != "qmc":  # an unscrambled Sobol sequence is the same for every seed after its first point
        assert first != _first_points(make_sampler(name, 12, **kwargs))


def test_unknown_sampler_and_pruner_names():
    with pytest.raises(StudyError, match="^unknown sampler 'bayes': expected one of gp, tpe, random, grid, cmaes, qmc$"):
        make_sampler("bayes", 1)
    with pytest.raises(StudyError, match="^unknown pruner 'sometimes': expected one of paired, median, asha, hyperband, none$"):
        make_pruner("sometimes")


def test_study_sampler_follows_the_spec():
    from search.runners.setup import study_sampler as wrapped
    from search.study.spec import spec_from_values

    def study_sampler(*args):
        sampler = wrapped(*args)
        return getattr(sampler, "inner", sampler)  # a wrapper (soft bounds) around the named sampler

    fixed = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "seed": 5}, "here")
    sampler = study_sampler(fixed, 0)
    assert type(sampler) is StagedGPSampler
    assert (sampler._n_startup_trials, sampler._deterministic) == (3, True)  # 2 searched weights + 1
    pinned = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion",
                               "space": {"prompt_enhancer_weight": 0.8}}, "here")
    assert study_sampler(pinned, 0)._n_startup_trials == 2
    learnable = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable"}, "here")
    sampler = study_sampler(learnable, 0)
    assert (sampler._n_startup_trials, sampler._deterministic) == (4, False)  # fine-tuning is not deterministic
    assert study_sampler(spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "sampler": "tpe"},
                                          "here"), 0)._constant_liar is True
    grid = study_sampler(spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "sampler": "grid"}, "here"), 0)
    assert grid._search_space == {X: [0.0, 0.25, 0.5, 0.75, 1.0], Y: [0.0, 0.25, 0.5, 0.75, 1.0]}

    # seeded from the spec's seed, the worker and the study's size: workers and resumed runs differ
    random_spec = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "sampler": "random", "seed": 5},
                                   "here")
    points = {(worker, size): _first_points(wrapped(random_spec, size, worker), 1)[0]
              for worker, size in ((0, 0), (1, 0), (0, 4))}
    assert points[(0, 0)] == _first_points(make_sampler("random", 5), 1)[0]
    assert points[(1, 0)] == _first_points(make_sampler("random", 5 + 7919), 1)[0]
    assert points[(0, 4)] == _first_points(make_sampler("random", 9), 1)[0]
    assert len(set(points.values())) == 3


# ------------------------------------------------------------------------------------------- pruners
def test_every_pruner_name_is_checked():
    assert set(PRUNERS) == {"paired", "median", "asha", "hyperband", "none"}


@pytest.mark.parametrize("name, cls, config", [
    # every pruner judges from the first report: trials report 4 stages or a few epochs
    ("median", optuna.pruners.MedianPruner,
     {"_percentile": 50.0, "_n_startup_trials": 5, "_n_warmup_steps": 0, "_interval_steps": 1}),
    ("asha", optuna.pruners.SuccessiveHalvingPruner,
     {"_min_resource": 1, "_reduction_factor": 2, "_min_early_stopping_rate": 0}),
    ("hyperband", optuna.pruners.HyperbandPruner,
     {"_min_resource": 1, "_max_resource": "auto", "_reduction_factor": 3}),
    ("none", optuna.pruners.NopPruner, {}),
    ("paired", optuna.pruners.NopPruner, {}),  # the objective runs the race (search.pruners.paired)
])
def test_make_pruner_configuration(name, cls, config):
    assert name in PRUNERS
    pruner = make_pruner(name)
    assert type(pruner) is cls
    assert {key: getattr(pruner, key) for key in config} == config


def _first_pruned_step(pruner: optuna.pruners.BasePruner, earlier: list[float], value: float,
                       steps: int = 4) -> int | None:
    """The step (from 1, as objectives report stages and epochs) at which a trial reporting ``value`` at
    every step is pruned, after trials that reported ``earlier`` values at every step and completed."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for v in earlier:
        trial = study.ask()
        for step in range(1, steps + 1):
            trial.report(v, step)
            assert not trial.should_prune()
        study.tell(trial, v)
    trial = study.ask()
    for step in range(1, steps + 1):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


def test_median_pruner_judges_from_the_first_report():
    assert _first_pruned_step(make_pruner("median"), [0.5] * 5, 0.1) == 1
    assert _first_pruned_step(make_pruner("median"), [0.5] * 4, 0.1) is None  # 5 startup trials first
    assert _first_pruned_step(make_pruner("median"), [0.5] * 5, 0.6) is None
    assert _first_pruned_step(make_pruner("none"), [0.5] * 5, 0.0) is None


def test_asha_judges_from_the_first_report():
    """pruners.py: the first report is judged. Objectives report stage / epoch k as step k from 1, and a
    learnable trial of the default 2 epochs is judged only at step 1 (its last report is final)."""
    assert _first_pruned_step(make_pruner("asha"), [0.5], 0.9) is None
    assert _first_pruned_step(make_pruner("asha"), [0.5], 0.1) == 1


def test_make_sampler_gp():
    sampler = make_sampler("gp", 3, startup_trials=3, deterministic=True)
    assert isinstance(sampler, StagedGPSampler)
