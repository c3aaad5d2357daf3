"""An SQLite file with a hot journal: ``<file>-journal`` left by a writer killed inside a transaction.

SQLite rolls such a journal back on the first read-write open; a read-only reader cannot, and SQLite tells it
"attempt to write a readonly database". :func:`hot_journal` finds the file, :func:`hot_journal_error` is the
one line a reader gives instead; :func:`search.storage.backends.recover_storage` is what a writer does.
"""
from __future__ import annotations

from pathlib import Path

from search.errors import StorageError
from search.storage.url import StorageURL

__all__ = ["hot_journal", "hot_journal_error"]


def hot_journal(url: StorageURL) -> Path | None:
    """``<file>-journal`` of the SQLite file of ``url`` when it is there and not empty (a rollback journal a
    writer left: hot unless a live writer still holds its lock, which SQLite itself checks), else None."""
    if url.kind != "sqlite" or url.path is None:
        return None
    journal = url.path.with_name(url.path.name + "-journal")
    try:
        return journal if journal.stat().st_size > 0 else None
    except OSError:
        return None


def hot_journal_error(url: StorageURL) -> StorageError:
    """The one line a reader gives for an SQLite file with a hot journal (see :func:`hot_journal`)."""
    return StorageError(f"storage {url.safe} has a hot journal {url.path}-journal left by a writer killed inside "
                        "a transaction: any writing command (resume) rolls it back")
