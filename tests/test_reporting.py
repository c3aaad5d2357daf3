"""search.reports.study on a small real study: fusion.pth on Metafam, fixed mode, five trials.

The study is built here with Optuna, SearchContext and FusionObjective (no CLI): the three known
points, then two sampled trials (random sampler, seed 47) under a median pruner, so it holds known
points, a sampled best (trial 3) and a pruned trial (trial 4). write_report runs once on it; the tests
read back its files, its summary and the matplotlib figures it saved.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from matplotlib.ticker import MaxNLocator
from optuna.trial import TrialState

from are_model.pipeline import TextOptions
from search.objectives.context import SearchContext
from search.errors import StudyError
from search.objectives.fusion import FusionObjective
from search.reports.plots import MIN_IMPORTANCE_TRIALS, PRUNED_WEIGHTS_LABEL
from search.reports.study import IMPORTANCES_PNG, Report, baseline_settings, write_report
from search.study.spaces import SearchSpace
from search.study.spec import StudySpec

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
SEED = 47  # the random sampler's first two points: one beats the known points, one is pruned


def test_baselines_are_checkpoint_02_08_and_none():
    assert baseline_settings((0.225, 0.775)) == [("checkpoint", (0.225, 0.775)), ("0.2/0.8", (0.2, 0.8)),
                                                 ("no enhancement", (0.0, 0.0))]


@pytest.fixture(scope="module")
def built(data_root, text_root, checkpoint_root, cache_dir):
    """(spec, context, study) of the small real study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = StudySpec(dataset="Metafam", checkpoint=str(checkpoint_root / "fusion.pth"), mode="fixed", trials=5,
                     seed=SEED, sampler="random", pruner="median")
    context = SearchContext(spec.dataset, spec.checkpoint, data_root=data_root, cache_dir=cache_dir,
                            text=TextOptions(root=str(text_root), cache_dir=str(cache_dir)))
    study = optuna.create_study(study_name="Metafam/fixed", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=SEED),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))
    for name, params in SearchSpace("fixed").known_points(context.model.checkpoint_fusion_weights()):
        study.enqueue_trial(params, user_attrs={"known_point": name})
    study.optimize(FusionObjective(spec, context), n_trials=spec.trials)
    return spec, context, study


@pytest.fixture(scope="module")
def report(built, tmp_path_factory) -> Report:
    spec, context, study = built
    out = tmp_path_factory.mktemp("report") / "Metafam_fixed"
    out.mkdir()
    (out / IMPORTANCES_PNG).write_bytes(b"stale figure of an earlier report")
    return write_report(study, context, out, spec=spec, n_boot=1000, seed=0)


def test_the_study_has_known_points_a_sampled_best_and_a_pruned_trial(built):
    _, _, study = built
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 4 + [TrialState.PRUNED]
    assert [t.user_attrs.get("known_point") for t in study.trials[:3]] == ["checkpoint", "0.2/0.8", "no enhancement"]
    assert study.best_trial.number == 3


def test_summary_numbers(report, built):
    summary = report.summary
    assert summary["study"] == "Metafam/fixed" and summary["profile"] == "are-fusion"
    assert summary["bootstrap"]["n_boot"] == 1000
    assert summary["trials"] == {"COMPLETE": 4, "PRUNED": 1}
    rows = {row["label"]: row for row in summary["settings"]}
    best_label = f"best (trial {summary['best']['trial']})"
    assert set(rows) == {best_label, "checkpoint", "0.2/0.8", "no enhancement"}
    assert rows["checkpoint"]["weights"] == pytest.approx([0.2250, 0.7750], abs=5e-5)
    assert rows["no enhancement"]["weights"] == [0.0, 0.0]
    best = rows[best_label]
    assert best["valid_mrr"] == pytest.approx(summary["best"]["value"]) and best["diff_vs_best"] is None
    for label, row in rows.items():
        assert row["test"]["num_queries"] == 368, label
        assert 0 < row["test"]["mrr"] < 1
        # the known points ran as trials, so every validation number comes from the study
        assert row["valid_source"].startswith("trial "), label
        assert row["valid_mrr"] <= summary["best"]["value"] + 1e-12
        if row is not best:
            diff = row["diff_vs_best"]
            assert diff["low"] <= diff["diff"] <= diff["high"]
            assert diff["diff"] == pytest.approx(best["test"]["mrr"] - row["test"]["mrr"], abs=1e-9)
    on_disk = json.loads((report.out_dir / "summary.json").read_text())
    assert on_disk["settings"] == json.loads(json.dumps(summary["settings"]))
    assert summary["budget"] == {"stages": 4}  # the budget the trials ran with, defaults filled in
    assert summary["space"] == {} and summary["space_spec"] == {}  # a study made without soft bounds
    assert summary["valid_sample"] is None                 # searched on the whole validation split


def test_figures_are_written_and_importances_omitted_below_the_minimum(report):
    out = report.out_dir
    assert set(report.summary["plots"]) == {"optimization_history.png", "weights_scatter.png"}
    for name in report.summary["plots"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_HEADER) and len(data) > 10_000, name
    # 4 complete trials < the minimum: no importance figure at all (the stale one is gone), and the reason
    assert not (out / IMPORTANCES_PNG).exists()
    assert IMPORTANCES_PNG not in report.figures
    assert {p.name for p in report.files} == {"optimization_history.png", "weights_scatter.png", "summary.md",
                                             "summary.json"}
    reason = report.summary["omitted"][IMPORTANCES_PNG]
    assert "4 complete trials" in reason and str(MIN_IMPORTANCE_TRIALS) in reason
    markdown = (out / "summary.md").read_text()
    assert reason in markdown and f"]({IMPORTANCES_PNG})" not in markdown


def test_a_searched_study_is_not_known_points_only_and_mixed_verdicts_follow_the_test_numbers(report):
    """Trial 3 is sampled, so the report does not say 'known points only'; a baseline is a mixed verdict exactly
    when the best beats it on test MRR but trails it on test MR (higher is worse) or Hits@10, each named in
    summary.md with both numbers."""
    summary = report.summary
    assert summary["known_points_only"] is False
    markdown = (report.out_dir / "summary.md").read_text()
    assert "Known points only" not in markdown
    best, *others = summary["settings"]
    expected = []
    for row in others:
        a, b = best["test"], row["test"]
        worse = {k: [a[k], b[k]] for k in ("mr", "hits@10") if (a[k] > b[k] if k == "mr" else a[k] < b[k])}
        if a["mrr"] > b["mrr"] and worse:
            tie = row["diff_vs_best"]["low"] <= 0 <= row["diff_vs_best"]["high"]
            expected.append({"against": row["label"], "mrr": [a["mrr"], b["mrr"]], "tie": tie, "worse_on": worse})
    assert summary["mixed"] == expected
    for entry in expected:  # a higher MRR inside its interval is a tie, never 'better'
        said = "ties on test MRR" if entry["tie"] else "is better on test MRR"
        assert f"**Mixed verdict against {entry['against']}:** the best {said}" in markdown
    assert markdown.count("**Mixed verdict against") == len(expected)


def test_weights_figure_covers_the_space_and_marks_the_baselines(report, built):
    _, _, study = built
    fig = report.figures["weights_scatter.png"]
    ax = fig.axes[0]
    for low, high in (ax.get_xlim(), ax.get_ylim()):
        assert -0.1 < low < 0 and 1 < high < 1.1      # the whole [0, 1] space, not just the sampled points
    assert ax.get_xlabel() == "similarity enhancer weight w_sim"
    assert ax.get_ylabel() == "prompt enhancer weight w_prompt"
    # the colour bar: four complete trials, so the scale starts at their lower quartile and names it
    values = sorted(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    assert fig.axes[1].get_ylabel().startswith(f"validation MRR\n(scale from the lower quartile "
                                               f"{np.quantile(values, 0.25):.4f} up;\n1 trial below it: light grey)")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    rows = {row["label"]: row for row in report.summary["settings"]}
    own = rows["checkpoint"]["weights"]
    expected = {f"checkpoint's own {own[0]:.3f}/{own[1]:.3f}": own, "0.2/0.8": [0.2, 0.8],
                "no enhancement 0/0": [0.0, 0.0]}
    for label, weights in expected.items():
        assert label in texts
        marker = next(c for c in ax.collections if c.get_label() == label)
        assert marker.get_offsets().tolist()[0] == pytest.approx(weights)
    best = study.best_trial
    star = next(t for t in texts if t.startswith(f"best: trial {best.number}, validation MRR {best.value:.4f}"))
    marker = next(c for c in ax.collections if c.get_label() == star)
    assert marker.get_offsets().tolist()[0] == pytest.approx(rows[f"best (trial {best.number})"]["weights"])
    assert "search space: w_sim in [0, 1], w_prompt in [0, 1]" in texts
    assert PRUNED_WEIGHTS_LABEL in texts
    pruned = next(c for c in ax.collections if c.get_label() == PRUNED_WEIGHTS_LABEL)
    assert pruned.get_array() is None and len(pruned.get_facecolors()) == 0   # hollow, not coloured by a value


def test_history_figure_reads_without_the_code(report, built):
    _, _, study = built
    fig = report.figures["optimization_history.png"]
    ax, stages = fig.axes                                   # the values; the pruned trial in a panel of its own
    assert stages.get_xlabel() == "trial number" and ax.get_ylabel() == "validation MRR"
    assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator) and ax.xaxis.get_major_locator()._integer
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    rows = {row["label"]: row for row in report.summary["settings"]}
    for label, text in (("checkpoint", "checkpoint's own"), ("0.2/0.8", "0.2/0.8"),
                        ("no enhancement", "no enhancement 0/0")):
        line = [t for t in texts if t.startswith(text) and t.endswith(f": {rows[label]['valid_mrr']:.4f}")]
        assert len(line) == 1, (label, texts)
    for number, name in enumerate(("checkpoint", "0.2/0.8", "no enhancement")):
        assert f"known point '{name}' (trial {number})" in texts
    pruned = next(c for c in stages.collections if c.get_label().startswith("pruned trial"))
    trial = study.trials[4]
    assert pruned.get_offsets().tolist() == [[4, trial.intermediate_values[max(trial.intermediate_values)]]]
    assert stages.get_title(loc="left") == "pruned (stage value, not comparable)"
    assert all(x != 4 for c in ax.collections for x, _ in c.get_offsets())
    assert "best so far" in texts


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def test_summary_is_portable_and_names_how_the_study_ran(report, built, tmp_path_factory, checkpoint_root,
                                                         data_root, text_root, cache_dir):
    import search

    markdown = (report.out_dir / "summary.md").read_text()
    text_json = (report.out_dir / "summary.json").read_text()
    forbidden = {str(tmp_path_factory.getbasetemp()), str(report.out_dir), str(checkpoint_root),
                 str(checkpoint_root.resolve()), str(data_root), str(text_root), str(cache_dir)}
    home = str(Path.home())
    if len(home) > 1:
        forbidden.add(home)
    for path in forbidden:
        assert path not in markdown, path
        assert path not in text_json, path
    # no absolute path at all: nothing in the markdown starts a path at the root, no JSON string does
    assert not re.search(r"(^|[\s(\[`'\"|])/[A-Za-z0-9_.~-]", markdown), markdown
    assert not any(s.startswith("/") for s in _strings(json.loads(text_json)))
    # figures embedded with paths relative to summary.md
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert images == ["optimization_history.png", "weights_scatter.png"]
    assert all((report.out_dir / image).is_file() for image in images)
    # how the study ran
    version = getattr(search, "__version__", "unknown")
    summary = report.summary
    assert summary["checkpoint"] == "fusion.pth" and summary["version"] == version
    assert (summary["sampler"], summary["pruner"], summary["seed"]) == ("random", "median", SEED)
    assert summary["encoder"] and summary["best"]["settings"]["checkpoint_path"] == "fusion.pth"
    for needle in (f"| are-search version | {version} |", "| checkpoint | fusion.pth (profile are-fusion) |",
                   f"| text encoder | {summary['encoder']} |", "| sampler | random |", "| pruner | median |",
                   f"| seed | {SEED} (study); bootstrap seed 0 |", "| validation | the whole split |"):
        assert needle in markdown, needle
    rows = {row["label"]: row for row in summary["settings"]}
    for label in rows:
        assert f"| {label} |" in markdown
    assert "test MRR" in markdown and "95% CI" in markdown
    assert f"{rows['no enhancement']['test']['mrr']:.4f}" in markdown


def test_a_spec_of_the_other_mode_is_refused(built, tmp_path):
    spec, context, study = built
    other = StudySpec(dataset=spec.dataset, checkpoint=spec.checkpoint, mode="learnable")
    with pytest.raises(StudyError, match="learnable"):
        write_report(study, context, tmp_path, spec=other)


def test_report_of_a_real_study_names_its_mixed_verdict(tmp_path, data_root, text_root, checkpoint_root, cache_dir):
    """The case of issue 19: Metafam's best (0, 1) beats no enhancement on test MRR but trails it on Hits@10
    (0.6766 vs 0.6929). ``are-search report`` on that real study (the 0.2.0 fixture) says so on stdout and in
    summary.md, with the numbers of summary.json, and does not call the searched study 'known points only'."""
    import subprocess
    import sys

    from oldstudies import write_old_studies

    storage = tmp_path / "s.db"
    write_old_studies(storage)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "search", "report", "Metafam/fixed", "--storage", str(storage),
                             "--out", str(out), "--data-root", str(data_root), "--text-root",
                             str(text_root), "--checkpoint-root", str(checkpoint_root), "--cache-dir", str(cache_dir),
                             "--device", "cpu", "--threads", "1"], capture_output=True, text=True, timeout=900,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["known_points_only"] is False
    (mixed,) = summary["mixed"]
    assert mixed["against"] == "no enhancement" and list(mixed["worse_on"]) == ["hits@10"]
    best, none = mixed["worse_on"]["hits@10"]
    assert (round(best, 4), round(none, 4)) == (0.6766, 0.6929)
    line = (f"Mixed verdict against no enhancement: the best is better on test MRR ({mixed['mrr'][0]:.4f} vs "
            f"{mixed['mrr'][1]:.4f}) but worse on test Hits@10 (0.6766 vs 0.6929).")
    assert line in result.stdout.splitlines()
    assert f"**{line.replace(':', ':**', 1)}" in (out / "summary.md").read_text()
    assert "Known points only" not in result.stdout
    # off a terminal (stderr is a pipe here) the report still says how far it is: a line per evaluation
    said = [line for line in result.stderr.splitlines() if line.startswith("report Metafam:Metafam/fixed: ")]
    total = int(said[0].split(": ")[1].split()[0])
    assert said[0].endswith("evaluations (a setting on a split) to run") and len(said) == total + 1, result.stderr
    assert said[-1].startswith(f"report Metafam:Metafam/fixed: {total}/{total} test "), said
    assert all(" MRR 0." in line and line.endswith(" s") for line in said[1:]), said


def test_a_test_sample_ranks_every_setting_on_the_same_pairs_and_says_so(built, report, tmp_path):
    """report --test-pairs: every setting's test figures are those of the full test ranks restricted to one
    seeded, stratified sample of test pairs (the context's order, as a validation sample is drawn); the
    intervals pair the same queries; summary.json and summary.md name the sample; a second report of it
    reads the sample's ranks from the rank cache (no entity pass). Each sampled lookup counts once in the
    cache's hits or misses: a miss of the whole split's ranks, which it tries first, is not one more miss."""
    from search.reports.rankcache import RankCache
    from are_model.evaluate import ranking_metrics

    spec, context, study = built
    cache = RankCache(tmp_path / "ranks")
    sampled = write_report(study, context, tmp_path / "sampled", spec=spec, n_boot=1000, seed=0, test_pairs=40,
                           rank_cache=cache)
    test = sampled.summary["test_sample"]
    assert test["pairs"] == 40 and test["split_pairs"] > 40 and test["split_queries"] == 368
    assert 40 <= test["queries"] < 368 and test["seed"] == context.stage_seed
    plan_pairs = context.pairs("test")
    index = torch.sort(plan_pairs.queries_of(context.stage_plan("test", 1, 40).order)[0]).values
    assert (cache.hits, cache.misses) == (0, 4)  # 4 settings, each looked up once (and found nowhere)
    whole = RankCache(tmp_path / "whole")  # a cache holding the whole split's ranks of each setting
    full = {row["label"]: row for row in report.summary["settings"]}
    for row in sampled.summary["settings"]:
        _, ranks = context.evaluate("test", list(row["weights"]))  # the whole split, as the full report ranks it
        whole.put(context, "test", row["weights"], ranks)
        expected = ranking_metrics(ranks[index])
        assert row["test"]["num_queries"] == test["queries"]
        assert row["test"]["mrr"] == pytest.approx(expected["mrr"], abs=1e-12), row["label"]
        assert row["valid_mrr"] == full[row["label"]]["valid_mrr"]  # validation is not sampled by it
    assert "| test | a sample: 40 of" in (sampled.out_dir / "summary.md").read_text()
    assert "**Tested on a sample:**" in (sampled.out_dir / "summary.md").read_text()
    assert report.summary["test_sample"] is None
    hits = cache.hits
    again = write_report(study, context, tmp_path / "again", spec=spec, n_boot=1000, seed=0, test_pairs=40,
                         rank_cache=cache)
    assert cache.hits - hits == 4 and again.summary["settings"] == sampled.summary["settings"]  # 4 settings
    assert cache.misses == 4  # no new miss: the whole split's ranks, looked up first, are not in the cache
    from_whole = write_report(study, context, tmp_path / "from_whole", spec=spec, n_boot=1000, seed=0,
                              test_pairs=40, rank_cache=whole)
    assert (whole.hits, whole.misses) == (4, 0) and from_whole.summary["settings"] == sampled.summary["settings"]
    # a sample no smaller than the split is the whole split
    whole = write_report(study, context, tmp_path / "whole", spec=spec, n_boot=1000, seed=0, test_pairs=10_000)
    assert whole.summary["test_sample"] is None
    assert [r["test"] for r in whole.summary["settings"]] == [r["test"] for r in report.summary["settings"]]


def test_the_validation_graph_s_size_comes_from_the_cost_record_without_preparing_the_split(built, tmp_path,
                                                                                           monkeypatch):
    """The cost probe records the size of the validation graph it ranks on (entities, relations and edges with
    their inverses, as summary.json's ``graphs``); a report reads it there and never asks the context for the
    validation split when nothing else needs it (preparing it cost minutes on ConceptNet100k); a cost record
    from before the sizes has the split prepared, as before, to the same numbers."""
    from search.campaign.timing import COST_ATTR, graph_size
    from search.reports.rankcache import RankCache
    from search.runners.cost import probe_cost

    spec, context, study = built
    probed = optuna.create_study(study_name=study.study_name, direction="maximize")  # a copy: `built` stays as is
    probed.add_trials(study.get_trials())
    cost = probe_cost(probed, spec, context, share=3600.0, floor=3, setup_s=0.0)
    sizes = {split: graph_size(context.split(split).graph) for split in ("valid", "test")}
    assert {key: cost[key] for key in ("entities", "relations", "edges")} == sizes["valid"]
    assert probed.user_attrs[COST_ATTR] == cost and sizes["valid"]["edges"] % 2 == 0  # each fact and its inverse
    asked: list[str] = []
    split = context.split
    monkeypatch.setattr(context, "split", lambda name: asked.append(name) or split(name))
    cache = RankCache(tmp_path / "ranks")
    new = write_report(probed, context, tmp_path / "new", spec=spec, n_boot=200, seed=0, test_pairs=40,
                       rank_cache=cache)
    assert new.summary["graphs"] == sizes
    assert "test" in asked and "valid" not in asked, asked
    probed.set_user_attr(COST_ATTR, {key: value for key, value in cost.items() if key not in sizes["valid"]})
    asked.clear()
    old = write_report(probed, context, tmp_path / "old", spec=spec, n_boot=200, seed=0, test_pairs=40,
                       rank_cache=cache)
    assert old.summary["graphs"] == sizes and "valid" in asked
