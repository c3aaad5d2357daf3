"""search.runners.step: the one trial step of every runner.

First on small studies of a quadratic (real SQLite files under tmp_path): the owner is recorded before the
sampler proposes, a trial beyond the budget is failed unrun, a trial settled by another process is left as it
is, and an interrupted trial is failed and re-queued exactly once. Then on real data (NELLInductive:v1,
fusion.pth, fixed mode, the CPU): Ctrl-C while a trial is evaluated, and while one is being asked, leaves the
same study behind under the local runner and under the campaign queue -- the interrupted known point failed,
its settings queued once again with the same retry attrs, the other known points untouched, nothing counted.
"""
from __future__ import annotations

import os

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.campaign.spec import campaign_from_values
from search.objectives.context import SearchContext
from search.options import LoadOptions
from search.runners import WorkerSetup, run_local
from search.runners.queue import Job, run_campaign_local
from search.runners.step import StepStart, requeue_interrupted, run_step
from search.samplers import SoftBoundsSampler
from search.storage import StorageURL, open_storage
from search.study.budget import remaining_budget

optuna.logging.set_verbosity(optuna.logging.WARNING)

X = "x"
KEPT = ("known_point", "retry_of", "retry_count")


def _study(tmp_path, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    storage = open_storage(StorageURL.parse(f"sqlite:///{tmp_path / 'q.db'}"))
    return optuna.create_study(study_name="q", storage=storage, direction="maximize",
                               sampler=sampler or optuna.samplers.RandomSampler(seed=0))


def _quadratic(trial: optuna.Trial) -> float:
    return -(trial.suggest_float(X, 0.0, 1.0) - 0.3) ** 2


def _summary(study: optuna.Study) -> list[tuple]:
    """Each trial as the step leaves it: number, state, params, enqueued settings and the attrs of its origin."""
    return [(t.number, t.state.name, t.params, t.system_attrs.get("fixed_params"),
             {key: t.user_attrs[key] for key in KEPT if key in t.user_attrs}) for t in study.get_trials()]


# ------------------------------------------------------------------------------------ small studies
def test_the_owner_is_recorded_before_the_sampler_proposes(tmp_path):
    seen = []

    class Watching(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, distribution):
            seen.append(study.get_trials(deepcopy=False)[trial.number].user_attrs.get("worker_pid"))
            return super().sample_independent(study, trial, name, distribution)

    study = _study(tmp_path, Watching(seed=0))
    (trial,) = run_step(study, _quadratic, 2)
    assert seen == [os.getpid()] and trial.state == TrialState.COMPLETE
    assert trial.user_attrs["worker_trial"] == trial.number == 0


def test_a_trial_beyond_the_budget_is_failed_unrun(tmp_path):
    study = _study(tmp_path)
    study.add_trial(optuna.trial.create_trial(params={X: 0.5}, distributions={X: FloatDistribution(0, 1)}, value=0.1))
    (trial,) = run_step(study, lambda t: pytest.fail("a surplus trial ran"), 1)
    assert trial.state == TrialState.FAIL and trial.params == {}
    assert remaining_budget(study, 1) == 0


def test_a_trial_settled_elsewhere_is_left_as_it_is(tmp_path):
    """The Ray driver tells PRUNED a trial Tune ended; the worker's tell then changes nothing."""
    study = _study(tmp_path)

    def settled_meanwhile(trial: optuna.Trial) -> float:
        value = _quadratic(trial)
        study.tell(trial.number, state=TrialState.PRUNED)
        return value

    (trial,) = run_step(study, settled_meanwhile, 2)
    assert trial.state == TrialState.PRUNED


def test_an_interrupted_enqueued_trial_is_requeued_exactly_once(tmp_path):
    study = _study(tmp_path)
    study.enqueue_trial({X: 0.7}, user_attrs={"known_point": "p"})
    start = StepStart.of(study)

    def interrupted(trial: optuna.Trial) -> float:
        _quadratic(trial)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_step(study, interrupted, 3)
    after = _summary(study)
    assert after == [(0, "FAIL", {X: 0.7}, {X: 0.7}, {"known_point": "p"}),
                     (1, "WAITING", {}, {X: 0.7}, {"retry_of": 0, "retry_count": 1})]
    assert requeue_interrupted(study, start, [0], asking=True) == [] and _summary(study) == after  # once


def test_an_interrupt_while_asking_fails_the_popped_trial_and_keeps_its_settings(tmp_path, monkeypatch):
    """Ctrl-C inside ``study.ask`` (a sampler's hook): the enqueued trial is RUNNING, unowned, not yet held."""
    study = _study(tmp_path, SoftBoundsSampler(optuna.samplers.RandomSampler(seed=0)))
    study.enqueue_trial({X: 0.7})
    study.enqueue_trial({X: 0.1})

    def interrupt(self, study, trial):
        raise KeyboardInterrupt

    monkeypatch.setattr(SoftBoundsSampler, "before_trial", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_step(study, _quadratic, 3)
    assert _summary(study) == [(0, "FAIL", {}, {X: 0.7}, {}), (1, "WAITING", {}, {X: 0.1}, {}),
                               (2, "WAITING", {}, {X: 0.7}, {"retry_of": 0, "retry_count": 1})]


# ------------------------------------------------------------------ real data: local runner == campaign
DATASET = "NELLInductive:v1"
TRIALS = 3


@pytest.fixture
def setup(data_root, text_root, checkpoint_root, cache_dir) -> WorkerSetup:
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True, device="cpu")
    return WorkerSetup(str(checkpoint_root / "fusion.pth"), options, device="cpu")


def _interrupt(where: str, monkeypatch) -> None:
    """Ctrl-C while the first trial -- the enqueued known point "checkpoint" -- is evaluated, or asked."""
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "evaluating":
        monkeypatch.setattr(SearchContext, "evaluate", interrupt)
    else:
        monkeypatch.setattr(SoftBoundsSampler, "before_trial", interrupt)


@pytest.mark.parametrize("where", ["evaluating", "asking"])
def test_local_runner_and_campaign_queue_requeue_an_interrupted_trial_alike(where, tmp_path, setup, monkeypatch):
    campaign = campaign_from_values({"datasets": DATASET, "checkpoint": "fusion", "trials": TRIALS, "pruner": "none"},
                                    "test")
    (spec,) = campaign.study_specs()
    local, queued = (StorageURL.parse(f"sqlite:///{tmp_path / name}") for name in ("local.db", "campaign.db"))
    _interrupt(where, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_local(spec, local, setup, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_campaign_local(Job(campaign, queued, (spec,), setup, {DATASET: 1}), show_progress=None)
    monkeypatch.undo()

    studies = [optuna.load_study(study_name=str(spec.name), storage=open_storage(url, read_only=True))
               for url in (local, queued)]
    by_local, by_campaign = (_summary(study) for study in studies)
    assert by_campaign == by_local
    (failed, first, second, retry) = by_local
    checkpoint = failed[3]
    assert failed == (0, "FAIL", {} if where == "asking" else checkpoint, checkpoint, {"known_point": "checkpoint"})
    assert [first[1], first[4], second[1], second[4]] == ["WAITING", {"known_point": "0.2/0.8"},
                                                           "WAITING", {"known_point": "no enhancement"}]
    assert retry == (3, "WAITING", {}, checkpoint, {"retry_of": 0, "retry_count": 1})
    for study in studies:  # the failed trial holds no place in the budget, and it was re-queued once
        assert remaining_budget(study, TRIALS) == TRIALS

    if where == "evaluating":  # resumed, each path runs its budget: the retry once, the failed trial not again
        run_local(spec, local, setup, show_progress=False)
        run_campaign_local(Job(campaign, queued, (spec,), setup, {DATASET: 1}), show_progress=None)
        for study in studies:
            trials = study.get_trials()
            assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
            assert trials[3].params == trials[0].params and remaining_budget(study, TRIALS) == 0
        assert [t.value for t in studies[0].get_trials()] == [t.value for t in studies[1].get_trials()]
