"""Opening a storage, once per process: the RDB (SQLite, server) and journal storages built from a StorageURL.

A storage is opened for writing (``launch``, ``resume``: heartbeats on, the schema created when missing,
creation of a fresh SQLite file serialised behind ``<db>.lock``, a writable SQLite file opened as
:class:`search.storage.locks.LockedSQLiteStorage`) or read-only (``status``, ``export``, ``report``):
nothing is created, no lock file, no schema written; a missing or empty storage is refused with the state
:func:`search.storage.state.storage_state` names.

:func:`open_storage` hands out one object per storage and mode in a process: the second call with the same
parsed URL, mode and heartbeat settings returns the storage the first one opened (its connections, its
schema check and its lock). The cache is keyed by the process id as well, so a forked worker opens its
own; a storage whose file was deleted or replaced since (a rolled-back launch) is opened afresh.
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning

from search.compat import heartbeat_options
from search.errors import StorageError
from search.storage.locks import LockedSQLiteStorage, file_lock, lock_path_for
from search.storage.state import storage_state
from search.storage.url import StorageURL

__all__ = ["MAX_RETRY", "SQLITE_BUSY_TIMEOUT_S", "HEARTBEAT_INTERVAL_S", "GRACE_PERIOD_S", "open_storage"]

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


def _open(url: StorageURL, read_only: bool, heartbeat: tuple[int, int]) -> optuna.storages.BaseStorage:
    """Open ``url`` anew (see :func:`open_storage`)."""
    if read_only:
        state = storage_state(url)
        if state.state in ("missing", "empty"):
            raise StorageError(f"storage {state.describe()}: nothing to read")
    if url.kind == "journal":
        return _journal(url, read_only)
    import sqlalchemy.exc

    beats = None if read_only else heartbeat
    try:
        if url.kind == "sqlite":
            engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
            if read_only:
                return _rdb(f"sqlite:///file:{url.path.as_posix()}?mode=ro&uri=true", engine_kwargs, None)
            url.path.parent.mkdir(parents=True, exist_ok=True)
            lock = lock_path_for(url.path)
            # Optuna creates the tables, the version row and the alembic stamp on first open; two
            # processes doing that at once on a fresh file can trip over each other.
            with file_lock(lock):
                return _rdb(url.url, engine_kwargs, beats, lock_path=lock)
        if url.kind == "server" and read_only:
            _require_schema(url)
        return _rdb(url.url, {}, beats)
    except ImportError as exc:
        raise StorageError(f"cannot open storage {url.safe}: missing database driver ({exc})") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"cannot open storage {url.safe}: {reason}") from None


def _journal(url: StorageURL, read_only: bool) -> optuna.storages.BaseStorage:
    """Optuna's journal storage on the file of ``url`` (its folder made first unless ``read_only``)."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        if not read_only:  # an existing journal is opened without writing anything
            url.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(url.path)))
    except OSError as exc:
        raise StorageError(f"cannot open storage {url.safe}: {exc.strerror or exc}") from None


def _rdb(url: str, engine_kwargs: dict[str, Any], heartbeat: tuple[int, int] | None, *,
         lock_path: os.PathLike | None = None) -> optuna.storages.RDBStorage:
    """An RDBStorage on ``url`` (a LockedSQLiteStorage when ``lock_path`` is given), with heartbeats
    ``(interval, grace period)`` in seconds, or none."""
    kwargs: dict[str, Any] = dict(engine_kwargs=engine_kwargs)
    with warnings.catch_warnings():
        # heartbeats and their retry callback are marked experimental; they are what we want.
        warnings.simplefilter("ignore", ExperimentalWarning)
        if heartbeat is not None:
            kwargs.update(heartbeat_options(heartbeat[0], heartbeat[1], MAX_RETRY))
        if lock_path is not None:
            return LockedSQLiteStorage(url, lock_path, **kwargs)
        return optuna.storages.RDBStorage(url, **kwargs)


def _require_schema(url: StorageURL) -> None:
    """Refuse to read a server database that has no Optuna schema (opening it would create one)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.url)
    try:
        if not sqlalchemy.inspect(engine).has_table("studies"):
            raise StorageError(f"storage {url.safe} holds no Optuna schema: nothing to read")
    finally:
        engine.dispose()
