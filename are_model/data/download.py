"""Downloads that verify: every file the project fetches goes through pooch and one function, :func:`fetch_url`.

Raw dataset files (:func:`ensure_raw_files`), relation texts (:mod:`are_model.text.relation_texts`) and
checkpoints (``search.checkpoints``) are all fetched by :func:`fetch_url`, which

* downloads with `pooch <https://www.fatiando.org/pooch>`_: HTTP(S) through ``pooch.HTTPDownloader``
  (retries with back-off, a timeout, pooch's progress bar on stderr only when ``progress=True``), and
  ``file://`` URLs through :class:`FileDownloader` (pooch has none; the tests run offline through it);
* checks the bytes against a pin: the known sha256 the caller passes (the registry's :data:`SHA256`
  table, a checkpoint's published hash), else the one recorded in the folder's :class:`Pins` file
  (``<folder>/pins.json``). A file with neither is pinned on its first download (trust on first use):
  its sha256 is recorded, and every later download of it must match. Bytes that do not match are
  refused with one line naming the file and both hashes (:class:`HashMismatchError`), and nothing lands;
* lands the file atomically: pooch downloads into a temporary file inside a private staging folder
  next to the destination and moves it there only once the hash matched; the file is then renamed onto
  the destination through :func:`are_model.fileio.atomic_write` (fsync, usual permission bits), so a
  reader never sees a partial or unverified file, and a failed download leaves nothing behind.

With ``download=False`` (the command line's ``--offline``) nothing here is called: no request, no folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..fileio import atomic_write, atomic_write_bytes, sha256_file
from .errors import DownloadError, MissingRawFileError
from .registry import DatasetSpec, RawFile

__all__ = [
    "ensure_raw_files",
    "fetch_url",
    "FileDownloader",
    "Pins",
    "HashMismatchError",
    "FetchError",
    "download_reason",
    "PINS_FILE",
    "ARCHIVE_DIR",
    "DOWNLOAD_TIMEOUT_S",
    "DOWNLOAD_RETRIES",
]

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 120.0
#: Extra attempts after a failed HTTP(S) download (pooch waits 1 s, 2 s, ... in between). A ``file://``
#: URL is read once: a local file does not fail now and then.
DOWNLOAD_RETRIES = 2
#: The pins file at the top of a download folder (data root, text cache, checkpoint cache).
PINS_FILE = "pins.json"
#: Archives (zip files that hold raw files) are kept under ``<data root>/.downloads/``, so the datasets
#: that share one (MTDEA, DacKGR) download it once.
ARCHIVE_DIR = ".downloads"
_USER_AGENT = "are-search-downloads/1 (pooch)"


class FetchError(DownloadError):
    """A download that failed (network, server, missing source): one line naming the URL and the reason.

    Attributes:
        url: the URL that was asked for.
        reason: why, in a few words (``Connection refused``, ``HTTP 404 Not Found``, ``timed out``,
            ``No such file or directory``), never a driver's nested exception text.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot download {url}: {reason}")
        self.url, self.reason = url, reason

    def __reduce__(self):  # picklable across processes despite the custom signature
        return type(self), (self.url, self.reason)


def download_reason(error: BaseException) -> str:
    """Why a download failed, in a few words: the HTTP status (``HTTP 404 Not Found``), a timeout, the system's
    words for a refused or unreachable connection found anywhere in the chain of a requests/urllib3 error
    (``Connection refused``, ``Name or service not known``), an OSError's own words, else its first line."""
    import re

    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status} {getattr(response, 'reason', '') or ''}".strip()
    seen: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:  # the exception, its causes and what requests/urllib3 wrap in args and .reason
        item = todo.pop(0)
        if not isinstance(item, BaseException) or item in seen:
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    if any("timeout" in type(e).__name__.lower() or isinstance(e, TimeoutError) for e in seen):
        return "timed out"
    text = " ".join(" ".join(str(e).split()) for e in seen)
    errno_words = re.search(r"\[Errno -?\d+\] ([^'\"()\[\]:]+)", text)
    if errno_words:
        return errno_words.group(1).strip().rstrip(".")
    own = next((e.strerror for e in seen if isinstance(e, OSError) and e.strerror), None)
    if own:
        return str(own)
    first = " ".join(str(error).split())
    return first[:200] or type(error).__name__


class HashMismatchError(DownloadError):
    """A download whose sha256 is not the pinned one: refused, nothing written (one line).

    Attributes:
        file: the destination that was not written.
        expected: the pinned sha256.
        got: the sha256 of the bytes that were downloaded.
        url: where they came from.
    """

    def __init__(self, file: str | os.PathLike, expected: str, got: str, url: str, *, prefix: str = "") -> None:
        self.file, self.expected, self.got, self.url = str(file), expected, got, url
        super().__init__(f"{prefix}{self.file}: download refused, sha256 mismatch: expected {expected}, got {got} "
                         f"(from {url}; nothing was written)")


# ---------------------------------------------------------------------------------------------- pins


class Pins:
    """The pinned sha256 of the files downloaded into one folder: ``<folder>/pins.json``.

    The file is ``{"sha256": {"<path relative to the folder>": "<hex>"}}``, written atomically (every
    update re-reads it first, so two processes pinning different files keep both pins). A malformed
    pins file is an error rather than being ignored: it is what stands between a changed download and
    the code that reads it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @classmethod
    def beside(cls, folder: str | os.PathLike) -> "Pins":
        """The pins of ``folder``: ``<folder>/pins.json``."""
        return cls(Path(folder) / PINS_FILE)

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            obj = json.loads(raw)
            table = obj["sha256"]
            if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in table.items()):
                raise TypeError("'sha256' must map file names to hex strings")
        except (ValueError, KeyError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DownloadError(f"{self.path}: malformed pins file ({type(exc).__name__}: {reason}); "
                                "delete it to pin the downloads again") from None
        return {key: value.lower() for key, value in table.items()}

    def get(self, key: str) -> str | None:
        """The pinned sha256 of ``key``, or None."""
        return self._read().get(key)

    def record(self, key: str, digest: str) -> None:
        """Pin ``key`` to ``digest`` (atomically; a pin already there is kept if it is the same)."""
        table = self._read()
        if table.get(key) == digest:
            return
        table[key] = digest
        payload = json.dumps({"sha256": dict(sorted(table.items()))}, indent=1) + "\n"
        atomic_write_bytes(self.path, payload.encode("utf-8"))
        logger.info("pinned %s: sha256 %s (in %s)", key, digest, self.path)


# ---------------------------------------------------------------------------------------------- pooch


def _local_path(url: str) -> Path:
    parsed = urllib.parse.urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"file:// URL with a remote host is not supported: {url}")
    return Path(urllib.request.url2pathname(parsed.path))


class FileDownloader:
    """A pooch downloader for ``file://`` URLs (pooch has none): copies the local file the URL names.

    Follows pooch's downloader protocol, ``downloader(url, output_file, pooch, check_only=False)``.
    A missing source raises :class:`FileNotFoundError` (pooch does not retry it).
    """

    def __call__(self, url: str, output_file: str | IO[bytes], pooch: Any, check_only: bool = False) -> bool | None:
        source = _local_path(url)
        if check_only:
            return source.is_file()
        with open(source, "rb") as src:
            if hasattr(output_file, "write"):
                shutil.copyfileobj(src, output_file, length=1 << 20)  # type: ignore[arg-type]
            else:
                with open(output_file, "wb") as out:
                    shutil.copyfileobj(src, out, length=1 << 20)
        return None


def choose_downloader(url: str, *, progress: bool = False, timeout: float = DOWNLOAD_TIMEOUT_S) -> Callable[..., Any]:
    """The pooch downloader for ``url``: :class:`FileDownloader` for ``file://``, pooch's HTTP downloader
    (timeout, user agent, its progress bar on stderr when ``progress``) for http(s), pooch's choice else."""
    import pooch

    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme == "file":
        return FileDownloader()
    if scheme in ("http", "https"):
        return pooch.HTTPDownloader(progressbar=progress, timeout=timeout, headers={"User-Agent": _USER_AGENT})
    return pooch.downloaders.choose_downloader(url, progressbar=progress)


@contextlib.contextmanager
def _pooch_logging() -> Iterator[None]:
    """pooch logs every download at INFO on its own stderr handler: follow this module's level instead."""
    import pooch

    pooch_logger = pooch.get_logger()
    before = pooch_logger.level
    pooch_logger.setLevel(logging.INFO if logger.isEnabledFor(logging.INFO) else logging.WARNING)
    try:
        yield
    finally:
        pooch_logger.setLevel(before)


class _Mismatch(Exception):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected, self.got = expected, got


def _pooch_fetch(url: str, folder: Path, name: str, expected: str | None, *, timeout: float, retries: int,
                 progress: bool) -> tuple[Path, str]:
    """``url`` downloaded by pooch into ``folder/name`` (checked against ``expected`` when given); its sha256."""
    import pooch

    inner = choose_downloader(url, progress=progress, timeout=timeout)
    digests: list[str] = []

    def downloader(url: str, output_file: Any, pooch_: Any, check_only: bool = False) -> Any:
        if check_only:
            return inner(url, output_file, pooch_, check_only=True)
        result = inner(url, output_file, pooch_)
        if not hasattr(output_file, "write"):  # pooch passes the path of its temporary file
            digests.append(sha256_file(output_file))
        return result

    registry = {name: None if expected is None else f"sha256:{expected}"}
    store = pooch.create(path=folder, base_url="", registry=registry, urls={name: url},  # type: ignore[arg-type]
                         retry_if_failed=retries, allow_updates=False)
    with _pooch_logging():
        try:
            path = Path(store.fetch(name, downloader=downloader))
        except ValueError:
            if expected is not None and digests and digests[-1] != expected:
                raise _Mismatch(expected, digests[-1]) from None
            raise
    got = digests[-1] if digests else sha256_file(path)
    return path, got


def fetch_url(url: str, dest: str | os.PathLike, *, sha256: str | None = None, pins: Pins | None = None,
              pin_key: str | None = None, verify: Callable[[Path], None] | None = None,
              timeout: float = DOWNLOAD_TIMEOUT_S, retries: int | None = None, progress: bool = False) -> Path:
    """Download ``url`` (http(s) or ``file://``) to ``dest``, verified, atomically; returns ``dest``.

    Args:
        sha256: the known sha256 of the file; the download must match it.
        pins: the pins of the folder the file lands in. Without ``sha256``, the pin of ``pin_key`` (default:
            ``dest``'s name) must match; with no pin yet, the downloaded file's sha256 is recorded once it
            has landed (and never when ``sha256`` is given).
        verify: ``verify(tmp)`` runs on the complete, hash-checked temporary file next to ``dest`` before it
            is renamed onto ``dest``; an exception it raises propagates and ``dest`` is left untouched
            (no pin is recorded either).
        retries: extra attempts after a failed attempt (default :data:`DOWNLOAD_RETRIES` for http(s), 0 for
            ``file://``).
        progress: pooch's progress bar on stderr.

    Raises:
        HashMismatchError: the bytes are not the pinned ones (one line: the file, expected and got).
        FetchError: the download failed (one line: ``cannot download URL: reason``, see :func:`download_reason`).
    """
    dest = Path(dest)
    key = pin_key if pin_key is not None else dest.name
    expected = sha256.lower() if sha256 else (pins.get(key) if pins is not None else None)
    if retries is None:
        retries = 0 if urllib.parse.urlparse(url).scheme.lower() == "file" else DOWNLOAD_RETRIES
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".download", dir=dest.parent))
    try:
        try:
            staged, got = _pooch_fetch(url, stage, dest.name, expected, timeout=timeout, retries=retries,
                                       progress=progress)
        except _Mismatch as mismatch:
            raise HashMismatchError(dest, mismatch.expected, mismatch.got, url) from None
        except (OSError, ValueError) as error:  # requests' errors are OSErrors; pooch raises ValueError too
            raise FetchError(url, download_reason(error)) from None

        def write(tmp: Path) -> None:
            os.replace(staged, tmp)
            if verify is not None:
                verify(tmp)

        atomic_write(dest, write)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if expected is None and pins is not None:
        pins.record(key, got)
    return dest


# ---------------------------------------------------------------------------------------------- raw files


def _source(raw: RawFile) -> str:
    return raw.url if raw.member is None else f"{raw.url} (zip member {raw.member})"


def _archive_name(url: str) -> str:
    """A cache file name for an archive: its URL's base name, made unique by a hash of the URL."""
    base = os.path.basename(urllib.parse.urlparse(url).path) or "archive.zip"
    return f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:12]}-{base}"


def _archive(url: str, root: Path, pins: Pins, *, progress: bool) -> Path:
    """The archive at ``url`` in ``<root>/.downloads/``: downloaded (and pinned) once, checked on reuse."""
    name = _archive_name(url)
    key = f"{ARCHIVE_DIR}/{name}"
    path = root / ARCHIVE_DIR / name
    if path.is_file():
        pinned = pins.get(key)
        if pinned is None or sha256_file(path) == pinned:
            logger.debug("archive %s: reusing %s", url, path)
            return path
        logger.warning("archive %s does not match its pin; downloading it again", path)
    logger.info("downloading archive %s -> %s", url, path)
    return fetch_url(url, path, pins=pins, pin_key=key, progress=progress)


def _extract(spec: DatasetSpec, archive: Path, url: str, raw: RawFile, dest: Path, expected: str | None,
             pins: Pins, key: str) -> None:
    """Extract ``raw.member`` to ``dest`` atomically, checked against its pin (or pinned now)."""
    digests: list[str] = []

    def write(tmp: Path) -> None:
        assert raw.member is not None
        with zipfile.ZipFile(archive) as zf, zf.open(raw.member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
        got = sha256_file(tmp)
        if expected is not None and got != expected:
            raise HashMismatchError(dest, expected, got, f"{url} (zip member {raw.member})", prefix=f"{spec.name}: ")
        digests.append(got)

    logger.info("%s: extracting %s -> %s", spec.name, raw.member, dest)
    atomic_write(dest, write)
    if expected is None:
        pins.record(key, digests[-1])


def _download_group(spec: DatasetSpec, root: Path, url: str, wanted: list[tuple[RawFile, Path]], pins: Pins,
                    *, progress: bool) -> None:
    """Fetch the files of ``wanted`` that come from ``url``; raise :class:`DownloadError` on failure."""
    raw, dest = wanted[0]
    try:
        if raw.member is None:
            key = spec.relpath(raw)
            logger.info("%s: downloading %s from %s", spec.name, dest, url)
            try:
                fetch_url(url, dest, sha256=spec.sha256(raw), pins=pins, pin_key=key, progress=progress)
            except HashMismatchError as exc:
                raise HashMismatchError(exc.file, exc.expected, exc.got, exc.url, prefix=f"{spec.name}: ") from None
            return
        logger.info("%s: archive %s holds %s", spec.name, url, ", ".join(r.local_name for r, _ in wanted))
        archive = _archive(url, root, pins, progress=progress)
        for raw, dest in wanted:
            key = spec.relpath(raw)
            expected = spec.sha256(raw) or pins.get(key)
            _extract(spec, archive, url, raw, dest, expected, pins, key)
    except FetchError as exc:  # the URL and the reason, with the dataset, the file and what to do instead
        raise DownloadError(f"{spec.name}: could not download {raw.local_name} from {exc.url}: {exc.reason}; "
                            f"place the file at {dest} by hand", wanted=spec.relpath(raw)) from None
    except DownloadError:  # a refused download or a malformed pins file: its own one line
        raise
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DownloadError(
            f"{spec.name}: could not download {raw.local_name} from {_source(raw)}: {type(exc).__name__}: "
            f"{reason}; place the file at {dest} by hand", wanted=spec.relpath(raw)) from None


def ensure_raw_files(spec: DatasetSpec, root: str | os.PathLike, *, download: bool = True,
                     progress: bool = False) -> dict[str, Path]:
    """Paths of the raw files of ``spec`` under ``root``, downloading the missing ones if allowed.

    Files already under ``root`` are used as they are. A missing file is downloaded into ``root``
    (through :func:`fetch_url`), checked against its pin: the registry's :data:`~are_model.data.registry.SHA256`,
    else ``<root>/pins.json``, where a file downloaded for the first time is pinned. Zip archives are kept
    in ``<root>/.downloads/`` (pinned too) and their members extracted atomically.

    Args:
        download: False (``--offline``): never download; a missing required file is an error.
        progress: pooch's progress bar on stderr while downloading.

    Returns:
        role -> local path, for every required file and for each optional file that is present.

    Raises:
        MissingRawFileError: a required file is missing and ``download`` is False.
        HashMismatchError: a downloaded file is not the pinned one (nothing is written).
        DownloadError: a required file is missing and could not be downloaded (its ``wanted``: the file's
            path relative to ``root``).
    """
    root = Path(root)
    raw_dir = spec.raw_dir(root)
    paths: dict[str, Path] = {}
    missing: dict[str, list[tuple[RawFile, Path]]] = {}
    for raw in spec.files:
        dest = raw_dir / raw.local_name
        if dest.is_file():
            paths[raw.role] = dest
        elif not download:
            if raw.optional:
                logger.debug("%s: optional raw file %s is absent", spec.name, dest)
                continue
            raise MissingRawFileError(
                f"{spec.name}: raw file {dest} is missing and downloading is off (download=False, --offline); "
                f"fetch it from {_source(raw)} and place it there, or allow downloading")
        else:
            missing.setdefault(raw.url, []).append((raw, dest))
    if not missing:
        return paths
    pins = Pins.beside(root)
    for url, wanted in missing.items():
        try:
            _download_group(spec, root, url, wanted, pins, progress=progress)
        except DownloadError as exc:
            if all(raw.optional for raw, _ in wanted) and not isinstance(exc, HashMismatchError):
                logger.warning("%s (optional file, loading without it)", exc)
                continue
            raise
        for raw, dest in wanted:
            paths[raw.role] = dest
    return paths
