"""What users see of a study searched on a validation sample, and of its pruned trials (issue 17, items 2-3).

A real study: NELLInductive:v1 with fusion.pth (624 validation pairs, 828 queries), launched through the CLI
with a validation budget of 64 pairs and the paired race, 5 trials: the known points (the checkpoint's own
setting, 0.2/0.8, then 0/0, which ranks far worse and which the race stops), then two sampled trials. Then
a trial that a stage pruner stopped at stage 1 with a stage MRR *above* the best complete value is told by
hand (stage means can run higher than whole-split means: on FBNELL four trials were pruned at 0.3994-0.4042
while the best complete trial ended at 0.3994). The progress lines of the launch, the report (figures,
summary, CLI output) and a campaign report of the study are read back.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState, create_trial

from search.api import report_study
from search.cli import main
from search.options import LoadOptions
from search.pruners.paired import paired_standard_error
from search.reports import plots
from search.reports.campaign import CAMPAIGN_CSV, CAMPAIGN_MD, write_campaign_report
from search.runners.progress import trial_line
from search.study.ranks import RANKS_ATTR, decode_ranks

DATASET = "NELLInductive:v1"
NAME = f"{DATASET}/fixed"
PAIRS = 64
STAGE_ABOVE_BEST = 0.05  # the hand-told trial's stage MRR, above the best complete value


@pytest.fixture(scope="module")
def searched(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir):
    """(storage URL, the launch's stderr lines, the study, the hand-told stage-pruned trial, the inputs)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path_factory.mktemp('sample') / 's.db'}"
    inputs = ["--data-root", str(data_root), "--text-root", str(text_root), "--cache-dir", str(cache_dir),
              "--device", "cpu", "--threads", "2"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # not a terminal: one line per trial
        status = main(["launch", "--dataset", DATASET, "--checkpoint", str(checkpoint_root / "fusion.pth"),
                       "--trials", "5", "--valid-pairs", str(PAIRS), "--pruner", "paired", "--no-stop", "--seed", "0",
                       "--storage", url, *inputs])
    assert status == 0, out.getvalue() + err.getvalue()
    study = optuna.load_study(study_name=NAME, storage=url)
    best = study.best_trial
    settings = {**best.user_attrs["settings"], **{name: 0.5 for name in best.params}}
    study.add_trial(create_trial(state=TrialState.PRUNED, params={name: 0.5 for name in best.params},
                                 distributions=best.distributions, user_attrs={"settings": settings},
                                 intermediate_values={1: best.value + STAGE_ABOVE_BEST}))
    staged = study.get_trials()[-1]
    return url, err.getvalue().splitlines(), study, staged, inputs


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


@pytest.fixture(scope="module")
def reported(searched, options, tmp_path_factory):
    """The study's report (with its figures), written through the API's one report path."""
    _, _, study, _, _ = searched
    return report_study(study, tmp_path_factory.mktemp("report"), options=options, n_boot=200, seed=0)


def _raced(study: optuna.Study) -> optuna.trial.FrozenTrial:
    (trial,) = [t for t in study.get_trials() if t.state == TrialState.PRUNED and "race" in t.user_attrs]
    return trial


def test_the_progress_line_of_a_raced_trial_says_why_not_a_stage_value(searched):
    _, lines, study, staged, _ = searched
    raced = _raced(study)
    race = raced.user_attrs["race"]
    assert raced.user_attrs.get("known_point") == "no enhancement" and race["prune"]
    (line,) = [line for line in lines if line.startswith(f"{NAME} trial {raced.number} ")]
    assert line.startswith(f"{NAME} trial {raced.number} pruned: {race['delta']:+.4f} vs best after "
                           f"{race['queries']} queries, p = {race['p']:.3g} (trial {race['incumbent']}); "
                           "w_sim=0.0000 w_prompt=0.0000 "), line
    assert race["delta"] < 0 and "MRR" not in line
    # one line per finished trial; a complete one shows its value
    assert len([line for line in lines if line.startswith(f"{NAME} trial ")]) == 5
    best = study.best_trial
    assert any(line.startswith(f"{NAME} trial {best.number}: validation MRR {best.value:.4f},") for line in lines)
    # a stage-pruned trial: where it stopped, its stage MRR named as such
    assert trial_line(staged, steps=4).startswith(
        f"trial {staged.number} pruned at stage 1 of 4 (the first 1/8 of the validation pairs) at stage MRR "
        f"{best.value + STAGE_ABOVE_BEST:.4f}, not comparable with complete trials; w_sim=0.5000 w_prompt=0.5000 ")


def test_the_report_says_the_study_searched_on_a_sample(searched, reported, nell_context):
    _, _, study, _, _ = searched
    summary = reported.summary
    sample = summary["valid_sample"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    mask = decode_ranks(complete[0].user_attrs[RANKS_ATTR]) > 0          # the queries every trial ranked
    assert (sample["pairs"], sample["split_pairs"], sample["split_queries"], sample["seed"]) == (PAIRS, 624, 828, 0)
    assert sample["queries"] == int(mask.sum()) and PAIRS <= sample["queries"] < 828
    rows = {row["label"]: row for row in summary["settings"]}
    best = study.best_trial
    best_row = rows[f"best (trial {best.number})"]
    # 0/0 ran only until the race stopped it: its validation MRR is ranked now, on the sample's queries
    none = rows["no enhancement"]
    _, full = nell_context.evaluate("valid", [0.0, 0.0])
    assert none["valid_source"] == "evaluated on the sample"
    assert none["valid_mrr"] == pytest.approx(float((1.0 / full.numpy()[mask]).mean()), abs=1e-12)
    # the standard error of a paired difference at this size: best vs 0.2/0.8, from their stored ranks
    paired = sample["paired"]
    against = next(t for t in complete if t.user_attrs.get("known_point") == "0.2/0.8")
    assert (paired["setting"], paired["against"]) == (best_row["label"], "0.2/0.8") and best.number != against.number
    d = 1.0 / decode_ranks(best.user_attrs[RANKS_ATTR])[mask] - 1.0 / decode_ranks(against.user_attrs[RANKS_ATTR])[mask]
    assert paired["delta"] == pytest.approx(best.value - against.value, abs=1e-12)
    assert paired["se"] == pytest.approx(paired_standard_error(d, 828), rel=1e-12) and paired["se"] > 0
    # the final numbers stay on the whole test split, with paired-bootstrap intervals
    assert all(row["test"]["num_queries"] == 402 for row in summary["settings"])
    assert all(row["diff_vs_best"] is not None for row in summary["settings"][1:])
    markdown = (reported.out_dir / "summary.md").read_text()
    size = f"{PAIRS} of 624 pairs ({sample['queries']} of 828 queries)"
    assert f"| validation | a sample: {size} |" in markdown
    assert "**Searched on a validation sample:**" in markdown and f"{paired['se']:.4f}" in markdown
    assert json.loads((reported.out_dir / "summary.json").read_text())["valid_sample"] == sample


def test_pruned_trials_never_appear_above_the_best_in_the_report_figures(searched, reported):
    _, _, study, staged, _ = searched
    best = study.best_value
    raced = _raced(study)
    fig = reported.figures["optimization_history.png"]
    values, race, stages = fig.axes
    drawn = [y for c in values.collections for _, y in c.get_offsets()]
    drawn += [y for line in values.get_lines() for y in line.get_ydata()]
    assert drawn and max(drawn) <= best + 1e-12                       # the value axis: nothing above the best
    pruned_numbers = {raced.number, staged.number}
    assert not pruned_numbers & {int(x) for c in values.collections for x, _ in c.get_offsets()}
    # each pruned trial in its own panel: the stage value (above the best) where it says "not comparable"
    assert stages.get_title(loc="left") == "pruned (stage value, not comparable)"
    (points,) = [c for c in stages.collections if c.get_label().startswith("pruned trial")]
    assert points.get_offsets().tolist() == [[staged.number, pytest.approx(best + STAGE_ABOVE_BEST)]]
    (bars,) = race.containers
    assert bars.lines[0].get_xdata().tolist() == [raced.number]
    assert bars.lines[0].get_ydata().tolist() == [pytest.approx(raced.user_attrs["race"]["delta"])]
    assert values.get_ylabel() == f"validation MRR\n(on a sample: {PAIRS} of 624 pairs)"
    # the weights figure colours only complete trials, by value; pruned trials hollow and grey
    ax = reported.figures["weights_scatter.png"].axes[0]
    # (the label says how many trials lie below the colour scale, which starts at the lower quartile)
    (coloured,) = [c for c in ax.collections if c.get_label().startswith("complete trial (colour: validation MRR")]
    complete = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert sorted(coloured.get_array().tolist()) == sorted(complete) and coloured.get_clim()[1] == best
    (hollow,) = [c for c in ax.collections if c.get_label() == plots.PRUNED_WEIGHTS_LABEL]
    assert len(hollow.get_offsets()) == 2 and hollow.get_array() is None and len(hollow.get_facecolors()) == 0


def test_the_cli_report_and_the_campaign_report_name_the_sample(searched, reported, options, tmp_path, capsys):
    url, _, study, _, inputs = searched
    sample = reported.summary["valid_sample"]
    assert main(["report", NAME, "--out", str(tmp_path / "cli"), "--n-boot", "200", "--storage", url, *inputs]) == 0
    out = capsys.readouterr().out
    assert (f"searched on a validation sample: {PAIRS} of 624 pairs ({sample['queries']} of 828 queries): every "
            "validation MRR above is the sample's; standard error of a paired MRR difference at this size "
            f"{sample['paired']['se']:.4f}") in out
    campaign = write_campaign_report([study], tmp_path / "campaign", options=options, n_boot=200, seed=0,
                                     name="sample")
    (row,) = campaign.rows
    assert row["valid_sample"] == sample
    with open(tmp_path / "campaign" / CAMPAIGN_CSV, newline="") as handle:
        (line,) = list(csv.DictReader(handle))
    assert (line["valid_sample_pairs"], line["valid_split_pairs"], line["valid_split_queries"]) == ("64", "624", "828")
    assert float(line["valid_paired_se"]) == sample["paired"]["se"]
    markdown = (tmp_path / "campaign" / CAMPAIGN_MD).read_text()
    assert f"| {row['best']['valid_mrr']:.4f} † |" in markdown
    assert (f"* {NAME}: searched on a validation sample of {PAIRS} of 624 pairs ({sample['queries']} of 828 "
            f"queries); standard error of a paired validation-MRR difference at this size "
            f"{sample['paired']['se']:.4f}") in markdown
    assert np.isfinite(sample["paired"]["se"])
    assert "test numbers are the whole test split's" in out and "Test numbers are the whole test split's." in markdown


def test_a_test_sample_is_named_by_the_cli_report_and_marked_in_the_campaign_report(searched, options, tmp_path,
                                                                                     capsys):
    """--test-pairs: the CLI says the test numbers are on a sample (its size and seed); the campaign report
    marks each such test MRR with § and lists the sample, and campaign.csv gives its size."""
    url, _, study, _, inputs = searched
    assert main(["report", NAME, "--out", str(tmp_path / "cli"), "--n-boot", "200", "--test-pairs", "50",
                 "--storage", url, *inputs]) == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    test = summary["test_sample"]
    assert test["pairs"] == 50 and test["split_queries"] == 402
    assert (f"test numbers are on a test sample of 50 of {test['split_pairs']} pairs ({test['queries']} of 402 "
            f"queries), seed {test['seed']}: every setting ranked on the same pairs") in capsys.readouterr().out
    campaign = write_campaign_report([study], tmp_path / "campaign", options=options, n_boot=200, seed=0,
                                     name="sample", test_pairs=50)
    (row,) = campaign.rows
    assert row["test_sample"] == test and row["test_queries"] == test["queries"]
    markdown = (tmp_path / "campaign" / CAMPAIGN_MD).read_text()
    assert f"| {row['best']['test_mrr']:.4f} § |" in markdown
    assert f"* {NAME}: 50 of {test['split_pairs']} pairs ({test['queries']} of 402 queries), seed {test['seed']}" in markdown
    with open(tmp_path / "campaign" / CAMPAIGN_CSV, newline="") as handle:
        (line,) = list(csv.DictReader(handle))
    assert (line["test_sample_pairs"], line["test_split_queries"]) == ("50", "402")


def test_status_names_the_sample_from_the_stored_spec(searched, capsys):
    url = searched[0]
    assert main(["status", "--json", "--storage", url]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["studies"]
    assert entry["study"] == NAME and entry["valid_pairs"] == PAIRS
    assert main(["status", "--storage", url]) == 0
    assert f"{NAME}: searched on a validation sample of {PAIRS} pairs (every trial ranks the same pairs" \
        in capsys.readouterr().out


def _whole_pairs(sample, pairs) -> set[int]:
    """The pairs a sample's queries belong to, checked to be whole: every query of each such pair is in the sample."""
    held = set(pairs.query_pair[sample.index].tolist())
    assert sorted(torch.nonzero(torch.isin(pairs.query_pair, torch.tensor(sorted(held)))).flatten().tolist()) \
        == sample.index.tolist()
    return held


def test_one_helper_draws_the_validation_sample_and_a_test_sample(searched, nell_context):
    """_ValidationSample and _TestSample take their queries from one helper (search.reports.study._Sample): on
    real splits the validation sample holds exactly the queries the study's trials ranked, and each sample is
    its first N pairs, whole, with the split's counts; a seed other than the context's draws other pairs."""
    from search.reports.study import _Sample, _TestSample, _ValidationSample

    _, _, study, _, _ = searched
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    ranked = np.flatnonzero(decode_ranks(complete[0].user_attrs[RANKS_ATTR]) > 0)
    valid = _ValidationSample(nell_context, PAIRS, 0, [], None, None)
    assert isinstance(valid, _Sample) and valid.index.tolist() == ranked.tolist()
    assert (valid.pairs, valid.split_pairs, valid.queries, valid.split_queries) == (PAIRS, 624, len(ranked), 828)
    assert len(_whole_pairs(valid, nell_context.pairs("valid"))) == PAIRS
    test = _TestSample(nell_context, 50, None, None)
    assert isinstance(test, _Sample) and (test.pairs, test.split_queries, test.seed) == (50, 402, 0)
    assert len(_whole_pairs(test, nell_context.pairs("test"))) == 50 and test.queries == test.index.numel()
    assert test.summary() == {"pairs": 50, "split_pairs": test.split_pairs, "queries": test.queries,
                              "split_queries": 402, "seed": 0, "stratified_by": "relation, head/tail"}
    other = _Sample(nell_context, "valid", PAIRS, 5)  # drawn here, not the context's own order
    assert len(_whole_pairs(other, nell_context.pairs("valid"))) == PAIRS and other.seed == 5
    assert other.index.tolist() != valid.index.tolist()
