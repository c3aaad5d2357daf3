"""The lock beside an SQLite study file, and the SQLite storage of ours that holds it where SQLite needs it.

SQLite has no row locks: Optuna starts an enqueued (WAITING) trial by reading its state and writing
RUNNING in one session, relying on ``SELECT ... FOR UPDATE``, which SQLite ignores, so two workers asking at
once could both start the same enqueued trial. :class:`LockedSQLiteStorage` holds ``<db>.lock`` around that
read-and-write: the second worker then sees RUNNING and moves on. The same lock serialises the creation of
a fresh file's schema and of a study (:mod:`search.storage.backends`, :mod:`search.storage.studies`).
Server databases lock the row; journals replay in order: neither needs it.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import TrialState

from search.interrupts import interrupts_held
from search.storage.rdb import NamedRDBStorage

__all__ = ["file_lock", "lock_path_for", "LockedSQLiteStorage", "lock_path_of"]


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``lock_path`` (the file and its folder are created if missing;
    ``filelock``); blocks until the lock is free. Ctrl-C and SIGTERM are held until it is released
    (:func:`search.interrupts.interrupts_held`): one taken but not yet recorded would stay taken."""
    from filelock import FileLock

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_held(), FileLock(str(lock_path)):
        yield


def lock_path_for(db_path: Path) -> Path:
    """The lock file that guards the SQLite file ``db_path``: ``<db_path>.lock`` beside it."""
    return db_path.with_name(db_path.name + ".lock")


class LockedSQLiteStorage(NamedRDBStorage):
    """An RDBStorage on a writable SQLite file that starts an enqueued trial under the file's lock.

    url: the ``sqlite:///`` URL; lock_path: the lock file (:func:`lock_path_for` of the database file);
    the other arguments are :class:`~search.storage.rdb.NamedRDBStorage`'s (its failures are one line
    naming the storage). Only ``set_trial_state_values(..., RUNNING)`` takes the lock (a WAITING trial
    being started); every other call is RDBStorage's own. Picklable as RDBStorage is.
    """

    def __init__(self, url: str, lock_path: str | os.PathLike, **kwargs: Any) -> None:
        self.lock_path = Path(lock_path)
        super().__init__(url, **kwargs)

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        """RDBStorage's, under :attr:`lock_path` when ``state`` is RUNNING (see the module docstring)."""
        if state != TrialState.RUNNING:
            return super().set_trial_state_values(trial_id, state, values)
        with file_lock(self.lock_path):
            return super().set_trial_state_values(trial_id, state, values)


def lock_path_of(storage: optuna.storages.BaseStorage) -> Path | None:
    """The lock file of a storage opened as :class:`LockedSQLiteStorage` (a writable SQLite file), else None
    (read-only SQLite, a server, a journal, or a storage wrapped by Optuna: pass the one that was opened)."""
    return storage.lock_path if isinstance(storage, LockedSQLiteStorage) else None
