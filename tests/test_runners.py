"""search.runners: kill -9 and resume, two local workers on one study, Ray Tune on the CPU.

Real processes on fresh SQLite storages, the Metafam validation split and the fusion.pth checkpoint.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.runners import run_local
from search.studies import StudySpec, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
KNOWN = ["checkpoint", "0.2/0.8", "no enhancement"]


def _spec(trials: int, pruner: str = "none") -> StudySpec:
    return StudySpec(dataset="Metafam", checkpoint="fusion", mode="fixed", trials=trials, pruner=pruner)


@pytest.fixture
def paths(data_root, text_root, checkpoint_root, cache_dir):
    return dict(data_root=str(data_root), text_root=str(text_root),
                checkpoint_path=str(checkpoint_root / "fusion.pth"), cache_dir=str(cache_dir))


def _load(url: str, spec: StudySpec) -> optuna.Study:
    return optuna.load_study(study_name=str(spec.name), storage=open_storage(url))


def _params(trial) -> tuple:
    return tuple(sorted(trial.params.items()))


def _assert_sound(study: optuna.Study, total: int) -> list:
    """The budget is met exactly, each setting finished once, each known point once, nothing running."""
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == total
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({_params(t) for t in finished}) == total, "a setting was finished twice"
    # a known point keeps its name through a retry of its dead trial
    names = [t.user_attrs.get("known_point") or trials[t.user_attrs.get("retry_of", t.number)].user_attrs.get("known_point")
             for t in finished]
    assert sorted(n for n in names if n is not None) == sorted(KNOWN)
    for t in finished:
        assert t.user_attrs["settings"]["split"] == "valid" and t.user_attrs["worker_trial"] == t.number
    return finished


def test_kill_nine_mid_trial_then_resume(tmp_path, paths):
    spec, url = _spec(4), f"sqlite:///{tmp_path / 'study.db'}"
    code = ("import torch; torch.set_num_threads(1)\n"
            "from search.runners import run_local\nfrom search.studies import StudySpec\n"
            f"run_local(StudySpec(dataset='Metafam', checkpoint='fusion', trials=4, pruner='none'), {url!r}, "
            f"show_progress=False, **{paths!r})\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    victim = None
    try:
        deadline = time.monotonic() + 240
        while victim is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
            if not (tmp_path / "study.db").exists():
                continue
            try:
                trials = _load(url, spec).get_trials()
            except KeyError:  # the study is not created yet
                continue
            running = [t for t in trials if t.state == TrialState.RUNNING and "settings" in t.user_attrs]
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 2 and running:
                os.kill(worker.pid, signal.SIGKILL)
                victim = running[0]
    finally:
        if worker.poll() is None and victim is None:
            worker.kill()
        _, stderr = worker.communicate()
    assert victim is not None, f"the worker never ran a third trial: {stderr[-2000:]}"
    assert worker.returncode == -signal.SIGKILL

    before = {t.number: t for t in _load(url, spec).get_trials() if t.state in FINISHED}
    study = run_local(spec, url, show_progress=False, **paths)
    finished = _assert_sound(study, 4)
    trials = study.get_trials()
    assert trials[victim.number].state == TrialState.FAIL
    for number, old in before.items():  # kept unchanged, never re-run
        new = trials[number]
        assert (new.state, new.value, new.params, new.datetime_complete) == (old.state, old.value, old.params,
                                                                            old.datetime_complete)
    retries = [t for t in finished if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert run_local(spec, url, show_progress=False, **paths).get_trials() == trials  # budget reached: no-op


def test_two_local_workers_share_one_fresh_study(tmp_path, paths):
    spec, url = _spec(3), f"sqlite:///{tmp_path / 'study.db'}"
    study = run_local(spec, url, n_workers=2, show_progress=False, **paths)
    finished = _assert_sound(study, 3)
    trials = study.get_trials()
    surplus = [t for t in trials if t.state == TrialState.FAIL]
    assert len(surplus) <= 1 and all("settings" not in t.user_attrs for t in surplus)  # raced past the budget
    assert len({t.user_attrs["worker_pid"] for t in finished}) == 2


def test_ray_cpu_two_concurrent_trials_land_in_the_study(tmp_path, paths):
    pytest.importorskip("ray.tune")
    from search.runners import run_ray

    spec, url = _spec(4, pruner="asha"), f"sqlite:///{tmp_path / 'study.db'}"
    study = run_ray(spec, url, cpus_per_trial=1, gpus_per_trial=0, max_concurrent=2, show_progress=False, **paths)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 4 and not [t for t in trials if t.state == TrialState.RUNNING]
    first, second = trials[0], trials[1]
    assert first.datetime_start < second.datetime_complete and second.datetime_start < first.datetime_complete
    assert first.user_attrs["worker_pid"] != second.user_attrs["worker_pid"] != os.getpid()
    by_point = {t.user_attrs.get("known_point"): t for t in trials}
    best = by_point["0.2/0.8"]  # the best setting at every stage: successive halving never stops it
    assert best.state == TrialState.COMPLETE and sorted(best.intermediate_values) == [0, 1, 2, 3]
    assert best.value == best.intermediate_values[3]
    pruned = by_point["no enhancement"]  # far below the others after the first stage
    assert pruned.state == TrialState.PRUNED and len(pruned.intermediate_values) < 4    # stopped before the end
