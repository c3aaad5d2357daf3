"""search.study.budget: what counts towards a study's budget, whose trial is in progress, dead workers recovered.

Real SQLite studies and real processes: a worker killed with SIGKILL mid-trial, a killed but unreaped
(zombie) worker, a reaped one, a re-used pid, owners recorded by version 0.2.0 (``worker_start``), and
several workers racing for the last trials of one fresh study. Liveness is read through psutil.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from search.study.budget import (
    FINISHED,
    BudgetReached,
    in_progress,
    mark_trial_owner,
    owner_dead,
    recover_dead_trials,
    remaining_budget,
    trial_counts,
    within_budget,
)
from search.errors import StudyError
from search.study.names import StudyName
from search.storage import MAX_RETRY, create_or_load_study, default_storage, list_studies, open_storage

optuna.logging.set_verbosity(optuna.logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
METAFAM = "Metafam:Metafam/fixed"
X = optuna.distributions.FloatDistribution(-1.0, 1.0)


def _python(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill_9_once(child: subprocess.Popen, marker: Path, what: str) -> subprocess.Popen:
    """SIGKILL ``child`` as soon as it has made the file ``marker`` (it must still be alive then); returns it, reaped."""
    try:
        _wait_for(lambda: marker.exists() or child.poll() is not None, 90, what)
        assert child.poll() is None, child.communicate()[1][-2000:]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    return child


def _started_at(pid: int) -> float:
    """The start time (seconds since the epoch) of a live process, as owner_attrs records it."""
    return round(psutil.Process(pid).create_time(), 3)


def _ticks(pid: int) -> int:
    """The start time of a live Linux process in clock ticks since boot (field 22 of /proc/<pid>/stat): the
    ``worker_start`` that version 0.2.0 recorded."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 2:].split()[19])


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    study, created = create_or_load_study(open_storage(tmp_path / "s.db"), StudyName.parse("metafam/fixed"))
    assert created
    return study


def _running(study: optuna.Study, x: float, **owner) -> int:
    """Add a RUNNING trial with param x and owner attrs (worker_trial defaults to its own number)."""
    number = len(study.trials)
    attrs = {"worker_host": socket.gethostname(), "worker_trial": number, **owner}
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, params={"x": x}, distributions={"x": X},
                                              user_attrs={k: v for k, v in attrs.items() if v is not None}))
    return number


def _dead_pid() -> tuple[int, float]:
    """(pid, start time) of a real process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = _started_at(child.pid)
    child.kill()
    child.wait()
    return child.pid, start


# ---------------------------------------------------------------------------------------------
# counting


def test_remaining_budget_counts_finished_and_live(study):
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
    assert trial_counts(study) == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1, "RUNNING": 2}
    assert FINISHED == (TrialState.COMPLETE, TrialState.PRUNED)
    assert remaining_budget(study, 8) == 8 - 3 - 2
    assert remaining_budget(study, 3) == 0 and remaining_budget(study, 0) == 0
    assert recover_dead_trials(study) == []  # a live owner and another host's trial stay RUNNING
    assert [t.state for t in study.trials][4:] == [TrialState.RUNNING, TrialState.RUNNING]
    for bad in (-1, True, 2.5, "8", None):
        with pytest.raises(StudyError, match=rf"^bad trial budget {bad!r}: expected a non-negative integer$"):
            remaining_budget(study, bad)


def test_mark_trial_owner_records_this_process(study):
    trial = study.ask()
    mark_trial_owner(trial)
    attrs = study.trials[trial.number].user_attrs
    assert attrs == {"worker_host": socket.gethostname(), "worker_pid": os.getpid(), "worker_trial": trial.number,
                     "worker_started_at": _started_at(os.getpid())}
    assert remaining_budget(study, 2) == 1  # its own trial is in progress, never dead
    assert recover_dead_trials(study) == []


def test_within_budget_counts_the_trials_ahead(study):
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.2))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))  # not ahead
    study.enqueue_trial({"x": 0.1})  # WAITING: ahead (it will run)
    dead, start = _dead_pid()
    _running(study, 0.4, worker_pid=dead, worker_started_at=start)  # a dead worker's trial: not ahead
    trial = study.ask()  # takes the WAITING trial
    assert trial.number == 3
    mark_trial_owner(trial)
    assert not within_budget(trial, 2)  # COMPLETE + PRUNED already fill a budget of 2
    assert within_budget(trial, 3)
    late = study.ask()  # number 5: the queued trial (now ours, live) is ahead of it too
    assert late.number == 5 and not within_budget(late, 3) and within_budget(late, 4)


# ---------------------------------------------------------------------------------------------
# dead workers


HUNG = r"""
import sys, time
from pathlib import Path
import optuna
from search.study.budget import mark_trial_owner
from search.study.names import StudyName
from search.samplers import make_sampler
from search.storage import create_or_load_study, open_storage

url, hung = sys.argv[1], Path(sys.argv[2])
optuna.logging.set_verbosity(optuna.logging.ERROR)
study, _ = create_or_load_study(open_storage(url), StudyName.parse("Metafam/fixed"),
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
    url = default_storage(tmp_path / "studies").url  # the folder does not exist yet
    hung = tmp_path / "hung"
    child = _kill_9_once(_python(HUNG, url, str(hung)), hung, "the child to reach trial 3")
    assert child.returncode == -signal.SIGKILL

    study, created = create_or_load_study(open_storage(url), StudyName.parse("metafam/fixed"))
    assert not created and study.study_name == METAFAM
    before = study.get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    assert before[3].user_attrs["worker_pid"] == child.pid
    dead_params = before[3].params
    assert set(dead_params) == {"x"}
    assert remaining_budget(study, 5) == 2  # the dead worker's trial is not in progress

    assert recover_dead_trials(study) == [3]
    assert recover_dead_trials(study) == []  # once only
    after = study.get_trials()
    assert after[:3] == before[:3]  # completed trials untouched
    assert after[3].state == TrialState.FAIL
    assert after[4].state == TrialState.WAITING
    assert (after[4].user_attrs["retry_of"], after[4].user_attrs["retry_count"]) == (3, 1)

    seen = []

    def objective(trial):
        seen.append((trial.number, trial.suggest_float("x", -1.0, 1.0), trial.user_attrs.get("retry_of")))
        return 0.0

    study.optimize(objective, n_trials=1)
    assert seen == [(4, dead_params["x"], 3)]  # resume runs the dead trial's settings first
    assert remaining_budget(study, 5) == 1


def test_a_zombie_worker_is_dead(study):
    """Killed but not yet reaped by its parent: the process table still lists it, as a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        number = _running(study, 0.25, worker_pid=child.pid, worker_started_at=_started_at(child.pid))
        assert remaining_budget(study, 1) == 0  # alive: in progress
        assert recover_dead_trials(study) == []
        child.kill()
        _wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, "a zombie")
        assert remaining_budget(study, 1) == 1
        assert recover_dead_trials(study) == [number]
    finally:
        child.kill()
        child.wait()
    assert study.trials[number].state == TrialState.FAIL
    retry = study.trials[number + 1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["fixed_params"] == {"x": 0.25}


def test_a_reused_pid_is_not_mistaken_for_the_owner(study):
    """The owner's pid now belongs to another live process (our parent), started at another time."""
    parent = os.getppid()
    reused = _running(study, 0.5, worker_pid=parent, worker_started_at=_started_at(parent) + 5)
    same = _running(study, 0.6, worker_pid=parent, worker_started_at=_started_at(parent))
    close = _running(study, 0.7, worker_pid=parent, worker_started_at=_started_at(parent) + 0.5)  # a clock step
    assert recover_dead_trials(study) == [reused]
    assert [study.trials[n].state for n in (same, close)] == [TrialState.RUNNING] * 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="0.2.0 recorded worker_start on Linux only")
def test_an_owner_recorded_by_version_0_2_0_is_alive_while_its_pid_is(study):
    """0.2.0 wrote ``worker_start`` (clock ticks) and no ``worker_started_at``: a live, not zombie process with
    the pid vouches for the trial (whatever its start); a gone or zombie one does not."""
    parent = os.getppid()
    live = _running(study, 0.1, worker_pid=parent, worker_start=_ticks(parent))
    other_start = _running(study, 0.2, worker_pid=parent, worker_start=_ticks(parent) + 1)
    dead, _ = _dead_pid()
    gone = _running(study, 0.3, worker_pid=dead, worker_start=12345)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        zombie = _running(study, 0.4, worker_pid=child.pid, worker_start=_ticks(child.pid))
        child.kill()
        _wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, "a zombie")
        trials = study.trials
        assert [owner_dead(trials[n]) for n in (live, other_start, gone, zombie)] == [False, False, True, True]
        assert [in_progress(trials[n]) for n in (live, other_start, gone, zombie)] == [True, True, False, False]
        assert recover_dead_trials(study) == [gone, zombie]
    finally:
        child.kill()
        child.wait()


def test_copied_owner_attrs_and_other_hosts_are_left_to_the_heartbeat(study):
    dead, start = _dead_pid()
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.1))
    copied = _running(study, 0.1, worker_pid=dead, worker_started_at=start, worker_trial=0)  # attrs of trial 0
    other_host = _running(study, 0.2, worker_pid=dead, worker_started_at=start, worker_host="elsewhere")
    no_owner = _running(study, 0.3, worker_host=None, worker_trial=None)
    assert recover_dead_trials(study) == []
    assert [study.trials[n].state for n in (copied, other_host, no_owner)] == [TrialState.RUNNING] * 3
    assert remaining_budget(study, 4) == 0


def test_a_trial_that_died_max_retry_times_is_not_queued_again(study):
    dead, start = _dead_pid()
    last = _running(study, 0.7, worker_pid=dead, worker_started_at=start, retry_count=MAX_RETRY)
    once = _running(study, 0.8, worker_pid=dead, worker_started_at=start, retry_count=MAX_RETRY - 1)
    assert recover_dead_trials(study) == [last, once]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [(t.system_attrs["fixed_params"], t.user_attrs["retry_of"], t.user_attrs["retry_count"]) for t in waiting] == [
        ({"x": 0.8}, once, MAX_RETRY)]
    assert recover_dead_trials(study, max_retry=0) == []  # nothing running any more


# ---------------------------------------------------------------------------------------------
# several workers on one fresh study


WORKER = r"""
import os, sys, time
from pathlib import Path
import optuna
from search.study.budget import BudgetReached, mark_trial_owner, remaining_budget, within_budget
from search.study.names import StudyName
from search.samplers import make_sampler
from search.storage import create_or_load_study, open_storage

url, spelling, total, sync = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
optuna.logging.set_verbosity(optuna.logging.ERROR)
(sync / f"ready-{os.getpid()}").touch()
while not (sync / "go").exists():  # start every worker at the same moment
    time.sleep(0.002)
study, created = create_or_load_study(open_storage(url), StudyName.parse(spelling),
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
print("created" if created else "loaded", study.study_name)
"""


def test_workers_with_three_spellings_share_one_fresh_study_and_its_budget(tmp_path):
    """Concurrent creation on a fresh SQLite file (no folder yet) and a race for the last trials."""
    total = 12
    url = default_storage(tmp_path / "studies").url
    sync = tmp_path / "sync"
    sync.mkdir()
    spellings = ("metafam/fixed", "Metafam/fixed", "Metafam:Metafam/fixed")
    workers = [_python(WORKER, url, spelling, str(total), str(sync)) for spelling in spellings]
    try:
        _wait_for(lambda: len(list(sync.glob("ready-*"))) == len(workers)
                  or any(w.poll() is not None for w in workers), 120, "every worker to start")
        (sync / "go").touch()
        results = [w.communicate(timeout=180) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for w, (_, err) in zip(workers, results):
        assert w.returncode == 0, err[-2000:]
    assert sorted(out.strip() for out, _ in results) == [f"created {METAFAM}"] + [f"loaded {METAFAM}"] * 2

    storage = open_storage(url, read_only=True)
    assert [s.study_name for s in list_studies(storage)] == [METAFAM]  # one study for three spellings
    study = optuna.load_study(study_name=METAFAM, storage=storage)
    assert study.metric_names == ["validation MRR"]
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no duplicate number
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == total
    # Workers can see one trial left and start one each: the later-numbered ones are failed before
    # they run (within_budget) and never counted -- at most workers - 1 such trials.
    surplus = [t for t in trials if t.state != TrialState.COMPLETE]
    assert len(surplus) <= len(workers) - 1
    assert all(t.state == TrialState.FAIL and t.user_attrs["over_budget"] and not t.params for t in surplus)
    assert len({t.user_attrs["worker_pid"] for t in complete}) >= 2  # the work was shared
    assert remaining_budget(study, total) == 0


def test_budget_reached_is_an_optuna_error():
    assert issubclass(BudgetReached, optuna.exceptions.OptunaError)


#: A child that asks a trial with the project's sampler wrapper (whose inner sampler then hangs, as a slow GP
#: fit would) and is killed there: before any setting exists.
SAMPLING = '''
import sys, time, optuna
from search.runners.step import run_step
from search.storage import open_storage

class Hanging(optuna.samplers.RandomSampler):
    def sample_independent(self, study, trial, name, distribution):
        open(sys.argv[2], "w").close()
        time.sleep(600)

study = optuna.create_study(study_name="s", storage=open_storage(sys.argv[1]), direction="maximize",
                            sampler=Hanging())
run_step(study, lambda trial: trial.suggest_float("x", 0.0, 1.0), 1)
'''


def test_a_worker_killed_while_sampling_leaves_a_trial_known_to_be_dead(tmp_path):
    """The trial step records the owner as soon as the trial is asked, before sampling (Optuna samples at the
    first suggest): a worker killed while its sampler works (a GP fit takes seconds) leaves a trial that resume
    fails at once, not an unowned one that holds the budget."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    sampling = tmp_path / "sampling"
    child = _kill_9_once(_python(SAMPLING, url, str(sampling)), sampling, "the child to sample")
    study = optuna.load_study(study_name="s", storage=url)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.RUNNING and trial.params == {}
    assert trial.user_attrs["worker_pid"] == child.pid and trial.user_attrs["worker_trial"] == 0
    assert remaining_budget(study, 1) == 1  # not in progress: its owner is dead
    assert recover_dead_trials(study) == [0]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]  # no settings: nothing to queue again
