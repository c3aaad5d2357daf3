"""Ctrl-C (or SIGTERM) during a trial, on a real ``python -m search launch`` process (Metafam, fusion.pth, fixed mode).

The launch runs the three known points, then GP-sampled trials. The test watches the study through a
read-only connection to its SQLite file, and as soon as a sampled trial is running its objective it sends
SIGINT, as a terminal's Ctrl-C does. Then:

* the process ends with status 130 (SIGTERM: 143) and a short message on stderr: no traceback, no Optuna
  "Trial N failed" record;
* the interrupted trial is FAIL and its parameters are queued again (a WAITING trial with user attr
  ``retry_of``);
* ``resume Metafam/fixed`` completes the budget: 5 finished trials, the re-queued setting among them,
  no setting evaluated twice (a deterministic fixed-mode repeat is only allowed as ``repeat_of``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
STUDY = "Metafam/fixed"
CANONICAL = "Metafam:Metafam/fixed"
TRIALS = 5
KNOWN_POINTS = 3  # checkpoint, 0.2/0.8, no enhancement: enqueued first
WAIT_S = 300.0


def _read_only_storage(db: Path) -> optuna.storages.RDBStorage | None:
    """A read-only Optuna view of ``db`` once the launch has created its study there, else None."""
    if not db.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "studies" not in tables or "version_info" not in tables:
                return None
            if not connection.execute("SELECT study_name FROM studies").fetchall():
                return None
    except sqlite3.OperationalError:  # being created right now
        return None
    return optuna.storages.RDBStorage(f"sqlite:///file:{db}?mode=ro&uri=true")


def _wait_for_running_sampled_trial(db: Path, process: subprocess.Popen, stderr: Path) -> int:
    """The number of the first sampled trial whose objective is running (it has written its settings)."""
    deadline = time.monotonic() + WAIT_S
    storage, study_id = None, None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"launch ended (status {process.returncode}) before a sampled trial ran:\n"
                                 f"{stderr.read_text()}")
        if storage is None:
            storage = _read_only_storage(db)
            if storage is not None:
                study_id = storage.get_study_id_from_name(CANONICAL)
        if storage is not None:
            for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                if trial.number >= KNOWN_POINTS and "settings" in trial.user_attrs:
                    return trial.number
        time.sleep(0.05)
    raise AssertionError(f"no sampled trial was running after {WAIT_S:.0f} s:\n{stderr.read_text()}")


def _wait(process: subprocess.Popen, timeout: float, stderr: Path) -> int:
    """``process``'s exit status once it ends within ``timeout`` seconds. Otherwise every process of its group
    (it runs in a session of its own, or alone) prints each thread's Python stack (``-X faulthandler``: SIGABRT)
    and the test fails with its stderr, so that a hang says where it is."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            group = os.getpgid(process.pid)
            os.killpg(group, signal.SIGABRT) if group == process.pid else process.send_signal(signal.SIGABRT)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        raise AssertionError(f"still running {timeout:.0f} s after the signal; its stacks:\n{stderr.read_text()}") from None


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it. A suite started in the background (``cmd &`` from a
    script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


@pytest.mark.parametrize("signum, status_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_requeues_the_trial_and_resume_completes_the_budget(signum, status_code, tmp_path, data_root, text_root,
                                                                    checkpoint_root, cache_dir):
    """SIGTERM (``timeout``, a batch scheduler, ``kill``) ends the run as Ctrl-C does, with its own status."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    inputs = ["--storage", url, "--data-root", str(data_root), "--text-root", str(text_root), "--checkpoint-root",
              str(checkpoint_root), "--cache-dir", str(cache_dir), "--device", "cpu", "--threads", "2"]
    out, err = tmp_path / "launch.out", tmp_path / "launch.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "search", "launch", "--dataset",
                                    "Metafam", "--checkpoint", "fusion", "--trials", str(TRIALS), "--pruner", "none", "--flags", "flags.yaml",
                                    *inputs],
                                   cwd=tmp_path, stdout=stdout, stderr=stderr, env=dict(os.environ),
                                   preexec_fn=_default_sigint)
        try:
            interrupted = _wait_for_running_sampled_trial(db, process, err)
            process.send_signal(signum)
            status = _wait(process, 120, err)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = err.read_text()
    assert status == status_code, text

    # the interrupted trial is FAIL, and its settings wait at the head of the queue
    study = optuna.load_study(study_name=CANONICAL, storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    trials = study.get_trials(deepcopy=False)
    failed = trials[interrupted]
    assert failed.state == TrialState.FAIL and failed.params
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert retry.user_attrs.get("retry_of") == interrupted
    assert retry.system_attrs.get("fixed_params") == failed.params  # an enqueued trial's params, until it runs
    finished_before = [t.number for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert finished_before == list(range(interrupted))
    # status counts the interrupted trial apart: it says so, not "failed 1"
    assert failed.user_attrs.get("interrupted") is True
    shown = subprocess.run([sys.executable, "-m", "search", "status", "--storage", url, "--json"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    (entry,) = json.loads(shown.stdout)["studies"]
    assert entry["trials"].get("INTERRUPTED") == 1 and "FAIL" not in entry["trials"], entry["trials"]
    shown = subprocess.run([sys.executable, "-m", "search", "status", "--storage", url], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    header, _, row = shown.stdout.splitlines()[1:4]
    cells = dict(zip(re.split(r"\s{2,}", header.strip()), re.split(r"\s{2,}", row.strip())))
    assert (cells["failed"], cells["interrupted"]) == ("0", "1"), shown.stdout

    assert not (tmp_path / "flags.yaml").exists()  # the interrupted launch did not reach its export
    resumed = subprocess.run([sys.executable, "-m", "search", "resume", STUDY, *inputs, "--flags", "flags.yaml"],
                             cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == f"storage: {url}"
    assert "1 interrupted" in resumed.stdout and " fail" not in resumed.stdout, resumed.stdout
    if signum == signal.SIGINT:  # the report counts it as status does (it said "fail 1"), once is enough
        reported = subprocess.run([sys.executable, "-m", "search", "report", STUDY, *inputs, "--out", "report",
                                   "--n-boot", "100"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert reported.returncode == 0, reported.stderr
        summary = json.loads((tmp_path / "report" / "summary.json").read_text())
        assert summary["trials"].get("INTERRUPTED") == 1 and "FAIL" not in summary["trials"], summary["trials"]
        assert "interrupted 1" in (tmp_path / "report" / "summary.md").read_text()

    study = optuna.load_study(study_name=CANONICAL, storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == TRIALS, [(t.number, t.state.name) for t in trials]
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [interrupted]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # nothing lost: every trial finished before Ctrl-C is kept, and the re-queued setting ran
    assert all(trials[n].state in (TrialState.COMPLETE, TrialState.PRUNED) for n in finished_before)
    assert trials[retry.number].state == TrialState.COMPLETE and trials[retry.number].params == failed.params
    assert study.user_attrs["spec"]["trials"] == TRIALS
    # nothing repeated: a setting completed twice only as a repeat_of the first (whose value it reuses)
    first: dict[str, int] = {}
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        key = _key(trial.params)
        if key in first:
            assert trial.user_attrs.get("repeat_of") == first[key], (trial.number, trial.params, first[key])
        else:
            first[key] = trial.number

    # what Ctrl-C printed (checked last, so that the study checks above run whatever it says): a short
    # message, no traceback, no Optuna failure records, and the study to resume named, not a placeholder
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert not re.search(r"Trial \d+ failed", text), text
    # (one line per finished trial is the run's progress on stderr when it is not a terminal: not counted)
    said = [line for line in text.strip().splitlines() if not re.match(rf"{re.escape(CANONICAL)} trial \d+: ", line)]
    assert len(said) <= 3, text
    assert f"resume {STUDY}" in text or f"resume {CANONICAL}" in text, text
    # not the default storage: the hint names it, and the flags file the launch would have written at its end
    assert text.strip().endswith(f" --storage '{url}' --flags flags.yaml"), text
    assert "similarity_enhancer_weight" in (tmp_path / "flags.yaml").read_text()  # the resume wrote them


def _two_worker_launch(db: Path, stderr: Any, cwd: Path, data_root: Path, text_root: Path, checkpoint_root: Path,
                       cache_dir: Path) -> subprocess.Popen:
    """A real 8-trial Metafam launch with two workers, in a session of its own (so its process group can be
    signalled as ``timeout`` does), storing into ``db`` and writing its stderr to ``stderr``."""
    inputs = ["--storage", f"sqlite:///{db}", "--data-root", str(data_root), "--text-root", str(text_root),
              "--checkpoint-root", str(checkpoint_root), "--cache-dir", str(cache_dir), "--device", "cpu"]
    return subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "search", "launch", "--dataset", "Metafam",
                             "--checkpoint", "fusion",
                             "--trials", "8", "--pruner", "none", "--workers", "2", *inputs],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ),
                            start_new_session=True)


def test_sigterm_to_the_process_group_with_two_workers_leaves_nothing_running(tmp_path, data_root, text_root,
                                                                               checkpoint_root, cache_dir):
    """``timeout`` and batch schedulers signal the whole process group: every worker gets SIGTERM from the
    sender and again from its driver. The second must not interrupt the first one's clean-up."""
    db, err = tmp_path / "s.db", tmp_path / "launch.err"
    with open(err, "w") as stderr:
        process = _two_worker_launch(db, stderr, tmp_path, data_root, text_root, checkpoint_root, cache_dir)
        try:
            _wait_for_running_sampled_trial(db, process, err)
            os.killpg(process.pid, signal.SIGTERM)
            status = _wait(process, 120, err)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = err.read_text()
    assert status == 143, text
    assert "Traceback" not in text and "terminated (SIGTERM)" in text.strip().splitlines()[-1], text
    study = optuna.load_study(study_name=CANONICAL, storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    assert not [t.number for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]


def test_a_worker_killed_outright_leaves_its_trial_to_the_driver(tmp_path, data_root, text_root, checkpoint_root,
                                                                  cache_dir):
    """A worker that dies without its own clean-up (``kill -9``, the OOM killer) leaves its trial RUNNING; the
    driver, which outlives its workers, fails it and queues its settings again once they have all exited --
    here after a SIGTERM to the process group stops the other worker."""
    db, err = tmp_path / "s.db", tmp_path / "launch.err"
    with open(err, "w") as stderr:
        process = _two_worker_launch(db, stderr, tmp_path, data_root, text_root, checkpoint_root, cache_dir)
        try:
            killed = _wait_for_running_sampled_trial(db, process, err)
            storage = _read_only_storage(db)
            study_id = storage.get_study_id_from_name(CANONICAL)
            pid = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, killed)).user_attrs[
                "worker_pid"]
            assert pid != process.pid
            os.kill(pid, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGTERM)
            status = _wait(process, 180, err)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = err.read_text()
    assert status == 143, text
    study = optuna.load_study(study_name=CANONICAL, storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    trials = study.get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], text
    assert trials[killed].state == TrialState.FAIL, text
    retries = [t for t in trials if t.state == TrialState.WAITING and t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1, text
    assert retries[0].system_attrs["fixed_params"] == trials[killed].params, text  # its settings, queued again
