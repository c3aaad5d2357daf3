"""What a storage is on this host before it is opened: its state (missing, empty, ready) and its files.

Nothing here creates or changes anything: a read-only command (``status``, ``export``, ``report``) looks
here first and reports a missing or empty storage instead of making one.
"""
from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from search.errors import StorageError
from search.storage.locks import lock_path_for
from search.storage.url import StorageURL

__all__ = ["StorageState", "storage_state", "local_files"]


@dataclass(frozen=True)
class StorageState:
    """What a read-only look found: ``missing`` (no file), ``empty`` (a file without Optuna's
    schema), ``ready`` (studies can be read) or ``unknown`` (a server or memory: checked when opened)."""

    url: StorageURL
    state: str

    def describe(self) -> str:
        """``<url> (<state in words>)`` for messages (password masked)."""
        words = {"missing": "does not exist", "empty": "exists but holds no Optuna schema",
                 "ready": "ready", "unknown": "server"}[self.state]
        return f"{self.url.safe} ({words})"


def storage_state(url: StorageURL | str) -> StorageState:
    """Look at a storage without creating or changing anything.

    Raises StorageError when an SQLite file is not an SQLite database (or the text is not a storage URL).
    """
    url = StorageURL.parse(url)
    if url.kind == "sqlite":
        if not url.path.exists():
            return StorageState(url, "missing")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{url.path}?mode=ro", uri=True)) as connection:
                tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"storage {url.safe}: not an SQLite database ({exc})") from None
        return StorageState(url, "ready" if "studies" in tables else "empty")
    if url.kind == "journal":
        if not url.path.exists():
            return StorageState(url, "missing")
        return StorageState(url, "ready" if url.path.stat().st_size > 0 else "empty")
    return StorageState(url, "unknown")


def local_files(url: StorageURL) -> list[Path]:
    """The files a storage at ``url`` keeps on this host: an SQLite file and its lock file, a journal
    and the lock files Optuna's journal backend makes beside it; none for a server or memory."""
    if url.path is None:
        return []
    if url.kind == "sqlite":
        return [url.path, lock_path_for(url.path)]
    return [url.path, lock_path_for(url.path), url.path.with_name(url.path.name + ".lock.rename")]
