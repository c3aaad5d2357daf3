"""search.runners: kill -9 and resume, two local workers on one study, Ray Tune on the CPU.

Real processes on fresh SQLite storages, the NELLInductive:v1 validation split (828 queries: the smallest
real split that keeps the runs short) and the fusion.pth checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.options import LoadOptions
from search.runners import WorkerSetup, run_local
from search.study.spec import StudySpec, spec_from_values
from search.errors import StorageError
from search.storage import StorageURL, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
KNOWN = ["checkpoint", "0.2/0.8", "no enhancement"]


def _spec(trials: int, pruner: str = "none") -> StudySpec:
    spec = spec_from_values({"dataset": "nellinductive:v1", "checkpoint": "fusion", "mode": "fixed",
                             "trials": trials, "pruner": pruner}, "test")
    assert str(spec.name) == "NELLInductive:v1/fixed"
    return spec


@pytest.fixture
def setup(data_root, text_root, checkpoint_root, cache_dir) -> WorkerSetup:
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True, device="cpu")
    return WorkerSetup(str(checkpoint_root / "fusion.pth"), options, device="cpu")


def _load(url: StorageURL, spec: StudySpec) -> optuna.Study:
    return optuna.load_study(study_name=str(spec.name), storage=open_storage(url, read_only=True))


def _worker_pids(trials: list) -> list[int]:
    """The pid of the worker that ran each trial, checked to be another process than this driver."""
    pids = [t.user_attrs["worker_pid"] for t in trials]
    assert all(isinstance(pid, int) and pid > 0 for pid in pids)
    assert os.getpid() not in pids, f"a trial ran in the driver (pid {os.getpid()}): {pids}"
    return pids


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


KILLED = r"""
import json, sys
import torch
torch.set_num_threads(1)
from search.options import LoadOptions
from search.runners import WorkerSetup, run_local
from search.storage import StorageURL
from search.study.spec import spec_from_values
spec, url, setup = json.loads(sys.argv[1]), StorageURL.parse(sys.argv[2]), json.loads(sys.argv[3])
run_local(spec_from_values(spec, "test"), url,
          WorkerSetup(setup["checkpoint_path"], LoadOptions(**setup["options"]), device="cpu"), show_progress=False)
"""


def test_kill_nine_mid_trial_then_resume(tmp_path, setup):
    spec, url = _spec(3), StorageURL.parse(f"sqlite:///{tmp_path / 'study.db'}")
    as_json = json.dumps({"checkpoint_path": setup.checkpoint_path, "options": setup.options.__dict__})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    worker = subprocess.Popen([sys.executable, "-c", KILLED, json.dumps(spec.to_attr()), url.url, as_json], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
            if not (tmp_path / "study.db").exists():
                continue
            try:
                trials = _load(url, spec).get_trials()
            except (KeyError, StorageError):  # the schema or the study is not created yet
                continue
            running = [t for t in trials if t.state == TrialState.RUNNING and "settings" in t.user_attrs]
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 1 and running:
                os.kill(worker.pid, signal.SIGKILL)
                victim = running[0]
    finally:
        if worker.poll() is None and victim is None:
            worker.kill()
        _, stderr = worker.communicate()
    assert victim is not None, f"the worker never ran a second trial: {stderr[-2000:]}"
    assert worker.returncode == -signal.SIGKILL

    before = {t.number: t for t in _load(url, spec).get_trials() if t.state in FINISHED}
    assert victim.user_attrs["worker_pid"] == worker.pid
    study = run_local(spec, url, setup, show_progress=False)
    finished = _assert_sound(study, 3)
    trials = study.get_trials()
    assert trials[victim.number].state == TrialState.FAIL
    for number, old in before.items():  # kept unchanged, never re-run
        new = trials[number]
        assert (new.state, new.value, new.params, new.datetime_complete) == (old.state, old.value, old.params,
                                                                            old.datetime_complete)
    retries = [t for t in finished if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert run_local(spec, url, setup, show_progress=False).get_trials() == trials  # budget reached: no-op


def test_two_local_workers_share_one_fresh_study(tmp_path, setup):
    spec, url = _spec(3), StorageURL.parse(f"sqlite:///{tmp_path / 'study.db'}")
    study = run_local(spec, url, setup, n_workers=2, show_progress=False)
    finished = _assert_sound(study, 3)
    trials = study.get_trials()
    surplus = [t for t in trials if t.state == TrialState.FAIL]
    assert len(surplus) <= 1 and all("settings" not in t.user_attrs for t in surplus)  # raced past the budget
    pids = _worker_pids(finished)  # spawned workers, not this process
    assert len(set(pids)) == 2, f"one worker ran every trial: {pids}"
    with pytest.raises(ValueError, match="n_workers"):
        run_local(spec, url, setup, n_workers=0, show_progress=False)


def test_ray_cpu_two_concurrent_trials_land_in_the_study(tmp_path, setup):
    pytest.importorskip("ray.tune")
    from search.runners import run_ray

    spec, url = _spec(4, pruner="asha"), StorageURL.parse(f"sqlite:///{tmp_path / 'study.db'}")
    study = run_ray(spec, url, setup, cpus_per_trial=1, gpus_per_trial=0, max_concurrent=2, address=None,
                    show_progress=False)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 4 and not [t for t in trials if t.state == TrialState.RUNNING]
    first, second = trials[0], trials[1]
    assert first.datetime_start < second.datetime_complete and second.datetime_start < first.datetime_complete
    _worker_pids(finished)  # every trial ran in a Ray worker, none in this driver
    first_pid, second_pid = _worker_pids([first, second])
    assert first_pid != second_pid, f"the two concurrent trials ran in one process ({first_pid})"
    by_point = {t.user_attrs.get("known_point"): t for t in trials}
    # ASHA judges the first report (step 1 = one stage); whichever known points it keeps run all 4 stages
    # and end on the whole split, and the trial value is the last stage's MRR
    kept = [t for t in trials if t.state == TrialState.COMPLETE and "repeat_of" not in t.user_attrs]
    assert kept and all(sorted(t.intermediate_values) == [1, 2, 3, 4] and t.value == t.intermediate_values[4]
                        for t in kept)
    pruned = by_point["no enhancement"]  # far below the others (0.3212 at step 1)
    assert pruned.state == TrialState.PRUNED and len(pruned.intermediate_values) < 4    # stopped before the end
