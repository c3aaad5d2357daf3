"""Where studies live: the one parser of storage URLs, opening a storage once per process, finding a study.

One idea per module; every name is re-exported here, so ``from search.storage import X`` is the way in:

* :mod:`~search.storage.url` -- :class:`StorageURL` (the only parser of storage texts), the default storage;
* :mod:`~search.storage.state` -- what a storage is before it is opened (missing, empty, ready) and its files;
* :mod:`~search.storage.locks` -- the lock beside an SQLite file and :class:`LockedSQLiteStorage`, which
  holds it while an enqueued trial is started;
* :mod:`~search.storage.backends` -- :func:`open_storage`: read-only or read-write, heartbeats, one object
  per storage and mode in a process; :func:`recover_storage`, what a writer does first (a hot journal);
* :mod:`~search.storage.hot` -- an SQLite file with a hot journal, as a reader names it;
* :mod:`~search.storage.rdb` -- :class:`NamedRDBStorage`, whose database failures are one line naming it;
* :mod:`~search.storage.journal` -- :class:`JournalFile`, a journal that never appends onto a cut line;
* :mod:`~search.storage.studies` -- list, find (any spelling of a dataset), load and create studies.
"""
from __future__ import annotations

from search.storage.backends import (GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, MAX_RETRY, SQLITE_BUSY_TIMEOUT_S, open_storage,
                                     recover_storage)
from search.storage.journal import JournalFile
from search.storage.locks import LockedSQLiteStorage, file_lock, lock_path_for, lock_path_of
from search.storage.rdb import NamedRDBStorage
from search.storage.state import StorageState, hot_journal, local_files, storage_state
from search.storage.studies import create_or_load_study, find_study, list_studies, load_study
from search.storage.url import DB_FILE_NAME, StorageURL, default_storage

__all__ = [
    "MAX_RETRY",
    "SQLITE_BUSY_TIMEOUT_S",
    "HEARTBEAT_INTERVAL_S",
    "GRACE_PERIOD_S",
    "DB_FILE_NAME",
    "StorageURL",
    "StorageState",
    "LockedSQLiteStorage",
    "default_storage",
    "file_lock",
    "lock_path_for",
    "lock_path_of",
    "local_files",
    "storage_state",
    "open_storage",
    "recover_storage",
    "hot_journal",
    "NamedRDBStorage",
    "JournalFile",
    "list_studies",
    "find_study",
    "load_study",
    "create_or_load_study",
]
