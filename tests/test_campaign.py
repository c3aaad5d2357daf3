"""Campaigns on real data (NELLInductive:v1 and Metafam, fusion.pth): specs, budgets, the queue under
``kill -9``, and a campaign on Ray landing in the same studies.

The end-to-end test runs ``python -m search campaign launch`` with two local workers, kills the whole
process group with SIGKILL once two trials have finished, resumes with ``campaign resume`` and checks
that every study then has exactly its budget of finished trials, that the trials finished before the
kill are kept, that every killed trial's setting was run again, and that no setting was evaluated twice.
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

from search.campaign.allocation import StudyProgress, allocate, initial_budgets
from search.campaign.spec import campaign_from_values, load_campaign_spec, merge_campaign_overrides
from search.errors import StudyError

REPO = Path(__file__).resolve().parents[1]
DATASETS = "NELLInductive:v1,Metafam"
STUDIES = ["NELLInductive:v1/fixed", "Metafam:Metafam/fixed"]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


# ---------------------------------------------------------------------------------------------
# specs and budgets


def test_campaign_spec_expands_groups_and_names_studies_as_launch_does():
    spec = campaign_from_values({"groups": "inductive_e", "datasets": "FBNELL", "checkpoint": "fusion",
                                 "trials": 4}, "settings")
    assert spec.datasets[0] == "FBNELL:FBNELL_v1" and "FB15k237Inductive:v1" in spec.datasets
    assert spec.study_names[0] == "FBNELL:FBNELL_v1/fixed"
    restricted = campaign_from_values({"datasets": ["NELLInductive:v1", "metafam", "FBNELL"], "checkpoint": "fusion",
                                       "modes": {"fixed": "all", "learnable": ["Metafam"]}, "trials": 2}, "settings")
    assert restricted.study_names == ["NELLInductive:v1/fixed", "Metafam:Metafam/fixed",
                                      "Metafam:Metafam/learnable", "FBNELL:FBNELL_v1/fixed"]
    again = campaign_from_values({k: v for k, v in restricted.to_attr().items() if v is not None}, "stored")
    assert again == restricted


def test_the_shipped_campaign_spec_is_valid():
    spec = load_campaign_spec(REPO / "campaigns" / "local-six.yaml")
    assert spec.name == "local-six" and len(spec.datasets) == 6 and spec.trials == 8
    assert [name for name in spec.study_names if name.endswith("/learnable")] == [
        "NELLInductive:v1/learnable", "Metafam:Metafam/learnable"]


def test_the_all_local_campaign_names_every_benchmark_graph_present(data_root):
    """campaigns/all-local.yaml is 'every graph of the catalogue whose files are in the data root': it needs of
    ../shared only that the data root holds the graphs it names, and that it names each one present."""
    from are_model.data import resolve_dataset_name
    from search.inputs.catalogue import catalogue

    spec = load_campaign_spec(REPO / "campaigns" / "all-local.yaml")
    present = {entry.name for entry in catalogue(data_root, None) if entry.present and entry.group != "other"}
    assert {resolve_dataset_name(name) for name in spec.datasets} == present
    assert spec.time_budget == 8 * 3600 and spec.study_names == [f"{resolve_dataset_name(name)}/fixed"
                                                                  for name in spec.datasets]


def test_the_fusion_modes_campaign_runs_three_modes_on_four_graphs_at_a_tenth_of_the_official_budget():
    spec = load_campaign_spec(REPO / "campaigns" / "fusion-modes.yaml")
    assert spec.modes == ("fixed", "learnable", "learnable_free") and len(spec.study_names) == 12
    budgets = {str(s.name): s.fine_tune_budget() for s in spec.study_specs() if s.mode != "fixed"}
    metafam = budgets["Metafam:Metafam/learnable_free"]  # run_many.py: 3 full epochs of 864 batches
    assert metafam.epochs == 3 and metafam.batches(13821) == 86
    assert budgets["FB15k237Inductive:v1/learnable"].epochs == 1


@pytest.mark.parametrize("values, message", [
    ({"datasets": "FBNELL", "checkpoint": "fusion", "trials": 2, "total_trials": 8}, "not both"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "speed": 2}, "unknown key 'speed'"),
    ({"datasets": "NoSuchGraph", "checkpoint": "fusion"}, "key 'datasets'"),
    ({"groups": "inductive", "checkpoint": "fusion"}, "key 'groups'"),
    ({"datasets": "FBNELL,Metafam", "checkpoint": "fusion", "total_trials": 1}, "fewer than the campaign's 2 studies"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "modes": {"learnable": ["Metafam"]}}, "not one of the campaign"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "sampler": "annealing"}, "sampler"),
    ({"datasets": "FBNELL"}, "key 'checkpoint' is required"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "modes": {"fixed": "all", "learnable": ["NoSuch"]}},
     "key 'modes.learnable': unknown dataset 'NoSuch'"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "modes": {"fixed": "all", "learnable": ["Metafam"]}},
     "key 'modes.learnable': Metafam:Metafam is not one of the campaign's datasets"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "modes": "fixed,learnable",
      "mode_datasets": {"learnable": ["NoSuch"]}}, "key 'mode_datasets.learnable': unknown dataset 'NoSuch'"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "mode_datasets": {"learnable": ["FBNELL"]}},
     "key 'mode_datasets': 'learnable' is not one of the campaign's modes (fixed)"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "mode_datasets": ["FBNELL"]},
     "key 'mode_datasets': expected a mapping of mode -> datasets"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "budget": {"fixed": {"stages": 0}}},
     "key 'budget.fixed.stages': expected a positive integer, got 0"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "modes": "fixed,learnable",
      "budget": {"learnable": {"epochs": "two"}}},
     "key 'budget.learnable.epochs': expected a positive integer, got 'two'"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "budget": {"fixed": {"epochs": 2}}},
     "key 'budget.fixed': budget key 'epochs' does not apply to fixed mode"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "budget": {"fixed": 4}},
     "key 'budget.fixed': expected a mapping of name -> positive integer, got 4"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "weight_cap": 0}, "key 'weight_cap': expected a finite number > 0"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "soft_high": 0}, "key 'soft_high': expected a finite number > 0"),
    ({"datasets": "FBNELL", "checkpoint": "fusion", "soft_high": 5},
     "keys 'soft_high' and 'weight_cap': soft_high 5 is above weight_cap 4"),
])
def test_bad_campaign_values_are_one_line_errors_naming_the_key(values, message):
    with pytest.raises(StudyError) as error:
        campaign_from_values(values, "campaigns/x.yaml")
    text = str(error.value)
    assert message in text and "\n" not in text and text.startswith("campaigns/x.yaml")


def test_a_campaign_spec_that_is_not_a_mapping_says_what_it_holds(tmp_path):
    path = tmp_path / "x.yaml"
    for body, shape in (("", "empty"), ("- FBNELL\n", "a list"), ("inductive\n", "text"), ("8\n", "a number")):
        path.write_text(body)
        with pytest.raises(StudyError) as error:
            load_campaign_spec(path)
        assert str(error.value) == (f"{path}: the campaign spec is {shape}: expected a mapping of keys "
                                    "(datasets: ..., checkpoint: ...)")
        assert error.value.exit_code == 2


def test_mode_datasets_is_the_stored_form_of_a_modes_mapping():
    as_mapping = campaign_from_values({"datasets": "FBNELL,Metafam", "checkpoint": "fusion",
                                       "modes": {"fixed": "all", "learnable": ["metafam"]}}, "campaigns/x.yaml")
    assert as_mapping.to_attr()["modes"] == ["fixed", "learnable"]
    assert as_mapping.to_attr()["mode_datasets"] == {"learnable": ["Metafam:Metafam"]}
    as_stored = campaign_from_values({"datasets": "FBNELL,Metafam", "checkpoint": "fusion",
                                      "modes": ["fixed", "learnable"], "mode_datasets": {"learnable": ["Metafam"]}},
                                     "campaigns/x.yaml")
    assert as_stored == as_mapping
    assert as_stored.study_names == ["FBNELL:FBNELL_v1/fixed", "Metafam:Metafam/fixed", "Metafam:Metafam/learnable"]


def test_budget_scale_reaches_the_learnable_studies_only():
    spec = campaign_from_values({"datasets": "Metafam", "checkpoint": "fusion", "budget_scale": 0.25,
                                 "modes": ["fixed", "learnable", "learnable_free"]}, "campaigns/x.yaml")
    scales = {s.mode: s.budget_scale for s in spec.study_specs()}
    assert scales == {"fixed": 1.0, "learnable": 0.25, "learnable_free": 0.25}
    # Metafam's official budget is 3 full epochs of ceil(13821 / 16) = 864 batches: a quarter is 216 per epoch
    learnable = next(s for s in spec.study_specs() if s.mode == "learnable").fine_tune_budget()
    assert learnable.epochs == 3 and learnable.batches(13821) == 216
    assert merge_campaign_overrides(spec, budget_scale=0.5).budget_scale == 0.5
    for values, message in (({"modes": "fixed", "budget_scale": 0.5}, "has none (modes: fixed; got 0.5)"),
                            ({"modes": "learnable", "budget_scale": 0}, "expected a number in (0, 1], got 0")):
        with pytest.raises(StudyError) as error:
            campaign_from_values({"datasets": "Metafam", "checkpoint": "fusion", **values}, "campaigns/x.yaml")
        assert str(error.value).startswith("campaigns/x.yaml: key 'budget_scale': ") and message in str(error.value)


def test_campaign_overrides_are_named_options():
    spec = campaign_from_values({"datasets": "FBNELL", "checkpoint": "fusion"}, "campaigns/x.yaml")
    with pytest.raises(StudyError) as error:
        merge_campaign_overrides(spec, weight_cap=0.0)
    assert str(error.value) == "options: key 'weight_cap': expected a finite number > 0, got 0.0"
    assert merge_campaign_overrides(spec, soft_high=2.0).soft_high == 2.0


def test_total_budget_is_split_and_early_stops_give_theirs_back():
    spec = campaign_from_values({"datasets": "FBNELL,Metafam,NELLInductive:v1", "checkpoint": "fusion",
                                 "total_trials": 20}, "settings")
    names = spec.study_names
    assert initial_budgets(spec, names) == {names[0]: 7, names[1]: 7, names[2]: 6}
    budgets = allocate(spec, [StudyProgress(names[0], 3, True), StudyProgress(names[1], 5, False),
                              StudyProgress(names[2], 6, False)])
    assert budgets == {names[0]: 3, names[1]: 9, names[2]: 8} and sum(budgets.values()) == 20
    per_study = campaign_from_values({"datasets": "FBNELL,Metafam", "checkpoint": "fusion", "trials": 5}, "settings")
    assert allocate(per_study, [StudyProgress(n, 2, True) for n in per_study.study_names]) == {
        n: 5 for n in per_study.study_names}  # a per-study budget is what was asked for


# ---------------------------------------------------------------------------------------------
# the queue under kill -9


def _inputs(db: Path, data_root, text_root, checkpoint_root, cache_dir) -> list[str]:
    return ["--storage", f"sqlite:///{db}", "--data-root", str(data_root), "--text-root", str(text_root),
            "--checkpoint-root", str(checkpoint_root), "--cache-dir", str(cache_dir)]


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///file:{db}?mode=ro&uri=true")
        return sum(len(storage.get_all_trials(s._study_id, deepcopy=False, states=FINISHED))
                   for s in storage.get_all_studies())
    except Exception:  # being created right now
        return 0


def _trials(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    return study.get_trials(deepcopy=False)


def test_kill_9_then_resume_runs_exactly_the_remaining_budget(tmp_path, data_root, text_root, checkpoint_root,
                                                                cache_dir):
    db = tmp_path / "c.db"
    inputs = _inputs(db, data_root, text_root, checkpoint_root, cache_dir)
    err = tmp_path / "launch.err"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "search", "campaign", "launch", "--name", "pair",
                                    "--datasets", DATASETS, "--checkpoint", "fusion", "--trials", "4",
                                    "--pruner", "none", "--workers", "2", *inputs],
                                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            deadline = time.monotonic() + 900
            while _finished(db) < 2:
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.2)
            os.killpg(process.pid, signal.SIGKILL)  # the driver and both workers, mid-trial
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    before = {name: _trials(db, name) for name in STUDIES}
    kept = {name: {t.number: t.params for t in trials if t.state in FINISHED} for name, trials in before.items()}
    assert sum(len(k) for k in kept.values()) >= 2
    killed = {name: [t for t in trials if t.state == TrialState.RUNNING] for name, trials in before.items()}

    status = subprocess.run([sys.executable, "-m", "search", "campaign", "status", "pair", "--json",
                             "--storage", f"sqlite:///{db}"], capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    listed = json.loads(status.stdout)
    assert [s["study"] for s in listed["studies"]] == STUDIES and listed["total_budget"] == 8
    assert listed["done"] == listed["finished"] == sum(len(k) for k in kept.values())

    resumed = subprocess.run([sys.executable, "-m", "search", "campaign", "resume", "pair", *inputs],
                             cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert resumed.returncode == 0, resumed.stderr
    assert "campaign pair:" in resumed.stdout
    assert f"next: are-search campaign report pair --storage 'sqlite:///{db}'" in resumed.stdout, resumed.stdout
    for name in STUDIES:
        trials = _trials(db, name)
        finished = [t for t in trials if t.state in FINISHED]
        assert len(finished) == 4, (name, [(t.number, t.state.name) for t in trials])
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        # nothing lost: what finished before the kill is kept; every killed trial failed and its setting re-ran
        assert all(trials[n].state in FINISHED and trials[n].params == p for n, p in kept[name].items())
        failed = [t.number for t in trials if t.state == TrialState.FAIL]
        assert failed == [t.number for t in killed[name]]
        for trial in killed[name]:
            if trial.params:
                assert any(t.params == trial.params and t.user_attrs.get("retry_of") == trial.number
                           for t in finished), (name, trial.number)
        # nothing repeated: a setting evaluated twice only as a repeat_of the first
        first: dict[str, int] = {}
        for trial in finished:
            key = json.dumps(trial.params, sort_keys=True)
            if key in first:
                assert trial.user_attrs.get("repeat_of") == first[key], (name, trial.number)
            first.setdefault(key, trial.number)
    # every per-study command works on a campaign's studies
    single = subprocess.run([sys.executable, "-m", "search", "status", "--json", "--storage", f"sqlite:///{db}"],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0 and sorted(s["study"] for s in json.loads(single.stdout)["studies"]) == sorted(STUDIES)
    flags = subprocess.run([sys.executable, "-m", "search", "campaign", "export", "pair", "--out", str(tmp_path / "flags"),
                            "--storage", f"sqlite:///{db}"], capture_output=True, text=True, timeout=300)
    assert flags.returncode == 0, flags.stderr
    assert sorted(p.parent.name for p in (tmp_path / "flags").glob("*/flags.yaml")) == ["Metafam_Metafam",
                                                                                        "NELLInductive_v1"]


# ---------------------------------------------------------------------------------------------
# Ray


def test_a_campaign_on_ray_lands_in_the_same_studies(tmp_path, data_root, text_root, checkpoint_root, cache_dir):
    pytest.importorskip("ray")
    import search.campaign as campaign

    inputs = dict(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                  cache_dir=str(cache_dir))
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    on_ray = campaign.launch(name="r", datasets="Metafam", checkpoint="fusion", trials=2, pruner="none",
                             storage=storage, ray=True, max_concurrent=1, **inputs)
    assert [s.study for s in on_ray.studies] == ["Metafam:Metafam/fixed"]
    assert on_ray.studies[0].counts["COMPLETE"] == 2  # (the third known point waits in the queue)
    local = campaign.resume("r", trials=3, storage=storage, **inputs)
    assert [s.study for s in local.studies] == ["Metafam:Metafam/fixed"] and local.trials_added == 1
    trials = _trials(tmp_path / "c.db", "Metafam:Metafam/fixed")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    pids = {t.user_attrs.get("worker_pid") for t in trials}
    assert os.getpid() in pids and len(pids) == 2  # two trials in a Ray worker, the third here


# ---------------------------------------------------------------------------------------------
# warm starts inside a campaign


def test_warm_start_from_the_campaign_tries_a_finished_neighbours_best(tmp_path, data_root, text_root,
                                                                       checkpoint_root, cache_dir):
    import search.campaign as campaign

    storage = f"sqlite:///{tmp_path / 'c.db'}"
    result = campaign.launch(name="w", datasets=DATASETS, checkpoint="fusion", trials=4, pruner="none",
                             warm_start_from="campaign", warm_start_k=1, storage=storage, data_root=str(data_root),
                             text_root=str(text_root), checkpoint_root=str(checkpoint_root), cache_dir=str(cache_dir))
    assert [s.counts.get("COMPLETE") for s in result.studies] == [4, 4]
    studies = {name: optuna.load_study(study_name=name, storage=storage) for name in STUDIES}
    # one worker: the larger dataset ran first and finished; the other then tried its best settings
    warmed = [name for name, study in studies.items() if study.user_attrs.get("warm_start")]
    assert len(warmed) == 1
    (target,) = warmed
    (source,) = [name for name in STUDIES if name != target]
    (record,) = studies[target].user_attrs["warm_start"]
    assert record["from"] == source and record["trial"] == studies[source].best_trial.number
    tried = [t for t in studies[target].trials if t.user_attrs.get("warm_start_from") == source]
    if record["enqueued"]:
        assert len(tried) == 1 and tried[0].params == record["params"] == studies[source].best_trial.params
        assert tried[0].number == 3  # right after the three known points
    else:  # the neighbour's best is one of the known points, which the study tried already
        assert not tried
