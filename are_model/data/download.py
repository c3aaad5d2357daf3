"""Fetching missing raw files from their public URLs (plain files or members of a zip archive).

Files are written into the data root through :func:`are_model.fileio.atomic_write`, so an interrupted
download never leaves a truncated raw file behind; :func:`fetch_url` can check the downloaded bytes
(e.g. their sha256) before they land. Each archive is downloaded once per call, into an anonymous
temporary file, however many of its members are missing.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import IO, Callable

from ..fileio import atomic_write
from .errors import DownloadError, MissingRawFileError
from .registry import DatasetSpec, RawFile

__all__ = ["ensure_raw_files", "fetch_url", "DOWNLOAD_TIMEOUT_S"]

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 120.0
_USER_AGENT = "are-search-datasets/1 (+https://github.com)"


def _source(raw: RawFile) -> str:
    return raw.url if raw.member is None else f"{raw.url} (zip member {raw.member})"


def _copy_url(url: str, out: IO[bytes], timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        shutil.copyfileobj(response, out, length=1 << 20)


def fetch_url(url: str, dest: str | os.PathLike, *, timeout: float = DOWNLOAD_TIMEOUT_S,
              verify: Callable[[Path], None] | None = None) -> Path:
    """Download ``url`` (http(s) or ``file://``) to ``dest`` atomically and return ``dest``.

    ``verify(tmp)`` runs on the complete temporary file before it is renamed onto ``dest``: an
    exception it raises (e.g. a sha256 mismatch) propagates and ``dest`` is left untouched.
    """
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            _copy_url(url, out, timeout)
        if verify is not None:
            verify(tmp)

    return atomic_write(dest, write)


def _extract(archive: IO[bytes], member: str, dest: Path) -> None:
    def write(tmp: Path) -> None:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)

    atomic_write(dest, write)


def _download_group(spec: DatasetSpec, url: str, wanted: list[tuple[RawFile, Path]]) -> None:
    """Fetch the files of ``wanted`` that come from ``url``; raise :class:`DownloadError` on failure."""
    raw, dest = wanted[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if raw.member is None:
            logger.info("%s: downloading %s from %s", spec.name, dest, url)
            fetch_url(url, dest)
            return
        logger.info("%s: downloading archive %s for %s", spec.name, url, ", ".join(r.local_name for r, _ in wanted))
        # scratch space, not a result: an unnamed file that the OS removes however the process ends
        with tempfile.TemporaryFile(dir=dest.parent) as archive:
            _copy_url(url, archive, DOWNLOAD_TIMEOUT_S)
            archive.flush()
            for raw, dest in wanted:
                logger.info("%s: extracting %s -> %s", spec.name, raw.member, dest)
                _extract(archive, raw.member, dest)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DownloadError(
            f"{spec.name}: could not download {raw.local_name} from {_source(raw)}: {type(exc).__name__}: "
            f"{reason}; place the file at {dest} by hand") from None


def ensure_raw_files(spec: DatasetSpec, root: str | os.PathLike, *, download: bool = True) -> dict[str, Path]:
    """Paths of the raw files of ``spec`` under ``root``, downloading the missing ones if allowed.

    Returns:
        role -> local path, for every required file and for each optional file that is present.

    Raises:
        MissingRawFileError: a required file is missing and ``download`` is False.
        DownloadError: a required file is missing and could not be downloaded.
    """
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
                f"{spec.name}: raw file {dest} is missing and download=False; fetch it from {_source(raw)} "
                f"and place it there, or allow downloading")
        else:
            missing.setdefault(raw.url, []).append((raw, dest))
    for url, wanted in missing.items():
        try:
            _download_group(spec, url, wanted)
        except DownloadError as exc:
            if all(raw.optional for raw, _ in wanted):
                logger.warning("%s (optional file, loading without it)", exc)
                continue
            raise
        for raw, dest in wanted:
            paths[raw.role] = dest
    return paths
