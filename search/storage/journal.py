"""The journal file of ours: Optuna's JournalFileBackend that never appends onto a cut line, and names its file.

A journal is one JSON record per line. A writer killed in the middle of an append (Optuna issues #5138,
#5195), or an append that met a full disk, leaves a last line without its newline. Optuna's reader skips
it, but its writer appends the next record onto it: the two become one line that no reader can parse,
and from then on every command fails with ``Expecting ':' delimiter: line 1 column 57``.

:class:`JournalFile` appends under the journal's own lock (the same symlink lock Optuna's writers take),
and first drops the bytes after the last newline -- a record never completed: no reader counted it --
with a WARNING naming the file, the line and the bytes dropped. Readers change nothing and keep
working. A line that cannot be parsed (a journal cut before this repair existed) is a
:class:`~search.errors.StorageError` naming the storage and the line; a failed append (a full disk) is
``cannot write storage journal:...: No space left on device``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from optuna.storages.journal import JournalFileBackend

from search.errors import StorageError
from search.interrupts import interrupts_held
from search.storage.url import StorageURL

__all__ = ["JournalFile", "drop_partial_line"]

_logger = logging.getLogger(__name__)

_CHUNK = 1 << 16


def _line_number(handle: Any, end: int) -> int:
    """1 + the number of newlines in the first ``end`` bytes of ``handle`` (the line that starts at ``end``)."""
    handle.seek(0)
    lines, left = 1, end
    while left > 0:
        block = handle.read(min(_CHUNK, left))
        if not block:
            break
        lines += block.count(b"\n")
        left -= len(block)
    return lines


def drop_partial_line(path: str | os.PathLike, where: str | None = None) -> int:
    """Cut the journal at ``path`` back to its last newline: the bytes after it are a record whose writer
    never finished it. Returns the number of bytes dropped (0: the file ends with a newline, or is empty or
    missing), after a WARNING naming the file (``where``: how to name it), the line and the bytes. The
    caller holds the journal's lock (no writer is then in the middle of an append)."""
    where = where or str(path)
    try:
        handle = open(path, "rb+")
    except FileNotFoundError:
        return 0
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep, position = 0, size
        while position > 0:  # the last newline, read backwards a block at a time
            start = max(0, position - _CHUNK)
            handle.seek(start)
            found = handle.read(position - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            position = start
        line = _line_number(handle, keep)
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    _logger.warning("storage %s: line %d was cut (a writer killed while appending it): dropped its %d bytes "
                    "before appending", where, line, size - keep)
    return size - keep


def _first_bad_line(path: Path) -> tuple[int, str] | None:
    """(line number, the parser's words) of the first complete line of the journal that is not a JSON record."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return None  # a cut last line: readers skip it, the next append drops it
            try:
                json.loads(line)
            except ValueError as exc:
                return number, " ".join(str(exc).split())
    return None


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend on the file of ``url`` (a journal :class:`StorageURL`) that drops a cut
    last line before it appends, and names the storage and line of a record it cannot parse (module
    docstring). Picklable as Optuna's backend is."""

    def __init__(self, url: StorageURL) -> None:
        self.storage_url = url
        super().__init__(str(url.path))

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Optuna's records from ``log_number_from`` on; StorageError naming the file and line for one that
        cannot be parsed."""
        try:
            yield from super().read_logs(log_number_from)
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError, Optuna's "Invalid log format."
            if isinstance(exc, StorageError):
                raise
            bad = _first_bad_line(self.storage_url.path)
            line, words = bad if bad is not None else ("?", " ".join(str(exc).split()))
            raise StorageError(f"cannot read storage {self.storage_url.safe}: line {line} is not a journal record "
                               f"({words}); a writer was killed while appending it") from None
        except OSError as exc:
            raise StorageError(f"cannot read storage {self.storage_url.safe}: {exc.strerror or exc}") from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append ``logs``, one JSON line each, under the journal's lock, after dropping a cut last line
        (:func:`drop_partial_line`); StorageError when the file cannot be written (a full disk). Ctrl-C and
        SIGTERM are held until the lock is released (:func:`search.interrupts.interrupts_held`)."""
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        try:
            with interrupts_held():  # Ctrl-C between taking and releasing the lock would leave it taken
                self._lock.acquire()
                try:
                    drop_partial_line(self._file_path, self.storage_url.safe)
                    with open(self._file_path, "ab") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                finally:
                    self._lock.release()
        except OSError as exc:
            raise StorageError(f"cannot write storage {self.storage_url.safe}: {exc.strerror or exc}") from None
