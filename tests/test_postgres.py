"""A real PostgreSQL server as the study storage: workers sharing a study, a worker killed, the reading commands.

The server is started by the tests from the installed binaries (tests/servers.py) and stopped at the
end; the storage URL carries a password, which no command may print. Every command is a real
``python -m search`` process on Metafam with fusion.pth (fixed mode, no pruner).

* ``launch --workers 2`` on a fresh study (3 trials): the budget is met exactly, no setting finishes twice, both
  workers ran trials; ``status`` / ``export`` / ``report`` read it and change nothing.
* A ``launch`` killed with ``kill -9`` mid-trial: its trial stays RUNNING, ``status`` names it (host,
  pid, start, age: the pid is gone) and changes nothing; once its RDB heartbeat is older than the
  grace period, ``resume`` has it failed by Optuna's heartbeat check, which runs first, and retried
  with the same parameters: the budget is reached, every finished trial kept, nothing lost.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from servers import cli, postgres_server, wait_for  # noqa: F401  (fixtures)
from search.study.stale import HEARTBEAT_GRACE_S, running_trials
from search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY, CANONICAL = "Metafam/fixed", "Metafam:Metafam/fixed"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
LAUNCH = ("launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--mode", "fixed", "--pruner", "none")


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True))


def _study_or_none(url: str) -> optuna.Study | None:
    try:
        return _study(url)
    except Exception:  # the schema or the study is not there yet
        return None


def _snapshot(study: optuna.Study) -> list:
    """What a reading command must not change: every trial's state, value, params and attrs, the study's attrs."""
    return [study.user_attrs, [(t.number, t.state, t.value, t.params, t.user_attrs, t.system_attrs,
                                t.datetime_start, t.datetime_complete) for t in study.get_trials()]]


def _assert_sound(study: optuna.Study, budget: int) -> list:
    """The budget met exactly, nothing left running or queued, no setting finished twice."""
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == budget, [(t.number, t.state.name) for t in trials]
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({tuple(sorted(t.params.items())) for t in finished}) == budget, "a setting finished twice"
    return finished


def test_two_workers_on_one_fresh_study_then_status_export_report(postgres_server, cli, tmp_path):
    url = postgres_server.database("two_workers")
    done = cli.run(*LAUNCH, "--trials", "3", "--workers", "2", "--storage", url)
    assert done.returncode == 0, done.stderr
    safe = url.replace(postgres_server.password, "***")
    assert done.stdout.splitlines()[0] == f"storage: {safe}"

    study = _study(url)
    finished = _assert_sound(study, 3)
    pids = {t.user_attrs["worker_pid"] for t in finished}
    assert len(pids) == 2, f"one worker ran every trial: {pids}"
    surplus = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert len(surplus) <= 1 and all("settings" not in t.user_attrs for t in surplus)  # raced past the budget

    before = _snapshot(study)
    status = cli.run("status", "--storage", url, inputs=False)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"storage: {safe}"
    row = next(line for line in status.stdout.splitlines() if line.startswith(CANONICAL))
    assert row.split()[1:4] == ["fusion", "3/3", "3"], status.stdout
    as_json = cli.run("status", "--json", "--storage", url, inputs=False)
    (entry,) = json.loads(as_json.stdout)["studies"]
    assert entry["trials"]["COMPLETE"] == 3 and entry["stale"] == []

    exported = cli.run("export", STUDY, "--flags", "flags.yaml", "--storage", url, inputs=False)
    assert exported.returncode == 0, exported.stderr
    best = study.best_trial
    flags = yaml.safe_load((tmp_path / "flags.yaml").read_text())
    assert flags["similarity_enhancer_weight"] == pytest.approx(best.params["similarity_enhancer_weight"])
    assert flags["prompt_enhancer_weight"] == pytest.approx(best.params["prompt_enhancer_weight"])

    report = cli.run("report", STUDY, "--storage", url, "--out", "report", "--n-boot", "100")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "summary.md").is_file()
    assert "search range: similarity_enhancer_weight [0, " in report.stdout, report.stdout  # as status shows it
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert set(summary["space"]) == {"similarity_enhancer_weight", "prompt_enhancer_weight"}
    assert _snapshot(_study(url)) == before, "a reading command changed the study"
    for text in cli.read_outputs():
        assert postgres_server.password not in text


def test_worker_killed_mid_trial_is_failed_by_its_heartbeat_and_retried(postgres_server, cli):
    url = postgres_server.database("killed_worker")
    budget = 3
    worker = cli.start(*LAUNCH, "--trials", str(budget), "--storage", url)
    try:
        def trial_running():
            study = _study_or_none(url)
            if study is None:
                return None
            trials = study.get_trials()
            running = [t for t in trials if t.state == TrialState.RUNNING and "settings" in t.user_attrs]
            return running[0] if running and any(t.state == TrialState.COMPLETE for t in trials) else None

        victim = wait_for(trial_running, 300, "a second trial running", alive=worker)
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=60) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert victim.user_attrs["worker_pid"] == worker.pid
    study = _study(url)
    assert study.trials[victim.number].state == TrialState.RUNNING
    kept = {t.number: (t.state, t.value, t.params) for t in study.trials if t.state in FINISHED}

    status = cli.run("status", "--storage", url, inputs=False)
    line = (f"{CANONICAL}: trial {victim.number} (host {socket.gethostname()}, pid {worker.pid}, started "
            f"{victim.datetime_start:%Y-%m-%d %H:%M:%S}, ")
    assert line in status.stdout and f"pid {worker.pid} on this host, is gone" in status.stdout, status.stdout
    assert _snapshot(_study(url)) == _snapshot(study)  # status changed nothing

    def heartbeat_stale():
        (entry,) = [e for e in running_trials(_study(url)) if e.number == victim.number]
        return entry if entry.heartbeat_s is not None and entry.heartbeat_s > HEARTBEAT_GRACE_S else None

    entry = wait_for(heartbeat_stale, HEARTBEAT_GRACE_S + 60, "the killed worker's heartbeat to go stale", every=1.0)
    assert (entry.host, entry.pid, entry.case) == (socket.gethostname(), worker.pid, "dead")

    resumed = cli.run("resume", STUDY, "--storage", url)
    assert resumed.returncode == 0, resumed.stderr
    study = _study(url)
    finished = _assert_sound(study, budget)
    assert study.trials[victim.number].state == TrialState.FAIL
    # Optuna's heartbeat check (run first when the study is opened) failed it and queued its settings
    # again (RetryFailedTrialCallback: system attr failed_trial); the retry ran, nothing else was lost
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.params == victim.params and retry in finished
    assert [t.number for t in study.trials if t.state == TrialState.FAIL] == [victim.number]
    assert {n: (study.trials[n].state, study.trials[n].value, study.trials[n].params) for n in kept} == kept
    for text in cli.read_outputs():
        assert postgres_server.password not in text
