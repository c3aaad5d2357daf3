"""What a storage is on this host before it is opened: its state (missing, empty, ready) and its files.

Nothing here creates or changes anything: a read-only command (``status``, ``export``, ``report``) looks
here first and reports a missing or empty storage instead of making one. Two states are refused in
words of their own: a storage path that is not a regular file (a FIFO, which would block the reader,
a device node: :func:`require_regular_files`), and an SQLite file with a hot journal -- ``<file>-journal``
left by a writer killed inside a transaction, which SQLite rolls back on the first read-write open
(:func:`hot_journal`; a writing command does that, see :func:`search.storage.backends.recover_storage`).
"""
from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from are_model.fileio import NotWritableError, check_writable_file
from search.errors import StorageError
from search.storage.hot import hot_journal, hot_journal_error
from search.storage.locks import lock_path_for
from search.storage.url import StorageURL, sqlite_uri

__all__ = ["StorageState", "storage_state", "local_files", "require_regular_files", "hot_journal",
           "hot_journal_error"]


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
    require_regular_files(url, writing=False)
    if url.kind == "sqlite":
        if not url.path.exists():
            return StorageState(url, "missing")
        try:
            with contextlib.closing(sqlite3.connect(sqlite_uri(url.path, mode="ro"), uri=True)) as connection:
                tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            if hot_journal(url) is not None:  # a read-only reader cannot roll it back, and SQLite says "readonly"
                raise hot_journal_error(url) from None
            raise StorageError(f"storage {url.safe}: not an SQLite database ({exc})") from None
        return StorageState(url, "ready" if "studies" in tables else "empty")
    if url.kind == "journal":
        if not url.path.exists():
            return StorageState(url, "missing")
        return StorageState(url, "ready" if url.path.stat().st_size > 0 else "empty")
    return StorageState(url, "unknown")


def require_regular_files(url: StorageURL, *, writing: bool) -> None:
    """Refuse, with ``<path>: not a regular file``, a storage file (and, ``writing``, the lock file of ours
    beside an SQLite file) that is there but is not a regular file or a link to one: a FIFO would block
    every reader, a device node such as ``/dev/null`` would swallow the study (and SQLite would put its
    ``-journal`` beside the node). With ``writing`` its folder must be a folder, or missing with its own parent
    there (a writer makes that one folder, never a tree: StorageError naming the missing folder). Nothing
    is opened or created."""
    if url.path is None:
        return
    if writing and not url.path.exists() and not url.path.parent.exists() and not url.path.parent.parent.exists():
        raise StorageError(f"cannot create storage {url.safe}: folder {url.path.parent.parent} does not exist "
                           "(only the storage file's own folder is made)")
    paths = [url.path] + ([lock_path_for(url.path)] if writing and url.kind == "sqlite" else [])
    for path in paths:
        if not writing and not path.exists():
            continue
        try:
            check_writable_file(path)
        except NotWritableError as exc:
            raise StorageError(str(exc)) from None


def local_files(url: StorageURL) -> list[Path]:
    """The files a storage at ``url`` keeps on this host: an SQLite file, its lock file and the files SQLite
    keeps beside it while writing (``-journal``, ``-wal``, ``-shm``), a journal and the lock files Optuna's
    journal backend makes beside it; none for a server or memory."""
    if url.path is None:
        return []
    if url.kind == "sqlite":
        return [url.path, lock_path_for(url.path),
                *(url.path.with_name(url.path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))]
    return [url.path, lock_path_for(url.path), url.path.with_name(url.path.name + ".lock.rename")]
