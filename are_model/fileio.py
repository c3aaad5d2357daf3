"""File helpers shared by the whole project: atomic writes, the rule of what may be written, and hashing.

:func:`atomic_write` is the project's one way to replace a file: the data, text and checkpoint code
of ``are_model`` and the study exports of ``search`` all go through it.

What may be written (:func:`check_writable_file`, :func:`check_writable_folder`): a path that does not
exist yet, a regular file, or a symbolic link to one; for a folder, a folder or nothing. Anything else
-- a FIFO (opening it blocks until a reader comes), a device node such as ``/dev/null`` (an atomic
rename would replace the system's node by a plain file), a socket -- is refused before anything is
opened, with :class:`NotWritableError` (``<path>: not a regular file`` / ``<path>: not a folder``).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["sha256_file", "atomic_write", "atomic_write_bytes", "NotWritableError", "check_writable_file",
           "check_writable_folder"]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


class NotWritableError(ValueError):
    """A path to be written that exists but is not what is written there: ``<path>: not a regular file``
    (a FIFO, a device node, a socket, a folder) or ``<path>: not a folder``. A ValueError: bad input."""

    def __init__(self, path: str | os.PathLike, what: str = "not a regular file") -> None:
        super().__init__(f"{os.fspath(path)}: {what}")
        self.path = Path(path)


def _mode(path: Path) -> int | None:
    """``st_mode`` of ``path`` with links followed; None where nothing is there (missing, a dangling link,
    a parent that is not a folder: the write itself then fails with its own error)."""
    try:
        return os.stat(path).st_mode  # never opens it: a FIFO does not block here
    except (FileNotFoundError, NotADirectoryError):
        return None


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Refuse (:class:`NotWritableError`, ``<path>: not a folder``) a folder to be written into or created
    when it, or the nearest of its parents that exists, is not a folder (links followed). Returns it."""
    folder = Path(path)
    for candidate in (folder, *folder.parents):
        mode = _mode(candidate)
        if mode is None:
            continue
        if not stat.S_ISDIR(mode):
            raise NotWritableError(candidate, "not a folder")
        break
    return folder


def check_writable_file(path: str | os.PathLike) -> Path:
    """Refuse (:class:`NotWritableError`, ``<path>: not a regular file``) a file to be written that exists
    and is not a regular file after links are followed -- a FIFO, a device node, a socket, a folder --
    and a file whose folder cannot be one (:func:`check_writable_folder`). A missing file, a regular
    file and a link to one pass. Nothing is opened or created. Returns the path."""
    target = Path(path)
    mode = _mode(target)
    if mode is not None and not stat.S_ISREG(mode):
        raise NotWritableError(path)
    if mode is None:
        check_writable_folder(target.parent)
    return target


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it onto ``path``.

    Readers never see a half-written file: the temporary file is fsynced and renamed with
    ``os.replace`` (atomic on one file system), then the folder is fsynced. A file that existed keeps
    its permission bits; a new one gets ``0o666 & ~umask`` like ``open(path, "w")``. A symbolic link
    at ``path`` is followed (its target is replaced). A failed write leaves ``path`` untouched and
    removes the temporary file; the error propagates. A ``path`` that is there but is not a regular file
    (or a link to one) is refused with :class:`NotWritableError` before anything is written
    (:func:`check_writable_file`): a device node is never replaced, a FIFO never opened.
    """
    check_writable_file(path)
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
