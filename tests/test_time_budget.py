"""A campaign's time budget (issue 20, item 1): the ``time_budget`` key and ``--time-budget`` option, the rule that
shares the time among studies by their measured cost, and a real two-graph campaign that ends on time with
no trial RUNNING and continues when resumed with more time.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from optuna.distributions import FloatDistribution

from search.campaign.spec import campaign_from_values, merge_campaign_overrides
from search.campaign.timing import (COST_ATTR, MIN_VALID_PAIRS, TRIAL_OVERHEAD_S, StudyClock, allocate_time,
                                    choose_valid_pairs, estimated_trial_seconds, study_clock, trial_seconds)
from search.errors import StudyError

REPO = Path(__file__).resolve().parents[1]
BASE = {"datasets": "Metafam", "checkpoint": "fusion"}


@pytest.mark.parametrize("raw, seconds", [("90s", 90.0), ("1.5m", 90.0), ("3h", 10800.0), (" 2m ", 120.0)])
def test_the_time_budget_key_takes_a_number_with_its_unit(raw, seconds):
    spec = campaign_from_values({**BASE, "time_budget": raw}, "c.yaml")
    assert spec.time_budget == seconds
    again = campaign_from_values({k: v for k, v in spec.to_attr().items() if v is not None}, "stored")
    assert again == spec  # the stored form reads back to the same budget
    assert merge_campaign_overrides(spec, time_budget="10m").time_budget == 600.0


@pytest.mark.parametrize("raw", ["3", 3, "3d", "-1h", "0s", "h", "soon", True])
def test_a_time_budget_without_a_unit_or_above_zero_is_one_line_naming_the_key(raw):
    with pytest.raises(StudyError) as error:
        campaign_from_values({**BASE, "time_budget": raw}, "campaigns/c.yaml")
    text = str(error.value)
    assert "\n" not in text and text.startswith("campaigns/c.yaml: key 'time_budget'") and "s, m or h" in text


def test_the_option_is_checked_before_anything_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "search", "campaign", "launch", "--datasets", "Metafam",
                           "--checkpoint", "fusion", "--time-budget", "2days", "--storage", str(tmp_path / "c.db")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--time-budget" in lines[0] and "'2days'" in lines[0]
    assert not (tmp_path / "c.db").exists()


def _clock(name, *, spent, per_trial, cap=40, finished=0, stopped=False, floor=3):
    return StudyClock(name, finished, 0, stopped, cap, floor, spent, per_trial)


def test_equal_shares_and_what_a_study_cannot_use_goes_to_the_others():
    # 300 s for three studies: C stopped after 20 s, B reaches its cap of 4 trials at 5 s each (20 s in all):
    # both keep what they need, A gets the other 260 s and affords 260 / 10 = 26 trials
    shares = allocate_time(300.0, [_clock("A", spent=0.0, per_trial=10.0), _clock("B", spent=0.0, per_trial=5.0, cap=4),
                                   _clock("C", spent=20.0, per_trial=2.0, finished=5, stopped=True)])
    assert shares["C"].share == 20.0 and shares["C"].trials == 5
    assert shares["B"].share == 20.0 and shares["B"].trials == 4
    assert shares["A"].share == pytest.approx(260.0) and shares["A"].trials == 26
    # a study whose share is exactly what its cap needs affords its cap, whatever the float rounding
    alone = allocate_time(120.0, [_clock("K", spent=14.9, per_trial=3.1, cap=5, finished=4)])
    assert alone["K"].share == pytest.approx(14.9 + 3.1) and alone["K"].trials == 5
    # a study too dear for its share still gets its floor, and so does one not measured yet (one trial more than
    # it has once past its floor, so that a worker takes it up and measures it)
    dear = allocate_time(60.0, [_clock("D", spent=0.0, per_trial=100.0), _clock("E", spent=0.0, per_trial=None),
                                _clock("F", spent=9.0, per_trial=None, finished=4)])
    assert dear["D"].trials == 3 and dear["E"].trials == 3 and dear["F"].trials == 5


def test_a_validation_budget_is_set_only_where_the_floor_would_not_fit():
    assert choose_valid_pairs(600.0, 0.01, 1000, floor=3) is None  # 3 full passes take 30 s
    assert choose_valid_pairs(600.0, 0.01, 1000, floor=3, limit=200) == 200  # the campaign's own budget stays
    pairs = choose_valid_pairs(60.0, 0.1, 1000, floor=3)  # (20 s - 1 s overhead) / 0.1 s
    assert pairs == 190
    assert choose_valid_pairs(6.0, 1.0, 1000, floor=3) == MIN_VALID_PAIRS


def test_time_spent_counts_trials_run_together_once():
    start = dt.datetime(2026, 1, 1, 12, 0, 0)
    spans = [(0, 10), (0, 10), (20, 25)]  # two trials in one step, then one alone
    timed = [optuna.trial.FrozenTrial(number=k, state=TrialState.COMPLETE, value=0.5,
                                      datetime_start=start + dt.timedelta(seconds=a),
                                      datetime_complete=start + dt.timedelta(seconds=b), params={"x": 0.1},
                                      distributions={"x": FloatDistribution(0, 1)}, user_attrs={}, system_attrs={},
                                      intermediate_values={}, trial_id=k)
             for k, (a, b) in enumerate(spans)]
    assert trial_seconds(timed) == (15.0, 3)
    clock = study_clock("S", timed, {"setup_s": 4.0, "seconds_per_pair": 0.5, "pairs": 10}, finished=3, running=0,
                        stopped=False, cap=10)
    assert clock.spent == 19.0 and clock.per_trial == 5.0  # measured mean replaces the probe's estimate


def test_trials_of_one_study_on_two_workers_count_on_both():
    """Two workers (processes, named by the trials' owner attrs) running trials of one study side by side
    spend twice the wall time: the fusion-modes campaign's FBNELL learnable study, run by two workers, was
    charged half its cost and ran 10 trials on a share that afforded 5. Trials one worker ran together in
    one step still count once."""
    start = dt.datetime(2026, 1, 1, 12, 0, 0)

    def trial(k, a, b, pid):
        return optuna.trial.FrozenTrial(
            number=k, state=TrialState.COMPLETE, value=0.5, datetime_start=start + dt.timedelta(seconds=a),
            datetime_complete=start + dt.timedelta(seconds=b), params={"x": 0.1},
            distributions={"x": FloatDistribution(0, 1)}, intermediate_values={}, trial_id=k, system_attrs={},
            user_attrs={} if pid is None else {"worker_host": "h", "worker_pid": pid, "worker_started_at": 1.0})

    side_by_side = [trial(0, 0, 100, 11), trial(1, 5, 105, 12), trial(2, 100, 200, 11), trial(3, 105, 205, 12)]
    assert trial_seconds(side_by_side) == (400.0, 4)
    clock = study_clock("S", side_by_side, {"setup_s": 0.0}, finished=4, running=0, stopped=False, cap=10)
    assert clock.per_trial == 100.0  # what a trial costs a worker, not half of it
    one_step = [trial(0, 0, 100, 11), trial(1, 0, 100, 11), trial(2, 0, 100, 12)]
    assert trial_seconds(one_step) == (200.0, 3)
    unowned = [trial(0, 0, 100, None), trial(1, 50, 100, None)]  # no owner recorded: one worker's, as before
    assert trial_seconds(unowned) == (100.0, 2)


def test_a_timed_campaign_ends_on_time_with_nothing_running_and_resumes(tmp_path, data_root, text_root,
                                                                         checkpoint_root, cache_dir, require_dataset):
    import search.campaign as campaign

    for name in ("Metafam", "NELLInductive:v1"):
        require_dataset(name)
    inputs = dict(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                  cache_dir=str(cache_dir), threads=1)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    budget = 60.0
    start = time.perf_counter()
    # a trial budget no 60 s can reach (and no early stop), so that the clock, not the budget, ends the run on
    # any machine: in CI a faster machine ran both studies' default 40 trials inside 60 s, leaving the resume
    # nothing to add
    trials = 2000
    first = campaign.launch(name="t", datasets="Metafam,NELLInductive:v1", checkpoint="fusion", valid_pairs=32,
                            trials=trials, no_stop=True, time_budget=f"{budget:g}s", storage=storage, **inputs)
    wall = time.perf_counter() - start
    assert wall <= 1.1 * budget, f"the campaign took {wall:.1f} s of a {budget:g} s budget"
    names = [s.study for s in first.studies]
    studies = {name: optuna.load_study(study_name=name, storage=storage) for name in names}
    for study in studies.values():
        assert not study.get_trials(states=(TrialState.RUNNING,))
        cost = study.user_attrs[COST_ATTR]
        assert cost["seconds_per_pair"] > 0 and cost["pairs"] == 32 and cost["device"] == "cpu"
        assert study.user_attrs["spec"]["valid_pairs"] == 32
    done = {s.study: s.counts.get("COMPLETE", 0) + s.counts.get("PRUNED", 0) for s in first.studies}
    assert all(count >= 1 for count in done.values()), done
    assert all(count < trials for count in done.values()), done  # the clock ended the run
    assert all(s.share is not None and s.seconds is not None for s in first.studies)
    shown = campaign.status("t", storage=storage)
    assert sum(t["seconds"] for t in shown.times.values()) <= budget
    assert all(t["share"] is not None for t in shown.times.values())

    spent = sum(t["seconds"] for t in shown.times.values())
    more = spent + 45.0  # room for a resumed run to load both graphs and still start trials
    start = time.perf_counter()
    second = campaign.resume("t", time_budget=f"{more:g}s", storage=storage, **inputs)
    wall = time.perf_counter() - start
    assert wall <= 1.1 * (more - spent), f"the resumed campaign took {wall:.1f} s of {more - spent:.1f} s left"
    assert second.trials_added >= 1
    for study in second.studies:
        assert study.counts.get("RUNNING", 0) == 0
        assert study.counts.get("COMPLETE", 0) + study.counts.get("PRUNED", 0) >= done[study.study]

    # the report puts each study's probed speed against its graph's size (cost_vs_edges.png, campaign.csv)
    from search.reports.campaign_figures import COST_PNG

    report = campaign.report("t", out=tmp_path / "report", n_boot=200, storage=storage, **inputs)
    ax = report.figures[COST_PNG].axes[0]
    drawn = sorted((round(float(x), 6), round(float(y), 6)) for c in ax.collections for x, y in c.get_offsets())
    rows = {row["study"]: row for row in report.rows}
    for name in names:
        cost = optuna.load_study(study_name=name, storage=storage).user_attrs[COST_ATTR]
        assert rows[name]["cost"] == cost
        assert rows[name]["graphs"]["valid"]["edges"] % 2 == 0  # each fact and its inverse
    assert drawn == sorted((round(float(rows[n]["graphs"]["valid"]["edges"]), 6),
                            round(1.0 / rows[n]["cost"]["seconds_per_pair"], 6)) for n in names)
    assert ax.get_xscale() == ax.get_yscale() == "log"
    csv_text = (tmp_path / "report" / "campaign.csv").read_text()
    assert ",valid_edges," in csv_text.splitlines()[0] and ",seconds_per_pair," in csv_text.splitlines()[0]


def test_a_study_that_spent_more_than_an_equal_share_keeps_it_and_the_others_share_the_rest():
    """A resumed campaign whose first study overran its share (there: trials charged at half their cost) must
    not hand the others equal shares of the whole budget again: the time it spent is gone."""
    over = StudyClock("over", finished=10, running=0, stopped=False, cap=40, floor=2, spent=60.0, per_trial=6.0)
    fresh = [StudyClock(name, finished=0, running=0, stopped=False, cap=40, floor=2, spent=0.0, per_trial=5.0)
             for name in ("b", "c")]
    shares = allocate_time(100.0, [over, *fresh])
    assert shares["over"].share == 60.0 and shares["over"].trials == 10  # no more trials: it is over its share
    assert shares["b"].share == shares["c"].share == 20.0 and shares["b"].trials == 4
    assert sum(s.share for s in shares.values()) == 100.0


@pytest.mark.parametrize("mode", ["learnable", "learnable_free"])
def test_a_learnable_study_s_probe_counts_its_fine_tuning(mode, nell_context):
    """A learnable trial fine-tunes before each validation: its probe times a training batch and the record
    says how many a trial runs, so the estimate is near what a real trial takes (the fusion-modes campaign's
    learnable studies were estimated by their validation pass alone, 30-40 times too cheap, and ran over
    their shares)."""
    from search.objectives.fusion import FusionObjective
    from search.runners.cost import probe_cost
    from search.study.spec import spec_from_values

    spec = spec_from_values({"dataset": "NELLInductive:v1", "checkpoint": "fusion", "mode": mode, "valid_pairs": 64,
                             "budget": {"epochs": 2, "batches_per_epoch": 6}}, "t")
    study = optuna.create_study(direction="maximize")
    cost = probe_cost(study, spec, nell_context, share=3600.0, floor=2, setup_s=0.0)
    assert study.user_attrs[COST_ATTR] == cost
    assert cost["batches"] == 12 and cost["validations"] == 2 and cost["seconds_per_batch"] > 0
    assert cost["pairs"] == 64
    estimate = estimated_trial_seconds(cost)
    validation_only = cost["seconds_per_pair"] * cost["pairs"] + TRIAL_OVERHEAD_S
    start = time.perf_counter()
    study.optimize(FusionObjective(spec, nell_context), n_trials=1)
    took = time.perf_counter() - start
    assert study.trials[0].state == TrialState.COMPLETE
    assert 0.5 <= took / estimate <= 2.0, (took, estimate)
    assert took > 3 * validation_only, (took, validation_only)  # what the probe used to estimate


def test_a_resumed_study_keeps_the_validation_budget_its_probe_chose(tmp_path):
    """A time-budgeted campaign's probe may give a study a validation sample (here 411 pairs, as FB15k237 got in
    the all-local campaign); resuming the campaign, whose specs ask for no sample, must keep it, not refuse the
    study as searched on another budget. A smaller budget asked explicitly is still refused."""
    import dataclasses

    from optuna.distributions import FloatDistribution

    from search.errors import StudyError
    from search.study.prepare import check_compatible, keep_chosen_valid_pairs
    from search.study.spec import SPEC_ATTR, spec_from_values

    spec = spec_from_values({"dataset": "FB15k237", "checkpoint": "fusion"}, "test")
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="FB15k237/fixed",
                                direction="maximize")
    study.set_user_attr(SPEC_ATTR, {**spec.to_attr(), "valid_pairs": 411})
    study.set_user_attr(COST_ATTR, {"seconds_per_pair": 0.2, "pairs": 411, "split_pairs": 8737, "valid_pairs": 411})
    study.add_trial(optuna.trial.create_trial(params={"w": 0.2}, distributions={"w": FloatDistribution(0, 1)},
                                              value=0.3))
    with pytest.raises(StudyError, match="validation sample of 411 pairs"):
        check_compatible(study, spec, {})                                   # what a resume met before
    kept = keep_chosen_valid_pairs(study, spec)
    assert kept.valid_pairs == 411 and check_compatible(study, kept, {}) == []
    assert keep_chosen_valid_pairs(study, dataclasses.replace(spec, valid_pairs=1000)).valid_pairs == 411
    smaller = dataclasses.replace(spec, valid_pairs=100)
    assert keep_chosen_valid_pairs(study, smaller) is smaller
    with pytest.raises(StudyError, match="not a validation sample of 100 pairs"):
        check_compatible(study, smaller, {})
    # a sample the user chose (no cost record names it) is not the probe's: nothing is adopted
    study.set_user_attr(COST_ATTR, {"seconds_per_pair": 0.2, "pairs": 8737, "split_pairs": 8737, "valid_pairs": None})
    assert keep_chosen_valid_pairs(study, spec) is spec


def test_time_that_finished_studies_leave_goes_to_one_that_already_spent_more_than_an_equal_share():
    """Budget 400 s over three studies: two are done (110 s and 105 s, nothing more to run) and one has spent 150 s,
    more than an equal share (133 s), and needs 350 s. It must get the 185 s the others leave, not be frozen at what
    it spent: the old rule settled it at 150 s as 'overspent' before the others gave their time back and left 35 s
    to nobody (the resumed all-local campaign ended with 15 of its 140 min never shared out that way)."""
    done_a = _clock("a", spent=110.0, per_trial=10.0, cap=20, finished=20)
    done_b = _clock("b", spent=105.0, per_trial=10.0, cap=20, finished=20)
    busy = _clock("c", spent=150.0, per_trial=10.0, cap=20, finished=0)
    shares = allocate_time(400.0, [done_a, done_b, busy])
    assert shares["a"].share == 110.0 and shares["b"].share == 105.0
    assert shares["c"].share == pytest.approx(185.0, abs=0.01)
    assert shares["c"].trials == 3                        # 35 s more at 10 s a trial
    assert sum(s.share for s in shares.values()) == pytest.approx(400.0, abs=0.01)
    # and when even what was spent exceeds the budget, nobody gets more than it spent
    over = allocate_time(300.0, [done_a, done_b, busy])
    assert {name: s.share for name, s in over.items()} == {"a": 110.0, "b": 105.0, "c": 150.0}
