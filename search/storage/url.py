"""The one parser of storage URLs: :class:`StorageURL`, the default storage, passwords masked.

Accepted storages (:meth:`StorageURL.parse` is the only parser of them):

* ``sqlite:///<path>`` -- the default, one embedded file. The path is expanded (``~``) and made
  absolute against the working directory once, when the URL is parsed; ``sqlite:////abs`` is absolute
  already. A bare path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` means the same.
* ``sqlite://``, ``sqlite:///:memory:`` -- an in-memory SQLite database (one per process).
* ``postgresql://``, ``mysql://`` (any SQLAlchemy URL with a driver) -- a server, for many hosts.
* ``journal:<path>``, or a bare path ending in ``.log`` / ``.jsonl`` -- Optuna's journal file storage.

A file path may hold any character (``#``, ``%``, ``?``, spaces): :attr:`StorageURL.path` is the file, and
every URL or URI made of it -- :attr:`StorageURL.url` that Optuna and SQLAlchemy open, the read-only
SQLite URI (:func:`sqlite_uri`, :func:`sqlalchemy_sqlite_url`) -- percent-encodes what the reader of that
URL would take for syntax, so one storage is one file for every command. As in SQLAlchemy (and so in
``optuna`` and ``optuna-dashboard``), ``%HH`` in an ``sqlite:///`` URL is decoded: ``sqlite:///exp%232/s.db``
is the file ``exp#2/s.db``; a bare path (``exp%41/s.db``) is taken as it is written.

Passwords never appear in a message: :attr:`StorageURL.safe` masks everything between ``://`` and the
host (the user name is kept when the text is unambiguous), and a user name or password holding an
unescaped ``@`` is refused with the advice to percent-encode it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from search.errors import StorageError
from search.values import path as path_rule

__all__ = ["DB_FILE_NAME", "StorageURL", "default_storage", "sqlite_uri", "sqlalchemy_sqlite_url"]

#: The default SQLite file's name (in the studies folder).
DB_FILE_NAME = "are-search.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JOURNAL_SUFFIXES = (".log", ".jsonl")
_EXPECTED = "expected sqlite:///FILE, postgresql://..., mysql://..., journal:FILE or a .db/.log path"


def _absolute(text: str, base: Path | None) -> Path:
    return path_rule(text, "storage URL", base)


def _sqlalchemy_path(text: str) -> str:
    """``text`` as the database part of an ``sqlite:///`` URL: SQLAlchemy ends it at ``?`` and decodes
    ``%HH``, so ``%`` and ``?`` are encoded (and ``#``, which other URL readers end a URL at)."""
    return text.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


def sqlite_uri(path: Path, **params: str) -> str:
    """The SQLite URI (``file:...``, for ``sqlite3.connect(..., uri=True)``) of the file ``path`` with the
    query ``params`` (``mode="ro"``): the path percent-encoded, so ``#``, ``?`` and ``%`` stay in the name."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"file:{quote(path.as_posix(), safe='/')}" + (f"?{query}" if query else "")


def sqlalchemy_sqlite_url(path: Path, **params: str) -> str:
    """An SQLAlchemy URL that opens the file ``path`` through its SQLite URI with ``params``
    (``mode="ro"``): ``sqlite:///file:...?mode=ro&uri=true``, each layer's encoding applied once."""
    query = "&".join([*(f"{key}={value}" for key, value in params.items()), "uri=true"])
    return f"sqlite:///{_sqlalchemy_path(sqlite_uri(path))}?{query}"


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
            credentials = _credentials(text)
            if credentials is not None and "@" in credentials:
                raise StorageError(f"bad storage URL {_mask(text)!r}: the user name or password holds an '@'; "
                                   f"percent-encode it ({_ENCODE_HINT})")
            try:
                import sqlalchemy.engine

                parsed = sqlalchemy.engine.make_url(text)
            except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
                # the parser's words may quote the credentials: without any, they are safe to show
                reason = (f"expected driver://user:password@host:port/database, with {_ENCODE_HINT}"
                          if credentials is not None else " ".join(str(exc).split()))
                raise StorageError(f"bad storage URL {_mask(text)!r}: {reason}") from None
            if not parsed.drivername:
                raise StorageError(f"bad storage URL {_mask(text)!r}: {_EXPECTED}")
            return cls("server", text)
        if text.endswith(_JOURNAL_SUFFIXES):
            path = _absolute(text, base)
            return cls("journal", f"journal:{path}", path)
        if text.endswith(_SQLITE_SUFFIXES):
            path = _absolute(text, base)
            return cls("sqlite", f"sqlite:///{_sqlalchemy_path(path.as_posix())}", path)
        raise StorageError(f"bad storage URL {_mask(text)!r}: {_EXPECTED}")  # 'user:pw@host/db' lacks its scheme

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
        path = _absolute(unquote(database), base)  # %HH decoded, as SQLAlchemy (and so Optuna) does
        return cls("sqlite", f"sqlite:///{_sqlalchemy_path(path.as_posix())}{query}", path)

    @property
    def safe(self) -> str:
        """The URL with any password masked (for messages, logs and JSON)."""
        return _mask(self.url) if self.kind == "server" else self.url

    def __str__(self) -> str:
        return self.safe


_ENCODE_HINT = "'@' as %40, ':' as %3A, '/' as %2F in the user name and password"


def _credentials(url: str) -> str | None:
    """What stands between ``://`` and the LAST ``@`` of ``url`` (user name and password), None without."""
    _, sep, rest = url.partition("://")
    at = rest.rfind("@")
    return rest[:at] if sep and at >= 0 else None


def _mask(url: str) -> str:
    """``url`` with its credentials hidden: everything from ``://`` to the last ``@`` becomes ``***``, except
    a user name that is unambiguous (``user:***@host``, ``user@host``); a ``password=`` query value too.
    Text only (no parser runs), so a URL no parser accepts is masked the same way."""
    if "://" not in url and "@" in url:  # no scheme: what stands before the last '@' may be credentials
        return "***" + url[url.rfind("@"):]
    credentials = _credentials(url)
    if credentials is not None:
        scheme, _, rest = url.partition("://")
        user, colon, _ = credentials.partition(":")
        if "@" in credentials:  # which '@' ends the password is a guess: show none of it
            shown = "***"
        else:
            shown = f"{user}:***" if colon else user
        url = f"{scheme}://{shown}@{rest[len(credentials) + 1:]}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


def scrub(message: str, url: "StorageURL") -> str:
    """``message`` (a driver's error) with the URL and password of ``url`` replaced by their masked forms."""
    message = message.replace(url.url, url.safe)
    credentials = _credentials(url.url) if url.kind == "server" else None
    if credentials is not None and ":" in credentials:
        password = credentials.split(":", 1)[1]
        for secret in {password, unquote(password)}:
            if len(secret) >= 3:  # shorter ones would also hide innocent letters; the URL itself is gone
                message = message.replace(secret, "***")
    return message


def default_storage(studies_dir: str | os.PathLike) -> StorageURL:
    """The default storage: the SQLite file ``are-search.db`` in ``studies_dir``."""
    return StorageURL.parse(str(Path(studies_dir) / DB_FILE_NAME))
