"""search.study.stale: RUNNING trials that no live worker vouches for never block a study silently.

Real storages (a journal file, SQLite files) and real processes. Trials "of another host" are written
as such a host's worker writes them (its host name, pid and trial number in the user attrs); a journal
keeps no heartbeat, so nothing can vouch for them.

* On a journal, a trial of another host: ``status`` names it (trial, host, pid, start, age) and
  changes nothing; ``resume --trials 4`` stops with one line naming it and ``--fail-stale``;
  ``resume --trials 4 --fail-stale`` fails it, re-queues its settings, runs them and reaches 4.
* On SQLite, a real second process holding a RUNNING trial: ``resume --fail-stale`` leaves it alone;
  killed with SIGKILL, ``status`` names it (pid gone) and ``resume`` fails, re-queues and completes it.
* The age bound: max(10 x the median finished duration, 10 min); older not provably alive trials are
  failed without the option; a fresh heartbeat of another host vouches for its trial.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from servers import cli, wait_for  # noqa: F401  (fixtures)
from search.errors import StudyError
from search.study.names import StudyName
from search.study.stale import (
    STALE_FACTOR,
    STALE_FLOOR_S,
    blocking_error,
    running_trials,
    settle_stale,
    stale_bound_s,
)
from search.compat import trial_id
from search.study.budget import ASKER_CLEARED, ASKER_PREFIX, askers
from search.storage import create_or_load_study, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
STUDY, CANONICAL = "Metafam/fixed", "Metafam:Metafam/fixed"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LAUNCH = ("launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--mode", "fixed", "--pruner", "none")
FAR = "far-host"
X = optuna.distributions.FloatDistribution(0.0, 1.0)


def _foreign(study: optuna.Study, *, age_s: float, params: dict | None = None,
             distributions: dict | None = None) -> int:
    """Add a RUNNING trial as another host's worker writes it, started ``age_s`` seconds ago; its number."""
    number = len(study.trials)
    trial = optuna.trial.create_trial(state=TrialState.RUNNING, params=params or {"x": 0.5},
                                      distributions=distributions or {"x": X},
                                      user_attrs={"worker_host": FAR, "worker_pid": 4242, "worker_trial": number})
    trial.datetime_start = dt.datetime.now() - dt.timedelta(seconds=age_s)
    study.add_trial(trial)
    return number


def _finished(study: optuna.Study, seconds: list[float]) -> None:
    """Add COMPLETE trials that took these many seconds."""
    for k, duration in enumerate(seconds):
        trial = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.1 * k, params={"x": 0.1 * k},
                                          distributions={"x": X})
        trial.datetime_start = dt.datetime.now() - dt.timedelta(hours=1)
        trial.datetime_complete = trial.datetime_start + dt.timedelta(seconds=duration)
        study.add_trial(trial)


# ---------------------------------------------------------------------------------------------
# the age bound and what vouches for a trial (real SQLite and journal storages, no model)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_age_bound_fails_only_old_unvouched_trials(tmp_path, kind):
    url = tmp_path / ("s.db" if kind == "sqlite" else "s.log")
    study, _ = create_or_load_study(open_storage(url), StudyName.parse(STUDY))
    assert stale_bound_s(study) is None  # no finished trial: no scale
    young = _foreign(study, age_s=3 * 3600)
    check = settle_stale(study)
    assert check.failed == [] and [e.number for e in check.waiting] == [young]  # never failed on age alone
    error = blocking_error(study, 1)
    assert isinstance(error, StudyError) and "\n" not in str(error)
    assert f"trial {young} (host {FAR}, pid 4242, started " in str(error) and "--fail-stale" in str(error)
    assert "no trial has finished yet" in str(error)

    _finished(study, [10.0, 20.0, 30.0])
    assert stale_bound_s(study) == STALE_FLOOR_S  # 10 x 20 s is below the 10 min floor
    fresh = _foreign(study, age_s=STALE_FLOOR_S - 60)
    check = settle_stale(study)
    assert [e.number for e in check.failed] == [young]  # 3 h > 10 min: failed and re-queued
    assert [e.number for e in check.waiting] == [fresh]
    trials = study.get_trials()
    assert trials[young].state == TrialState.FAIL and trials[fresh].state == TrialState.RUNNING
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == young]
    assert retry.state == TrialState.WAITING and retry.user_attrs["retry_count"] == 1

    assert blocking_error(study, 3) is None  # 3 finished: the budget is met, nothing holds it
    check = settle_stale(study, fail_stale=True)
    assert [e.number for e in check.failed] == [fresh] and check.waiting == []
    assert study.get_trials()[fresh].state == TrialState.FAIL

    _finished(study, [300.0, 300.0])  # median of 10, 20, 30, 300, 300 s: 30 s
    assert stale_bound_s(study) == max(STALE_FACTOR * 30.0, STALE_FLOOR_S)
    _finished(study, [600.0] * 4)  # median 300 s: 50 min
    assert stale_bound_s(study) == STALE_FACTOR * 300.0


def test_a_fresh_heartbeat_vouches_for_another_hosts_trial(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    study, _ = create_or_load_study(storage, StudyName.parse(STUDY))
    _finished(study, [1.0])
    beating = _foreign(study, age_s=7200)
    silent = _foreign(study, age_s=7200)
    storage.record_heartbeat(trial_id(study.get_trials()[beating]))  # a live worker elsewhere
    cases = {e.number: e for e in running_trials(study)}
    assert cases[beating].case == "heartbeat" and cases[beating].provably_alive
    assert cases[beating].heartbeat_s is not None and cases[beating].heartbeat_s < 60
    assert cases[silent].case == "unknown" and cases[silent].heartbeat_s is None  # no heartbeat row
    check = settle_stale(study, fail_stale=True)
    assert [e.number for e in check.failed] == [silent]
    assert study.get_trials()[beating].state == TrialState.RUNNING  # never failed, even with --fail-stale
    # read-only, as status sees it: the same answer, and nothing written
    reader = optuna.load_study(study_name=CANONICAL, storage=open_storage(tmp_path / "s.db", read_only=True))
    assert [(e.number, e.case) for e in running_trials(reader)] == [(beating, "heartbeat")]


# ---------------------------------------------------------------------------------------------
# the command line on Metafam


def test_journal_trial_of_another_host_is_named_then_failed_with_the_option(cli, tmp_path):
    log = tmp_path / "s.log"
    done = cli.run(*LAUNCH, "--trials", "3", "--storage", str(log))
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name=CANONICAL, storage=open_storage(log, read_only=True))
    distributions = study.trials[0].distributions
    writer = optuna.load_study(study_name=CANONICAL, storage=open_storage(log))
    number = _foreign(writer, age_s=90, params={name: 0.5 for name in distributions}, distributions=distributions)
    assert number == 3

    before = log.read_bytes()
    status = cli.run("status", "--storage", str(log), inputs=False)
    assert status.returncode == 0, status.stderr
    started = writer.trials[number].datetime_start
    assert re.search(rf"^{re.escape(CANONICAL)}: trial 3 \(host {FAR}, pid 4242, started "
                     rf"{started:%Y-%m-%d %H:%M:%S}, \d+ (min|s)( \d+ s)? ago\) is RUNNING", status.stdout, re.M), status.stdout
    assert "its worker runs on another host (far-host) and the storage keeps no heartbeat of it" in status.stdout
    assert log.read_bytes() == before  # status changed nothing

    held = cli.run("resume", STUDY, "--trials", "4", "--storage", str(log))
    assert held.returncode == 2, held.stderr
    (line,) = [line for line in held.stderr.splitlines() if line.startswith("are-search resume: error:")]
    assert line.startswith(f"are-search resume: error: study {CANONICAL} has 3 of 4 finished trials and is held by trial 3 "
                           f"(host {FAR}, pid 4242, started "), line
    assert "run again with --fail-stale" in line and "once it is 10 min old" in line
    reader = optuna.load_study(study_name=CANONICAL, storage=open_storage(log, read_only=True))
    assert reader.trials[number].state == TrialState.RUNNING

    freed = cli.run("resume", STUDY, "--trials", "4", "--storage", str(log), "--fail-stale")
    assert freed.returncode == 0, freed.stderr
    assert f"failed and re-queued trial 3 (host {FAR}, pid 4242" in freed.stderr
    trials = optuna.load_study(study_name=CANONICAL, storage=open_storage(log, read_only=True)).trials
    assert [t.state for t in trials[:4]] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[number].params
    assert len([t for t in trials if t.state in FINISHED]) == 4
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


HOLD = r"""
import sys
import optuna
from search.study.budget import mark_trial_owner
from search.storage import open_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]),
                          sampler=optuna.samplers.RandomSampler(seed=7))
distributions = study.trials[0].distributions

def objective(trial):
    for name, distribution in distributions.items():
        trial._suggest(name, distribution)
    mark_trial_owner(trial)
    print(trial.number, flush=True)
    sys.stdin.read()  # holds the trial RUNNING until stdin closes or the process is killed
    return 0.0

study.optimize(objective, n_trials=1)
"""


def test_a_live_local_worker_is_never_failed_and_a_killed_one_is(cli, tmp_path):
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    done = cli.run(*LAUNCH, "--trials", "2", "--storage", url)
    assert done.returncode == 0, done.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url, CANONICAL], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        number = int(holder.stdout.readline())
        reader = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True))
        (entry,) = running_trials(reader)
        assert (entry.number, entry.case, entry.host, entry.pid) == (number, "alive", socket.gethostname(), holder.pid)

        status = cli.run("status", "--json", "--storage", url, inputs=False)
        assert '"stale": []' in status.stdout, status.stdout  # a live worker's trial is not named
        resumed = cli.run("resume", STUDY, "--trials", "3", "--storage", url, "--fail-stale")
        assert resumed.returncode == 0, resumed.stderr  # nothing to run: the live trial is the third
        assert "(2 complete, 1 running;" in resumed.stdout, resumed.stdout
        assert holder.poll() is None
        trials = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True)).trials
        assert trials[number].state == TrialState.RUNNING and len(trials) == 3

        holder.kill()
        assert holder.wait(timeout=60) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    before = db.read_bytes()
    status = cli.run("status", "--storage", url, inputs=False)
    assert f"{CANONICAL}: trial {number} (host {socket.gethostname()}, pid {holder.pid}, started " in status.stdout
    assert f"its worker, pid {holder.pid} on this host, is gone" in status.stdout, status.stdout
    assert db.read_bytes() == before

    started = time.monotonic()
    resumed = cli.run("resume", STUDY, "--trials", "3", "--storage", url)
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True)).trials
    assert trials[number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[number].params
    assert len([t for t in trials if t.state in FINISHED]) == 3
    assert time.monotonic() - started < 600


# A worker that asks one trial through the trial step's own ask, then waits (stdin) or kills itself with
# SIGKILL before it can record itself as the trial's owner: the gap a SIGKILL can land in.
ASK = """
import os, signal, sys
import optuna
from search.runners.step import _ask
from search.storage import open_storage
study = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]))
trial = _ask(study)
print(trial.number, flush=True)
if sys.argv[3] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.readline()
"""


def test_a_worker_killed_between_asking_and_recording_its_owner_leaves_a_trial_known_dead(tmp_path):
    """The SIGKILL of a campaign's workers can land after Optuna made a trial RUNNING but before the worker
    recorded itself on it. The worker recorded, before asking, that it asks: its trial is 'dead' at once
    (not 'unknown' for 10 minutes) and is failed, and an enqueued known point it held is queued again; a
    live asker's trial stays untouched."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.enqueue_trial({"x": 0.25})  # a known point: the killed worker pops it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

    def ask(how: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", ASK, url, "s", how], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    killed = ask("kill")
    assert int(killed.stdout.readline()) == 0 and killed.wait(timeout=60) == -signal.SIGKILL
    time.sleep(1.5)  # past the slack within which a later asker still counts as a possible owner
    holder = ask("hold")
    try:
        assert int(holder.stdout.readline()) == 1
        reader = optuna.load_study(study_name="s", storage=open_storage(url))
        cases = {entry.number: entry for entry in running_trials(reader)}
        assert cases[0].case == "dead" and f"pid {killed.pid} on this host, which is gone" in cases[0].why
        assert cases[1].case == "unknown"  # its asker lives: it may record itself any moment

        check = settle_stale(reader)
        assert [entry.number for entry in check.failed] == [0]
        trials = reader.get_trials(deepcopy=False)
        assert [t.state for t in trials[:2]] == [TrialState.FAIL, TrialState.RUNNING]
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == 0]
        assert retry.state == TrialState.WAITING and retry.system_attrs["fixed_params"] == {"x": 0.25}

        holder.kill()
        assert holder.wait(timeout=60) == -signal.SIGKILL
        assert [e.case for e in running_trials(reader)] == ["dead"]
        # its trial failed, no RUNNING trial may have been asked by either dead process: both records are cleared
        assert [entry.number for entry in settle_stale(reader).failed] == [1]
        assert askers(reader) == []
        records = _asker_records(reader)
        assert len(records) == 2 and set(records.values()) == {ASKER_CLEARED}
        assert {key.split(":")[2] for key in records} == {str(killed.pid), str(holder.pid)}
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _asker_records(study: optuna.Study) -> dict:
    """The study's asker records (:func:`search.study.budget.mark_asking`), cleared ones included."""
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {key: value for key, value in attrs.items() if key.startswith(ASKER_PREFIX)}


def test_workers_that_ran_trials_leave_no_live_asker_records(cli, tmp_path):
    """Each process that asks trials records itself in the study first (the kill -9 guarantee above), and clears
    the record once its trials have their owners: after two worker processes ran a launch and a resume, the
    study holds one cleared record per worker process and no live one (they grew by one per process for good)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    for command in ((*LAUNCH, "--trials", "4"), ("resume", STUDY, "--trials", "6")):
        done = cli.run(*command, "--workers", "2", "--storage", url)
        assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True))
    assert len([t for t in study.trials if t.state in FINISHED]) == 6
    records = _asker_records(study)
    assert len(records) >= 2, records  # one per worker process that asked (up to two per run)
    assert askers(study) == [] and set(records.values()) == {ASKER_CLEARED}
