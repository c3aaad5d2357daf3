"""A failed download that a local root would have avoided, said one way for datasets, relation texts and checkpoints.

The model core (``are_model``) knows its roots only as arguments; what a user sets them with (``--data-root`` or
``ARE_DATA_ROOT``, ...) is known here, at the edge. So when a download fails and the root it would have been read
from is not set, the one-line error gets :func:`unset_root_hint` appended: the option and the environment
variable of that root and the file's place under it, e.g. ``; no text root is set: point --text-root or
ARE_TEXT_ROOT at a folder that holds gpt-4o-2024-11-20/Metafam-Metafam.json``. With the root set the error is
left as it is: it already names the place that was looked at.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from search.options import ENV_VARS, default_data_root

__all__ = ["ROOTS", "unset_root_hint", "root_is_set", "naming_unset_root"]

#: The roots of real files, by LoadOptions field: their name in words.
ROOTS = {"data_root": "data root", "text_root": "text root", "checkpoint_root": "checkpoint root"}


def unset_root_hint(key: str, wanted: str) -> str:
    """``no <root> is set: point --<root> or ARE_<ROOT> at a folder that holds <wanted>`` for the root ``key``
    (a :data:`ROOTS` key) and ``wanted``, the file's path relative to that root."""
    option = "--" + key.replace("_", "-")
    return f"no {ROOTS[key]} is set: point {option} or {ENV_VARS[key]} at a folder that holds {wanted}"


def root_is_set(key: str, root: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the root ``key`` was set: not None, and for the data root not the default one under ``cache_dir``
    (``<cache>/raw``, which :meth:`search.options.LoadOptions.resolve` fills in when none is given)."""
    if root is None:
        return False
    if key == "data_root" and cache_dir is not None:
        return Path(root) != Path(default_data_root(cache_dir))
    return True


@contextlib.contextmanager
def naming_unset_root(key: str, is_set: bool) -> Iterator[None]:
    """Run the body; a download of one file that failed in it (an ``are_model`` DownloadError with a ``wanted``,
    such as a raw dataset file or relation texts) is raised again, the same type, with :func:`unset_root_hint`
    appended, when the root ``key`` it would be read from is not set (``is_set`` false)."""
    from are_model.data.errors import DownloadError

    try:
        yield
    except DownloadError as error:
        wanted = getattr(error, "wanted", None)
        if is_set or wanted is None:
            raise
        # the same error object, its one line extended: every DownloadError subclass keeps its type and
        # attributes, whatever its constructor takes
        error.args = (f"{error}; {unset_root_hint(key, wanted)}",)
        raise
