"""A user's current fusion settings, read from their ULTRA/ARE flags file (``launch --from-flags FILE``).

The flags file is the one :mod:`search.flags.export` writes into: a YAML mapping whose top-level keys include
one weight per fusion term (``similarity_enhancer_weight``, ``prompt_enhancer_weight``: the ``flag_key`` of each
row of :mod:`search.study.fusion_terms`). A launch reads those weights and queues them as a known point of its
study, labelled :func:`FlagsPoint.label` (``your flags (flags.yaml)``), so the settings in use today are
measured with the others and shown by ``report``. Other keys of the file are ignored.

Every failure is one :class:`search.errors.FlagsError` line naming the file: missing, not a regular file (a FIFO
is never opened), not YAML or not a mapping (:mod:`search.flags.yamlio`), without the weight keys, or with a
weight that is not a finite number >= 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import AreSearchError, FlagsError
from search.study.fusion_terms import FUSION_TERMS

__all__ = ["FlagsPoint", "FLAGS_POINT_ATTR", "read_flags_point"]

#: The user attr of a study holding ``{"file": absolute path, "label": ..., "weights": [E]}`` of the flags point
#: a launch queued (read by reports to name the setting).
FLAGS_POINT_ATTR = "from_flags"


@dataclass(frozen=True)
class FlagsPoint:
    """The fusion weights of one flags file: ``path`` (absolute) and ``weights`` [E], one dimensionless weight
    per fusion term in :data:`search.study.fusion_terms.FUSION_TERMS` order; ``learnable``: the file says
    ``use_learnable_fusion: true`` (its weights are then the *initial* weights of a fusion fine-tuned per
    dataset, not weights to rank with as they are)."""

    path: Path
    weights: tuple[float, ...]
    learnable: bool = False

    @property
    def label(self) -> str:
        """How the study's trials, its status and its report name this setting: ``your flags (<file name>)``."""
        return f"your flags ({self.path.name})"

    def to_attr(self) -> dict[str, Any]:
        """The JSON-ready record stored as the study's :data:`FLAGS_POINT_ATTR` user attr."""
        return {"file": str(self.path), "label": self.label, "weights": list(self.weights)}


def read_flags_point(value: str | os.PathLike, what: str = "--from-flags") -> FlagsPoint:
    """Read the fusion weights of the flags file ``value`` (``~`` expanded, relative to the working directory).

    what: the option or spec key that named the file (in the error for a value that is no path). Raises
    FlagsError (one line naming the file) as the module docstring says.
    """
    from search.flags.yamlio import kind_of, read_yaml
    from search.values import path as path_rule
    from search.values import weight

    try:
        file = path_rule(value, what)
    except AreSearchError as exc:
        raise FlagsError(str(exc)) from None
    if not file.exists():
        raise FlagsError(f"{file}: no such flags file ({what})")
    if not file.is_file():  # a folder, a FIFO, a device node: never opened
        raise FlagsError(f"{file}: not a regular file ({what})")
    try:
        data = read_yaml(file)
    except AreSearchError as exc:
        raise FlagsError(str(exc)) from None
    keys = [term.flag_key for term in FUSION_TERMS]
    if not isinstance(data, dict):
        raise FlagsError(f"{file}: the flags file is {kind_of(data)}: expected a mapping with {' and '.join(keys)}")
    missing = [key for key in keys if key not in data]
    if missing:
        raise FlagsError(f"{file}: no fusion weights: key{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} missing (the keys are-search export writes)")
    try:
        weights = tuple(weight(data[key], f"{file}: key '{key}'") for key in keys)
    except AreSearchError as exc:
        raise FlagsError(str(exc)) from None
    return FlagsPoint(file, weights, learnable=data.get("use_learnable_fusion") is True)
