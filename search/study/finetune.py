"""What one trial may spend: :class:`Budget`, read from a study spec's ``budget`` by :func:`parse_budget`.

A fixed-mode trial ranks the validation split in ``stages`` (the pruners' time axis); a learnable-mode trial
fine-tunes the fusion logits for ``epochs`` x ``batches_per_epoch`` batches of ``batch_size`` queries with
``negatives`` negatives each, and reports once per epoch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search.errors import StudyError
from search.values import positive_int

__all__ = ["Budget", "parse_budget"]

_FIXED_BUDGET = ("stages",)
_LEARNABLE_BUDGET = ("epochs", "batches_per_epoch", "batch_size", "negatives")


@dataclass(frozen=True)
class Budget:
    """What one trial may spend: ``stages`` of validation (fixed), or fine-tuning steps (learnable)."""

    stages: int = 4
    epochs: int = 2
    batches_per_epoch: int = 50
    batch_size: int = 16
    negatives: int = 64

    def for_mode(self, mode: str) -> dict[str, int]:
        """The keys of this budget that ``mode`` uses, with their values (defaults filled in)."""
        return {key: getattr(self, key) for key in (_FIXED_BUDGET if mode == "fixed" else _LEARNABLE_BUDGET)}

    def steps(self, mode: str) -> int:
        """How many intermediate values a trial of ``mode`` reports (the pruners' time axis)."""
        return self.stages if mode == "fixed" else self.epochs


def parse_budget(mode: str, budget: Mapping[str, Any] | None) -> Budget:
    """A study spec's ``budget`` for ``mode``; unknown keys or non-positive values raise StudyError."""
    known = _FIXED_BUDGET if mode == "fixed" else _LEARNABLE_BUDGET
    values: dict[str, int] = {}
    for key, value in (budget or {}).items():
        if key not in known:
            raise StudyError(f"budget key {key!r} does not apply to {mode} mode (expected one of: {', '.join(known)})")
        values[key] = positive_int(value, f"budget key {key!r}")
    return Budget(**values)
