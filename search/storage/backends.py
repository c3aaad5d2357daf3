"""Opening a storage, once per process: the RDB (SQLite, server) and journal storages built from a StorageURL.

A storage is opened for writing (``launch``, ``resume``: heartbeats on, the schema created when missing,
creation of a fresh SQLite file serialised behind ``<db>.lock``, a writable SQLite file opened as
:class:`search.storage.locks.LockedSQLiteStorage`) or read-only (``status``, ``export``, ``report``):
nothing is created, no lock file, no schema written; a missing or empty storage is refused with the state
:func:`search.storage.state.storage_state` names.

What a writer meets first is mended or refused here, never passed on: a storage path that is not a
regular file is refused (``<path>: not a regular file``); an SQLite file with a hot journal is rolled
back (:func:`recover_storage`); a journal's cut last line is dropped before the next append
(:class:`search.storage.journal.JournalFile`); a fresh SQLite file whose schema could not be written (a
full disk) is removed again with its lock and the folders the open made. Database failures later on are
one line naming the storage (:class:`search.storage.rdb.NamedRDBStorage`).

:func:`open_storage` hands out one object per storage and mode in a process: the second call with the same
parsed URL, mode and heartbeat settings returns the storage the first one opened (its connections, its
schema check and its lock). The cache is keyed by the process id as well, so a forked worker opens its
own; a storage whose file was deleted or replaced since (a rolled-back launch) is opened afresh.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning

from search.compat import heartbeat_options
from search.errors import StorageError
from search.storage.locks import LockedSQLiteStorage, file_lock, lock_path_for
from search.storage.rdb import NamedRDBStorage, storage_failure
from search.storage.state import hot_journal, local_files, require_regular_files, storage_state
from search.storage.url import StorageURL, scrub, sqlalchemy_sqlite_url, sqlite_uri

__all__ = ["MAX_RETRY", "SQLITE_BUSY_TIMEOUT_S", "HEARTBEAT_INTERVAL_S", "GRACE_PERIOD_S", "open_storage",
           "recover_storage", "close_storages"]

_logger = logging.getLogger(__name__)

#: What SQLite says when a write fails for want of room or rights (the first open writes the schema).
_WRITE_FAILURES = ("database or disk is full", "disk I/O error", "attempt to write a readonly database")

#: How many times a trial whose worker died is put back in the queue before it is given up.
MAX_RETRY = 3
#: Seconds an SQLite connection waits for a busy database before it raises.
SQLITE_BUSY_TIMEOUT_S = 60.0
#: Seconds between two heartbeats of a running trial (storages opened for writing).
HEARTBEAT_INTERVAL_S = 15
#: Seconds without a heartbeat after which a running trial is failed and re-queued.
GRACE_PERIOD_S = 60

#: (pid, url, read_only, heartbeat) -> (storage, identity of its file when it was opened)
_opened: dict[tuple[Any, ...], tuple[optuna.storages.BaseStorage, tuple[int, int] | None]] = {}
_opened_lock = threading.Lock()


def _new_lock_in_child() -> None:
    global _opened_lock
    _opened_lock = threading.Lock()  # a fork while another thread held it must not deadlock the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _identity(url: StorageURL) -> tuple[int, int] | None:
    """(device, inode) of the storage's file, None without one (a server, memory, a missing file)."""
    if url.path is None:
        return None
    try:
        stat = url.path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def open_storage(url: StorageURL | str | os.PathLike, *, read_only: bool = False,
                 heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
                 grace_period: int = GRACE_PERIOD_S) -> optuna.storages.BaseStorage:
    """The storage at ``url`` (a StorageURL, or text parsed by :meth:`StorageURL.parse`), opened once per process.

    read_only: open without creating anything (no file, folder, lock or schema) and refuse a missing
    or empty storage with a StorageError that names its state. Otherwise SQLite and server databases
    get heartbeats every ``heartbeat_interval`` seconds (a trial silent for ``grace_period`` seconds is
    failed and retried up to MAX_RETRY times), a missing SQLite file or journal is created, and a writable
    SQLite file is a :class:`~search.storage.locks.LockedSQLiteStorage`.
    The same (url, read_only, heartbeat settings) in the same process gives the same object (module docstring).
    Raises StorageError naming the URL (password masked) when it cannot be used.
    """
    url = StorageURL.parse(url)
    key = (os.getpid(), url, read_only, None if read_only else (heartbeat_interval, grace_period))
    with _opened_lock:
        cached = _opened.get(key)
        if cached is not None and cached[1] == _identity(url):
            return cached[0]
        storage = _open(url, read_only, (heartbeat_interval, grace_period))
        _opened[key] = (storage, _identity(url))
        return storage


def close_storages(url: StorageURL | str | os.PathLike) -> None:
    """Close every storage this process opened on ``url`` (its connections; the next :func:`open_storage`
    opens it afresh): before the file is removed."""
    url = StorageURL.parse(url)
    with _opened_lock:
        for key in [key for key in _opened if key[0] == os.getpid() and key[1] == url]:
            storage = _opened.pop(key)[0]
            if hasattr(storage, "remove_session"):
                storage.remove_session()
            if hasattr(storage, "engine"):
                storage.engine.dispose()


def recover_storage(url: StorageURL | str | os.PathLike) -> StorageURL:
    """Make the storage at ``url`` fit for a writer, before anything reads it; returns the parsed URL.

    An SQLite file with a hot journal (``<file>-journal`` left by a writer killed inside a transaction,
    which read-only readers cannot get past) is opened read-write once, which makes SQLite roll the
    unfinished transaction back; a WARNING says so. Writing commands call this first (``launch``,
    ``resume``, a campaign's), and :func:`open_storage` does for every writable open. A missing file is
    not created; other kinds of storage are left as they are. StorageError when the roll-back fails.
    """
    url = StorageURL.parse(url)
    journal = hot_journal(url)
    if journal is None or not _refused_read_only(url):
        return url  # no journal, or a live writer's (SQLite lets readers past it): nothing to roll back
    require_regular_files(url, writing=True)
    try:
        with contextlib.closing(sqlite3.connect(sqlite_uri(url.path, mode="rw"), uri=True,
                                                timeout=SQLITE_BUSY_TIMEOUT_S)) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the first read rolls back
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"storage {url.safe} has a hot journal {journal} left by a writer killed inside a "
                           f"transaction and it cannot be rolled back here ({exc})") from None
    if hot_journal(url) is None:
        _logger.warning("storage %s: rolled back the transaction a writer killed inside it left unfinished "
                        "(hot journal %s); the study holds what was committed before it", url.safe, journal)
    return url


def _refused_read_only(url: StorageURL) -> bool:
    """Whether a read-only reader is refused by the SQLite file of ``url`` as it is refused by a hot journal
    (SQLite needs to write to roll it back; a journal a live writer still holds lets readers through)."""
    try:
        with contextlib.closing(sqlite3.connect(sqlite_uri(url.path, mode="ro"), uri=True,
                                                timeout=SQLITE_BUSY_TIMEOUT_S)) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        return "readonly" in str(exc)
    return False


def _missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder`` (itself first) that do not exist yet: what a ``mkdir(parents=True)`` makes."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _remove_made(url: StorageURL, folders: list[Path]) -> None:
    """Remove the files of ``url`` and the (empty) ``folders`` a failed first open made."""
    for path in local_files(url):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _open(url: StorageURL, read_only: bool, heartbeat: tuple[int, int]) -> optuna.storages.BaseStorage:
    """Open ``url`` anew (see :func:`open_storage`)."""
    if read_only:
        state = storage_state(url)  # refuses a path that is not a regular file, names a hot journal
        if state.state in ("missing", "empty"):
            raise StorageError(f"storage {state.describe()}: nothing to read")
    else:
        require_regular_files(url, writing=True)
        recover_storage(url)
    if url.kind == "journal":
        return _journal(url, read_only)
    import sqlalchemy.exc

    beats = None if read_only else heartbeat
    made: list[Path] | None = None  # what a first writable open of an SQLite file makes
    try:
        if url.kind == "sqlite":
            engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
            if read_only:
                return _rdb(url, sqlalchemy_sqlite_url(url.path, mode="ro"), engine_kwargs, None)
            if not url.path.exists():
                made = _missing_folders(url.path.parent)
            url.path.parent.mkdir(parents=True, exist_ok=True)
            lock = lock_path_for(url.path)
            # Optuna creates the tables, the version row and the alembic stamp on first open; two
            # processes doing that at once on a fresh file can trip over each other.
            with file_lock(lock):
                return _rdb(url, url.url, engine_kwargs, beats, lock_path=lock)
        if url.kind == "server" and read_only:
            _require_schema(url)
        return _rdb(url, url.url, {}, beats)
    except ImportError as exc:
        raise StorageError(f"cannot open storage {url.safe}: missing database driver ({exc})") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError) as exc:
        if made is not None:  # a fresh file whose schema could not be written (a full disk): leave nothing
            _remove_made(url, made)
        failure = storage_failure(url, exc, writing=True)
        if failure is not None and (read_only or not str(failure).endswith(_WRITE_FAILURES)):
            failure = None  # not a write that failed: the driver's words, after "cannot open"
        if failure is not None:
            raise failure from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"cannot open storage {url.safe}: {scrub(reason, url)}") from None
    except StorageError:
        if made is not None:
            _remove_made(url, made)
        raise


def _journal(url: StorageURL, read_only: bool) -> optuna.storages.BaseStorage:
    """Optuna's journal storage on the file of ``url`` (its folder made first unless ``read_only``), through
    :class:`search.storage.journal.JournalFile` (a cut last line is dropped before an append)."""
    from optuna.storages.journal import JournalStorage

    from search.storage.journal import JournalFile

    try:
        if not read_only:  # an existing journal is opened without writing anything
            url.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFile(url))
    except OSError as exc:
        raise StorageError(f"cannot open storage {url.safe}: {exc.strerror or exc}") from None


def _rdb(storage_url: StorageURL, url: str, engine_kwargs: dict[str, Any], heartbeat: tuple[int, int] | None, *,
         lock_path: os.PathLike | None = None) -> optuna.storages.RDBStorage:
    """A :class:`NamedRDBStorage` of ``storage_url`` opened on ``url`` (a LockedSQLiteStorage when ``lock_path``
    is given), with heartbeats ``(interval, grace period)`` in seconds, or none."""
    kwargs: dict[str, Any] = dict(engine_kwargs=engine_kwargs, storage_url=storage_url)
    with warnings.catch_warnings():
        # heartbeats and their retry callback are marked experimental; they are what we want.
        warnings.simplefilter("ignore", ExperimentalWarning)
        if heartbeat is not None:
            kwargs.update(heartbeat_options(heartbeat[0], heartbeat[1], MAX_RETRY))
        if lock_path is not None:
            return LockedSQLiteStorage(url, lock_path, **kwargs)
        return NamedRDBStorage(url, **kwargs)


def _require_schema(url: StorageURL) -> None:
    """Refuse to read a server database that has no Optuna schema (opening it would create one)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.url)
    try:
        if not sqlalchemy.inspect(engine).has_table("studies"):
            raise StorageError(f"storage {url.safe} holds no Optuna schema: nothing to read")
    finally:
        engine.dispose()
