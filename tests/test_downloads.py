"""Downloads that verify (pooch): datasets, relation texts and checkpoints, through file:// URLs to copies of
the real files (and one local HTTP server for pooch's own HTTP downloader), no network.

For each kind of file: a correct download lands and is verified; bytes that do not match the pin are
refused in one line naming the file and both hashes, and nothing lands; a file with no known hash is
pinned on its first download and a later, changed file is refused; offline makes no attempt at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from are_model.checkpoint import CheckpointError
from are_model.data import DownloadError, MissingRawFileError, get_spec
from are_model.data import download
from are_model.data.download import (ARCHIVE_DIR, PINS_FILE, FileDownloader, HashMismatchError, Pins,
                                     ensure_raw_files, fetch_url)
from are_model.data.registry import DATASETS, REPOSITORIES, SHA256
from are_model.text import relation_texts
from are_model.text.relation_texts import DEFAULT_LLM, load_relation_texts
from search.inputs.checkpoints import (KNOWN_CHECKPOINTS, CheckpointDownloadError, download_checkpoint,
                                resolve_checkpoint)

def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(src: Path, dst: Path) -> Path:
    """A writable copy (the shared files are read-only)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _served_from(spec, folder: Path):
    """``spec`` with every raw file served as a plain file:// URL from ``folder/<local_name>``."""
    return dataclasses.replace(spec, files=tuple(
        dataclasses.replace(f, url=(folder / f.local_name).as_uri(), member=None) for f in spec.files))


def _strays(root: Path) -> list[Path]:
    """Temporary files or staging folders a download could leave behind."""
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.name != ARCHIVE_DIR
            or p.suffix in (".tmp", ".part", ".download")]


def _one_line_with_hashes(error: BaseException, expected: str, got: str) -> str:
    message = str(error)
    assert "\n" not in message
    assert f"expected {expected}" in message and f"got {got}" in message, message
    return message


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """Every URL handed to a downloader (the real one still runs)."""
    seen: list[str] = []
    real = download.choose_downloader

    def spy(url, **kwargs):
        inner = real(url, **kwargs)

        def downloader(url, output_file, pooch, check_only=False):
            seen.append(url)
            return inner(url, output_file, pooch, check_only=check_only)
        return downloader

    monkeypatch.setattr(download, "choose_downloader", spy)
    return seen


# ------------------------------------------------------------------------------------------ registry pins


def test_the_registry_pins_are_the_shared_files(data_root):
    """Each pin in the registry is the sha256 of the real file under the same relative path, and every file whose
    bytes SHA256SUMS holds is pinned but the three documented exceptions (where the shared root has SHA256SUMS)."""
    assert len(SHA256) == 118
    sums = data_root / "SHA256SUMS"
    if sums.is_file():
        listed = {line.split(None, 1)[1].lstrip("*") for line in sums.read_text().splitlines() if line.strip()}
        registered = {spec.relpath(raw) for spec in DATASETS.values() for raw in spec.files}
        unpinned = {key for key in listed & registered if key not in SHA256}
        assert unpinned == {"FB15k237/raw/train.txt"} | {key for key in listed & registered
                                                          if key.startswith(("FBNELL/", "Metafam/"))}
    checked = 0
    for key, digest in SHA256.items():
        path = data_root / key
        if path.is_file():
            assert _sha(path) == digest, key
            checked += 1
    if (data_root / "SHA256SUMS").is_file():  # the shared root holds every pinned file
        assert checked == len(SHA256)
    # left unpinned: a reconstructed file, and the MTDEA files copied from the SEMMA repository
    assert "FB15k237/raw/train.txt" not in SHA256 and not any(k.startswith(("FBNELL/", "Metafam/")) for k in SHA256)
    spec = get_spec("NELLInductive:v1")
    raw = spec.file("inf_test")
    assert spec.relpath(raw) == "NELLInductive/v1/raw/test_ind.txt" and spec.sha256(raw) == SHA256[spec.relpath(raw)]
    for spec in DATASETS.values():  # a pinned file is served from a fixed commit, never a moving branch
        for raw in spec.files:
            if spec.sha256(raw) is not None:
                assert "/master/" not in raw.url and "/main/" not in raw.url, raw.url


def test_every_github_url_names_a_commit_or_says_why_it_cannot(data_root):
    """A raw.githubusercontent.com URL names its repository's full commit (REPOSITORIES), never a branch -- but
    for a repository whose commit is not known here, which keeps its branch and says why (nothing invented).
    RED-GNN's NELL-995 is read at the last commit with transductive/data/nell/ (moved to Static/ in 0b6f230)."""
    import urllib.parse

    used = set()
    for spec in DATASETS.values():
        for raw in spec.files:
            url = urllib.parse.urlparse(raw.url)
            if url.netloc != "raw.githubusercontent.com":
                assert url.netloc in ("reltrans.s3.us-east-2.amazonaws.com", "zenodo.org", "www.dropbox.com"), raw.url
                continue
            owner, repo, ref = url.path.split("/")[1:4]
            entry = REPOSITORIES[f"{owner}/{repo}"]
            used.add(f"{owner}/{repo}")
            if entry.commit is not None:
                assert ref == entry.commit and len(ref) == 40 and not ref.strip("0123456789abcdef"), raw.url
            else:
                assert ref == entry.branch and entry.reason.startswith("no full commit known here"), raw.url
                assert spec.sha256(raw) is None  # a pinned file is never served from a branch
    assert used == set(REPOSITORIES)
    assert get_spec("NELL995").file("train").url == ("https://raw.githubusercontent.com/LARS-research/RED-GNN/"
                                                     "5e2ccadc49e7ab7feca251961c12b674cc8c501f/transductive/data/"
                                                     "nell/train.txt")
    assert REPOSITORIES["guojiapub/BiQUE"].commit.startswith("548de69f80")
    unpinned = sorted(name for name, entry in REPOSITORIES.items() if entry.commit is None)
    assert unpinned == ["DeepGraphLearning/KnowledgeGraphEmbedding", "THU-KEG/DacKGR", "iieir-km/ComplEx-NNE_AER"]


@pytest.mark.parametrize("name, role", [("ConceptNet100k", "test"), ("NLIngram:25", "valid"), ("WKIngram:75", "test"),
                                        ("HM:3k", "relation_names")])
def test_a_newly_pinned_file_lands_verified_and_a_changed_one_is_refused(data_root, tmp_path, name, role):
    """The second batch's pins at work, through file:// URLs: the real bytes land; the same file with one more
    line is refused in one line naming the URL, the pinned and the downloaded sha256, and nothing lands."""
    original = get_spec(name)
    raw = original.file(role)
    pin = SHA256[original.relpath(raw)]
    src = _copy(original.raw_dir(data_root) / raw.local_name, tmp_path / "src" / raw.local_name)
    spec = dataclasses.replace(original, files=(dataclasses.replace(raw, url=src.as_uri(), optional=False),))
    landed = ensure_raw_files(spec, tmp_path / "good")[role]
    assert _sha(landed) == pin
    with open(src, "a") as handle:
        handle.write("\na\tb\tc\n")
    root = tmp_path / "bad"
    with pytest.raises(HashMismatchError) as info:
        ensure_raw_files(spec, root)
    message = _one_line_with_hashes(info.value, pin, _sha(src))
    assert message.startswith(f"{spec.name}: ") and src.as_uri() in message
    assert not (spec.raw_dir(root) / raw.local_name).exists() and _strays(root) == []


# ------------------------------------------------------------------------------------------ dataset files


def test_pinned_dataset_files_land_verified(data_root, tmp_path, calls):
    original = get_spec("NELLInductive:v1")
    src = tmp_path / "src"
    for f in original.files:
        _copy(original.raw_dir(data_root) / f.local_name, src / f.local_name)
    spec = _served_from(original, src)
    root = tmp_path / "root"
    paths = ensure_raw_files(spec, root)
    assert len(calls) == len(spec.files)
    umask = os.umask(0)
    os.umask(umask)
    for f in spec.files:
        landed = paths[f.role]
        assert landed == spec.raw_dir(root) / f.local_name
        assert _sha(landed) == spec.sha256(f) == _sha(src / f.local_name)
        assert stat.S_IMODE(landed.stat().st_mode) == 0o666 & ~umask  # not the 0600 of a temporary file
    assert not (root / PINS_FILE).exists()  # known pins are data of the registry, nothing to record
    assert _strays(root) == []
    ensure_raw_files(spec, root)  # present now: used as they are, no second download
    assert len(calls) == len(spec.files)


def test_dataset_file_not_matching_its_pin_is_refused(data_root, tmp_path):
    original = get_spec("NELLInductive:v1")
    raw = original.file("inf_test")
    src = _copy(original.raw_dir(data_root) / raw.local_name, tmp_path / "src" / raw.local_name)
    with open(src, "a") as handle:
        handle.write("concept:a\tconcept:b\tconcept:c\n")  # a changed upstream file
    spec = dataclasses.replace(original, files=(dataclasses.replace(raw, url=src.as_uri()),))
    root = tmp_path / "root"
    with pytest.raises(HashMismatchError) as info:
        ensure_raw_files(spec, root)
    message = _one_line_with_hashes(info.value, SHA256["NELLInductive/v1/raw/test_ind.txt"], _sha(src))
    dest = spec.raw_dir(root) / raw.local_name
    assert message.startswith("NELLInductive:v1: ") and str(dest) in message
    assert isinstance(info.value, DownloadError)  # the CLI's one-line, exit-2 family
    assert not dest.exists() and _strays(root) == [] and not (root / PINS_FILE).exists()


def test_unpinned_dataset_file_is_pinned_then_a_changed_one_is_refused(data_root, tmp_path):
    original = get_spec("Metafam")  # no registry pin: trusted on first download
    src = tmp_path / "src"
    for f in original.files:
        _copy(original.raw_dir(data_root) / f.local_name, src / f.local_name)
    spec = _served_from(original, src)
    assert all(spec.sha256(f) is None for f in spec.files)
    root = tmp_path / "root"
    ensure_raw_files(spec, root)
    pins = json.loads((root / PINS_FILE).read_text())["sha256"]
    assert pins == {spec.relpath(f): _sha(src / f.local_name) for f in spec.files}

    test = spec.file("test")
    landed = spec.raw_dir(root) / test.local_name
    pinned = _sha(landed)
    landed.unlink()
    (src / test.local_name).write_text("a r b\n")  # upstream changed since the pin
    with pytest.raises(HashMismatchError) as info:
        ensure_raw_files(spec, root)
    _one_line_with_hashes(info.value, pinned, _sha(src / test.local_name))
    assert str(landed) in str(info.value) and not landed.exists() and _strays(root) == []
    assert json.loads((root / PINS_FILE).read_text())["sha256"] == pins  # the pin is kept, not replaced

    _copy(original.raw_dir(data_root) / test.local_name, src / test.local_name)  # the pinned bytes again
    ensure_raw_files(spec, root)
    assert _sha(landed) == pinned


def test_zip_archive_and_members_are_pinned(data_root, tmp_path, calls):
    original = get_spec("Metafam")
    src = original.raw_dir(data_root)
    archive = tmp_path / "MTDEA_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in original.files:
            zf.write(src / f.local_name, f.member)
    spec = dataclasses.replace(original, files=tuple(dataclasses.replace(f, url=archive.as_uri())
                                                     for f in original.files))
    root = tmp_path / "root"
    ensure_raw_files(spec, root)
    assert len(calls) == 1  # one archive for all four members
    kept = list((root / ARCHIVE_DIR).iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == archive.read_bytes()
    pins = json.loads((root / PINS_FILE).read_text())["sha256"]
    assert pins[f"{ARCHIVE_DIR}/{kept[0].name}"] == _sha(archive)
    for f in spec.files:
        assert pins[spec.relpath(f)] == _sha(src / f.local_name) == _sha(spec.raw_dir(root) / f.local_name)

    # a member removed from the data root comes back from the kept archive, without a download
    member = spec.raw_dir(root) / spec.file("test").local_name
    member.unlink()
    ensure_raw_files(spec, root)
    assert len(calls) == 1 and _sha(member) == pins[spec.relpath(spec.file("test"))]

    # a changed archive upstream, once the kept copy is gone: refused, with the archive's two hashes
    member.unlink()
    kept[0].unlink()
    with zipfile.ZipFile(archive, "w") as zf:
        for f in original.files:
            zf.writestr(f.member, "x r y\n")
    with pytest.raises(HashMismatchError) as info:
        ensure_raw_files(spec, root)
    _one_line_with_hashes(info.value, pins[f"{ARCHIVE_DIR}/{kept[0].name}"], _sha(archive))
    assert not member.exists() and not kept[0].exists() and _strays(root) == []


def test_offline_dataset_makes_no_attempt(tmp_path, calls):
    spec = _served_from(get_spec("CoDExSmall"), tmp_path / "src")
    root = tmp_path / "root"
    with pytest.raises(MissingRawFileError) as info:
        ensure_raw_files(spec, root, download=False)
    assert "downloading is off" in str(info.value) and "\n" not in str(info.value)
    assert calls == [] and not root.exists()  # no request, not even a folder


def test_failed_download_is_one_line_and_leaves_nothing(tmp_path):
    spec = _served_from(get_spec("CoDExSmall"), tmp_path / "nowhere")
    root = tmp_path / "root"
    with pytest.raises(DownloadError) as info:
        ensure_raw_files(spec, root)
    message = str(info.value)
    assert "\n" not in message and "nowhere/train.txt" in message and "by hand" in message
    assert _strays(root) == [] and not (root / PINS_FILE).exists()


# ------------------------------------------------------------------------------------------ relation texts


@pytest.fixture
def texts_source(text_root, tmp_path, monkeypatch) -> Path:
    """A copy of the real texts, served as file:// URLs in place of the SEMMA repository."""
    src = tmp_path / "semma"
    _copy(text_root / DEFAULT_LLM / "Metafam-Metafam.json", src / DEFAULT_LLM / "Metafam-Metafam.json")
    monkeypatch.setattr(relation_texts, "SEMMA_TEXT_URL", src.as_uri() + "/{llm}/{text_key}.json")
    return src


def test_relation_texts_download_is_pinned_then_a_changed_file_is_refused(texts_source, tmp_path, calls):
    cache = tmp_path / "cache"
    source = texts_source / DEFAULT_LLM / "Metafam-Metafam.json"
    texts = load_relation_texts("Metafam-Metafam", cache_dir=cache)
    cached = cache / DEFAULT_LLM / "Metafam-Metafam.json"
    assert len(texts) == 28 and cached.read_bytes() == source.read_bytes() and calls == [source.as_uri()]
    key = f"{DEFAULT_LLM}/Metafam-Metafam.json"
    assert Pins.beside(cache).get(key) == _sha(source)

    cached.unlink()
    changed = json.loads(source.read_text())
    changed["cleaned_relations"] = {k: v.upper() for k, v in changed["cleaned_relations"].items()}
    source.write_text(json.dumps(changed))  # still valid texts, but not the pinned ones
    with pytest.raises(HashMismatchError) as info:
        load_relation_texts("Metafam-Metafam", cache_dir=cache)
    message = _one_line_with_hashes(info.value, Pins.beside(cache).get(key), _sha(source))
    assert str(cached) in message and not cached.exists() and _strays(cache) == []


def test_relation_texts_offline_makes_no_attempt(texts_source, tmp_path, calls):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_relation_texts("Metafam-Metafam", cache_dir=tmp_path / "cache", download=False)
    assert calls == [] and not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_download_is_verified(checkpoint_root, tmp_path, calls):
    published = KNOWN_CHECKPOINTS["ultra_3g"]
    src = _copy(checkpoint_root / "ultra_3g.pth", tmp_path / "src" / "ultra_3g.pth")
    assert _sha(src) == published.sha256
    entry = dataclasses.replace(published, url=src.as_uri())
    cache = tmp_path / "cache"
    path = download_checkpoint(entry, cache)
    assert path == cache / "ultra_3g.pth" and _sha(path) == published.sha256 and len(calls) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["ultra_3g.pth"]  # a known hash: no pins file

    with open(src, "ab") as handle:
        handle.write(b"\0")  # a corrupted or changed file
    with pytest.raises(CheckpointDownloadError) as info:
        download_checkpoint(entry, tmp_path / "cache2")
    message = _one_line_with_hashes(info.value, published.sha256, _sha(src))
    assert "'ultra_3g'" in message and str(tmp_path / "cache2" / "ultra_3g.pth") in message
    assert not any((tmp_path / "cache2").iterdir())


def test_checkpoint_offline_makes_no_attempt(tmp_path, calls):
    with pytest.raises(CheckpointError, match="downloading is off"):
        resolve_checkpoint("semma", cache_dir=tmp_path / "cache", download=False)
    assert calls == [] and not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------ the unset root


def test_a_failed_download_names_the_root_that_is_not_set(data_root, text_root, checkpoint_root, tmp_path,
                                                          monkeypatch, capsys):
    """A raw dataset file or relation texts that cannot be downloaded (file:// URLs to a missing folder), with
    their root not set, end ``evaluate`` in one line (exit 2) naming the root's option and variable and the file's
    place under it, in the words a checkpoint's failed download uses; with the root set, the line has no hint.
    (The texts' failure was a RuntimeError traceback, exit 1; the dataset's named no root.)"""
    from are_model.data import resolve_dataset_name
    from search.cli import main

    nowhere = tmp_path / "nowhere"
    name = resolve_dataset_name("Metafam")
    spec = get_spec(name)
    monkeypatch.setenv("ARE_CHECKPOINT_ROOT", str(checkpoint_root))
    command = ["evaluate", "--dataset", "Metafam", "--checkpoint", "fusion", "--split", "valid", "--device", "cpu",
               "--cache-dir", str(tmp_path / "cache")]

    def error(*extra: str) -> str:
        assert main([*command, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("are-search evaluate: error: "), err
        return err

    # the dataset: no data root set (its default under the cache), then one given
    monkeypatch.delenv("ARE_DATA_ROOT", raising=False)
    monkeypatch.setitem(DATASETS, name, _served_from(spec, nowhere))
    first = spec.relpath(spec.files[0])
    err = error()
    assert f"could not download {spec.files[0].local_name} from {nowhere.as_uri()}/" in err
    assert err.endswith(f"; no data root is set: point --data-root or ARE_DATA_ROOT at a folder that holds {first}")
    err = error("--data-root", str(tmp_path / "mine"))
    assert str(tmp_path / "mine" / first) in err and "no data root is set" not in err
    monkeypatch.undo()

    # the relation texts: the real data, no text root set, then one given that lacks the file
    monkeypatch.setenv("ARE_CHECKPOINT_ROOT", str(checkpoint_root))
    monkeypatch.setenv("ARE_DATA_ROOT", str(data_root))
    monkeypatch.delenv("ARE_TEXT_ROOT", raising=False)
    monkeypatch.setattr(relation_texts, "SEMMA_TEXT_URL", nowhere.as_uri() + "/{llm}/{text_key}.json")
    err = error()
    assert f"could not download relation texts from {nowhere.as_uri()}/{DEFAULT_LLM}/Metafam-Metafam.json" in err
    assert err.endswith(f"; no text root is set: point --text-root or ARE_TEXT_ROOT at a folder that holds "
                        f"{DEFAULT_LLM}/Metafam-Metafam.json")
    err = error("--text-root", str(tmp_path / "texts"))
    assert "could not download relation texts" in err and "no text root is set" not in err


# ------------------------------------------------------------------------------------------ fetch_url


def test_fetch_url_pins_and_verify_hook(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("a r b\n")
    pins = Pins.beside(tmp_path / "out")
    dest = tmp_path / "out" / "sub" / "file.txt"
    seen: list[Path] = []
    assert fetch_url(src.as_uri(), dest, pins=pins, pin_key="sub/file.txt", verify=seen.append) == dest
    assert seen[0].parent == dest.parent and seen[0] != dest  # verify sees the temporary file next to dest
    assert pins.get("sub/file.txt") == _sha(src)
    # a verify failure: nothing lands and nothing is pinned
    other = tmp_path / "out" / "other.txt"
    with pytest.raises(ValueError, match="no thanks"):
        fetch_url(src.as_uri(), other, pins=pins, verify=lambda tmp: (_ for _ in ()).throw(ValueError("no thanks")))
    assert not other.exists() and pins.get("other.txt") is None and _strays(tmp_path / "out") == []
    # a malformed pins file is an error, not a silent re-pin
    (tmp_path / "out" / PINS_FILE).write_text("{not json")
    with pytest.raises(DownloadError, match="malformed pins file"):
        fetch_url(src.as_uri(), tmp_path / "out" / "third.txt", pins=pins)


def test_file_downloader_follows_poochs_protocol(tmp_path):
    src = tmp_path / "a b.txt"  # a space: percent-encoded in the URL
    src.write_bytes(b"payload")
    downloader = FileDownloader()
    assert downloader(src.as_uri(), str(tmp_path / "out"), None) is None
    assert (tmp_path / "out").read_bytes() == b"payload"
    assert downloader(src.as_uri(), None, None, check_only=True) is True
    assert downloader((tmp_path / "gone").as_uri(), None, None, check_only=True) is False


# ------------------------------------------------------------------------------------------ HTTP (pooch)


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """A local HTTP server over ``tmp_path/www``; the first request to a path under ``flaky/`` fails (503)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    failed: set[str] = set()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.startswith("/flaky/") and self.path not in failed:
                failed.add(self.path)
                self.send_error(503, "try again")
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}", failed
    server.shutdown()
    server.server_close()


def test_http_download_retries_and_shows_pooch_progress_only_when_asked(checkpoint_root, http_server, tmp_path,
                                                                         capfd):
    www, base, failed = http_server
    _copy(checkpoint_root / "semma.pth", www / "flaky" / "semma.pth")
    _copy(checkpoint_root / "semma.pth", www / "semma.pth")
    published = KNOWN_CHECKPOINTS["semma"]
    capfd.readouterr()
    path = download_checkpoint(dataclasses.replace(published, url=f"{base}/flaky/semma.pth"), tmp_path / "a",
                               progress=True)  # first answer 503: pooch tries again
    assert _sha(path) == published.sha256 and failed == {"/flaky/semma.pth"}
    err = capfd.readouterr().err
    assert "B/s" in err or "100%" in err, err  # pooch's (tqdm) bar, on stderr
    path = download_checkpoint(dataclasses.replace(published, url=f"{base}/semma.pth"), tmp_path / "b")
    assert _sha(path) == published.sha256
    assert capfd.readouterr().err == ""  # not asked: no bar, no pooch log line
    with pytest.raises(CheckpointDownloadError, match=r"404"):
        download_checkpoint(dataclasses.replace(published, url=f"{base}/missing.pth"), tmp_path / "c")
    assert not any((tmp_path / "c").iterdir())
