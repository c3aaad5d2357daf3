"""The dataset catalogue (``search.inputs.catalogue``, ``are-search datasets``): every registered dataset with its
benchmark group, setting, source, and whether its raw files and relation texts are at hand."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from are_model.data import DATASETS, UnknownDatasetError, get_spec, resolve_dataset_name
from are_model.data.registry import GROUP_ORDER, GROUPS
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
KEYS = ["name", "group", "setting", "source", "present", "texts"]


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
    assert hm.source == "github.com/shuwen-liu-ox/INDIGO@master; github.com/takuo-h/GNN-for-OOKB@master (optional)"
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
                                     "source": "github.com/bdi-lab/InGram@master", "present": False, "texts": True}
    assert by_name["Metafam:Metafam"]["present"] is True


def test_cli_table_reads_the_roots_from_the_environment(data_root, text_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARE_DATA_ROOT", str(data_root))
    monkeypatch.setenv("ARE_TEXT_ROOT", str(text_root))
    monkeypatch.setenv("ARE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"data root: {data_root}; text root: {text_root}"
    assert lines[1].split() == ["dataset", "group", "setting", "present", "texts", "source"]
    row = next(line for line in lines if line.startswith("FBNELL:FBNELL_v1 "))
    assert row.split()[:5] == ["FBNELL:FBNELL_v1", "inductive_er", "inductive", "yes", "yes"]
    present = sum(_has_raw_files(name, data_root) for name in DATASETS)
    assert present >= len(NEEDED)
    assert lines[-1] == (f"57 benchmark graphs and {len(DATASETS) - 57} other datasets; {present} present, "
                         "57 with relation texts")
    # a flag wins over the environment
    assert main(["datasets", "--json", "--data-root", str(tmp_path / "empty")]) == 0
    assert not any(item["present"] for item in json.loads(capsys.readouterr().out)["datasets"])
    assert not (tmp_path / "cache").exists() and not (tmp_path / "empty").exists()  # it only looks


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
