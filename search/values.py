"""One rule per kind of setting: the valid values of trials, seeds, weights, choices and bounds.

Every place a setting enters -- a CLI flag, a study spec, a search space, an export -- checks it with
the same function here, so a value refused in one place is refused in all of them, with the same
words. Each rule takes the raw value and ``what`` (the flag, file key or parameter it came from) and
returns the value in its canonical type or raises :class:`search.errors.UsageError` naming ``what``.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from search.errors import UsageError

__all__ = [
    "as_number",
    "positive_int",
    "non_negative_int",
    "weight",
    "weight_bound",
    "non_negative_float",
    "positive_float",
    "choice",
    "non_empty_str",
    "bounds",
    "duration",
    "duration_text",
    "path",
    "file_to_write",
    "folder_to_write",
    "argparse_type",
]

T = TypeVar("T")


def as_number(value: Any) -> float | None:
    """A finite float from an int, float or numeric string, else None (bools are not numbers)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any, what: str, minimum: int, expected: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise UsageError(f"{what}: expected {expected}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{what}: expected {expected}, got {value!r}")
    return int(value)


def positive_int(value: Any, what: str) -> int:
    """An integer >= 1 (trial budgets, workers, batch sizes, bootstrap resamples, stages)."""
    return _integer(value, what, 1, "a positive integer")


def non_negative_int(value: Any, what: str) -> int:
    """An integer >= 0 (seeds)."""
    return _integer(value, what, 0, "an integer >= 0")


def _real(value: Any, what: str, accept: Callable[[float], bool], expected: str) -> float:
    number = as_number(value)
    if number is None or not accept(number):
        # a number given as text (a flag) is shown as the number it is, as a spec file's value is
        shown = value.strip() if isinstance(value, str) and number is not None else repr(value)
        raise UsageError(f"{what}: expected {expected}, got {shown}")
    return number


def weight(value: Any, what: str) -> float:
    """A fusion weight: a finite number >= 0 (0 switches an enhancer off)."""
    return _real(value, what, lambda v: v >= 0, "a finite number >= 0")


def weight_bound(value: Any, what: str) -> float:
    """An upper bound of the fusion weights (``soft_high``, ``weight_cap``): a finite number > 0 (a range
    that ends at 0 holds nothing to search)."""
    return _real(value, what, lambda v: v > 0, "a finite number > 0")


def non_negative_float(value: Any, what: str) -> float:
    """A finite number >= 0 (GPUs per trial, weight decay)."""
    return _real(value, what, lambda v: v >= 0, "a finite number >= 0")


def positive_float(value: Any, what: str) -> float:
    """A finite number > 0 (CPUs per trial, learning rates)."""
    return _real(value, what, lambda v: v > 0, "a finite number > 0")


def choice(value: Any, choices: Sequence[str], what: str) -> str:
    """One of ``choices`` (exact spelling)."""
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{what}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def non_empty_str(value: Any, what: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what}: expected a non-empty string, got {value!r}")
    return value


#: The units of a duration and their seconds.
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def duration(value: Any, what: str) -> float:
    """A time span in seconds from a number with a unit, ``s``, ``m`` or ``h`` (``90s``, ``1.5m``, ``3h``);
    > 0 and finite. A bare number is refused (the unit is never guessed): UsageError naming ``what``."""
    text = value.strip() if isinstance(value, str) else None
    number = as_number(text[:-1]) if text and text[-1] in DURATION_UNITS else None
    if number is None or number <= 0:
        raise UsageError(f"{what}: expected a number with s, m or h (90s, 10m, 3h), got {value!r}")
    return number * DURATION_UNITS[text[-1]]


def duration_text(seconds: float) -> str:
    """``seconds`` as the text :func:`duration` reads back to the same value (``5400s``)."""
    return f"{float(seconds):.17g}s"


def bounds(raw: Any, what: str) -> tuple[float, float]:
    """``[low, high]`` as two finite numbers with low <= high."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != 2:
        raise UsageError(f"{what}: expected [low, high], got {raw!r}")
    low, high = (as_number(v) for v in raw)
    if low is None or high is None:
        raise UsageError(f"{what}: bounds must be finite numbers, got {list(raw)!r}")
    if low > high:
        raise UsageError(f"{what}: low {low} is above high {high}")
    return low, high


def path(value: Any, what: str, base: Path | None = None) -> Path:
    """A file or folder path: ``~`` expanded, made absolute against ``base`` (default: the working
    directory) and normalised, once, where it enters (options, spec fields, storage URLs)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what}: expected a path, got {value!r}")
    expanded = Path(os.path.expanduser(value))
    if not expanded.is_absolute():
        expanded = (base if base is not None else Path.cwd()) / expanded
    # POSIX keeps a leading "//" as is; one root only, so that a path parses back to itself
    return Path("/" + os.path.abspath(expanded).lstrip("/"))


def file_to_write(value: Any, what: str, base: Path | None = None) -> Path:
    """A file that are-search will write (a flags.yaml, a storage file): :func:`path`, and it must be missing,
    a regular file or a link to one. A FIFO, a device node (``/dev/null``), a socket or a folder is refused
    with ``<path>: not a regular file`` before anything opens it (:func:`are_model.fileio.check_writable_file`)."""
    from are_model.fileio import NotWritableError, check_writable_file

    resolved = path(value, what, base)
    try:
        return check_writable_file(resolved)
    except NotWritableError as exc:
        raise UsageError(str(exc)) from None


def folder_to_write(value: Any, what: str, base: Path | None = None, *, parents: bool = False) -> Path:
    """A folder that are-search will create or write into (a report folder, an export folder): :func:`path`,
    and it, or the nearest parent that exists, must be a folder: ``<path>: not a folder`` otherwise.

    parents: the folders above it may be made too (a default path of ours, ``studies/reports/...``). Without
    it, a folder the user names is made only where its parent exists (the storage's folder follows the same
    rule, :func:`search.storage.state.require_regular_files`): UsageError ``<what> <path>: folder <parent>
    does not exist`` otherwise, so a typo in a path never builds a tree of folders."""
    from are_model.fileio import NotWritableError, check_writable_folder

    resolved = path(value, what, base)
    try:
        check_writable_folder(resolved)
    except NotWritableError as exc:
        raise UsageError(str(exc)) from None
    if not parents and not resolved.parent.exists():
        raise UsageError(f"{what} {resolved}: folder {resolved.parent} does not exist (only the last folder of "
                         "a path is made)")
    return resolved


def argparse_type(rule: Callable[[Any, str], T], flag: str) -> Callable[[str], T]:
    """``rule`` as an argparse ``type=``: the same check and words as everywhere else."""

    def parse(text: str) -> T:
        try:
            return rule(text, flag)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error).split(": ", 1)[-1]) from None

    parse.__name__ = rule.__name__  # argparse names the type in its messages
    return parse
