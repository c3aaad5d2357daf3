"""The cross-dataset report of a campaign (search.reports.campaign, search.reports.campaign_figures) and the
rank cache behind it (search.reports.rankcache), on real studies: fusion.pth on NELLInductive:v1 in fixed mode
(two trials: the known points 'checkpoint' and '0.2/0.8') and in learnable mode (one short trial with a
frozen body), next to a Metafam study whose only trial failed.

One module fixture launches the studies, writes the campaign report, writes it again while counting
entity passes, and runs ``search.reports`` on each study; the tests read back what they wrote.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.trial import TrialState

import search
import search.api
from search.reports import campaign_figures
from search.reports.campaign import (BASELINES, CAMPAIGN_CSV, CAMPAIGN_MD, STUDIES_DIR, CampaignReport,
                                         csv_columns, verdict, write_campaign_report)
from search.options import LoadOptions
from search.reports.rankcache import RANKS_DIR, RankCache

DATASET = "NELLInductive:v1"
EMPTY = "Metafam:Metafam/fixed"
N_BOOT = 200
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
LEARNABLE_SPEC = """\
dataset: NELLInductive:v1
checkpoint: fusion
mode: learnable
trials: 1
pruner: none
space:
  body_lr: frozen
budget:
  epochs: 1
  batches_per_epoch: 1
  batch_size: 2
  negatives: 8
"""


@contextlib.contextmanager
def counting_entity_passes():
    """Count calls of ``are_model.evaluate.rank_queries`` (one per entity pass over a split, or a stage of
    one) wherever a module holds it; yields a one-item list with the count."""
    from are_model import evaluate

    original = evaluate.rank_queries
    count = [0]

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    holders = [module for module in list(sys.modules.values())
               if module is not None and getattr(module, "rank_queries", None) is original]
    for module in holders:
        module.rank_queries = counted
    try:
        yield count
    finally:
        for module in holders:
            module.rank_queries = original


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, options) -> SimpleNamespace:
    """The studies, the campaign report (twice: the second counting entity passes) and each study's report."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = tmp_path_factory.mktemp("campaign")
    url = f"sqlite:///{tmp / 'c.db'}"
    warnings = _Warnings()
    logging.getLogger("search").addHandler(warnings)
    try:
        search.launch(dataset=DATASET, checkpoint="fusion", mode="fixed", trials=2, pruner="none", storage=url,
                      options=options)
        spec_file = tmp / "learnable.yaml"
        spec_file.write_text(LEARNABLE_SPEC)
        search.launch(spec_file, storage=url, options=options)
    finally:
        logging.getLogger("search").removeHandler(warnings)
    empty = optuna.create_study(study_name=EMPTY, storage=url, direction="maximize")
    empty.set_user_attr("spec", {"dataset": "Metafam:Metafam", "checkpoint": "fusion", "mode": "fixed"})
    empty.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))

    from search.storage import open_storage

    backend = open_storage(search.options.resolve_storage(url), read_only=True)
    names = [f"{DATASET}/fixed", EMPTY, f"{DATASET}/learnable"]
    studies = [optuna.load_study(study_name=name, storage=backend) for name in names]
    first = write_campaign_report(studies, tmp / "out", options=options, n_boot=N_BOOT, seed=0, name="test")
    with counting_entity_passes() as passes:
        second = write_campaign_report(studies, tmp / "again", options=options, n_boot=N_BOOT, seed=0, name="test")
        # the public API, after search.reports was imported: the package does not shadow search.report
        (tmp / "single").mkdir()  # a report makes at most its own folder, not the folders above it
        singles = {name: search.report(name, out=tmp / "single" / name.replace("/", "_").replace(":", "_"),
                                       n_boot=N_BOOT, seed=0, storage=url, options=options)
                   for name in names if name != EMPTY}
    return SimpleNamespace(url=url, out=tmp / "out", first=first, second=second, singles=singles,
                           passes=passes[0], options=options, warnings=warnings.lines)


class _Warnings(logging.Handler):
    """The WARNING lines the search package logs while the fixture's studies are launched."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _rows(report: CampaignReport) -> dict[str, dict]:
    return {row["study"]: row for row in report.rows}


# ---------------------------------------------------------------------------------------------
# rows


def test_one_row_per_study_in_group_order(campaign):
    rows = campaign.first.rows
    assert [(row["dataset"], row["mode"], row["group"]) for row in rows] == [
        (DATASET, "fixed", "inductive_e"), (DATASET, "learnable", "inductive_e"),
        ("Metafam:Metafam", "fixed", "inductive_er")]
    for row in rows:
        assert f"{row['dataset']}/{row['mode']}" == row["study"]


def test_rows_equal_the_study_reports(campaign):
    rows = _rows(campaign.first)
    for name, single in campaign.singles.items():
        row, summary = rows[name], single.summary
        settings = summary["settings"]
        best, by_label = settings[0], {s["label"]: s for s in settings[1:]}
        assert row["trials"] == summary["trials"]
        assert row["checkpoint"] == summary["checkpoint"] == "fusion.pth"
        assert row["encoder"] == summary["encoder"] == "minilm"
        assert row["best"]["trial"] == summary["best"]["trial"]
        assert row["best"]["settings"] == summary["best"]["settings"]
        assert row["best"]["weights"] == best["weights"]
        assert row["best"]["valid_mrr"] == best["valid_mrr"]
        assert row["best"]["test_mrr"] == best["test"]["mrr"]
        assert row["best"]["test_hits@10"] == best["test"]["hits@10"]
        for key, label in BASELINES.items():
            setting = by_label[label]
            assert row["baselines"][key]["weights"] == setting["weights"]
            assert row["baselines"][key]["valid_mrr"] == setting["valid_mrr"]
            assert row["baselines"][key]["test_mrr"] == setting["test"]["mrr"]
            assert row["baselines"][key]["test_hits@10"] == setting["test"]["hits@10"]
            diff = setting["diff_vs_best"]
            assert (row["deltas"][key]["delta"], row["deltas"][key]["low"], row["deltas"][key]["high"]) == (
                diff["diff"], diff["low"], diff["high"])
        own = by_label["checkpoint"]["diff_vs_best"]
        assert row["ci95"] == {"low": own["low"], "high": own["high"]}
        assert row["deltas"]["checkpoint"]["delta"] == pytest.approx(
            row["best"]["test_mrr"] - row["baselines"]["checkpoint"]["test_mrr"], abs=1e-12)
        # the campaign wrote the study's own report, with the same numbers
        written = json.loads((campaign.out / row["report"] / "summary.json").read_text())
        assert written["settings"] == summary["settings"]


def test_fixed_row_is_the_best_known_point(campaign):
    row = _rows(campaign.first)[f"{DATASET}/fixed"]
    assert row["best"]["weights_kind"] == "fixed"
    assert row["best"]["weights"] in ([0.2, 0.8], row["baselines"]["checkpoint"]["weights"])
    assert row["best"]["valid_mrr"] == row["best"]["trial_value"]  # a fixed trial's value is its validation MRR
    assert row["baselines"]["checkpoint"]["weights"] == pytest.approx([0.2250, 0.7750], abs=5e-5)
    assert row["baselines"]["0/0"]["valid_source"] == "evaluated"  # no trial ran 0/0
    assert 0 < row["best"]["test_mrr"] < 1 and row["test_queries"] == 402
    # the baseline that is the best setting ranks every query alike: said so, not shown as a "+0.0000" tie
    same = [key for key in BASELINES if row["baselines"][key]["weights"] == row["best"]["weights"]]
    assert same and all(row["deltas"][key]["delta"] == row["deltas"][key]["low"] == 0 for key in same)
    cells = [line for line in (campaign.out / CAMPAIGN_MD).read_text().splitlines()
             if line.startswith(f"| {DATASET} | inductive_e | fixed |")]
    assert len(cells) == 1 and "0 (same ranks)" in cells[0] and "+0.0000 [+0.0000, +0.0000]" not in cells[0]


def test_learnable_row_reports_the_learned_weights(campaign):
    row = _rows(campaign.first)[f"{DATASET}/learnable"]
    learned = row["best"]["settings"]["learned_weights"]
    assert row["best"]["weights_kind"] == "learned" and row["best"]["weights"] == learned
    assert math.isclose(sum(learned), 1.0, abs_tol=1e-5)  # softmax weights
    assert row["note"] and "learnable study" in row["note"]
    fixed = _rows(campaign.first)[f"{DATASET}/fixed"]
    for key in BASELINES:  # the same settings on the same split: the same numbers in both modes' rows
        assert row["baselines"][key]["test_mrr"] == fixed["baselines"][key]["test_mrr"]


def test_a_study_without_a_complete_trial_gets_an_empty_row(campaign):
    row = _rows(campaign.first)[EMPTY]
    assert row["best"] is None and row["ci95"] is None and row["deltas"] is None and row["report"] is None
    assert row["trials"] == {"FAIL": 1} and "no complete trial" in row["note"]
    assert row["group"] == "inductive_er" and row["checkpoint"] == "fusion"
    assert not (campaign.out / STUDIES_DIR / "Metafam_Metafam_fixed").exists()


def test_groups_and_wins(campaign):
    report = campaign.first
    done = [row for row in report.rows if row["best"] is not None]
    assert [(g["group"], g["mode"], g["datasets"]) for g in report.groups] == [
        ("inductive_e", "fixed", 1), ("inductive_e", "learnable", 1)]
    for group in report.groups:
        (row,) = [r for r in done if r["mode"] == group["mode"]]
        assert group["best"]["test_mrr"] == row["best"]["test_mrr"]
        assert group["delta"]["0/0"] == row["deltas"]["0/0"]["delta"]
        # ULTRA's published inductive_e mean of ultra_3g, over all 18 graphs of the group (ours: 1)
        assert group["published"] == {"checkpoint": "ultra_3g", "test_mrr": 0.430, "test_hits@10": 0.566,
                                      "graphs": 18}
    for key in BASELINES:  # a study of known points only is counted apart, never as a win, tie or loss
        counts = report.wins[key]
        assert counts["win"] + counts["tie"] + counts["loss"] + counts["known_only"] == len(done)
        expected = {"win": 0, "tie": 0, "loss": 0, "known_only": 0, "mixed": 0}
        for row in done:
            if row["known_points_only"]:
                expected["known_only"] += 1
                continue
            expected[verdict(row["deltas"][key]["low"], row["deltas"][key]["high"])] += 1
            expected["mixed"] += bool(row["deltas"][key]["mixed"])
        assert {k: counts[k] for k in expected} == expected
        assert sum(c[k] for c in counts["by_mode"].values() for k in ("win", "tie", "loss", "known_only")) == len(done)


def test_a_budget_of_known_points_only_is_said_at_launch_and_in_every_report(campaign):
    """Both studies ran only known points (fixed: 2 trials of its 3; learnable: 1 of its 2): the launch warns,
    each study's summary.md and the campaign's say 'known points only', no Δ is called a win or loss, and the
    Δ figure draws them in the colour of 'known points only'."""
    assert campaign.warnings == [
        f"study {DATASET}/fixed: a budget of 2 trials is no more than its 3 known points (checkpoint, 0.2/0.8, "
        "no enhancement), which run first: nothing is searched, and its report will say 'known points only'; give "
        "--trials 4 or more to search",
        f"study {DATASET}/learnable: a budget of 1 trial is no more than its 2 known points (checkpoint, 0.2/0.8), "
        "which run first: nothing is searched, and its report will say 'known points only'; give --trials 3 or more "
        "to search"]
    rows = _rows(campaign.first)
    assert rows[f"{DATASET}/fixed"]["known_points_only"] and rows[f"{DATASET}/learnable"]["known_points_only"]
    assert not rows[EMPTY]["known_points_only"]
    for name, single in campaign.singles.items():
        assert single.summary["known_points_only"] is True
        assert "**Known points only:** every finished trial is one of the known points" in \
            (single.out_dir / "summary.md").read_text()
    text = (campaign.out / CAMPAIGN_MD).read_text()
    assert (f"**Known points only:** {DATASET}/fixed, {DATASET}/learnable ran only the known points" in text)
    studies = text.split("## Studies", 1)[1].split("\n## ", 1)[0]  # its table; the modes section says it too
    study_lines = [line for line in studies.splitlines() if line.startswith(f"| {DATASET} |")]
    assert len(study_lines) == 2 and all("(known points only)" in line for line in study_lines)
    modes = text.split("## Fusion modes side by side", 1)[1].split("\n## ", 1)[0]
    (modes_line,) = [line for line in modes.splitlines() if line.startswith(f"| {DATASET} |")]
    assert modes_line.count("(known points only)") == 2
    assert not any(" win " in line or " loss " in line or "** win" in line or "** loss" in line for line in study_lines)
    assert all(campaign.first.wins[key]["known_only"] == 2 and campaign.first.wins[key]["win"] == 0
               for key in BASELINES)
    ax = campaign.first.figures[campaign_figures.DELTA_PNG].axes[0]
    legend = [t.get_text() for t in campaign.first.figures[campaign_figures.DELTA_PNG].legends[0].get_texts()]
    assert "known points only: nothing searched (no win, tie or loss)" in legend
    assert "searched setting" not in ax.get_title()


# ---------------------------------------------------------------------------------------------
# files


def test_json_object(campaign):
    data = json.loads(json.dumps(campaign.first.to_json()))  # JSON-ready as it is
    assert data["campaign"] == "test" and set(data) >= {"campaign", "rows", "groups", "wins", "files"}
    for row in data["rows"]:
        assert set(row) >= {"dataset", "mode", "group", "checkpoint", "encoder", "trials", "best", "baselines",
                            "ci95", "deltas"}
        if row["best"] is not None:
            assert set(row["best"]) >= {"settings", "valid_mrr", "test_mrr", "test_hits@10"}
            assert set(row["baselines"]) == {"checkpoint", "0.2/0.8", "0/0"}
            for numbers in row["baselines"].values():
                assert set(numbers) >= {"valid_mrr", "test_mrr", "test_hits@10"}
            assert set(row["ci95"]) == {"low", "high"} and row["ci95"]["low"] <= row["ci95"]["high"]
    assert set(data["wins"]) == {"checkpoint", "0.2/0.8", "0/0"}
    assert all(Path(f).is_file() for f in data["files"])
    assert str(campaign.out / CAMPAIGN_MD) in data["files"] and str(campaign.out / CAMPAIGN_CSV) in data["files"]


def test_csv_has_one_row_per_study(campaign):
    with open(campaign.out / CAMPAIGN_CSV, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == csv_columns()
        lines = list(reader)
    rows = campaign.first.rows
    assert [(line["dataset"], line["mode"]) for line in lines] == [(row["dataset"], row["mode"]) for row in rows]
    for line, row in zip(lines, rows):
        if row["best"] is None:
            assert line["best_test_mrr"] == "" and line["trials_fail"] == "1"
            continue
        assert float(line["best_test_mrr"]) == row["best"]["test_mrr"]  # exact: written with repr
        assert float(line["delta_vs_own_low"]) == row["ci95"]["low"]
        assert float(line["fixed_0.2_0.8_test_mrr"]) == row["baselines"]["0.2/0.8"]["test_mrr"]
        assert line["verdict_vs_none_0_0"] == row["deltas"]["0/0"]["verdict"]


def test_markdown(campaign):
    text = (campaign.out / CAMPAIGN_MD).read_text()
    assert text.startswith("# Campaign test")
    for heading in ("## Studies", "## Group means", "## Wins, ties and losses", "## Figures"):
        assert heading in text
    assert "| dataset | group | mode | trials | best w_sim / w_prompt |" in text
    assert f"| {DATASET} | inductive_e | fixed |" in text and f"| {DATASET} | inductive_e | learnable |" in text
    assert "| Metafam:Metafam | inductive_er | fixed | 1 fail |" in text
    assert "learned " in text  # the learnable row shows learned weights
    own, best = campaign.first.groups[0]["baselines"]["checkpoint"]["test_mrr"], campaign.first.groups[0]["best"]["test_mrr"]
    assert f"| inductive_e | fixed | 1 / 18 | {own:.4f} | {best:.4f} | 0.430 |" in text  # next to the published mean
    for name in set(campaign_figures.FIGURES) - {campaign_figures.COST_PNG}:
        assert f"]({name})" in text  # every figure linked: NELLInductive:v1 ran in both modes
    for row in campaign.first.rows:
        if row["report"]:
            assert f"({row['report']}/summary.md)" in text and (campaign.out / row["report"] / "summary.md").is_file()


def test_modes_side_by_side_take_their_numbers_from_the_study_rows(campaign):
    from search.reports.campaign_text import fmt, joined

    text = (campaign.out / CAMPAIGN_MD).read_text()
    section = text.split("## Fusion modes side by side", 1)[1].split("\n## ", 1)[0]
    rows = _rows(campaign.first)
    fixed, learnable = rows[f"{DATASET}/fixed"], rows[f"{DATASET}/learnable"]
    (line,) = [line for line in section.splitlines() if line.startswith(f"| {DATASET} |")]
    own = fixed["baselines"]["checkpoint"]
    assert f"| {joined(own['weights'])} : {fmt(own['test_mrr'])} |" in line
    assert f"| {fmt(fixed['baselines']['0.2/0.8']['test_mrr'])} |" in line
    for row in (fixed, learnable):
        assert f"{joined(row['best']['weights'])} : {fmt(row['best']['test_mrr'])}, Δ " in line
    assert "| best fixed | best learnable (softmax) |" in section and "learnable (free)" not in section
    assert "Metafam:Metafam" not in section  # one mode only: not compared


def test_figures_are_written_and_read_back(campaign):
    report = campaign.first
    # no cost record (no time budget): the cost figure is left out, and says why
    assert set(report.figures) == set(campaign_figures.FIGURES) - {campaign_figures.COST_PNG}
    assert report.omitted == {campaign_figures.COST_PNG: "not drawn: fewer than two studies have a cost record (only a "
                                                         "campaign with a time budget probes its studies' cost)"}
    for name in report.figures:
        data = (campaign.out / name).read_bytes()
        assert data.startswith(PNG_HEADER) and len(data) > 10_000
    done = [row for row in report.rows if row["best"] is not None]
    # Δ figure: one interval per study, at its Δ, between its bounds
    ax = report.figures[campaign_figures.DELTA_PNG].axes[0]
    assert len(ax.containers) == len(done)
    centres = sorted(float(c.lines[0].get_xdata()[0]) for c in ax.containers)
    assert centres == sorted(row["deltas"]["checkpoint"]["delta"] for row in done)
    labels = [t.get_text().strip() for t in ax.get_yticklabels()]
    assert labels == ["inductive_e (1 dataset)", DATASET]
    assert "Metafam:Metafam/fixed" in ax.get_title()  # named as left out
    # weight plane: every best at its weights, axes past 1
    ax = report.figures[campaign_figures.PLANE_PNG].axes[0]
    points = {tuple(round(float(v), 9) for v in xy) for c in ax.collections for xy in c.get_offsets()}
    for row in done:
        assert tuple(round(w, 9) for w in row["best"]["weights"]) in points
    assert ax.get_xlim()[1] > 1 and ax.get_ylim()[1] > 1
    assert any(DATASET in t.get_text() for t in ax.texts)
    # fixed vs learnable: the two test MRRs of the dataset
    ax = report.figures[campaign_figures.MODES_PNG].axes[0]
    drawn = {round(float(line.get_xdata()[0]), 12) for line in ax.lines if len(line.get_xdata()) == 1}
    assert {round(row["best"]["test_mrr"], 12) for row in done} <= drawn


# ---------------------------------------------------------------------------------------------
# the rank cache


def test_a_second_report_runs_no_entity_pass(campaign):
    assert campaign.passes == 0
    assert campaign.second.rows == campaign.first.rows
    assert campaign.second.groups == campaign.first.groups and campaign.second.wins == campaign.first.wins
    files = list((Path(campaign.options.cache_dir) / RANKS_DIR).glob("*.pt"))
    assert len(files) >= 6  # NELLInductive:v1: three test settings, 0/0 on valid, and the learnable study's


class _Queries(SimpleNamespace):
    """Toy queries with the fields and the length of a QuerySet."""

    def __len__(self) -> int:
        return int(self.anchors.numel())


def _fake_context(tmp_path: Path, *, batch_size: int = 16, answers=(3, 4)) -> SimpleNamespace:
    """What RankCache reads of a SearchContext: two toy queries on a five-node graph."""
    checkpoint = tmp_path / "model.pth"
    if not checkpoint.exists():
        checkpoint.write_bytes(b"weights")
    graph = SimpleNamespace(num_nodes=5, num_relations=4, edge_index=torch.tensor([[0, 1], [1, 2]]),
                            edge_type=torch.tensor([0, 1]), text_embeddings=torch.ones(4, 3))
    queries = _Queries(anchors=torch.tensor([0, 1]), query_relations=torch.tensor([0, 2]),
                       forward_relations=torch.tensor([0, 0]), answers=torch.tensor(answers),
                       is_head=torch.tensor([False, True]))
    filters = SimpleNamespace(num_relations=4, keys=torch.tensor([1, 2]), answers=torch.tensor([2, 1]))
    prepared = SimpleNamespace(graph=graph, queries=queries, filters=filters, encoder="minilm")
    return SimpleNamespace(dataset="Toy", checkpoint_path=str(checkpoint), batch_size=batch_size,
                           device=torch.device("cpu"), split=lambda name: prepared)


def test_rank_cache_key_names_what_changes_ranks(tmp_path):
    cache = RankCache(tmp_path / "ranks")
    context = _fake_context(tmp_path)
    key = cache.key(context, "test", (0.2, 0.8))
    assert key["weights"] == [(0.2).hex(), (0.8).hex()] and key["batch_size"] == 16 and key["encoder"] == "minilm"
    variants = [cache.key(context, "valid", (0.2, 0.8)), cache.key(context, "test", (0.2, 0.8000001)),
                cache.key(context, "test", None), cache.key(_fake_context(tmp_path, batch_size=8), "test", (0.2, 0.8)),
                cache.key(_fake_context(tmp_path, answers=(3, 1)), "test", (0.2, 0.8))]
    paths = {cache.path(k) for k in [key] + variants}
    assert len(paths) == 1 + len(variants)


def test_rank_cache_round_trip_and_stale_files(tmp_path):
    cache = RankCache(tmp_path / "ranks")
    context = _fake_context(tmp_path)
    assert cache.get(context, "test", (0.2, 0.8)) is None and cache.misses == 1
    ranks = torch.tensor([1, 7])
    path = cache.put(context, "test", (0.2, 0.8), ranks)
    assert path.parent == tmp_path / "ranks" and torch.equal(cache.get(context, "test", (0.2, 0.8)), ranks)
    assert cache.hits == 1
    torch.save({"key": "another evaluation", "ranks": ranks}, path)  # a file that does not hold this key
    assert cache.get(context, "test", (0.2, 0.8)) is None
    path.write_bytes(b"not a torch file")
    assert cache.get(context, "test", (0.2, 0.8)) is None
    assert RankCache.under(None) is None and RankCache.under(tmp_path).folder == tmp_path / RANKS_DIR


# ---------------------------------------------------------------------------------------------
# figures on rows alone


def _row(dataset: str, mode: str, group: str, weights: list[float], delta: float) -> dict:
    deltas = {key: {"delta": delta, "low": delta - 0.01, "high": delta + 0.01,
                    "verdict": verdict(delta - 0.01, delta + 0.01)} for key in BASELINES}
    base = {key: {"weights": w, "valid_mrr": 0.4, "valid_source": "trial 0", "test_mrr": 0.4, "test_hits@10": 0.6}
            for key, w in (("checkpoint", [0.225, 0.775]), ("0.2/0.8", [0.2, 0.8]), ("0/0", [0.0, 0.0]))}
    return {"dataset": dataset, "mode": mode, "study": f"{dataset}/{mode}", "group": group, "checkpoint": "fusion.pth",
            "best": {"weights": weights, "weights_kind": "fixed", "test_mrr": 0.4 + delta, "valid_mrr": 0.4,
                     "test_hits@10": 0.6}, "baselines": base, "deltas": deltas}


def test_figures_of_fixed_studies_only():
    rows = [_row("FB15k237", "fixed", "pretraining", [2.5, 0.1], 0.03),
            _row("WN18RRInductive:v1", "fixed", "inductive_e", [0.2, 0.8], -0.02),
            _row("FBNELL:FBNELL_v1", "fixed", "inductive_er", [0.2, 0.8], 0.0)]
    drawn = campaign_figures.campaign_figures(rows)
    assert set(drawn.figures) == {campaign_figures.DELTA_PNG, campaign_figures.PLANE_PNG}
    assert "both fixed and learnable" in drawn.omitted[campaign_figures.MODES_PNG]
    plane = drawn.figures[campaign_figures.PLANE_PNG].axes[0]
    assert plane.get_xlim()[1] > 2.5  # reaches past a best beyond 1
    assert any(t.get_text() == "WN18RRInductive:v1\nFBNELL:FBNELL_v1" for t in plane.texts)  # one point, one label
    delta = drawn.figures[campaign_figures.DELTA_PNG].axes[0]
    labels = [t.get_text().strip() for t in delta.get_yticklabels()]
    assert labels == ["pretraining (1 dataset)", "FB15k237", "inductive_e (1 dataset)", "WN18RRInductive:v1",
                      "inductive_er (1 dataset)", "FBNELL:FBNELL_v1"]
    with pytest.raises(ValueError, match="both fixed and learnable"):
        campaign_figures.fixed_vs_learnable_figure(rows)
    nothing = campaign_figures.campaign_figures([{**rows[0], "best": None}])
    assert not nothing.figures and set(nothing.omitted) == set(campaign_figures.FIGURES)


def test_the_modes_figure_sets_both_learned_modes_against_fixed():
    """A dataset searched in fixed, learnable and learnable_free mode shows all three (the free mode was left out
    before); one with only fixed and learnable_free is drawn too, and a fixed-only dataset is not."""
    rows = [_row("FBNELL:FBNELL_v1", "fixed", "inductive_er", [0.2, 0.8], 0.01),
            _row("FBNELL:FBNELL_v1", "learnable", "inductive_er", [0.3, 0.7], 0.02),
            _row("FBNELL:FBNELL_v1", "learnable_free", "inductive_er", [0.5, 1.1], 0.035),
            _row("Metafam:Metafam", "fixed", "inductive_er", [0.0, 3.0], 0.07),
            _row("Metafam:Metafam", "learnable_free", "inductive_er", [0.1, 0.9], 0.005),
            _row("WN18RRInductive:v1", "fixed", "inductive_e", [0.2, 0.8], 0.0)]
    assert [(fixed["dataset"], [r["mode"] for r in learned]) for fixed, learned in campaign_figures.paired_modes(rows)] \
        == [("FBNELL:FBNELL_v1", ["learnable", "learnable_free"]), ("Metafam:Metafam", ["learnable_free"])]
    ax = campaign_figures.fixed_vs_learnable_figure(rows).axes[0]
    markers = {(line.get_marker(), round(float(line.get_xdata()[0]), 9)) for line in ax.lines
               if len(line.get_xdata()) == 1}
    assert markers == {("o", 0.41), ("s", 0.42), ("D", 0.435), ("o", 0.47), ("D", 0.405)}
    notes = [t.get_text() for t in ax.texts if "own setting" in t.get_text()]
    assert notes == ["learnable − fixed: +0.0100\nfree − fixed: +0.0250\nown setting: 0.4000",
                     "free − fixed: -0.0650\nown setting: 0.4000"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["FBNELL:FBNELL_v1", "Metafam:Metafam"]
    assert any("learnable_free mode" in text.get_text() for text in ax.figure.legends[0].get_texts())
