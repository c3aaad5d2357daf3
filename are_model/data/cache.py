"""Processed-data cache: one ``torch.save`` file per (loader version, raw bytes).

The file lives at ``<cache_dir>/<name with ':' -> '-'>/<sha256>.pt``; the key hashes the loader
version, the registry entry and every raw file's sha256 (:func:`file_digests`, computed once per load
and kept on the loaded dataset as its raw files' identity, which a study stores and checks on resume), so an
edited raw file gets a new key and a stale entry is never read. The payload (the splits and the load's report) holds only tensors, ints, strs, lists
and dicts, so it loads with ``weights_only=True``. A file that fails to load is logged and rebuilt. The
cache folder is always the caller's (``load_dataset(cache_dir=...)``); there is no default location.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_write

__all__ = ["LOADER_VERSION", "file_digests", "cache_key", "cache_path", "load_cached", "save_cached"]

logger = logging.getLogger(__name__)

#: Bump when the parsing rules or the payload layout change.
LOADER_VERSION = "are-data-2"  # 2: line rules counted, LoadReport in the payload


def file_digests(blobs: dict[str, tuple[str, bytes]]) -> dict[str, str]:
    """role -> hex sha256 of that raw file's bytes (``blobs``: role -> (path, bytes)). The one hash of a
    raw file: the cache key and a dataset's :attr:`~are_model.data.KGDataset.files` are made of it."""
    return {role: hashlib.sha256(data).hexdigest() for role, (_, data) in blobs.items()}


def cache_key(spec_repr: str, digests: dict[str, str]) -> str:
    """sha256 (hex) of the loader version, the spec and each role's raw-file sha256 (in sorted role order;
    ``digests`` from :func:`file_digests`)."""
    digest = hashlib.sha256()
    for part in (LOADER_VERSION, spec_repr):
        digest.update(part.encode())
        digest.update(b"\0")
    for role in sorted(digests):
        digest.update(f"{role}\0{digests[role]}\0".encode())
    return digest.hexdigest()


def cache_path(cache_dir: str | os.PathLike, name: str, key: str) -> Path:
    return Path(cache_dir) / name.replace(":", "-") / f"{key}.pt"


def load_cached(path: Path) -> dict[str, Any] | None:
    """The cached payload, or ``None`` if absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict):
            raise TypeError(f"payload is a {type(payload).__name__}, not a dict")
        return payload
    except Exception as exc:  # any unreadable file: rebuild rather than fail
        logger.warning("ignoring corrupt processed cache %s (%s: %s); rebuilding", path, type(exc).__name__, exc)
        return None


def save_cached(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically; a failure to write (e.g. read-only cache) is only logged."""
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except OSError as exc:
        logger.warning("could not write processed cache %s: %s", path, exc)
