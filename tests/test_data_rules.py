"""Data rules said out loud: what each load drops, repairs, keeps with a symbol absent from its graph, or
finds odd, counted per file in ``KGDataset.report`` and logged once at WARNING naming the files.

On the real files (ARE_DATA_ROOT) the counts are fixed below and the query counts of reference_results.md do
not move; on small raw folders written in the registry's layout each kind of line is counted on its own.
The rules themselves are the table of ``are_model.data.builders``.
"""
from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from are_model.data import (DATASETS, FileReport, KGDataset, LoadReport, RawFormatError, VocabularyError, get_spec,
                            load_dataset)
from are_model.data.builders import rule_name
from are_model.data.cache import load_cached, save_cached

LOGGER = "are_model.data.dataset"

# 2 x test triples after the loader rules (reference_results.md): these may not move
QUERIES = {
    "FBNELL": 1194, "Metafam": 368, "ILPC2022:small": 5804, "ILPC2022:large": 20368,
    "FB15k237Inductive:v1": 822, "FB15k237Inductive:v2": 1894, "FB15k237Inductive:v3": 3462,
    "FB15k237Inductive:v4": 5680, "WN18RRInductive:v1": 746, "WN18RRInductive:v2": 1704,
    "WN18RRInductive:v3": 2286, "WN18RRInductive:v4": 5646, "NELLInductive:v1": 402, "NELLInductive:v2": 1870,
    "NELLInductive:v3": 3240, "NELLInductive:v4": 2894,
    # transductive: 2 x the lines of test.txt
    "FB15k237": 40932, "WN18RR": 6268, "CoDExSmall": 3656, "CoDExMedium": 20622,
}

# Everything the real files make the loaders say, computed once (every other file of these datasets is read
# as it stands: nothing dropped, repaired, odd or absent). file -> (lines, kept, dropped, kept_unseen)
NOTABLE = {
    "FBNELL": {"transductive_valid.txt": (1224, 1055, {"unseen_entity": 169}, {}),   # MTDEA: valid dropped
               "inf_test.txt": (597, 597, {}, {"unseen_entity": 5})},                # test: isolated nodes
    "ILPC2022:large": {"inf_valid.txt": (10179, 10179, {}, {"unseen_relation": 1})},
    "FB15k237": {"valid.txt": (17535, 17535, {}, {"unseen_entity": 9}),
                 "test.txt": (20466, 20466, {}, {"unseen_entity": 28})},
    "WN18RR": {"valid.txt": (3034, 3034, {}, {"unseen_entity": 210}),
               "test.txt": (3134, 3134, {}, {"unseen_entity": 210})},
}

RULES = {"FBNELL": "inductive/MTDEA", "Metafam": "inductive/MTDEA", "ILPC2022:small": "inductive/ILPC",
         "ILPC2022:large": "inductive/ILPC", "FB15k237": "fb15k237", "WN18RR": "wn18rr",
         "CoDExSmall": "transductive", "CoDExMedium": "transductive"}


@functools.lru_cache(maxsize=None)
def _load_cached(name: str, root: str, cache: str) -> KGDataset:
    return load_dataset(name, root, cache_dir=cache, download=False)


@pytest.fixture
def load(data_root: Path, cache_dir: Path, require_dataset):
    def _load(name: str) -> KGDataset:
        require_dataset(name)
        return _load_cached(name, str(data_root), str(cache_dir))
    return _load


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def _query_targets(ds: KGDataset, split: str) -> int:
    return ds.split(split).target_edge_index.size(1)


# ---------------------------------------------------------------------------------------------- real files

def test_nell_inductive_v1_and_metafam_report_exact_counts(load, data_root, cache_dir, caplog):
    """Neither has a valid/test triple with a symbol absent from its graph (checked here against the raw
    files), so MTDEA's drop rule drops nothing in Metafam and GraIL's keep rule keeps no isolated node in
    NELLInductive:v1; every line is read as it stands, and the load says nothing at WARNING."""
    expected = {
        "NELLInductive:v1": ("grail", [("train", "train.txt", 4687, None), ("valid", "valid.txt", 414, "training"),
                                       ("inf_graph", "train_ind.txt", 833, None),
                                       ("inf_valid", "valid_ind.txt", 101, "inference"),
                                       ("inf_test", "test_ind.txt", 100, "inference")]),
        "Metafam": ("inductive/MTDEA", [("train", "transductive_train.txt", 13821, None),
                                        ("inf_graph", "inference_graph.txt", 7257, None),
                                        ("valid", "transductive_valid.txt", 590, "training"),
                                        ("test", "inf_test.txt", 184, "inference")]),
    }
    for name, (rule, files) in expected.items():
        report = load(name).report
        assert report.rule == rule and not report.notable
        assert [(f.role, f.file, f.lines, f.kept, f.ranked_on) for f in report.files] == \
            [(role, file, lines, lines, on) for role, file, lines, on in files]
        assert all(f.line_ending == "LF" and not (f.dropped or f.repaired or f.odd or f.kept_unseen)
                   for f in report.files)
        assert report.total("dropped") == report.total("kept_unseen") == {}
        # independently: no query symbol is absent from the graph it is ranked on
        raw = get_spec(name).raw_dir(data_root)
        graph_of = {"training": files[0][1], "inference": next(f for r, f, _, on in files if r == "inf_graph")}
        for role, file, _, on in files:
            if on is None:
                continue
            rows = [line.split() for line in (raw / file).read_text().splitlines()]
            graph = [line.split() for line in (raw / graph_of[on]).read_text().splitlines()]
            entities, relations = {e for h, _, t in graph for e in (h, t)}, {r for _, r, _ in graph}
            assert all(h in entities and t in entities and r in relations for h, r, t in rows), (name, file)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for name in expected:  # a fresh load (not the lru cache): nothing at WARNING, the summary at DEBUG
            ds = load_dataset(name, data_root, cache_dir=cache_dir, download=False)
            assert ds.report == load(name).report
    assert _warnings(caplog) == []
    assert sum("every line read as it stands" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_shipped_dataset_reports_its_counts_and_its_queries_do_not_move(load, name):
    ds = load(name)
    report = ds.report
    assert report.dataset == ds.name and report.rule == rule_name(get_spec(name))
    if name in RULES:
        assert report.rule == RULES[name]
    elif "Inductive:" in name:
        assert report.rule == "grail"
    assert [f.role for f in report.files] == [f.role for f in get_spec(name).files if f.role in
                                              {r.role for r in report.files}]
    notable = {f.file: (f.lines, f.kept, f.dropped, f.kept_unseen) for f in report.files if f.notable}
    assert notable == NOTABLE.get(name, {})
    for f in report.files:
        assert f.lines == f.kept + sum(f.dropped.values())
        assert not f.repaired and not f.odd
        assert f.line_ending == ("CRLF" if name == "FB15k237" and f.file.endswith(".txt") else "LF")
    # the kept query lines are the queries
    test_roles = ("inf_valid", "inf_test") if report.rule == "grail" else ("test",)
    assert sum(report.file(role).kept for role in test_roles) == _query_targets(ds, "test")
    assert report.file("valid").kept == _query_targets(ds, "valid")
    assert 2 * _query_targets(ds, "test") == QUERIES[name]


def test_fbnell_drops_and_isolated_nodes_match_the_raw_files(load, data_root):
    """The two things FBNELL's load says, recomputed from the raw files: 169 valid triples with an entity
    absent from the training graph are dropped (MTDEA); 5 test triples with an entity absent from the
    inference graph are ranked, on isolated nodes."""
    ds = load("FBNELL")
    raw = get_spec("FBNELL").raw_dir(data_root)

    def rows(file: str) -> list[list[str]]:
        return [line.split() for line in (raw / file).read_text().splitlines()]

    def entities(file: str) -> set[str]:
        return {e for h, _, t in rows(file) for e in (h, t)}

    train, inference = entities("transductive_train.txt"), entities("inference_graph.txt")
    assert sum(h not in train or t not in train for h, _, t in rows("transductive_valid.txt")) == 169
    absent = {e for h, _, t in rows("inf_test.txt") for e in (h, t) if e not in inference}
    assert sum(h not in inference or t not in inference for h, _, t in rows("inf_test.txt")) == 5
    test = ds.test
    degree = torch.bincount(test.edge_index.flatten(), minlength=test.num_nodes)
    isolated = {test.entity_names[i] for i in torch.nonzero(degree == 0).flatten().tolist()}
    assert isolated == absent and len(absent) >= 1


def test_a_cached_load_reports_and_warns_the_same(data_root, tmp_path, caplog):
    """FBNELL's documented validation filter (169 lines) is the public loader's result: said at INFO, not WARNING,
    once per load, cached or not."""
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        first = load_dataset("FBNELL", data_root, cache_dir=cache, download=False)
        files = list((cache / "FBNELL-FBNELL_v1").glob("*.pt"))
        stamp = files[0].stat().st_mtime_ns
        second = load_dataset("FBNELL", data_root, cache_dir=cache, download=False)
    assert len(files) == 1 and files[0].stat().st_mtime_ns == stamp  # the second load read the cache
    assert first.report == second.report and second.report.raw_dir == str(get_spec("FBNELL").raw_dir(data_root))
    assert _warnings(caplog) == []
    warned = [r.getMessage() for r in caplog.records if r.name == LOGGER and "rule" in r.getMessage()
              and r.levelno == logging.INFO]
    assert len(warned) == 2 and warned[0] == warned[1]  # once per load, the same line
    assert "transductive_valid.txt: 1224 lines; dropped 169 (unseen_entity 169)" in warned[0]
    assert str(get_spec("FBNELL").raw_dir(data_root)) in warned[0] and "inductive/MTDEA" in warned[0]
    assert LoadReport.from_dict(torch.load(files[0], weights_only=True)["report"]) == first.report.at(None)


def test_a_cache_entry_without_a_report_is_rebuilt(data_root, tmp_path, caplog):
    cache = tmp_path / "cache"
    load_dataset("Metafam", data_root, cache_dir=cache, download=False)
    [target] = (cache / "Metafam-Metafam").glob("*.pt")
    payload = load_cached(target)
    assert payload is not None and "report" in payload
    del payload["report"]
    save_cached(target, payload)
    with caplog.at_level(logging.WARNING, logger="are_model.data"):
        ds = load_dataset("Metafam", data_root, cache_dir=cache, download=False)
    assert "malformed processed cache" in caplog.text
    assert ds.report is not None and ds.report.file("test").kept == 184
    assert "report" in load_cached(target)


# ---------------------------------------------------------------------------------------------- synthetic

def _write(raw: Path, files: dict[str, str]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (raw / name).write_bytes(text.encode("utf-8"))


MTDEA_FILES = {
    # space-separated like the MTDEA originals
    "transductive_train.txt": "a r1 b\nb r2 c\nc r1 a\na r1 b\n",          # line 4 repeats line 1
    "inference_graph.txt": "x r1 y\ny r2 z\nz\tr1 x\n",                      # line 3: a tab among spaces
    "transductive_valid.txt": ("a r2 c\n"
                               "a r1 q\n"                                    # q: not in the training graph
                               "b r9 c\n"                                    # r9: not in the training graph
                               "\n"                                          # blank
                               "c r2 b  \r\n"),                              # trailing spaces, a CRLF among LF
    "inf_test.txt": ("x r1 z\n"
                     "y r2 w\n"                                              # w: not in the inference graph
                     "z r3 x\n"                                              # r3: not in the inference graph
                     "x r1 z\n"                                              # repeats line 1
                     "y r1 x"),                                              # no final line ending
}


def test_synthetic_mtdea_folder_counts_every_kind_of_line(tmp_path, caplog):
    """Metafam's layout (MTDEA rule): a repeated triple, a line with an odd separator, an unseen entity and an
    unseen relation in valid (dropped) and in test (kept), a blank line, a repaired line, a missing final
    line ending: each counted on its file, one WARNING line naming the folder and the files."""
    raw = get_spec("Metafam").raw_dir(tmp_path / "root")
    _write(raw, MTDEA_FILES)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = load_dataset("Metafam", tmp_path / "root", cache_dir=tmp_path / "cache", download=False)
    report = ds.report
    assert report.rule == "inductive/MTDEA" and report.raw_dir == str(raw)
    assert report.file("transductive_train.txt") == FileReport(
        "train", "transductive_train.txt", lines=4, kept=4, odd={"duplicate": 1})
    assert report.file("inference_graph.txt") == FileReport(
        "inf_graph", "inference_graph.txt", lines=3, kept=3, odd={"separator": 1})
    assert report.file("valid") == FileReport(
        "valid", "transductive_valid.txt", lines=5, kept=2, ranked_on="training",
        dropped={"unseen_entity": 1, "unseen_relation": 1, "blank": 1},
        repaired={"line_ending": 1, "whitespace": 1})
    assert report.file("test") == FileReport(
        "test", "inf_test.txt", lines=5, kept=5, line_ending="LF", ranked_on="inference",
        odd={"duplicate": 1, "no_final_newline": 1}, kept_unseen={"unseen_entity": 1, "unseen_relation": 1})
    assert report.total("dropped") == {"unseen_entity": 1, "unseen_relation": 1, "blank": 1}

    # what the rules did to the graphs
    assert ds.train.edge_index.size(1) == 2 * 4  # the repeated fact is a parallel edge, as ULTRA keeps it
    assert _names(ds.valid) == [("a", "r2", "c"), ("c", "r2", "b")]
    assert _names(ds.test) == [("x", "r1", "z"), ("y", "r2", "w"), ("z", "r3", "x"), ("x", "r1", "z"),
                               ("y", "r1", "x")]
    assert 2 * _query_targets(ds, "test") == 10  # every test line is a query, the repeated one twice
    assert ds.test.entity_names == ["x", "y", "z", "w"] and ds.test.relation_names == ["r1", "r2", "r3"]
    degree = torch.bincount(ds.test.edge_index.flatten(), minlength=ds.test.num_nodes)
    assert degree.tolist() == [4, 4, 4, 0]  # w: an isolated node
    assert not bool((ds.test.edge_type % 3 == 2).any())  # r3: a relation without edges

    # one WARNING, naming the folder and each file with its counts
    warned = _warnings(caplog)
    assert len(warned) == 1
    line = warned[0]
    assert "\n" not in line and line.startswith(f"Metafam:Metafam ({raw}): ")
    for phrase in ("transductive_train.txt: 4 lines; odd 1 (duplicate 1)",
                   "inference_graph.txt: 3 lines; odd 1 (separator 1)",
                   "transductive_valid.txt: 5 lines; dropped 3 (blank 1, unseen_entity 1, unseen_relation 1); "
                   "repaired 2 (line_ending 1, whitespace 1)",
                   "inf_test.txt: 5 lines; kept 2 with a symbol absent from the inference graph "
                   "(unseen_entity 1, unseen_relation 1); odd 2 (duplicate 1, no_final_newline 1)",
                   "[rule inductive/MTDEA"):
        assert phrase in line, phrase

    # the same from the processed cache
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        again = load_dataset("Metafam", tmp_path / "root", cache_dir=tmp_path / "cache", download=False)
    assert again.report == report and _warnings(caplog) == [line]


def _names(split) -> list[tuple[str, str, str]]:
    ent, rel = split.entity_names, split.relation_names
    index, types = split.target_edge_index, split.target_edge_type
    return [(ent[h], rel[r], ent[t]) for h, r, t in zip(index[0].tolist(), types.tolist(), index[1].tolist())]


def test_a_line_that_cannot_be_read_is_an_error_not_a_drop(tmp_path):
    """Three fields or an error naming file and line (ULTRA's ``u, r, v = l.split()`` fails there too):
    a benchmark file is never shortened quietly."""
    raw = get_spec("Metafam").raw_dir(tmp_path / "root")
    _write(raw, {**MTDEA_FILES, "inf_test.txt": "x r1 z\nx r1 z extra\n"})
    with pytest.raises(RawFormatError) as info:
        load_dataset("Metafam", tmp_path / "root", download=False)
    assert f"{raw / 'inf_test.txt'}:2: expected 3 non-empty fields" in str(info.value)


def test_synthetic_grail_folder_keeps_absent_test_entities_as_isolated_nodes(tmp_path, caplog):
    """NELLInductive's layout (GraIL rule, tab-separated): a valid entity absent from train.txt and a test
    entity absent from train_ind.txt are kept on isolated nodes; a relation of train.txt that labels no
    edge of train_ind.txt is kept without edges; a file with CRLF throughout is read as text mode reads
    it (recorded, not a repair); a relation never seen in train.txt/valid.txt is an error."""
    raw = get_spec("NELLInductive:v1").raw_dir(tmp_path / "root")
    _write(raw, {
        "train.txt": "a\tr1\tb\nb\tr2\tc\n",
        "valid.txt": "a\tr1\tnew\n",                              # new: an isolated node of the training graph
        "train_ind.txt": "x\tr1\ty\r\ny\tr1\tz\r\n",               # CRLF throughout
        "valid_ind.txt": "x\tr2\tz\n",                            # r2: no edge of train_ind.txt
        "test_ind.txt": "x\tr1\tfresh\n y\tr1\tx\n",              # fresh: isolated; a leading space
    })
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = load_dataset("NELLInductive:v1", tmp_path / "root", download=False)
    report = ds.report
    assert report.rule == "grail"
    assert report.file("valid.txt").kept_unseen == {"unseen_entity": 1}
    assert report.file("train_ind.txt") == FileReport("inf_graph", "train_ind.txt", lines=2, kept=2,
                                                      line_ending="CRLF")
    assert report.file("valid_ind.txt").kept_unseen == {"unseen_relation": 1}
    assert report.file("test_ind.txt") == FileReport(
        "inf_test", "test_ind.txt", lines=2, kept=2, ranked_on="inference",
        repaired={"whitespace": 1}, kept_unseen={"unseen_entity": 1})
    assert ds.train.num_nodes == 4 and ds.train.entity_names[-1] == "new"
    assert ds.test.num_nodes == 4 and ds.test.entity_names[-1] == "fresh"
    assert _names(ds.test) == [("x", "r2", "z"), ("x", "r1", "fresh"), ("y", "r1", "x")]
    [line] = _warnings(caplog)
    assert f"({raw})" in line and "valid.txt: 1 lines; kept 1 with a symbol absent from the training graph" in line
    assert "test_ind.txt: 2 lines; kept 1 with a symbol absent from the inference graph (unseen_entity 1); " \
           "repaired 1 (whitespace 1)" in line and "train_ind.txt" not in line

    (raw / "test_ind.txt").write_text("x\tnever_seen\ty\n")
    with pytest.raises(VocabularyError, match=r"test_ind\.txt:1: relation 'never_seen'"):
        load_dataset("NELLInductive:v1", tmp_path / "root", download=False)


def test_synthetic_transductive_folder_repairs_tab_fields(tmp_path, caplog):
    """ConceptNet100k's layout (generic transductive rule, tab-separated fields): whitespace around a tab-separated
    field is stripped (the entity is 'a', not 'a '), a BOM is removed, a test entity absent from the
    training graph is kept as an isolated node."""
    assert get_spec("ConceptNet100k").delimiter == "\t"
    raw = get_spec("ConceptNet100k").raw_dir(tmp_path / "root")
    _write(raw, {"train.txt": "\ufeffa\tr1\tb\nb\tr1\tc\n", "valid.txt": "a \tr1\tc\n", "test.txt": "c\tr1\tz\n"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = load_dataset("ConceptNet100k", tmp_path / "root", download=False)
    report = ds.report
    assert report.file("train").repaired == {"bom": 1}
    assert report.file("valid").repaired == {"whitespace": 1} and not report.file("valid").kept_unseen
    assert report.file("test").kept_unseen == {"unseen_entity": 1}
    assert ds.train.entity_names == ["a", "b", "c", "z"] and ds.test.num_nodes == 4
    [line] = _warnings(caplog)
    assert "train.txt: 2 lines; repaired 1 (bom 1)" in line and "rule transductive" in line


def test_report_round_trip_and_lookup():
    report = LoadReport("X", "grail", (
        FileReport("train", "train.txt", 3, 2, dropped={"blank": 1}),
        FileReport("inf_test", "test_ind.txt", 4, 4, ranked_on="inference", kept_unseen={"unseen_entity": 2},
                   odd={"duplicate": 1}),
    ))
    assert LoadReport.from_dict(report.to_dict()) == report
    assert report.file("test_ind.txt") is report.file("inf_test")
    assert report.total("odd") == {"duplicate": 1} and report.notable
    with pytest.raises(KeyError, match="no raw file 'valid'"):
        report.file("valid")
    with pytest.raises(TypeError):
        LoadReport.from_dict({"dataset": "X", "rule": "grail", "files": [dict(report.files[0].to_dict(), lines="3")]})
    assert {rule_name(spec) for spec in DATASETS.values()} == {
        "transductive", "fb15k237", "wn18rr", "grail", "inductive/ILPC", "inductive/MTDEA", "inductive/HM"}


def test_the_command_line_shows_the_report_at_its_default_level(tmp_path, checkpoint_root):
    """``are-search evaluate`` without -v: the load's WARNING line reaches stderr, naming the file."""
    raw = get_spec("Metafam").raw_dir(tmp_path / "root")
    _write(raw, MTDEA_FILES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARE_")}
    result = subprocess.run(
        [sys.executable, "-m", "search", "evaluate", "--dataset", "Metafam", "--checkpoint", "ultra_3g", "--json",
         "--data-root", str(tmp_path / "root"), "--checkpoint-root", str(checkpoint_root), "--cache-dir",
         str(tmp_path / "cache"), "--offline", "--device", "cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if " WARNING " in line and LOGGER in line]
    assert len(warned) == 1, result.stderr
    assert str(raw) in warned[0] and "transductive_valid.txt: 5 lines; dropped 3" in warned[0]
