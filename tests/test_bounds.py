"""search.study.bounds and SoftBoundsSampler: soft ranges grow when the best trial sits on them (the trial step
grows them, for every sampler), every trial of a study shares one distribution, and the samplers keep learning
from the trials of the old range."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.search_space import intersection_search_space

from search.runners.step import run_step
from search.study.bounds import Bound, ensure_bounds, growth_history, read_bounds
from search.samplers import SoftBoundsSampler, make_sampler
from search.study.spaces import SearchSpace

optuna.logging.set_verbosity(optuna.logging.ERROR)
W_SIM, W_PROMPT = "similarity_enhancer_weight", "prompt_enhancer_weight"
KNOWN = [(0.225, 0.775), (0.2, 0.8), (0.0, 0.0)]


def _study(sampler_name: str, space: SearchSpace, peak: tuple[float, float], trials: int) -> optuna.Study:
    """A study of the quadratic -(w_sim - a)^2 - (w_prompt - b)^2 (peak (a, b)), run as are-search runs one:
    one trial step at a time."""
    sampler = make_sampler(sampler_name, 0, search_space=space.grid(), startup_trials=3, deterministic=True)
    study = optuna.create_study(direction="maximize",
                                sampler=sampler if sampler_name == "grid" else SoftBoundsSampler(sampler))
    ensure_bounds(study, space)
    for w_sim, w_prompt in KNOWN:
        study.enqueue_trial({W_SIM: w_sim, W_PROMPT: w_prompt})

    def objective(trial: optuna.Trial) -> float:
        settings = space.suggest(trial, read_bounds(trial.study))
        return -(settings[W_SIM] - peak[0]) ** 2 - (settings[W_PROMPT] - peak[1]) ** 2

    for _ in range(trials):
        run_step(study, objective, trials)
    return study


def test_bound_grows_on_its_side_only_and_never_past_the_cap():
    bound = Bound(0.0, 1.0, 0.0, 4.0)
    grown, moved = bound.grown(0.99)
    assert (grown.low, grown.high) == (0.0, 2.0) and moved == [("high", 1.0, 2.0)]
    assert bound.grown(0.5) == (bound, [])                      # interior: nothing moves
    assert bound.grown(0.0) == (bound, [])                      # on the hard lower bound 0: nothing to grow
    assert Bound(0.0, 4.0, 0.0, 4.0).grown(4.0)[1] == []          # at the cap
    assert Bound(0.0, 3.0, 0.0, 4.0).grown(3.0)[0].high == 4.0    # doubling stops at the cap
    lr = Bound(1e-4, 1e-1, 1e-6, 1.0, log=True)
    assert lr.grown(1e-4)[0].low == pytest.approx(1e-5) and lr.grown(0.09)[0].high == pytest.approx(1.0)


def test_range_grows_when_the_optimum_lies_beyond_the_soft_bound():
    study = _study("gp", SearchSpace("fixed"), peak=(0.0, 2.5), trials=25)
    growth = growth_history(study)
    assert [(g["param"], g["side"], g["from"], g["to"]) for g in growth][:2] == [
        (W_PROMPT, "high", 1.0, 2.0), (W_PROMPT, "high", 2.0, 4.0)]
    assert read_bounds(study)[W_PROMPT].high == 4.0 and read_bounds(study)[W_SIM].high == 1.0
    assert study.best_params[W_PROMPT] == pytest.approx(2.5, abs=0.05)
    # finished trials are never copied: one trial per evaluation, all from one distribution
    assert len(study.trials) == 25
    assert {t.distributions[W_PROMPT] for t in study.trials} == {FloatDistribution(0.0, 4.0)}


def test_range_does_not_grow_for_an_interior_optimum():
    study = _study("gp", SearchSpace("fixed"), peak=(0.3, 0.6), trials=15)
    assert growth_history(study) == []
    assert {name: (b.low, b.high) for name, b in read_bounds(study).items()} == {W_SIM: (0.0, 1.0), W_PROMPT: (0.0, 1.0)}
    assert all(t.params[W_PROMPT] <= 1.0 and t.params[W_SIM] <= 1.0 for t in study.trials)


@pytest.mark.parametrize("sampler", ["gp", "tpe"])
def test_samplers_learn_from_trials_of_the_old_range(sampler):
    study = _study(sampler, SearchSpace("fixed"), peak=(0.0, 2.5), trials=30)
    first_growth = growth_history(study)[0]["trial"]
    old = [t for t in study.trials if t.number < first_growth]
    # every trial, old range and new, is in the search space the inner sampler fits on
    assert set(intersection_search_space(study.get_trials(deepcopy=False))) == {W_SIM, W_PROMPT}
    assert all(t.params[W_PROMPT] <= 1.0 for t in old)
    # and the samples after the growth go where the old trials point: past the first bound
    later = [t.params[W_PROMPT] for t in study.trials if t.number >= first_growth and "known_point" not in t.user_attrs]
    assert sum(value > 1.0 for value in later) > len(later) / 2


def test_legacy_study_keeps_its_distributions():
    """A study made before soft bounds (trials suggested from [0, 1]) keeps [0, 1] as its hard range."""
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={W_SIM: 0.2, W_PROMPT: 1.0}, value=0.5, distributions={
        W_SIM: FloatDistribution(0.0, 1.0), W_PROMPT: FloatDistribution(0.0, 1.0)}))
    bounds = ensure_bounds(study, SearchSpace("fixed"))
    assert bounds[W_PROMPT] == Bound(0.0, 1.0, 0.0, 1.0)
    trial = study.ask()
    SearchSpace("fixed").suggest(trial, read_bounds(study))
    assert trial.distributions[W_PROMPT] == FloatDistribution(0.0, 1.0)


def test_space_caps_follow_the_spec():
    space = SearchSpace("fixed", weight_cap=8.0, soft_high=0.5)
    param = space.params[W_PROMPT]
    assert (param.low, param.high, param.hard_low, param.hard_high) == (0.0, 0.5, 0.0, 8.0)
    lr = SearchSpace("learnable").params["fusion_lr"]
    assert (lr.low, lr.high, lr.hard_low, lr.hard_high, lr.log) == (1e-4, 1e-1, 1e-6, 1.0, True)
    from search.errors import StudyError

    with pytest.raises(StudyError, match="soft_high"):
        SearchSpace("fixed", weight_cap=1.0, soft_high=2.0)


def test_the_sampler_only_reads_the_bounds():
    """SoftBoundsSampler proposes inside the soft range and writes nothing: no owner, no growth."""
    study = optuna.create_study(direction="maximize", sampler=SoftBoundsSampler(make_sampler("random", 0)))
    space = SearchSpace("fixed")
    ensure_bounds(study, space)
    study.add_trial(optuna.trial.create_trial(params={W_SIM: 0.2, W_PROMPT: 1.0}, value=0.5, distributions={
        W_SIM: FloatDistribution(0.0, 4.0), W_PROMPT: FloatDistribution(0.0, 4.0)}))  # the best, on a bound
    attrs = dict(study.user_attrs)
    trial = study.ask()
    settings = space.suggest(trial, read_bounds(study))
    assert settings[W_PROMPT] <= 1.0 and settings[W_SIM] <= 1.0
    assert study.user_attrs == attrs and study.trials[-1].user_attrs == {}


def test_a_grid_study_grows_its_bounds_too():
    """The trial step grows the bounds whatever the sampler: a grid study records the growth (its grid stays)."""
    study = _study("grid", SearchSpace("fixed"), peak=(0.0, 2.5), trials=12)
    growth = growth_history(study)
    assert [(g["param"], g["side"], g["from"], g["to"]) for g in growth][:1] == [(W_PROMPT, "high", 1.0, 2.0)]
    assert all(t.user_attrs["worker_pid"] > 0 for t in study.trials)  # the owner too, as for every sampler
    assert all(t.params[W_PROMPT] <= 1.0 for t in study.trials)  # the grid was built on the first soft range
