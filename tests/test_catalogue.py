"""The dataset catalogue (``search.inputs.catalogue``, ``are-search datasets``): every registered dataset with its
benchmark group, setting, source, and whether its raw files and relation texts are at hand."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from are_model.data import DATASETS, UnknownDatasetError, get_spec, resolve_dataset_name
from are_model.data.counts import count_raw_files
from are_model.data.registry import CITATIONS, COUNTS, GROUP_ORDER, GROUPS
from are_model.text.relation_texts import DEFAULT_LLM
from search.inputs.catalogue import DatasetEntry, catalogue
from search.cli import main

#: the datasets whose raw files this suite needs under the data root (the shared root holds more; see its
#: PROVENANCE.md): the catalogue must call them present
NEEDED = {"FBNELL:FBNELL_v1", "Metafam:Metafam", "NELLInductive:v1", "FB15k237Inductive:v1", "WN18RRInductive:v1",
          "ILPC2022:small", "CoDExSmall"}


def _has_raw_files(name: str, data_root: Path) -> bool:
    """Whether every required raw file of ``name`` is a file under ``data_root`` (read from the folder here)."""
    spec = get_spec(name)
    folder = spec.raw_dir(data_root)
    on_disk = {entry.name for entry in folder.iterdir() if entry.is_file()} if folder.is_dir() else set()
    return {raw.local_name for raw in spec.files if not raw.optional} <= on_disk
KEYS = ["name", "group", "setting", "source", "present", "texts", "entities", "relations", "triples", "counted",
        "citation"]


def _reference_groups(text: str) -> dict[str, set[str]]:
    """The groups as reference_results.md lists them, in canonical names."""
    section = text.split("## The benchmark's groups", 1)[1]
    groups: dict[str, set[str]] = {}
    for match in re.finditer(r"- \*\*(\w+) \((\d+)\):\*\* (.*?)(?=\n- \*\*|\nPublished|\Z)", section, re.S):
        group, count, body = match.group(1), int(match.group(2)), " ".join(match.group(3).split()).rstrip(".")
        names: set[str] = set()
        for item in body.split(", "):
            cls, _, versions = item.partition(" ")
            if not versions:
                names.add(resolve_dataset_name(cls))
            elif "-" in versions:  # v1-v4
                low, high = versions.split("-")
                names |= {resolve_dataset_name(f"{cls}:v{i}") for i in range(int(low[1:]), int(high[1:]) + 1)}
            else:  # small/large, 25/50/75/100
                names |= {resolve_dataset_name(f"{cls}:{v}") for v in versions.split("/")}
        assert len(names) == count, (group, names)
        groups[group] = names
    return groups


def test_groups_are_the_reference_results_groups(data_root):
    doc = data_root.parent / "docs" / "reference_results.md"
    if not doc.is_file():
        pytest.skip(f"{doc} is not here")
    reference = _reference_groups(doc.read_text(encoding="utf-8"))
    assert {group: set(names) for group, names in GROUPS.items()} == reference
    assert sum(len(names) for names in GROUPS.values()) == 57
    assert GROUP_ORDER == ("pretraining", "transductive", "inductive_e", "inductive_er", "other")


def test_catalogue_on_the_shared_roots(data_root, text_root):
    entries = catalogue(data_root, text_root)
    assert all(isinstance(e, DatasetEntry) for e in entries)
    assert [e.name for e in entries if e.group != "other"] == [n for names in GROUPS.values() for n in names]
    assert sorted(e.name for e in entries) == sorted(DATASETS)  # every registered dataset, once
    by_name = {e.name: e for e in entries}
    assert {n for n, e in by_name.items() if e.group == "other"} == set(DATASETS) - {
        n for names in GROUPS.values() for n in names}
    for entry in entries:
        spec = get_spec(entry.name)
        assert resolve_dataset_name(entry.name) == entry.name  # canonical
        assert entry.group == spec.group and entry.setting == spec.setting
        assert entry.texts == (text_root / DEFAULT_LLM / f"{spec.text_key}.json").is_file()
    present = {n for n, e in by_name.items() if e.present}
    assert NEEDED <= present
    assert present == {n for n in by_name if _has_raw_files(n, data_root)}  # what the files say, no more
    fb = by_name["FB15k237Inductive:v1"]
    assert (fb.group, fb.setting, fb.present, fb.texts) == ("inductive_e", "inductive", True, True)
    assert fb.source == "github.com/kkteru/grail@2a3dffa71951"
    hm = by_name["HM:1k"]
    assert hm.group == "inductive_e" and not hm.present
    assert hm.source == "github.com/shuwen-liu-ox/INDIGO@ad1b20bb290d; github.com/takuo-h/GNN-for-OOKB@c70d37c03a71 " \
                        "(optional)"                            # commits, not branches (test_downloads)
    assert by_name["YAGO310"].source == "github.com/DeepGraphLearning/KnowledgeGraphEmbedding@master"  # no commit known
    assert by_name["NLIngram:0"].group == "inductive_er"
    assert by_name["FBNELL:FBNELL_v1"].source == "https://reltrans.s3.us-east-2.amazonaws.com/MTDEA_data.zip"
    assert by_name["CoDExMedium"].group == "pretraining" and by_name["CoDExSmall"].group == "transductive"


def test_present_and_texts_follow_the_files(tmp_path):
    data, texts = tmp_path / "data", tmp_path / "texts"
    assert not any(e.present or e.texts for e in catalogue(data, texts))
    assert not any(e.present or e.texts for e in catalogue(None, None))
    spec = get_spec("HM:1k")
    required = [f for f in spec.files if not f.optional]
    for raw in required[:-1]:
        (spec.raw_dir(data) / raw.local_name).parent.mkdir(parents=True, exist_ok=True)
        (spec.raw_dir(data) / raw.local_name).write_text("1\t2\t3\n")
    assert not {e.name: e for e in catalogue(data, texts)}["HM:1k"].present  # one required file missing
    (spec.raw_dir(data) / required[-1].local_name).write_text("1\t2\t3\n")
    assert {e.name: e for e in catalogue(data, texts)}["HM:1k"].present  # the optional vocabulary is not needed
    (texts / DEFAULT_LLM).mkdir(parents=True)
    (texts / DEFAULT_LLM / "HM-1k.json").write_text("{}")
    entries = {e.name: e for e in catalogue(data, texts)}
    assert entries["HM:1k"].texts and not entries["HM:3k"].texts
    assert [n for n, e in entries.items() if e.present or e.texts] == ["HM:1k"]


def test_cli_json(data_root, text_root, capsys):
    status = main(["datasets", "--json", "--data-root", str(data_root), "--text-root", str(text_root)])
    out = capsys.readouterr().out
    assert status == 0
    doc = json.loads(out)
    assert list(doc) == ["datasets"] and len(doc["datasets"]) == len(DATASETS)
    assert all(list(item) == KEYS for item in doc["datasets"])
    by_name = {item["name"]: item for item in doc["datasets"]}
    assert by_name["NLIngram:0"] == {"name": "NLIngram:0", "group": "inductive_er", "setting": "inductive",
                                     "source": "github.com/bdi-lab/InGram@f2554dd0c684", "present": False, "texts": True,
                                     "entities": None, "relations": None, "triples": None, "counted": None,
                                     "citation": CITATIONS["NLIngram"]}
    metafam = by_name["Metafam:Metafam"]
    assert metafam["present"] is True and metafam["counted"] == "local files"
    assert (metafam["entities"], metafam["relations"], metafam["triples"]) == (
        COUNTS["Metafam:Metafam"][0], COUNTS["Metafam:Metafam"][1], COUNTS["Metafam:Metafam"][2])
    assert "arXiv:2307.06046" in metafam["citation"]


def test_cli_table_reads_the_roots_from_the_environment(data_root, text_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARE_DATA_ROOT", str(data_root))
    monkeypatch.setenv("ARE_TEXT_ROOT", str(text_root))
    monkeypatch.setenv("ARE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"data root: {data_root}; text root: {text_root}"
    assert lines[1].split() == ["dataset", "group", "setting", "present", "texts", "entities", "relations", "triples",
                                "per", "file", "source"]
    row = next(line for line in lines if line.startswith("FBNELL:FBNELL_v1 "))
    entities, relations, triples = COUNTS["FBNELL:FBNELL_v1"]
    assert row.split()[:7] == ["FBNELL:FBNELL_v1", "inductive_er", "inductive", "yes", "yes", f"{entities:,}*",
                               f"{relations:,}*"]                      # * measured from the local files
    assert " / ".join(f"{role} {n:,}" for role, n in triples.items()) in row
    present = sum(_has_raw_files(name, data_root) for name in DATASETS)
    assert present >= len(NEEDED)
    assert (f"57 benchmark graphs and {len(DATASETS) - 57} other datasets; {present} present, "
            "57 with relation texts") in lines
    assert f"sizes: * measured from the local files now ({present})" in out
    assert f"  Metafam:Metafam, FBNELL:FBNELL_v1: {CITATIONS['FBNELL']}" in lines
    assert f"  FB15k237Inductive:v1/v2/v3/v4, WN18RRInductive:v1/v2/v3/v4, NELLInductive:v1/v2/v3/v4: " \
           f"{CITATIONS['NELLInductive']}" in lines
    # a flag wins over the environment
    assert main(["datasets", "--json", "--data-root", str(tmp_path / "empty")]) == 0
    assert not any(item["present"] for item in json.loads(capsys.readouterr().out)["datasets"])
    assert not (tmp_path / "cache").exists() and not (tmp_path / "empty").exists()  # it only looks


#: Sizes published with the datasets (FB15k-237: Toutanova & Chen 2015; WN18RR: Dettmers et al. 2018; CoDEx:
#: Safavi & Koutra 2020; GraIL's splits: Teru et al. 2020, its appendix table): the counter must give them.
PUBLISHED = {
    "FB15k237": (14541, 237, {"train": 272115, "valid": 17535, "test": 20466}),
    "WN18RR": (40943, 11, {"train": 86835, "valid": 3034, "test": 3134}),
    "CoDExSmall": (2034, 42, {"train": 32888, "valid": 1827, "test": 1828}),
    "CoDExMedium": (17050, 51, {"train": 185584, "valid": 10310, "test": 10311}),
}


def test_registry_counts_are_those_of_every_graph_present(data_root):
    """What this needs of the data root: the datasets in NEEDED present (the shared root holds 29 graphs). For
    every registered dataset whose raw files are there, the registry's COUNTS equal what the files hold now
    (entities, relations, triples per file); every present graph has a record; and the counter gives the
    published sizes of FB15k-237, WN18RR and CoDEx where those are present."""
    present = [name for name in DATASETS if _has_raw_files(name, data_root)]
    assert NEEDED <= set(present), sorted(NEEDED - set(present))
    for name in present:
        counted = count_raw_files(get_spec(name), data_root)
        assert name in COUNTS, f"{name} is present under {data_root} but has no COUNTS record"
        assert (counted.entities, counted.relations, counted.triples) == COUNTS[name], name
    for name, published in PUBLISHED.items():
        if name in present:
            assert COUNTS[name] == published, name
    assert set(COUNTS) <= set(DATASETS)


def test_sizes_come_from_the_local_files_when_present_else_from_the_registry(data_root, tmp_path):
    """Without files the catalogue shows the registry's record (``registry``) or nothing; with Metafam's files
    copied and its validation file cut by one line, it counts them (``local files``): 589 validation triples."""
    import shutil

    entries = {e.name: e for e in catalogue(tmp_path / "data", None)}
    fb = entries["FB15k237"]
    assert (fb.entities, fb.relations, fb.triples, fb.counted) == (*COUNTS["FB15k237"], "registry")
    assert entries["YAGO310"].counted is None and entries["YAGO310"].triples is None  # never measured: none made up
    shutil.copytree(data_root / "Metafam", tmp_path / "data" / "Metafam")
    valid = get_spec("Metafam").raw_dir(tmp_path / "data") / "transductive_valid.txt"
    valid.write_text("".join(valid.read_text().splitlines(keepends=True)[:-1]))
    metafam = {e.name: e for e in catalogue(tmp_path / "data", None)}["Metafam:Metafam"]
    assert metafam.counted == "local files"
    assert metafam.triples == {**COUNTS["Metafam:Metafam"][2], "valid": COUNTS["Metafam:Metafam"][2]["valid"] - 1}


def test_unknown_dataset_points_at_the_catalogue():
    with pytest.raises(UnknownDatasetError) as info:
        resolve_dataset_name("FBNEL")
    message = str(info.value)
    assert "\n" not in message and "close matches: FBNELL:FBNELL_v1" in message
    assert "`are-search datasets`" in message and "are_model.data.DATASETS" not in message


def test_unknown_dataset_on_the_command_line(capsys, tmp_path):
    status = main(["evaluate", "--dataset", "metafm", "--checkpoint", "fusion", "--offline", "--data-root",
                   str(tmp_path), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "close matches: Metafam:Metafam" in err and "are-search datasets" in err
