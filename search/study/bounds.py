"""Soft bounds that grow: a search range that follows the optimum past its first guess.

A fixed fusion weight has a hard lower bound 0, a *soft* upper bound (default 1) and a hard *cap*
(default 4); the fusion learning rate of learnable mode has soft bounds [1e-4, 1e-1] inside hard
ones [1e-6, 1] on its log scale. Samplers only propose inside the soft bounds. When the best complete
trial lies within ``MARGIN`` of the current range from a soft bound (measured on the parameter's own
scale: linear for weights, log10 for learning rates), that side grows -- a weight's upper bound
doubles, a learning rate's bound moves one decade -- up to the hard one, and the study goes on.

How samplers stay consistent (Optuna assumes one distribution per parameter): every trial of a
study is suggested from the same *hard* distribution (``FloatDistribution(0, cap)``), stored in the
study's user attr ``bounds`` when the study is made, so all trials share it. The soft range is
applied only to the proposals: :class:`search.samplers.SoftBoundsSampler` hands the inner sampler
(GP, TPE, ...) the search space narrowed to the current soft bounds; the trial step grows them before the
sampler proposes (:mod:`search.runners.step`, for every sampler). Because bounds only grow, every
earlier trial lies inside the current range, and the GP (which normalises by the range it is given)
and TPE keep learning from the trials of the old range. Finished trials are never copied or re-added.

The current bounds and each growth (trial, parameter, side, from, to, the best trial that caused it)
are study user attrs, shown by ``status`` and ``report``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

__all__ = ["BOUNDS_ATTR", "GROWTH_ATTR", "MARGIN", "Bound", "initial_bounds", "read_bounds", "ensure_bounds",
           "grow_bounds", "pending_growth", "growth_history", "growth_text"]

#: Study user attr: parameter -> current soft and hard bounds.
BOUNDS_ATTR = "bounds"
#: Study user attr: the list of growths, in order.
GROWTH_ATTR = "bounds_growth"
#: A best value this close to a soft bound (fraction of the current range, on the parameter's scale) grows it.
MARGIN = 0.05


@dataclass(frozen=True)
class Bound:
    """One searched parameter: soft range [low, high] inside the hard range [hard_low, hard_high].

    log: the parameter lives on a log scale (learning rates). Units are the parameter's own
    (weights: dimensionless; learning rates: per optimiser step).
    """

    low: float
    high: float
    hard_low: float
    hard_high: float
    log: bool = False

    def distribution(self) -> FloatDistribution:
        """The hard distribution every trial of the study is suggested from."""
        return FloatDistribution(self.hard_low, self.hard_high, log=self.log)

    def restricted(self) -> FloatDistribution:
        """The soft range, where samplers propose."""
        return FloatDistribution(self.low, self.high, log=self.log)

    def _scale(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def grown(self, value: float, margin: float = MARGIN) -> tuple["Bound", list[tuple[str, float, float]]]:
        """This bound after seeing the best value ``value``; also [(side, from, to)] of what grew."""
        width = self._scale(self.high) - self._scale(self.low)
        near = margin * width if width > 0 else 0.0
        low, high, changes = self.low, self.high, []
        if high < self.hard_high and self._scale(high) - self._scale(value) <= near:
            high = min(high * (10.0 if self.log else 2.0), self.hard_high)
            changes.append(("high", self.high, high))
        if low > self.hard_low and self._scale(value) - self._scale(low) <= near:
            low = max(low / 10.0, self.hard_low) if self.log else self.hard_low
            changes.append(("low", self.low, low))
        return Bound(low, high, self.hard_low, self.hard_high, self.log), changes

    def to_attr(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "hard_low": self.hard_low, "hard_high": self.hard_high,
                "log": self.log}

    @classmethod
    def from_attr(cls, value: Mapping[str, Any]) -> "Bound":
        return cls(float(value["low"]), float(value["high"]), float(value["hard_low"]), float(value["hard_high"]),
                   bool(value.get("log", False)))


def initial_bounds(space: Any) -> dict[str, Bound]:
    """The bounds of a new study from its :class:`search.study.spaces.SearchSpace` (searched parameters only)."""
    return {name: Bound(p.low, p.high, p.hard_low, p.hard_high, p.log)
            for name, p in space.params.items() if p.searched}


def read_bounds(study: optuna.Study) -> dict[str, Bound]:
    """The study's current bounds (empty for a study without them)."""
    stored = study.user_attrs.get(BOUNDS_ATTR)
    if not isinstance(stored, Mapping):
        return {}
    return {name: Bound.from_attr(value) for name, value in stored.items()}


def ensure_bounds(study: optuna.Study, space: Any) -> dict[str, Bound]:
    """The study's bounds, set now when it has none.

    A study made before bounds existed keeps the distributions its trials already have (hard = soft =
    the stored range: its range does not grow), so its samplers still see one distribution per parameter.
    """
    bounds = read_bounds(study)
    if bounds:
        return bounds
    bounds = initial_bounds(space)
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            if name in bounds and isinstance(distribution, FloatDistribution):
                low, high = distribution.low, distribution.high
                bounds[name] = Bound(low, high, low, high, distribution.log)
    study.set_user_attr(BOUNDS_ATTR, {name: bound.to_attr() for name, bound in bounds.items()})
    return bounds


def growth_history(study: optuna.Study) -> list[dict[str, Any]]:
    """Every growth so far: ``{"trial", "param", "side", "from", "to", "best_trial", "best_value"}``."""
    history = study.user_attrs.get(GROWTH_ATTR)
    return list(history) if isinstance(history, list) else []


def growth_text(growth: dict[str, Any]) -> str:
    """A growth of the search range in words (see :func:`search.study.bounds.growth_history`)."""
    return (f"range grown: {growth['param']} {growth['side']} bound {growth['from']:g} -> {growth['to']:g} "
            f"(best trial {growth['best_trial']} sat on it, before trial {growth['trial']})")


def _growths(study: optuna.Study, trial_number: int | None,
              margin: float) -> tuple[dict[str, Bound], list[dict[str, Any]]]:
    """(bounds after growing every soft bound the best complete trial sits on, the growths) of ``study`` now."""
    bounds = read_bounds(study)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if not bounds or not complete:
        return bounds, []
    best = max(complete, key=lambda t: (t.value, -t.number))
    number = len(study.get_trials(deepcopy=False)) if trial_number is None else trial_number
    changes: list[dict[str, Any]] = []
    new_bounds = dict(bounds)
    for name, bound in bounds.items():
        if name not in best.params:
            continue
        grown, moved = bound.grown(float(best.params[name]), margin)
        new_bounds[name] = grown
        changes += [{"trial": number, "param": name, "side": side, "from": old, "to": new,
                     "best_trial": best.number, "best_value": float(best.value)} for side, old, new in moved]
    return new_bounds, changes


def pending_growth(study: optuna.Study, margin: float = MARGIN) -> list[dict[str, Any]]:
    """The growths :func:`grow_bounds` would make now (nothing is written): the best complete trial sits
    on a soft bound that can still grow. A study in that state has not searched the range it is about
    to have, so it must not stop early (:func:`search.study.stopping.stop_reason`)."""
    return _growths(study, None, margin)[1]


def grow_bounds(study: optuna.Study, trial_number: int | None = None, margin: float = MARGIN) -> list[dict[str, Any]]:
    """Grow the soft bounds the best complete trial sits on; returns the growths made now.

    trial_number: the trial about to be sampled in the grown range (recorded; default: the next one).

    Safe with several workers: bounds only grow, so two workers that grow at once write the same
    or compatible values (each side takes the wider of what is stored and what it computed).
    """
    new_bounds, changes = _growths(study, trial_number, margin)
    if changes:
        stored = read_bounds(study)  # another worker may have grown them meanwhile: keep the wider
        merged = {name: Bound(min(b.low, stored.get(name, b).low), max(b.high, stored.get(name, b).high),
                              b.hard_low, b.hard_high, b.log) for name, b in new_bounds.items()}
        study.set_user_attr(BOUNDS_ATTR, {name: bound.to_attr() for name, bound in merged.items()})
        study.set_user_attr(GROWTH_ATTR, growth_history(study) + changes)
    return changes
