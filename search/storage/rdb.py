"""The RDB storage of ours: Optuna's RDBStorage whose database failures are one line naming the storage.

Optuna turns every SQLAlchemy error met inside a session into ``StorageInternalError("An exception is raised
during the commit. This typically happens due to invalid data in the commit, e.g. exceeding max length.")``,
whatever the database said: a full disk under an SQLite file ended a launch with a 115-line traceback and
exit 1. :class:`NamedRDBStorage` runs each of RDBStorage's public methods (and the private ones Optuna's
cache calls) as it is and turns such a
failure, and an SQLAlchemy OperationalError that escapes a session, into a
:class:`~search.errors.StorageError` -- ``cannot write storage <url>: database or disk is full`` (password
masked; ``cannot read`` for a method that only reads) -- which the command line prints as one line,
exit 2, and which a launch answers by removing what it made (:class:`search.study.prepare.NewStudies`).
An SQLite file left with a hot journal is named as such (:func:`search.storage.state.hot_journal_error`).
Each call runs whole, Ctrl-C and SIGTERM held until it returns (:func:`search.interrupts.interrupts_held`).
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import optuna

from search.errors import StorageError
from search.interrupts import interrupts_held
from search.storage.url import StorageURL, scrub

__all__ = ["NamedRDBStorage", "storage_failure"]

#: Public RDBStorage methods left as they are: schema versions and session handling (they report themselves).
_KEPT = frozenset({"remove_session", "upgrade", "get_current_version", "get_head_version", "get_all_versions"})
#: Private RDBStorage methods that Optuna calls from outside (its cache in front of the storage): wrapped too.
_CALLED_FROM_OUTSIDE = frozenset({"_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials",
                                  "_set_trial_param"})
#: Prefixes of the methods that only read.
_READS = ("get_", "is_", "_get_")


def _reason(error: BaseException) -> str | None:
    """The database's own words for ``error`` (its first line), when it is a database failure, else None."""
    import sqlalchemy.exc

    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, sqlalchemy.exc.OperationalError):
        cause = cause.__cause__
    if cause is None:
        return None
    orig = getattr(cause, "orig", None) or cause
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def storage_failure(url: StorageURL, error: BaseException, *, writing: bool) -> StorageError | None:
    """The one-line StorageError for a database failure ``error`` on ``url`` (None when it is not one): a hot
    journal of an SQLite file is named as such; otherwise ``cannot write|read storage <url>: <reason>``."""
    from search.storage.hot import hot_journal, hot_journal_error

    reason = _reason(error)
    if reason is None:
        return None
    if "readonly" in reason and hot_journal(url) is not None:
        return hot_journal_error(url)
    return StorageError(f"cannot {'write' if writing else 'read'} storage {url.safe}: {scrub(reason, url)}")


def _named(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of RDBStorage, its database failures raised as one-line StorageErrors."""
    writing = not name.startswith(_READS)

    @functools.wraps(method)
    def call(self: "NamedRDBStorage", *args: Any, **kwargs: Any) -> Any:
        try:
            with interrupts_held():  # Ctrl-C in a read would leave its statement holding the file's lock
                return method(self, *args, **kwargs)
        except Exception as exc:  # only a database failure is turned into one line (_reason)
            if isinstance(exc, StorageError):
                raise
            failure = storage_failure(self.storage_url, exc, writing=writing)
            if failure is None:
                raise
            raise failure from None

    return call


class NamedRDBStorage(optuna.storages.RDBStorage):
    """An RDBStorage on ``url`` (the text SQLAlchemy opens) that names ``storage_url`` (the parsed
    :class:`StorageURL`, shown with its password masked) in its one-line failures (module docstring).
    Keyword arguments are RDBStorage's. Picklable as RDBStorage is."""

    def __init__(self, url: str, *, storage_url: StorageURL, **kwargs: Any) -> None:
        self.storage_url = storage_url
        super().__init__(url, **kwargs)


for _name, _method in inspect.getmembers(optuna.storages.RDBStorage, inspect.isfunction):
    if (not _name.startswith("_") and _name not in _KEPT) or _name in _CALLED_FROM_OUTSIDE:
        setattr(NamedRDBStorage, _name, _named(_name, _method))
del _name, _method
