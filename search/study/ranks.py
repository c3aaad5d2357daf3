"""Per-query validation ranks stored with a trial: what a paired race compares a new trial with.

A study that races (pruner ``paired``, :mod:`search.pruners.paired`) stores, with every complete fixed-mode
trial, the filtered rank of each validation query it ranked (user attr ``valid_ranks``: the ranks [Q] in the
split's query order as int32, zlib-compressed and base64-encoded; 0 for a query outside the study's
validation sample). The incumbent of a race is the best complete trial that has them. 35,070 queries
(FB15k237 valid) take about 60 kB.
"""
from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

__all__ = ["RANKS_ATTR", "encode_ranks", "decode_ranks", "store_ranks", "incumbent"]

#: The trial user attr holding the trial's per-query validation ranks.
RANKS_ATTR = "valid_ranks"


def encode_ranks(ranks: Any) -> str:
    """``ranks`` ([Q] integers >= 0, a tensor or an array) as text for a user attr."""
    values = np.asarray(ranks.cpu() if hasattr(ranks, "cpu") else ranks, dtype=np.int32)
    return base64.b64encode(zlib.compress(values.tobytes(), 6)).decode("ascii")


def decode_ranks(text: str) -> np.ndarray:
    """The ranks [Q] (int64) that :func:`encode_ranks` wrote; ValueError for text that is not such a record."""
    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (ValueError, zlib.error, UnicodeEncodeError) as exc:
        raise ValueError(f"not a stored rank vector: {exc}") from None
    return np.frombuffer(raw, dtype=np.int32).astype(np.int64)


def store_ranks(trial: optuna.Trial, ranks: Any) -> None:
    """Store ``ranks`` ([Q]) with ``trial`` (user attr :data:`RANKS_ATTR`)."""
    trial.set_user_attr(RANKS_ATTR, encode_ranks(ranks))


def incumbent(study: optuna.Study) -> tuple[int, np.ndarray] | None:
    """``(trial number, ranks [Q])`` of the best complete trial of ``study`` with stored ranks (ties: the
    earliest), or None when no complete trial has them."""
    best = None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if RANKS_ATTR in trial.user_attrs and trial.value is not None and (best is None or trial.value > best.value):
            best = trial
    return None if best is None else (best.number, decode_ranks(best.user_attrs[RANKS_ATTR]))
