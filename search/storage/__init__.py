"""Where studies live: the one parser of storage URLs, opening a storage, and finding a study in it.

Accepted storages (:meth:`StorageURL.parse` is the only parser of them):

* ``sqlite:///<path>`` -- the default, one embedded file. The path is expanded (``~``) and made
  absolute against the working directory once, when the URL is parsed; ``sqlite:////abs`` is absolute
  already. A bare path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` means the same.
* ``postgresql://``, ``mysql://`` (any SQLAlchemy URL with a driver) -- a server, for many hosts.
* ``journal:<path>``, or a bare path ending in ``.log`` / ``.jsonl`` -- Optuna's journal file storage.

A storage is opened for writing (``launch``, ``resume``: heartbeats on, the schema created when
missing, creation of a fresh SQLite file serialised behind ``<db>.lock``) or read-only (``status``,
``export``, ``report``): nothing is created, no lock file, no schema written; a missing or empty
storage is reported by :func:`storage_state` instead of being made. Passwords never appear in a
message: :attr:`StorageURL.safe` masks them.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning

from search.errors import StorageError, StudyError
from search.study.names import StudyName
from search.values import path as path_rule

__all__ = [
    "MAX_RETRY",
    "DB_FILE_NAME",
    "StorageURL",
    "StorageState",
    "default_storage",
    "file_lock",
    "storage_lock_path",
    "storage_state",
    "open_storage",
    "list_studies",
    "find_study",
    "load_study",
    "create_or_load_study",
]

_logger = logging.getLogger(__name__)

#: How many times a trial whose worker died is put back in the queue before it is given up.
MAX_RETRY = 3
#: Seconds an SQLite connection waits for a busy database before it raises.
SQLITE_BUSY_TIMEOUT_S = 60.0
#: The default SQLite file's name (in the studies folder).
DB_FILE_NAME = "are-search.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JOURNAL_SUFFIXES = (".log", ".jsonl")
_EXPECTED = "expected sqlite:///FILE, postgresql://..., mysql://..., journal:FILE or a .db/.log path"


def _absolute(text: str, base: Path | None) -> Path:
    return path_rule(text, "storage URL", base)


@dataclass(frozen=True)
class StorageURL:
    """A parsed storage location.

    kind: ``sqlite`` (a file), ``memory`` (an in-memory SQLite database), ``server`` (an SQLAlchemy
    URL of a database server) or ``journal`` (a journal file); path: the absolute file of ``sqlite``
    and ``journal``; url: the URL Optuna opens (absolute); safe: ``url`` with the password masked.
    """

    kind: str
    url: str
    path: Path | None = None

    @classmethod
    def parse(cls, text: "str | os.PathLike | StorageURL", base: Path | None = None) -> "StorageURL":
        """Parse ``text``; relative file paths resolve against ``base`` (default: the working directory).

        Raises StorageError naming the text when it is not one of the accepted forms.
        """
        if isinstance(text, StorageURL):
            return text
        if isinstance(text, os.PathLike):
            text = os.fspath(text)
        if not isinstance(text, str) or not text.strip():
            raise StorageError(f"bad storage URL {text!r}: {_EXPECTED}")
        text = text.strip()
        if text.startswith("journal:"):
            rest = text[len("journal:"):]
            if rest.startswith("//"):
                rest = rest[2:]
            if not rest:
                raise StorageError(f"bad storage URL {text!r}: journal:FILE needs a file")
            path = _absolute(rest, base)
            return cls("journal", f"journal:{path}", path)
        if text.startswith("sqlite:"):
            if not text.startswith("sqlite:///"):
                if text in ("sqlite://", "sqlite:"):
                    return cls("memory", "sqlite://")
                raise StorageError(f"bad storage URL {text!r}: SQLite URLs are sqlite:///FILE (three slashes)")
            database = text[len("sqlite:///"):]
            query = ""
            if "?" in database:
                database, query = database.split("?", 1)
                query = "?" + query
            if database in ("", ":memory:") or database.startswith("file::memory:"):
                return cls("memory", f"sqlite:///:memory:{query}" if database == ":memory:" else text)
            if database.startswith("file:"):
                raise StorageError(f"bad storage URL {text!r}: give the file as sqlite:///PATH, not a file: URI")
            path = _absolute(database, base)
            return cls("sqlite", f"sqlite:///{path.as_posix()}{query}", path)
        if "://" in text:
            try:
                import sqlalchemy.engine

                parsed = sqlalchemy.engine.make_url(text)
            except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
                raise StorageError(f"bad storage URL {_mask(text)!r}: {' '.join(str(exc).split())}") from None
            if not parsed.drivername:
                raise StorageError(f"bad storage URL {_mask(text)!r}: {_EXPECTED}")
            return cls("server", text)
        if text.endswith(_JOURNAL_SUFFIXES):
            path = _absolute(text, base)
            return cls("journal", f"journal:{path}", path)
        if text.endswith(_SQLITE_SUFFIXES):
            path = _absolute(text, base)
            return cls("sqlite", f"sqlite:///{path.as_posix()}", path)
        raise StorageError(f"bad storage URL {text!r}: {_EXPECTED}")

    @property
    def safe(self) -> str:
        """The URL with any password masked (for messages, logs and JSON)."""
        return _mask(self.url) if self.kind == "server" else self.url

    def __str__(self) -> str:
        return self.safe


def _mask(url: str) -> str:
    try:
        import sqlalchemy.engine

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: still hide what looks like user:password@
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def default_storage(studies_dir: str | os.PathLike) -> StorageURL:
    """The default storage: the SQLite file ``are-search.db`` in ``studies_dir``."""
    return StorageURL.parse(str(Path(studies_dir) / DB_FILE_NAME))


# ---------------------------------------------------------------------------------------------
# locks


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``lock_path`` (created if missing; ``filelock``)."""
    from filelock import FileLock

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        yield


def _lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def local_files(url: StorageURL) -> list[Path]:
    """The files a storage at ``url`` keeps on this host: an SQLite file and its lock file, a journal
    and the lock files Optuna's journal backend makes beside it; none for a server or memory."""
    if url.path is None:
        return []
    if url.kind == "sqlite":
        return [url.path, _lock_path_for(url.path)]
    return [url.path, _lock_path_for(url.path), url.path.with_name(url.path.name + ".lock.rename")]


def storage_lock_path(storage: optuna.storages.BaseStorage) -> Path | None:
    """The lock file that guards a writable SQLite storage file, else None."""
    backend = getattr(storage, "_backend", storage)  # unwrap Optuna's _CachedStorage
    url = getattr(backend, "url", None)
    if isinstance(backend, optuna.storages.RDBStorage) and isinstance(url, str) and url.startswith("sqlite:///"):
        if "mode=ro" in url:
            return None
        parsed = StorageURL.parse(url)
        return None if parsed.path is None else _lock_path_for(parsed.path)
    return None


# ---------------------------------------------------------------------------------------------
# state and opening


@dataclass(frozen=True)
class StorageState:
    """What a read-only look found: ``missing`` (no file), ``empty`` (a file without Optuna's
    schema), ``ready`` (studies can be read) or ``unknown`` (a server: checked when opened)."""

    url: StorageURL
    state: str

    def describe(self) -> str:
        """``<url> (<state in words>)`` for messages."""
        words = {"missing": "does not exist", "empty": "exists but holds no Optuna schema",
                 "ready": "ready", "unknown": "server"}[self.state]
        return f"{self.url.safe} ({words})"


def storage_state(url: StorageURL | str) -> StorageState:
    """Look at a storage without creating or changing anything."""
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


def _retry_callback(max_retry: int) -> Any:
    """Optuna's callback that re-queues a trial failed by the heartbeat (name varies by version)."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:  # Optuna < 4.9
        cls = optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=max_retry)


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], heartbeat: tuple[int, int] | None) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = dict(engine_kwargs=engine_kwargs)
    with warnings.catch_warnings():
        # heartbeats and their retry callback are marked experimental; they are what we want.
        warnings.simplefilter("ignore", ExperimentalWarning)
        if heartbeat is not None:
            kwargs.update(heartbeat_interval=heartbeat[0], grace_period=heartbeat[1])
            params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
            name = "heartbeat_stale_trial_callback"  # Optuna >= 4.9; failed_trial_callback before
            kwargs[name if name in params else "failed_trial_callback"] = _retry_callback(MAX_RETRY)
        return optuna.storages.RDBStorage(url, **kwargs)


def open_storage(url: StorageURL | str, *, read_only: bool = False, heartbeat_interval: int = 15,
                 grace_period: int = 60) -> optuna.storages.BaseStorage:
    """Open the storage at ``url``.

    read_only: open without creating anything (no file, folder, lock or schema) and refuse a missing
    or empty storage with a StorageError that names its state. Otherwise SQLite and server databases
    get heartbeats every ``heartbeat_interval`` seconds (a trial silent for ``grace_period`` seconds is
    failed and retried up to MAX_RETRY times) and a missing SQLite file or journal is created.
    Raises StorageError naming the URL (password masked) when it cannot be used.
    """
    url = StorageURL.parse(url)
    if read_only:
        state = storage_state(url)
        if state.state in ("missing", "empty"):
            raise StorageError(f"storage {state.describe()}: nothing to read")
    if url.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            if not read_only:  # an existing journal is opened without writing anything
                url.path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(url.path)))
        except OSError as exc:
            raise StorageError(f"cannot open storage {url.safe}: {exc.strerror or exc}") from None
    import sqlalchemy.exc

    heartbeat = None if read_only else (heartbeat_interval, grace_period)
    try:
        if url.kind == "sqlite":
            engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
            if read_only:
                return _rdb_storage(f"sqlite:///file:{url.path.as_posix()}?mode=ro&uri=true", engine_kwargs, None)
            url.path.parent.mkdir(parents=True, exist_ok=True)
            # Optuna creates the tables, the version row and the alembic stamp on first open; two
            # processes doing that at once on a fresh file can trip over each other.
            with file_lock(_lock_path_for(url.path)):
                return _rdb_storage(url.url, engine_kwargs, heartbeat)
        if url.kind == "memory":
            return _rdb_storage(url.url, {}, heartbeat)
        if read_only:
            _require_schema(url)
        return _rdb_storage(url.url, {}, heartbeat)
    except ImportError as exc:
        raise StorageError(f"cannot open storage {url.safe}: missing database driver ({exc})") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"cannot open storage {url.safe}: {reason}") from None


def _require_schema(url: StorageURL) -> None:
    """Refuse to read a server database that has no Optuna schema (opening it would create one)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.url)
    try:
        if not sqlalchemy.inspect(engine).has_table("studies"):
            raise StorageError(f"storage {url.safe} holds no Optuna schema: nothing to read")
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# studies


def list_studies(storage: optuna.storages.BaseStorage) -> list[optuna.study.StudySummary]:
    """Summaries (with best trial) of every study in ``storage``, sorted by name."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    return sorted(summaries, key=lambda s: s.study_name)


def find_study(storage: optuna.storages.BaseStorage, name: StudyName | str) -> str | None:
    """The stored name of the study ``name`` in ``storage``, whatever spelling of its dataset is used.

    The exact name wins; then the canonical name (``Metafam:Metafam/fixed`` for ``metafam/fixed``);
    then a study stored under another spelling of the same dataset (made by an older version).
    Returns None when there is none; StudyError when several spellings of one study exist.
    """
    name = StudyName.parse(name) if isinstance(name, str) else name
    stored = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if str(name) in stored:
        return str(name)
    canonical = name.canonical()
    if str(canonical) in stored:
        return str(canonical)
    matches = []
    for other in stored:
        try:
            if StudyName.parse(other).canonical() == canonical:
                matches.append(other)
        except Exception:  # foreign studies: not named <dataset>/<mode> or an unknown dataset
            continue
    if len(matches) > 1:
        raise StudyError(f"several studies are {canonical}: {', '.join(matches)}; name one exactly")
    return matches[0] if matches else None


def load_study(storage: optuna.storages.BaseStorage, name: StudyName | str, *, where: str,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Load the study ``name`` (any spelling of its dataset); StudyError naming ``where`` when absent."""
    found = find_study(storage, name)
    if found is None:
        known = ", ".join(s.study_name for s in list_studies(storage)) or "none"
        raise StudyError(f"no study {name} in {where} (studies there: {known})")
    return optuna.load_study(study_name=found, storage=storage, sampler=sampler, pruner=pruner)


def create_or_load_study(storage: optuna.storages.BaseStorage, name: StudyName, *,
                         sampler: optuna.samplers.BaseSampler | None = None,
                         pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, bool]:
    """Load the study ``name`` (any spelling) or create it under its canonical name (maximize).

    Returns ``(study, created_now)``. Safe when several processes call it at once on a fresh store:
    creation of an SQLite study runs under ``<db>.lock``, and a duplicate-name race is answered by
    loading the study the other process created.
    """
    found = find_study(storage, name)
    if found is not None:
        study = optuna.load_study(study_name=found, storage=storage, sampler=sampler, pruner=pruner)
        if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
            raise StudyError(f"study {found} exists but does not maximize a single value")
        return study, False
    canonical = name.canonical()
    lock = storage_lock_path(storage)
    with file_lock(lock) if lock is not None else contextlib.nullcontext():
        try:
            study = optuna.create_study(storage=storage, study_name=str(canonical), direction="maximize",
                                        sampler=sampler, pruner=pruner)
        except DuplicatedStudyError:
            return optuna.load_study(study_name=str(canonical), storage=storage, sampler=sampler, pruner=pruner), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # set_metric_names: optuna-dashboard's axis title
        study.set_metric_names(["validation MRR"])
    _logger.info("created study %s", canonical)
    return study, True
