"""search.study.stopping: a converged study stops before its budget and says why; small budgets run in full."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution

import search
from search.study.bounds import BOUNDS_ATTR, Bound, growth_history, pending_growth
from search.options import LoadOptions
from search.study.stopping import StopRule, stop_reason

optuna.logging.set_verbosity(optuna.logging.ERROR)
DIST = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}


def _add(study: optuna.Study, x: float, y: float, value: float, **attrs) -> None:
    study.add_trial(optuna.trial.create_trial(params={"x": x, "y": y}, distributions=DIST, value=value,
                                              user_attrs=attrs))


def test_repeated_proposals_stop_only_after_the_minimum():
    study = optuna.create_study(direction="maximize")
    for k in range(4):
        _add(study, k / 4, 0.5, 0.3 + 0.01 * k)
    for _ in range(3):
        _add(study, 0.75, 0.5, 0.33, repeat_of=3)
    assert stop_reason(study, StopRule(min_complete=20)) is None                  # 7 complete < 20
    reason = stop_reason(study, StopRule(min_complete=5))
    assert reason.startswith("converged") and "trials 4, 5, 6" in reason
    assert stop_reason(study, StopRule(enabled=False, min_complete=5)) is None


def test_regret_bound_stops_a_flat_landscape_but_not_an_open_one():
    flat = optuna.create_study(direction="maximize")
    steep = optuna.create_study(direction="maximize")
    for k in range(24):
        params = (0.618034 * k) % 1.0, k / 24   # a low-discrepancy cover of the square
        _add(flat, params[0], params[1], 0.4 + 1e-5 * math.sin(7 * params[0]))
        _add(steep, params[0], params[1], 0.4 * params[0] + 0.3 * params[1])
    assert "regret bound" in stop_reason(flat, StopRule(min_complete=20, tolerance=0.002))
    assert stop_reason(steep, StopRule(min_complete=20, tolerance=0.002)) is None


def test_no_stop_while_the_best_sits_on_a_soft_bound_that_can_grow():
    """The evidence speaks of the range searched so far: a best on a growable soft bound is no convergence."""
    study = optuna.create_study(direction="maximize")
    for k in range(24):
        params = (0.618034 * k) % 1.0, k / 24
        _add(study, params[0], params[1], 0.4 + 1e-5 * math.sin(7 * params[0]))
    _add(study, 1.0, 0.5, 0.41)                       # the best, on x's soft upper bound
    rule = StopRule(min_complete=20, tolerance=0.002)
    assert "regret bound" in stop_reason(study, rule)  # no bounds stored: nothing can grow
    study.set_user_attr(BOUNDS_ATTR, {"x": Bound(0.0, 1.0, 0.0, 4.0).to_attr(), "y": Bound(0.0, 1.0, 0.0, 4.0).to_attr()})
    assert [(g["param"], g["from"], g["to"]) for g in pending_growth(study)] == [("x", 1.0, 2.0)]
    assert stop_reason(study, rule) is None
    study.set_user_attr(BOUNDS_ATTR, {"x": Bound(0.0, 1.0, 0.0, 1.0).to_attr(), "y": Bound(0.0, 1.0, 0.0, 4.0).to_attr()})
    assert pending_growth(study) == [] and "regret bound" in stop_reason(study, rule)  # x is at its cap


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


def test_a_converged_study_stops_records_why_and_resumes_in_full_with_no_stop(tmp_path, options):
    """A space with both weights pinned can only repeat its one setting: the study stops after the minimum."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = tmp_path / "metafam.yaml"
    spec.write_text("dataset: metafam\ncheckpoint: fusion\ntrials: 12\npruner: none\nstop_min_trials: 3\n"
                    "space:\n  similarity_enhancer_weight: 0.2\n  prompt_enhancer_weight: 0.8\n")
    result = search.launch(spec, storage=url, options=options)
    assert result.stop is not None and result.stop["reason"].startswith("converged")
    assert result.counts == {"COMPLETE": 4} and result.stop["trial"] == 3     # 1 evaluation + 3 repeats
    status = search.status(storage=url).studies[0]
    assert status.stop_reason == result.stop["reason"] and status.budget == 12
    resumed = search.resume("metafam/fixed", no_stop=True, storage=url, options=options)
    assert resumed.stop is None and resumed.counts == {"COMPLETE": 12}
    assert search.status(storage=url).studies[0].stop_reason is None


def test_a_study_whose_best_sits_on_the_soft_bound_grows_before_it_may_stop(tmp_path, options):
    """NELLInductive:v1 with fusion.pth: after the 3 known points and one trial, the best sits on w_prompt = 1 and a
    lax rule (3 complete trials, tolerance 0.01) would stop there; the range grows first instead."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = search.launch(dataset="NELLInductive:v1", checkpoint="fusion", trials=6, pruner="none",
                           stop_min_trials=3, stop_tolerance=0.01, storage=url, options=options)
    study = optuna.load_study(study_name=result.study, storage=url)
    grown = [(g["param"], g["from"], g["to"]) for g in growth_history(study)]
    assert ("prompt_enhancer_weight", 1.0, 2.0) in grown, grown
    assert result.growth == growth_history(study)  # all made by this run
    if result.stop is not None:  # whenever it stopped, no growth was pending then
        assert result.stop["trial"] >= max(g["trial"] for g in growth_history(study))
        assert pending_growth(study) == []
    else:  # a resume with nothing left to run reports no growth of its own
        assert search.resume("NELLInductive:v1/fixed", storage=url, options=options).growth == []
