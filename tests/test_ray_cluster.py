"""A real two-node Ray cluster on this machine loses a node mid-trial; the study on PostgreSQL stays whole.

The test starts a head node and a second node with ``ray start`` (one CPU each, temp dirs of their own:
tests/servers.py), and a real ``are-search launch --ray --address ... --max-concurrent 2
--cpus-per-trial 1`` on a fresh PostgreSQL study (Metafam, fusion.pth, 4 trials, no pruner): one
trial runs on each node. While the second node runs a trial, every process of that node (raylet,
its workers, its agents) is killed with SIGKILL, as when a machine dies. Then:

* the launch ends with status 0 and the budget reached: 4 finished trials, none left running or
  queued, no setting finished twice;
* the lost trial is FAIL, and exactly one retry of it (same parameters, user attr ``retry_of``) is
  COMPLETE, run by a worker of the surviving head node;
* every finished trial ran in a worker of the cluster, never in the driver; the password of the
  storage URL never appears in the output.

Both nodes are killed at the end whatever happens (the fixture's finalizer, and atexit).
"""
from __future__ import annotations

import os

import optuna
from optuna.trial import TrialState

from servers import cli, postgres_server, ray_cluster, wait_for  # noqa: F401  (fixtures)
from search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

CANONICAL = "Metafam:Metafam/fixed"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BUDGET = 4


def test_a_node_lost_mid_trial_is_retried_on_the_surviving_node(postgres_server, ray_cluster, cli):
    url = postgres_server.database("ray_cluster")
    launch = cli.start("launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--mode", "fixed", "--pruner", "none",
                       "--trials", str(BUDGET), "--storage", url, "--ray", "--address", ray_cluster.address,
                       "--max-concurrent", "2", "--cpus-per-trial", "1", env=ray_cluster.env)
    seen = {0: set(), 1: set()}  # pids of each node's processes, as they come and go

    def trial_on_second_node():
        for node in seen:
            seen[node].update(ray_cluster.node_pids(node))
        try:
            study = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True))
        except Exception:  # the schema or the study is not there yet
            return None
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            if "settings" in trial.user_attrs and trial.user_attrs.get("worker_pid") in seen[1]:
                return trial
        return None

    try:
        victim = wait_for(trial_on_second_node, 400, "a trial running on the second node", every=0.5, alive=launch)
        killed = ray_cluster.kill_node(1)
        assert victim.user_attrs["worker_pid"] in killed
        status = launch.wait(timeout=600)
        for node in seen:
            seen[node].update(ray_cluster.node_pids(node))
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait()
    outputs = cli.read_outputs()
    assert status == 0, outputs[-1][-3000:]
    for text in outputs:
        assert postgres_server.password not in text

    study = optuna.load_study(study_name=CANONICAL, storage=open_storage(url, read_only=True))
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == BUDGET, [(t.number, t.state.name) for t in trials]
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({tuple(sorted(t.params.items())) for t in finished}) == BUDGET, "a setting finished twice"
    assert trials[victim.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.params == victim.params
    assert retry.user_attrs["worker_pid"] in seen[0] - seen[1], "the retry did not run on the surviving node"
    assert all(t.user_attrs["worker_pid"] in seen[0] | seen[1] for t in finished)
    assert os.getpid() not in {t.user_attrs["worker_pid"] for t in finished}
    others = [t for t in trials if t.state == TrialState.FAIL and t.number != victim.number]
    assert all("settings" not in t.user_attrs for t in others)  # at most a race past the budget, never run
