"""Dataset package on the real raw files (ARE_DATA_ROOT): counts, layout, vocabulary and filter rules,
processed cache, downloads from file:// URLs, and the one-line errors."""
from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from are_model.data import (DATASETS, DataRootError, DownloadError, KGDataset, MissingRawFileError, RawFormatError,
                            UnknownDatasetError, VocabularyError, get_spec, load_dataset, resolve_dataset_name)
from are_model.data.download import ensure_raw_files, fetch_url

# 2 x test triples after the loader rules (reference_results.md)
INDUCTIVE_QUERIES = {
    "FBNELL": 1194, "Metafam": 368, "ILPC2022:small": 5804, "ILPC2022:large": 20368,
    "FB15k237Inductive:v1": 822, "FB15k237Inductive:v2": 1894, "FB15k237Inductive:v3": 3462,
    "FB15k237Inductive:v4": 5680, "WN18RRInductive:v1": 746, "WN18RRInductive:v2": 1704,
    "WN18RRInductive:v3": 2286, "WN18RRInductive:v4": 5646, "NELLInductive:v1": 402, "NELLInductive:v2": 1870,
    "NELLInductive:v3": 3240, "NELLInductive:v4": 2894,
}
# N and 2R of the transductive graphs (spec §6.1, PROVENANCE.md)
TRANSDUCTIVE_SIZES = {"FB15k237": (14541, 474), "WN18RR": (40943, 22), "CoDExSmall": (2034, 84),
                      "CoDExMedium": (17050, 102)}
ALL_PRESENT = list(INDUCTIVE_QUERIES) + list(TRANSDUCTIVE_SIZES)


@functools.lru_cache(maxsize=None)
def _load_cached(name: str, root: str, cache: str) -> KGDataset:
    return load_dataset(name, root, cache_dir=cache, download=False)


@pytest.fixture
def load(data_root: Path, cache_dir: Path, require_dataset):
    """Load a dataset once per session. A raw folder absent from the data root fails the test in CI
    and for every dataset the project ships (conftest.require_dataset); it is never silently skipped."""
    def _load(name: str) -> KGDataset:
        require_dataset(name)
        return _load_cached(name, str(data_root), str(cache_dir))
    return _load


def test_every_dataset_of_these_tests_is_shipped(data_root, shipped, ci):
    """The datasets above are the ones the project ships: a manifest that lost one is an error (without
    this, a missing folder would be skipped outside CI)."""
    if not shipped:
        if ci:
            pytest.fail(f"CI=true: {data_root} has no SHA256SUMS manifest")
        pytest.skip(f"{data_root} has no SHA256SUMS manifest (a user's own root)")
    for name in ALL_PRESENT:
        relative = get_spec(name).raw_dir(Path("root")).relative_to("root").as_posix()
        assert any(f.startswith(relative + "/") for f in shipped), name


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _keys(index: torch.Tensor, types: torch.Tensor, num_nodes: int, num_types: int) -> set[int]:
    """Triples as one int each, for set comparisons."""
    return set(((index[0] * num_types + types) * num_nodes + index[1]).tolist())


def _names(data, index: torch.Tensor, types: torch.Tensor) -> list[tuple[str, str, str]]:
    ent, rel = data.entity_names, data.relation_names
    return [(ent[h], rel[r], ent[t]) for h, r, t in zip(index[0].tolist(), types.tolist(), index[1].tolist())]


# ---------------------------------------------------------------------------------------------- counts

@pytest.mark.parametrize("name,queries", list(INDUCTIVE_QUERIES.items()))
def test_inductive_query_counts(load, name, queries):
    ds = load(name)
    assert ds.setting == "inductive"
    assert 2 * ds.test.target_edge_index.size(1) == queries
    assert ds.test.target_edge_type.numel() == ds.test.target_edge_index.size(1)


@pytest.mark.parametrize("name", list(TRANSDUCTIVE_SIZES))
def test_transductive_counts_match_raw_files(load, data_root, name):
    ds = load(name)
    raw = get_spec(name).raw_dir(data_root)
    assert ds.setting == "transductive"
    for split in ("train", "valid", "test"):
        assert ds.split(split).target_edge_index.size(1) == len(_lines(raw / f"{split}.txt"))
        # all splits answer on the training fact graph
        assert torch.equal(ds.split(split).edge_index, ds.train.edge_index)
    assert ds.train.edge_index.size(1) == 2 * len(_lines(raw / "train.txt"))
    assert (ds.test.num_nodes, ds.test.num_relations) == TRANSDUCTIVE_SIZES[name]


# ---------------------------------------------------------------------------------------------- layout

@pytest.mark.parametrize("name", ALL_PRESENT)
def test_inverse_layout_and_ranges(load, name):
    ds = load(name)
    for split in ("train", "valid", "test"):
        g = ds.split(split)
        num_rel = len(g.relation_names)
        assert g.num_relations == 2 * num_rel
        assert len(g.entity_names) == g.num_nodes
        assert g.edge_index.dtype == torch.long and g.edge_type.dtype == torch.long
        half = g.edge_index.size(1) // 2
        assert g.edge_index.size(1) == 2 * half == g.edge_type.numel()
        assert torch.equal(g.edge_index[:, half:], g.edge_index[:, :half].flip(0))
        assert torch.equal(g.edge_type[half:], g.edge_type[:half] + num_rel)
        assert int(g.edge_type[:half].max()) < num_rel
        for index, types in ((g.edge_index, g.edge_type), (g.target_edge_index, g.target_edge_type),
                             (g.filter_edge_index, g.filter_edge_type)):
            if index.numel():
                assert 0 <= int(index.min()) and int(index.max()) < g.num_nodes
                assert 0 <= int(types.min()) and int(types.max()) < g.num_relations
        assert int(g.target_edge_type.max()) < num_rel  # queries are forward only


def test_text_keys_and_names(load):
    assert load("FBNELL").text_key == "FBNELL-FBNELL_v1"
    assert load("FBNELL").name == "FBNELL:FBNELL_v1"
    assert load("Metafam").text_key == "Metafam-Metafam"
    assert load("FB15k237Inductive:v1").text_key == "FB15k237Inductive-v1"
    assert load("ILPC2022:small").text_key == "ILPC2022-small"
    assert load("CoDExSmall").text_key == "CoDExSmall"
    assert get_spec("HM:1k").text_key == "HM-1k"
    assert get_spec("WikiTopicsMT1:tax").text_key == "WikiTopicsMT1-tax"
    assert get_spec("FBIngram:25").text_key == "FBIngram-25"


# ---------------------------------------------------------------------------------------------- vocab rules

def test_wn18rr_relations_alphabetical_and_entity_rule(load, data_root):
    ds = load("WN18RR")
    assert ds.train.relation_names == sorted(ds.train.relation_names)
    assert ds.train.relation_names[0] == "_also_see" and ds.train.relation_names[-1] == "_verb_group"
    raw = get_spec("WN18RR").raw_dir(data_root)
    order: dict[str, None] = {}
    for split in ("train", "valid", "test"):  # per file: every head, then every tail
        rows = _lines(raw / f"{split}.txt")
        order.update(dict.fromkeys(r[0] for r in rows))
        order.update(dict.fromkeys(r[2] for r in rows))
    assert ds.train.entity_names == list(order)
    src, dst = ds.train.target_edge_index
    key = src * ds.train.num_nodes + dst
    assert bool((key[1:] >= key[:-1]).all())  # edges sorted by (src, dst)


def test_fb15k237_ids_from_dicts(load, data_root):
    ds = load("FB15k237")
    raw = get_spec("FB15k237").raw_dir(data_root)
    rel = [line.split("\t") for line in (raw / "relations.dict").read_text().splitlines()]
    ent = [line.split("\t") for line in (raw / "entities.dict").read_text().splitlines()]
    assert ds.train.relation_names == [name for _, name in sorted(rel, key=lambda p: int(p[0]))]
    assert ds.train.entity_names == [name for _, name in sorted(ent, key=lambda p: int(p[0]))]
    first = _lines(raw / "test.txt")[0]
    assert _names(ds.test, ds.test.target_edge_index[:, :1], ds.test.target_edge_type[:1]) == [tuple(first)]


@pytest.mark.parametrize("name", [n for n in INDUCTIVE_QUERIES if "Inductive" in n])
def test_grail_shared_relation_vocab(load, data_root, name):
    ds = load(name)
    raw = get_spec(name).raw_dir(data_root)
    expected = list(dict.fromkeys(r[1] for f in ("train.txt", "valid.txt") for r in _lines(raw / f)))
    assert ds.train.relation_names == ds.valid.relation_names == ds.test.relation_names == expected
    ind_relations = {r[1] for f in ("train_ind.txt", "valid_ind.txt", "test_ind.txt") for r in _lines(raw / f)}
    assert ind_relations <= set(expected)
    assert ds.test.num_relations == ds.train.num_relations == 2 * len(expected)
    # test graph = train_ind; test queries = valid_ind then test_ind
    assert ds.test.edge_index.size(1) == 2 * len(_lines(raw / "train_ind.txt"))
    merged = _lines(raw / "valid_ind.txt") + _lines(raw / "test_ind.txt")
    assert _names(ds.test, ds.test.target_edge_index, ds.test.target_edge_type) == [tuple(r) for r in merged]
    # separate entity vocabularies
    assert ds.test.num_nodes == len({e for r in _lines(raw / "train_ind.txt") + merged for e in (r[0], r[2])})


def test_grail_unknown_test_relation_is_an_error(data_root, tmp_path):
    src = get_spec("NELLInductive:v1").raw_dir(data_root)
    dst = get_spec("NELLInductive:v1").raw_dir(tmp_path)
    shutil.copytree(src, dst)
    with open(dst / "test_ind.txt", "a", encoding="utf-8") as handle:
        handle.write("a concept:never_seen_relation b\n")
    n_lines = len((dst / "test_ind.txt").read_text().splitlines())
    with pytest.raises(VocabularyError, match=rf"test_ind\.txt:{n_lines}: relation 'concept:never_seen_relation'"):
        load_dataset("NELLInductive:v1", tmp_path, cache_dir=tmp_path / "cache", download=False)


def test_mtdea_valid_dropping_fbnell(load, data_root):
    ds = load("FBNELL")
    raw = get_spec("FBNELL").raw_dir(data_root)
    train = _lines(raw / "transductive_train.txt")
    entities = {e for h, _, t in train for e in (h, t)}
    relations = {r for _, r, _ in train}
    valid = _lines(raw / "transductive_valid.txt")
    kept = [tuple(v) for v in valid if v[0] in entities and v[2] in entities and v[1] in relations]
    assert len(valid) == 1224 and len(kept) == 1055
    got = _names(ds.valid, ds.valid.target_edge_index, ds.valid.target_edge_type)
    assert got == kept  # same triples, in file order: the rule holds triple by triple
    # valid lives on the training graph; test on the inference graph with its own vocabulary
    assert torch.equal(ds.valid.edge_index, ds.train.edge_index)
    assert ds.valid.num_relations == ds.train.num_relations == 2 * len(relations)
    inference = _lines(raw / "inference_graph.txt")
    assert ds.test.edge_index.size(1) == 2 * len(inference)
    test_rows = _lines(raw / "inf_test.txt")
    inf_relations = dict.fromkeys(r for _, r, _ in inference + test_rows)
    assert ds.test.relation_names == list(inf_relations)  # extended by test, first appearance
    assert ds.test.num_nodes == len({e for h, _, t in inference + test_rows for e in (h, t)})


def test_metafam_keeps_all_valid(load):
    assert load("Metafam").valid.target_edge_index.size(1) == 590


def test_ilpc_valid_on_inference_graph(load, data_root):
    ds = load("ILPC2022:small")
    raw = get_spec("ILPC2022:small").raw_dir(data_root)
    assert torch.equal(ds.valid.edge_index, ds.test.edge_index)
    rows = _lines(raw / "inference_graph.txt") + _lines(raw / "inf_valid.txt") + _lines(raw / "inf_test.txt")
    assert ds.test.relation_names == list(dict.fromkeys(r for _, r, _ in rows))
    assert ds.train.relation_names == list(dict.fromkeys(r for _, r, _ in _lines(raw / "transductive_train.txt")))


# ---------------------------------------------------------------------------------------------- filters

def _fact_forward(g) -> tuple[torch.Tensor, torch.Tensor]:
    half = g.edge_index.size(1) // 2
    return g.edge_index[:, :half], g.edge_type[:half]


def _set(g, *parts) -> set[int]:
    out: set[int] = set()
    for index, types in parts:
        out |= _keys(index, types, g.num_nodes, g.num_relations)
    return out


@pytest.mark.parametrize("name", ALL_PRESENT)
def test_filter_sets_follow_the_rules(load, name):
    ds = load(name)
    spec = get_spec(name)
    tr, va, te = ds.train, ds.valid, ds.test
    targets = {s: (ds.split(s).target_edge_index, ds.split(s).target_edge_type) for s in ("train", "valid", "test")}
    filt = {s: _set(ds.split(s), (ds.split(s).filter_edge_index, ds.split(s).filter_edge_type))
            for s in ("train", "valid", "test")}
    assert filt["train"] == _set(tr, _fact_forward(tr))
    if spec.setting == "transductive":
        everything = _set(tr, *targets.values())
        assert filt["valid"] == filt["test"] == everything
    elif spec.filter_mode == "inference_all":  # ILPC / InGram
        everything = _set(te, _fact_forward(te), targets["valid"], targets["test"])
        assert filt["valid"] == filt["test"] == everything
    else:  # GraIL / MTDEA / HM
        assert filt["valid"] == _set(va, _fact_forward(va), targets["valid"])
        assert filt["test"] == _set(te, _fact_forward(te), targets["test"])
    for s in ("valid", "test"):  # every query is itself filtered
        assert _set(ds.split(s), targets[s]) <= filt[s]


# ---------------------------------------------------------------------------------------------- cache

def _copy_dataset(data_root: Path, tmp_path: Path, name: str) -> Path:
    spec = get_spec(name)
    shutil.copytree(spec.raw_dir(data_root), spec.raw_dir(tmp_path / "root"))
    return tmp_path / "root"


def _assert_same(a: KGDataset, b: KGDataset) -> None:
    for split in ("train", "valid", "test"):
        x, y = a.split(split), b.split(split)
        assert set(x.keys()) == set(y.keys())
        for key in x.keys():
            if isinstance(x[key], torch.Tensor):
                assert torch.equal(x[key], y[key]), key
            else:
                assert x[key] == y[key], key


def test_cache_hit_identical_and_changed_raw_file_changes_key(data_root, tmp_path, caplog):
    root = _copy_dataset(data_root, tmp_path, "Metafam")
    cache = tmp_path / "cache"
    first = load_dataset("Metafam", root, cache_dir=cache, download=False)
    files = sorted((cache / "Metafam-Metafam").glob("*.pt"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = load_dataset("Metafam", root, cache_dir=cache, download=False)
    _assert_same(first, second)
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    assert torch.load(files[0], weights_only=True)["name"] == "Metafam:Metafam"

    test_file = get_spec("Metafam").raw_dir(root) / "inf_test.txt"
    lines = test_file.read_text().splitlines(keepends=True)
    test_file.write_text("".join(lines[:-1]))
    third = load_dataset("Metafam", root, cache_dir=cache, download=False)
    assert len(list((cache / "Metafam-Metafam").glob("*.pt"))) == 2
    assert third.test.target_edge_index.size(1) == first.test.target_edge_index.size(1) - 1
    # the raw files' identity (what a study stores): one sha256 per file the load read, the cut file's changed
    import hashlib

    from are_model.data import raw_file_identity

    assert third.files["test"] == ("inf_test.txt", hashlib.sha256(test_file.read_bytes()).hexdigest())
    assert {role for role in first.files if first.files[role] != third.files[role]} == {"test"}
    assert raw_file_identity("Metafam", root, download=False) == third.files

    # a corrupt cache file is ignored and rebuilt
    for path in (cache / "Metafam-Metafam").glob("*.pt"):
        path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="are_model.data"):
        fourth = load_dataset("Metafam", root, cache_dir=cache, download=False)
    _assert_same(third, fourth)
    assert "corrupt processed cache" in caplog.text


def test_no_cache_dir_means_no_disk_cache_and_no_default_location(data_root, cache_dir, tmp_path, monkeypatch):
    """cache_dir=None writes nothing anywhere: not under $ARE_CACHE_DIR, $HOME or the working directory."""
    for var, folder in (("ARE_CACHE_DIR", "envcache"), ("HOME", "home"), ("XDG_CACHE_HOME", "xdg")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(var, str(tmp_path / folder))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    uncached = load_dataset("NELLInductive:v1", data_root, download=False)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["cwd", "envcache", "home", "xdg"]
    _assert_same(uncached, _load_cached("NELLInductive:v1", str(data_root), str(cache_dir)))


# ---------------------------------------------------------------------------------------------- names

def test_resolve_dataset_name_spellings():
    assert resolve_dataset_name("FB15k237Inductive:v1") == "FB15k237Inductive:v1"
    assert resolve_dataset_name("fb15k237inductive:V1") == "FB15k237Inductive:v1"
    assert resolve_dataset_name("FB15k237Inductive-v1") == "FB15k237Inductive:v1"
    assert resolve_dataset_name("FBNELL") == "FBNELL:FBNELL_v1"
    assert resolve_dataset_name("Metafam") == "Metafam:Metafam"
    assert resolve_dataset_name("ILPC2022:small") == "ILPC2022:small"
    assert resolve_dataset_name("codexsmall") == "CoDExSmall"
    assert resolve_dataset_name("HM:1k") == "HM:1k"
    assert resolve_dataset_name("WikiTopicsMT3:art") == "WikiTopicsMT3:art"
    assert all(resolve_dataset_name(n) == n for n in DATASETS)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownDatasetError) as info:
        resolve_dataset_name("FB15k237Inductiv:v1")
    message = str(info.value)
    assert "\n" not in message and "FB15k237Inductive:v1" in message
    with pytest.raises(UnknownDatasetError, match="ILPC2022:small"):
        resolve_dataset_name("ILPC2022")


def test_unknown_split(load):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load("NELLInductive:v1").split("dev")


# ---------------------------------------------------------------------------------------------- errors

def test_data_root_is_required_even_when_the_variable_is_set(data_root, monkeypatch):
    monkeypatch.setenv("ARE_DATA_ROOT", str(data_root))  # the library never reads it
    with pytest.raises(TypeError):
        load_dataset("FBNELL")  # type: ignore[call-arg]
    with pytest.raises(DataRootError) as info:
        load_dataset("FBNELL", None)
    message = str(info.value)
    assert "\n" not in message and "FBNELL" in message and "no data root" in message


def test_missing_file_without_download(data_root, tmp_path):
    root = _copy_dataset(data_root, tmp_path, "FB15k237Inductive:v1")
    missing = get_spec("FB15k237Inductive:v1").raw_dir(root) / "test_ind.txt"
    missing.unlink()
    with pytest.raises(MissingRawFileError) as info:
        load_dataset("FB15k237Inductive:v1", root, cache_dir=tmp_path / "c", download=False)
    message = str(info.value)
    assert "\n" not in message and str(missing) in message
    # the registry points at the commit whose blobs its sha256 pins are (PROVENANCE.md)
    assert ("https://raw.githubusercontent.com/kkteru/grail/2a3dffa719518e7e6250e355a2fb37cd932de91e"
            "/data/fb237_v1_ind/test.txt") in message


def test_malformed_line_names_file_and_line(data_root, tmp_path):
    root = _copy_dataset(data_root, tmp_path, "Metafam")
    path = get_spec("Metafam").raw_dir(root) / "inf_test.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = "only two\n"
    path.write_text("".join(lines))
    with pytest.raises(RawFormatError) as info:
        load_dataset("Metafam", root, cache_dir=tmp_path / "c", download=False)
    assert f"{path}:5: expected 3" in str(info.value) and "\n" not in str(info.value)


def test_download_failure_is_one_line(tmp_path):
    original = get_spec("CoDExSmall")
    spec = dataclasses.replace(original, files=tuple(
        dataclasses.replace(f, url=(tmp_path / "nowhere" / f.local_name).as_uri()) for f in original.files))
    with pytest.raises(DownloadError) as info:
        ensure_raw_files(spec, tmp_path / "root")
    message = str(info.value)
    assert "\n" not in message and "nowhere/train.txt" in message
    assert str(spec.raw_dir(tmp_path / "root") / "train.txt") in message
    assert not list((tmp_path / "root").rglob("*.part"))


# ---------------------------------------------------------------------------------------------- downloads

def test_download_plain_files_from_file_urls(data_root, tmp_path):
    original = get_spec("NELLInductive:v1")
    src = original.raw_dir(data_root)
    spec = dataclasses.replace(original, files=tuple(
        dataclasses.replace(f, url=(src / f.local_name).as_uri()) for f in original.files))
    paths = ensure_raw_files(spec, tmp_path / "root")
    for f in original.files:
        assert paths[f.role].read_bytes() == (src / f.local_name).read_bytes()


def test_fetch_url_verifies_the_bytes_before_they_land(data_root, tmp_path):
    """fetch_url goes through fileio.atomic_write: verify() sees the complete temporary file, and a file
    it rejects never replaces the destination (nor is any temporary file left behind)."""
    source = get_spec("NELLInductive:v1").raw_dir(data_root) / "train.txt"
    dest = tmp_path / "out" / "train.txt"
    dest.parent.mkdir()
    dest.write_text("previous content\n")

    def reject(tmp: Path) -> None:
        assert tmp.parent == dest.parent and tmp != dest and tmp.read_bytes() == source.read_bytes()
        raise ValueError("sha256 mismatch")

    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch_url(source.as_uri(), dest, verify=reject)
    assert dest.read_text() == "previous content\n" and list(dest.parent.iterdir()) == [dest]
    seen: list[bytes] = []
    assert fetch_url(source.as_uri(), dest, verify=lambda tmp: seen.append(tmp.read_bytes())) == dest
    assert dest.read_bytes() == source.read_bytes() == seen[0] and list(dest.parent.iterdir()) == [dest]


def test_download_mtdea_zip_members(data_root, tmp_path):
    """The MTDEA archive layout (train/observe/valid/test under -trans/-ind folders) maps to the raw names."""
    original = get_spec("Metafam")
    src = original.raw_dir(data_root)
    archive = tmp_path / "MTDEA_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in original.files:
            zf.write(src / f.local_name, f.member)
        zf.writestr("MTDEA_datasets/other/unrelated.txt", "x y z\n")
    assert {f.member.rsplit("/", 2)[1] for f in original.files} == {"Metafam-trans", "Metafam-ind"}
    spec = dataclasses.replace(original, files=tuple(dataclasses.replace(f, url=archive.as_uri())
                                                     for f in original.files))
    root = tmp_path / "root"
    ensure_raw_files(spec, root)
    for f in original.files:
        assert (spec.raw_dir(root) / f.local_name).read_bytes() == (src / f.local_name).read_bytes()
    assert sorted(p.name for p in spec.raw_dir(root).iterdir()) == sorted(f.local_name for f in original.files)


def test_hm_rules_on_a_tiny_graph(tmp_path):
    """HM (no real copy here): valid lives on the train graph and may add entities, never relations;
    integer relation ids are named through the OOKB vocabulary file."""
    raw = get_spec("HM:1k").raw_dir(tmp_path)
    raw.mkdir(parents=True)
    (raw / "transductive_train.txt").write_text("10\t0\t11\n11\t1\t12\n")
    (raw / "inference_graph.txt").write_text("20\t1\t21\n21\t2\t22\n")
    (raw / "inf_valid.txt").write_text("10\t1\t99\n")  # entity 99 unseen in train: a new, isolated node
    (raw / "inf_test.txt").write_text("22\t0\t20\n")  # relation 0 unseen in inference: extends its vocabulary
    (raw / "relation_vocab.txt").write_text("_type_of\t0\n_has_part\t1\n_part_of\t2")
    ds = load_dataset("HM:1k", tmp_path, cache_dir=tmp_path / "c", download=False)
    assert ds.train.relation_names == ["_type_of", "_has_part"] and ds.train.num_nodes == 3
    assert ds.valid.num_nodes == 4 and ds.valid.num_relations == 4
    assert torch.equal(ds.valid.edge_index, ds.train.edge_index)
    assert ds.test.relation_names == ["_has_part", "_part_of", "_type_of"] and ds.test.num_relations == 6
    assert ds.test.edge_type.tolist() == [0, 1, 3, 4]
    (raw / "inf_valid.txt").write_text("10\t2\t11\n")  # relation 2 unseen in train
    with pytest.raises(VocabularyError, match=r"inf_valid\.txt:1: relation '2'"):
        load_dataset("HM:1k", tmp_path, cache_dir=tmp_path / "c", download=False)
