"""The one parser of storage URLs: :class:`StorageURL`, the default storage, passwords masked.

Accepted storages (:meth:`StorageURL.parse` is the only parser of them):

* ``sqlite:///<path>`` -- the default, one embedded file. The path is expanded (``~``) and made
  absolute against the working directory once, when the URL is parsed; ``sqlite:////abs`` is absolute
  already. A bare path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` means the same.
* ``sqlite://``, ``sqlite:///:memory:`` -- an in-memory SQLite database (one per process).
* ``postgresql://``, ``mysql://`` (any SQLAlchemy URL with a driver) -- a server, for many hosts.
* ``journal:<path>``, or a bare path ending in ``.log`` / ``.jsonl`` -- Optuna's journal file storage.

Passwords never appear in a message: :attr:`StorageURL.safe` masks them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from search.errors import StorageError
from search.values import path as path_rule

__all__ = ["DB_FILE_NAME", "StorageURL", "default_storage"]

#: The default SQLite file's name (in the studies folder).
DB_FILE_NAME = "are-search.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JOURNAL_SUFFIXES = (".log", ".jsonl")
_EXPECTED = "expected sqlite:///FILE, postgresql://..., mysql://..., journal:FILE or a .db/.log path"


def _absolute(text: str, base: Path | None) -> Path:
    return path_rule(text, "storage URL", base)


@dataclass(frozen=True)
class StorageURL:
    """A parsed storage location (hashable: it keys the per-process cache of opened storages).

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

        A StorageURL is returned as it is. Raises StorageError naming the text when it is not one of the
        accepted forms.
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
            return cls._parse_sqlite(text, base)
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

    @classmethod
    def _parse_sqlite(cls, text: str, base: Path | None) -> "StorageURL":
        """An ``sqlite:`` URL: a file (``sqlite:///PATH[?query]``) or an in-memory database."""
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
