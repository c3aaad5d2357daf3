"""search.studies: names, specs, storages, and resuming on real Optuna storages with real processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.studies import (
    StudyError,
    StudyName,
    StudySpec,
    create_or_load_study,
    default_storage_url,
    list_studies,
    load_study_spec,
    make_pruner,
    make_sampler,
    merge_overrides,
    open_storage,
    recover_dead_trials,
    remaining_budget,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# names and specs


def test_study_names():
    name = StudyName.parse("FBNELL/fixed")
    assert (name.dataset, name.mode, str(name)) == ("FBNELL", "fixed", "FBNELL/fixed")
    name = StudyName.parse("FB15k237Inductive:v1/learnable")
    assert (name.dataset, name.mode) == ("FB15k237Inductive:v1", "learnable")
    assert StudyName.parse(str(name)) == name
    for bad in ("FBNELL", "FBNELL/fixed/x", "FBNELL/sideways", "/fixed", "FB NELL/fixed", ""):
        with pytest.raises(StudyError, match=repr(bad).replace("/", ".")) as info:
            StudyName.parse(bad)
        assert "\n" not in str(info.value)


def test_example_spec_loads():
    spec = load_study_spec(REPO / "studies" / "FBNELL.yaml")
    assert spec == StudySpec(
        dataset="FBNELL",
        checkpoint="fusion",
        mode="fixed",
        trials=40,
        seed=0,
        sampler="gp",
        pruner="median",
        space={"similarity_enhancer_weight": [0.0, 1.0], "prompt_enhancer_weight": [0.0, 1.0]},
        budget={"stages": 4},
        storage=None,
    )
    assert str(spec.name) == "FBNELL/fixed"


@pytest.mark.parametrize(
    "body, key",
    [
        ("dataset: FBNELL\ncheckpoint: fusion\ntrails: 40\n", "'trails'"),
        ("dataset: FBNELL\ncheckpoint: fusion\ntrials: forty\n", "'trials'"),
        ("dataset: FBNELL\ncheckpoint: fusion\ntrials: true\n", "'trials'"),
        ("dataset: FBNELL\ncheckpoint: fusion\nmode: sideways\n", "'mode'"),
        ("dataset: FBNELL\ncheckpoint: fusion\nsampler: bayes\n", "'sampler'"),
        ("dataset: FBNELL\nmode: fixed\n", "'checkpoint'"),
        ("dataset: FBNELL\ncheckpoint: fusion\nspace:\n  fusion_lr: [0.1]\n", "'space.fusion_lr'"),
        ("dataset: FBNELL\ncheckpoint: fusion\nspace:\n  fusion_lr: [0.1, 0.01]\n", "'space.fusion_lr'"),
        ("dataset: FBNELL\ncheckpoint: fusion\nbudget:\n  epochs: 0\n", "'budget.epochs'"),
        ("dataset: FB NELL\ncheckpoint: fusion\n", "'dataset'"),
    ],
)
def test_spec_errors_name_file_and_key(tmp_path, body, key):
    path = tmp_path / "FBNELL.yaml"
    path.write_text(body)
    with pytest.raises(StudyError) as info:
        load_study_spec(path)
    message = str(info.value)
    assert message.startswith(str(path)) and key in message and "\n" not in message


def test_spec_yaml_and_shape_errors(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: FBNELL\n  checkpoint: [fusion\n")
    with pytest.raises(StudyError, match=rf"^{path}:\d+: not valid YAML"):
        load_study_spec(path)
    path.write_text("- dataset: FBNELL\n")
    with pytest.raises(StudyError, match=rf"^{path}: a study spec must be a mapping"):
        load_study_spec(path)


def test_learnable_spec_and_overrides(tmp_path):
    path = tmp_path / "NELL995.yaml"
    path.write_text(
        "dataset: NELL995\ncheckpoint: fusion\nmode: learnable\npruner: asha\n"
        "space:\n  initial_similarity_weight: [0.01, 0.99]\n  fusion_lr: [1e-4, 1.0e-1]\n  body_lr: frozen\n"
        "budget: {epochs: 2, batches_per_epoch: 50, batch_size: 16, negatives: 64}\n"
    )
    spec = load_study_spec(path)
    assert spec.space == {
        "initial_similarity_weight": [0.01, 0.99],
        "fusion_lr": [1e-4, 0.1],
        "body_lr": "frozen",
    }
    merged = merge_overrides(
        spec, trials=12, mode=None, seed=None, budget={"epochs": 3}, storage="journal:x.log"
    )
    assert (merged.trials, merged.mode, merged.seed, merged.storage) == (12, "learnable", 0, "journal:x.log")
    assert merged.budget == {"epochs": 3, "batches_per_epoch": 50, "batch_size": 16, "negatives": 64}
    assert spec.trials == 40  # the file's spec is not modified
    with pytest.raises(StudyError, match="'mode'"):
        merge_overrides(spec, mode="sideways")
    with pytest.raises(StudyError, match="'trails'"):
        merge_overrides(spec, trails=3)


def test_samplers_and_pruners():
    assert isinstance(make_sampler("tpe", 1), optuna.samplers.TPESampler)
    assert isinstance(make_sampler("random", 1), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("qmc", 1), optuna.samplers.QMCSampler)
    assert isinstance(make_sampler("grid", 1, search_space={"w": [0.2, 0.5]}), optuna.samplers.GridSampler)
    with pytest.raises(StudyError, match="'grid'"):
        make_sampler("grid", 1)
    with pytest.raises(StudyError, match="'bayes'"):
        make_sampler("bayes", 1)
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("asha"), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    with pytest.raises(StudyError, match="'sometimes'"):
        make_pruner("sometimes")


# ---------------------------------------------------------------------------------------------
# storages


def test_storage_urls(tmp_path):
    url = default_storage_url(tmp_path / "studies")
    assert url == f"sqlite:///{tmp_path.resolve()}/studies/are-search.db"
    storage = open_storage(url)
    assert isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval == 15
    assert (tmp_path / "studies" / "are-search.db").is_file()
    assert isinstance(open_storage(f"sqlite:///{tmp_path}/odd.log"), optuna.storages.RDBStorage)
    for bad in ("studies/are-search.db", "redis-ish", "nosuchdb://x/y"):
        with pytest.raises(StudyError, match=repr(bad)):
            open_storage(bad)
    with pytest.raises(StudyError) as info:  # no driver or no server: one line, password hidden
        open_storage("postgresql://are:s3cret@127.0.0.1:1/are")
    assert "127.0.0.1" in str(info.value) and "s3cret" not in str(info.value)


def test_journal_storage_round_trip(tmp_path):
    path = tmp_path / "journal" / "are-search.log"
    storage = open_storage(f"journal:{path}")
    assert isinstance(storage, optuna.storages.JournalStorage)
    study, created = create_or_load_study(
        storage, StudyName("FBNELL", "fixed"), sampler=make_sampler("random", 0)
    )
    assert created
    study.optimize(lambda t: -((t.suggest_float("x", -1, 1) - 0.3) ** 2), n_trials=3)

    again = open_storage(str(path))  # a path ending in .log is a journal too
    loaded, created = create_or_load_study(again, StudyName("FBNELL", "fixed"))
    assert not created
    def summary(s: optuna.Study) -> list:
        return [(t.number, t.params, t.value) for t in s.trials]

    assert summary(loaded) == summary(study)
    assert [s.study_name for s in list_studies(again)] == ["FBNELL/fixed"]
    assert remaining_budget(loaded, 5) == 2


def test_remaining_budget_counts_finished_and_live(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'are-search.db'}")
    study, _ = create_or_load_study(storage, StudyName("FBNELL", "fixed"))
    here, live_pid = socket.gethostname(), os.getppid()
    for state, attrs in [
        (TrialState.COMPLETE, {}),
        (TrialState.COMPLETE, {}),
        (TrialState.PRUNED, {}),
        (TrialState.FAIL, {}),  # does not count
        (TrialState.RUNNING, {"worker_host": here, "worker_pid": live_pid, "worker_trial": 4}),
        (TrialState.RUNNING, {"worker_host": "elsewhere", "worker_pid": 1, "worker_trial": 5}),
    ]:
        value = 0.5 if state == TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(state=state, value=value, user_attrs=attrs))
    assert remaining_budget(study, 8) == 8 - 3 - 2
    assert remaining_budget(study, 3) == 0
    assert recover_dead_trials(study) == []  # a live owner and another host's trial stay RUNNING
    assert [t.state for t in study.trials][4:] == [TrialState.RUNNING, TrialState.RUNNING]
    with pytest.raises(StudyError, match="-1"):
        remaining_budget(study, -1)


# ---------------------------------------------------------------------------------------------
# several processes


def _python(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


WORKER = r"""
import os, sys, time
from pathlib import Path
import optuna
from search.studies import (BudgetReached, StudyName, create_or_load_study, make_sampler, mark_trial_owner,
                            open_storage, remaining_budget, within_budget)

url, total, sync = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.ERROR)
(sync / f"ready-{os.getpid()}").touch()
while not (sync / "go").exists():  # start both workers at the same moment
    time.sleep(0.002)
study, created = create_or_load_study(open_storage(url), StudyName.parse("FBNELL/fixed"),
                                      sampler=make_sampler("tpe", os.getpid()))

def objective(trial):
    mark_trial_owner(trial)
    if not within_budget(trial, total):
        trial.set_user_attr("over_budget", True)
        trial.study.stop()
        raise BudgetReached(f"trial {trial.number} is beyond the budget of {total}")
    x = trial.suggest_float("x", -1.0, 1.0)
    time.sleep(0.01)
    return -(x - 0.3) ** 2

while remaining_budget(study, total) > 0:  # one trial at a time, so the check stays fresh
    study.optimize(objective, n_trials=1, catch=(BudgetReached,))
print("created" if created else "loaded")
"""


def test_two_processes_on_a_fresh_sqlite_file(tmp_path):
    total = 16
    url = default_storage_url(tmp_path / "studies")  # the folder does not exist yet
    sync = tmp_path / "sync"
    sync.mkdir()
    workers = [_python(WORKER, url, str(total), str(sync)) for _ in range(2)]
    try:
        _wait_for(lambda: len(list(sync.glob("ready-*"))) == 2, 60, "both workers to start")
        (sync / "go").touch()
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for w, (out, err) in zip(workers, results):
        assert w.returncode == 0, err[-2000:]
    assert sorted(out.strip() for out, _ in results) == ["created", "loaded"]

    study = optuna.load_study(study_name="FBNELL/fixed", storage=open_storage(url))
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no duplicate number
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == total
    # Both workers can see one trial left and start one each: the later-numbered one is failed
    # before it runs (within_budget) and never counted -- at most workers - 1 such trials.
    surplus = [t for t in trials if t.state != TrialState.COMPLETE]
    assert len(surplus) <= 1
    assert all(t.state == TrialState.FAIL and t.user_attrs["over_budget"] and not t.params for t in surplus)
    assert len({t.user_attrs["worker_pid"] for t in complete}) == 2  # both did work
    assert remaining_budget(study, total) == 0


HUNG = r"""
import sys, time
from pathlib import Path
import optuna
from search.studies import StudyName, create_or_load_study, make_sampler, mark_trial_owner, open_storage

url, hung = sys.argv[1], Path(sys.argv[2])
optuna.logging.set_verbosity(optuna.logging.ERROR)
study, _ = create_or_load_study(open_storage(url), StudyName.parse("FBNELL/fixed"),
                                sampler=make_sampler("random", 0))

def objective(trial):
    mark_trial_owner(trial)
    x = trial.suggest_float("x", -1.0, 1.0)
    if trial.number == 3:
        hung.touch()
        time.sleep(600)  # killed here
    return -(x - 0.3) ** 2

study.optimize(objective, n_trials=5)
"""


def test_recover_trial_of_a_killed_worker(tmp_path):
    url = default_storage_url(tmp_path / "studies")
    hung = tmp_path / "hung"
    child = _python(HUNG, url, str(hung))
    try:
        _wait_for(lambda: hung.exists() or child.poll() is not None, 60, "the child to reach trial 3")
        assert child.poll() is None, child.communicate()[1][-2000:]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()

    study, created = create_or_load_study(open_storage(url), StudyName.parse("FBNELL/fixed"))
    assert not created
    before = study.get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    dead_params = before[3].params
    assert set(dead_params) == {"x"}
    assert remaining_budget(study, 5) == 2  # the dead worker's trial is not in progress

    assert recover_dead_trials(study) == [3]
    assert recover_dead_trials(study) == []  # once only
    after = study.get_trials()
    assert after[:3] == before[:3]  # completed trials untouched
    assert after[3].state == TrialState.FAIL
    assert after[4].state == TrialState.WAITING and after[4].user_attrs["retry_of"] == 3

    seen = []

    def objective(trial):
        seen.append((trial.number, trial.suggest_float("x", -1.0, 1.0), trial.user_attrs.get("retry_of")))
        return 0.0

    study.optimize(objective, n_trials=1)
    assert seen == [(4, dead_params["x"], 3)]  # resume runs the dead trial's settings first
    assert remaining_budget(study, 5) == 1
