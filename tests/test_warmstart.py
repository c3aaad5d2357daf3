"""Warm starts that transfer (search.study.similarity, search.study.warmstart) on real datasets and fusion.pth.

Graph statistics are checked against counts taken from the loaded data; the distance's properties on
real graphs; which sources qualify and how their settings are restricted and clipped; the order of
the queue (known points first); and a real launch that warm-starts from the nearest source and runs
its settings. The source studies are written directly (their best settings and graphs are all a warm
start reads; their trials are not re-run), so only the target's two trials are evaluated.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

import search
from are_model.data import load_dataset
from search.errors import StudyError, UsageError
from search.options import LoadOptions
from search.study.similarity import INDUCTIVE_PENALTY, GraphStats, distance, graph_stats, nearest
from search.study.spec import spec_from_values
from search.study.warmstart import (GRAPH_STATS_ATTR, WARM_START_ATTR, apply_warm_start, warm_start_points)

REPO = Path(__file__).resolve().parents[1]
TARGET = "NELLInductive:v1"
WEIGHTS = ("similarity_enhancer_weight", "prompt_enhancer_weight")


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


@pytest.fixture(scope="module")
def stats(options, require_dataset):
    """GraphStats of the datasets these tests compare, from the real files."""
    def of(name: str) -> GraphStats:
        require_dataset(name)
        return graph_stats(load_dataset(name, options.data_root, cache_dir=options.cache_dir, download=False))

    return {name: of(name) for name in (TARGET, "NELLInductive:v2", "Metafam", "CoDExSmall", "WN18RRInductive:v1")}


def _fixed_source(storage, dataset: str, best: tuple[float, float], *, stats: GraphStats | None = None,
                  mode: str = "fixed", value: float = 0.5, cap: float = 4.0) -> optuna.Study:
    """A finished source study as a launch leaves it (spec attr, graph_stats attr when given): a worse
    0.2/0.8 trial and the best trial ``best``; its values are made up (only the ranking matters here)."""
    spec = spec_from_values({"dataset": dataset, "checkpoint": "fusion", "mode": mode}, "test")
    study = optuna.create_study(study_name=str(spec.name), storage=storage, direction="maximize")
    study.set_user_attr("spec", spec.to_attr())
    if stats is not None:
        study.set_user_attr(GRAPH_STATS_ATTR, stats.to_attr())
    distributions = {name: FloatDistribution(0.0, cap) for name in WEIGHTS}
    study.add_trial(optuna.trial.create_trial(params=dict(zip(WEIGHTS, (0.2, 0.8))), distributions=distributions,
                                              value=value - 0.1))
    study.add_trial(optuna.trial.create_trial(params=dict(zip(WEIGHTS, best)), distributions=distributions,
                                              value=value))
    return study


def _learnable_source(storage, dataset: str) -> optuna.Study:
    spec = spec_from_values({"dataset": dataset, "checkpoint": "fusion", "mode": "learnable"}, "test")
    study = optuna.create_study(study_name=str(spec.name), storage=storage, direction="maximize")
    study.set_user_attr("spec", spec.to_attr())
    study.add_trial(optuna.trial.create_trial(
        params={"initial_similarity_weight": 0.3, "fusion_lr": 0.01, "body": "frozen"},
        distributions={"initial_similarity_weight": FloatDistribution(0.01, 0.99),
                       "fusion_lr": FloatDistribution(1e-6, 1.0, log=True),
                       "body": CategoricalDistribution(["frozen", "trained"])}, value=0.6))
    return study


# ------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize("name, expected", [(TARGET, (3103, 14, 4687)), ("Metafam", (1316, 28, 13821))])
def test_graph_stats_are_the_counts_of_the_validation_graph(options, require_dataset, name, expected):
    require_dataset(name)
    data = load_dataset(name, options.data_root, cache_dir=options.cache_dir, download=False)
    stats = graph_stats(data)
    graph = data.valid
    relations = len(graph.relation_names)
    forward = int((graph.edge_type < relations).sum())  # the inverse block is r + R
    assert (stats.entities, stats.relations, stats.edges) == expected
    assert stats.entities == graph.num_nodes and stats.relations == relations == graph.num_relations // 2
    assert stats.edges == forward == graph.edge_index.shape[1] // 2
    assert stats.edges_per_relation == pytest.approx(forward / relations)
    assert stats.density == pytest.approx(forward / graph.num_nodes ** 2) and 0 < stats.density < 1
    assert stats.inductive is True and data.setting == "inductive"
    assert stats.relation_vocabulary == frozenset(graph.relation_names) and len(stats.relation_vocabulary) == relations
    assert GraphStats.from_attr(json.loads(json.dumps(stats.to_attr()))) == stats


def test_distance_is_zero_on_itself_symmetric_and_separates_settings(stats):
    names = list(stats)
    for a in names:
        assert distance(stats[a], stats[a]) == 0.0
        for b in names:
            assert distance(stats[a], stats[b]) == pytest.approx(distance(stats[b], stats[a]), abs=1e-12)
            if a != b:
                assert distance(stats[a], stats[b]) > 0
    nell = stats[TARGET]
    assert stats["CoDExSmall"].inductive is False
    same_family = distance(nell, stats["NELLInductive:v2"])
    across_settings = distance(nell, stats["CoDExSmall"])
    assert across_settings > same_family
    assert across_settings >= INDUCTIVE_PENALTY  # the setting penalty alone
    ranked = nearest(nell, {n: s for n, s in stats.items() if n != TARGET}, 2)
    assert len(ranked) == 2 and ranked[0][1] <= ranked[1][1]
    assert ranked == sorted(((n, distance(nell, s)) for n, s in stats.items() if n != TARGET),
                            key=lambda item: (item[1], item[0]))[:2]
    with pytest.raises(UsageError):
        nearest(nell, stats, 0)


# ------------------------------------------------------------------------------------ which settings


def test_sources_qualify_and_their_settings_are_restricted_and_clipped(stats, options):
    storage = optuna.storages.InMemoryStorage()
    metafam = _fixed_source(storage, "Metafam", (0.1, 6.0), stats=stats["Metafam"], cap=8.0)
    v2 = _fixed_source(storage, "NELLInductive:v2", (0.5, 1.25), stats=stats["NELLInductive:v2"])
    own = _fixed_source(storage, TARGET, (0.9, 0.9), stats=stats[TARGET])  # the target's dataset: never a source
    learnable = _learnable_source(storage, "WN18RRInductive:v1")  # another mode
    empty = optuna.create_study(study_name="CoDExSmall/fixed", storage=storage, direction="maximize")
    empty.set_user_attr(GRAPH_STATS_ATTR, stats["CoDExSmall"].to_attr())  # no complete trial
    spec = spec_from_values({"dataset": TARGET, "checkpoint": "fusion"}, "test")
    points = warm_start_points(stats[TARGET], [metafam, v2, own, learnable, empty], 5, spec=spec)
    assert [p.source for p in points] == [str(s.study_name) for s in sorted(
        (v2, metafam), key=lambda s: distance(stats[TARGET], GraphStats.from_attr(s.user_attrs[GRAPH_STATS_ATTR])))]
    by_source = {p.source: p for p in points}
    assert by_source["Metafam:Metafam/fixed"].params == {"similarity_enhancer_weight": 0.1,
                                                         "prompt_enhancer_weight": 4.0}  # clipped to the cap
    assert by_source["NELLInductive:v2/fixed"].params == {"similarity_enhancer_weight": 0.5,
                                                          "prompt_enhancer_weight": 1.25}
    assert by_source["NELLInductive:v2/fixed"].trial == 1 and by_source["NELLInductive:v2/fixed"].value == 0.5
    pinned = spec_from_values({"dataset": TARGET, "checkpoint": "fusion", "space": {"similarity_enhancer_weight": 0.3}},
                              "test")
    only_prompt = warm_start_points(stats[TARGET], [v2], 1, spec=pinned)
    assert only_prompt[0].params == {"prompt_enhancer_weight": 1.25}  # a pinned parameter is left out
    # a source without graph_stats has its dataset loaded (read only: nothing is written to it)
    bare = _fixed_source(storage, "WN18RRInductive:v1", (0.3, 0.3))
    found = warm_start_points(stats[TARGET], [bare], 1, spec=spec, options=options)
    assert found[0].distance == pytest.approx(distance(stats[TARGET], stats["WN18RRInductive:v1"]))
    assert GRAPH_STATS_ATTR not in bare.user_attrs


def test_warm_points_queue_after_the_known_points_once(tmp_path, stats, options):
    from search.runners.setup import open_study

    url = f"sqlite:///{tmp_path / 'q.db'}"
    sources = [_fixed_source(url, "NELLInductive:v2", (0.5, 1.25), stats=stats["NELLInductive:v2"]),
               _fixed_source(url, "Metafam", (0.6, 0.6))]
    spec = spec_from_values({"dataset": TARGET, "checkpoint": "fusion"}, "test")
    study, created = open_study(spec, url, Path(options.checkpoint_root) / "fusion.pth")
    assert created
    points = apply_warm_start(study, spec, sources, options, 2)
    assert [p.source for p in points] == ["NELLInductive:v2/fixed", "Metafam:Metafam/fixed"]
    trials = study.get_trials(deepcopy=False)
    assert [t.user_attrs.get("known_point") for t in trials[:3]] == ["checkpoint", "0.2/0.8", "no enhancement"]
    assert [t.user_attrs.get("warm_start_from") for t in trials[3:]] == ["NELLInductive:v2/fixed",
                                                                         "Metafam:Metafam/fixed"]
    assert [t.system_attrs["fixed_params"] for t in trials[3:]] == [p.params for p in points]
    assert trials[3].user_attrs["distance"] == pytest.approx(distance(stats[TARGET], stats["NELLInductive:v2"]))
    assert all(t.state == optuna.trial.TrialState.WAITING for t in trials)
    assert [entry["from"] for entry in study.user_attrs[WARM_START_ATTR]] == [p.source for p in points]
    assert GraphStats.from_attr(study.user_attrs[GRAPH_STATS_ATTR]) == stats[TARGET]
    assert apply_warm_start(study, spec, sources, options, 2) == []  # idempotent
    assert len(study.get_trials(deepcopy=False)) == 5


def test_spec_keys_and_flags():
    spec = spec_from_values({"dataset": TARGET, "checkpoint": "fusion"}, "test")
    assert spec.warm_start_from == [] and spec.warm_start_k == 3
    spec = spec_from_values({"dataset": TARGET, "checkpoint": "fusion", "warm_start_from": "FBNELL/fixed, Metafam/fixed",
                             "warm_start_k": 1}, "test")
    assert spec.warm_start_from == ["FBNELL/fixed", "Metafam/fixed"] and spec.warm_start_k == 1
    assert spec.to_attr()["warm_start_from"] == ["FBNELL/fixed", "Metafam/fixed"]
    with pytest.raises(StudyError, match="warm_start_from"):
        spec_from_values({"dataset": TARGET, "checkpoint": "fusion", "warm_start_from": ["FBNELL"]}, "test")
    with pytest.raises(StudyError, match="warm_start_k"):
        spec_from_values({"dataset": TARGET, "checkpoint": "fusion", "warm_start_k": 0}, "test")
    from search.cli import build_parser

    args = build_parser().parse_args(["launch", "--dataset", TARGET, "--checkpoint", "fusion",
                                      "--warm-start-from", "FBNELL/fixed", "Metafam/fixed", "--warm-start-k", "2"])
    assert args.warm_start_from == ["FBNELL/fixed", "Metafam/fixed"] and args.warm_start_k == 2


# ------------------------------------------------------------------------------------------ a launch


def test_launch_warm_starts_from_the_nearest_source_and_runs_its_settings(tmp_path, stats, options):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _fixed_source(url, "NELLInductive:v2", (0.5, 1.25), stats=stats["NELLInductive:v2"])
    _fixed_source(url, "Metafam", (0.05, 0.9))  # farther; no graph_stats: its dataset is loaded
    _learnable_source(url, "WN18RRInductive:v1")  # nearest of all, but another mode
    assert distance(stats[TARGET], stats["WN18RRInductive:v1"]) < distance(stats[TARGET], stats["NELLInductive:v2"])
    # One known point (the checkpoint's 0.2250/0.7750; 0.2/0.8 and 0/0 lie outside this range), then
    # the warm point: two evaluated trials in all.
    spec_file = tmp_path / "nell.yaml"
    spec_file.write_text(f"dataset: {TARGET}\ncheckpoint: fusion\nmode: fixed\ntrials: 2\npruner: none\n"
                         "space:\n  similarity_enhancer_weight: [0.21, 1.0]\n")
    result = search.launch(spec_file, warm_start_from=["NELLInductive:v2/fixed", "metafam/fixed",
                                                       "WN18RRInductive:v1/learnable"],
                           warm_start_k=1, storage=url, options=options)
    assert result.created and result.counts == {"COMPLETE": 2}
    assert [(w["from"], w["params"], w["enqueued"]) for w in result.warm_start] == [
        ("NELLInductive:v2/fixed", {"similarity_enhancer_weight": 0.5, "prompt_enhancer_weight": 1.25}, True)]
    study = optuna.load_study(study_name=f"{TARGET}/fixed", storage=url)
    first, second = study.get_trials(deepcopy=False)
    assert first.user_attrs.get("known_point") == "checkpoint"
    assert second.user_attrs["warm_start_from"] == "NELLInductive:v2/fixed"
    assert second.params == {"similarity_enhancer_weight": 0.5, "prompt_enhancer_weight": 1.25}
    assert second.user_attrs["settings"]["prompt_enhancer_weight"] == 1.25
    assert 0 < second.value < 1
    assert GraphStats.from_attr(study.user_attrs[GRAPH_STATS_ATTR]) == stats[TARGET]
    assert study.user_attrs["spec"]["warm_start_from"] == ["NELLInductive:v2/fixed", "metafam/fixed",
                                                           "WN18RRInductive:v1/learnable"]
    status = {entry.study: entry for entry in search.status(storage=url).studies}
    assert [w["from"] for w in status[f"{TARGET}/fixed"].warm_start] == ["NELLInductive:v2/fixed"]
    # resumed: never warm-started again
    again = search.resume(f"{TARGET}/fixed", trials=2, storage=url, options=options)
    assert again.warm_start == [] and len(study.get_trials(deepcopy=False)) == 2


def test_unknown_source_is_one_line_and_creates_nothing(tmp_path, options):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    _fixed_source(url, "NELLInductive:v2", (0.5, 1.25))
    with pytest.raises(StudyError, match="Metafam/fixed") as caught:
        search.launch(dataset=TARGET, checkpoint="fusion", trials=1, warm_start_from=["Metafam/fixed"], storage=url,
                      options=options)
    assert "\n" not in str(caught.value)
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["NELLInductive:v2/fixed"]
    run = subprocess.run([sys.executable, "-m", "search", "-q", "launch", "--dataset", TARGET, "--checkpoint", "fusion",
                          "--trials", "1", "--warm-start-from", "Metafam/fixed", "--storage", url,
                          "--data-root", options.data_root, "--text-root", options.text_root, "--checkpoint-root",
                          options.checkpoint_root, "--cache-dir", options.cache_dir, "--device", "cpu"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("are-search launch: error: ") and "Metafam/fixed" in lines[0]
