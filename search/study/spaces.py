"""The search spaces of the three fusion modes: parameters, default bounds, and the known points.

The fusion weights are those of :data:`search.study.fusion_terms.FUSION_TERMS` (one per enhancer of the
model, E of them); every weight parameter below is derived from that table, never named here.

*Fixed* mode searches the E weights of Z̃ = Z + Σ_e w_e·Δ_e (w_sim·Δsim + w_prompt·Δprompt) directly,
each in [0, 1] by default (0 must stay reachable: ARE-V3/V5 carry an untrained prompt enhancer).

*Learnable* mode searches how fine-tuning starts: the initial fusion weights as E − 1 free shares in
(0, 1) (softmax ignores a shift shared by the logits; with two terms the one share is
``initial_similarity_weight`` and the prompt weight is 1 − it, with more the shares break the unit stick,
:func:`search.study.fusion_terms.weights_from_shares`), the fusion logits' own learning rate ``fusion_lr``
(log-uniform), and the body: frozen, or trained with a log-uniform ``body_lr`` (the categorical
``body``). The fusion group's weight decay is 0 unless ``fusion_weight_decay`` is given bounds.

*Learnable_free* mode (non-negative weights without the sum-to-one constraint, w_e = softplus(ρ_e), see
``are_model.fusion``) searches the same learning rates and body, and the E initial weights themselves, one
parameter per term (``initial_similarity_weight``, ``initial_prompt_weight``: both numbers, not a share),
each in [0.01, soft_high] (default [0.01, 1]), a soft range that grows like a fixed weight's up to the hard
[0.001, weight_cap] (:mod:`search.study.bounds`). Its known points start from the checkpoint's own learned
weights (fusion.pth: 0.225 / 0.775) and from 0.2/0.8.

A study spec's ``space`` overrides the bounds per parameter: ``[low, high]`` searches, a single number
pins the parameter (it is then not searched), and ``body_lr: frozen`` pins a frozen body.

Every trial's settings are a plain dict (see :meth:`SearchSpace.suggest`) that the objective completes
and stores as the trial's ``settings`` user attribute, so a trial can be re-run from the study alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import optuna

from search.errors import StudyError, UsageError
from search.study import fusion_terms
from search.study.fusion_terms import INITIAL_PARAMS, KNOWN_WEIGHTS, SHARE_PARAMS, WEIGHT_PARAMS
from search.study.names import LEARNABLE_MODES, MODES
from search.values import as_number, weight
from search.values import bounds as parse_bounds

__all__ = [
    "FIXED_BOUNDS",
    "LEARNABLE_BOUNDS",
    "FREE_BOUNDS",
    "DEFAULT_FUSION_LR",
    "KNOWN_WEIGHTS",
    "Param",
    "SearchSpace",
]

#: Default bounds of fixed mode: one weight per fusion term.
FIXED_BOUNDS: dict[str, tuple[float, float]] = {name: (0.0, 1.0) for name in WEIGHT_PARAMS}
#: Default bounds of learnable mode (``fusion_weight_decay`` is searched only when the spec gives it).
LEARNABLE_BOUNDS: dict[str, tuple[float, float]] = {
    **{name: (0.01, 0.99) for name in SHARE_PARAMS},
    "fusion_lr": (1e-4, 1e-1),
    "body_lr": (1e-6, 1e-3),
}
#: Default bounds of learnable_free mode: one initial weight per term (soft upper bound: the spec's soft_high).
FREE_BOUNDS: dict[str, tuple[float, float]] = {
    **{name: (0.01, 1.0) for name in INITIAL_PARAMS},
    "fusion_lr": LEARNABLE_BOUNDS["fusion_lr"],
    "body_lr": LEARNABLE_BOUNDS["body_lr"],
}
#: The hard lower bound a free initial weight's range may grow down to (its hard upper bound: weight_cap).
FREE_WEIGHT_FLOOR = 1e-3
_DEFAULTS = {"fixed": FIXED_BOUNDS, "learnable": LEARNABLE_BOUNDS, "learnable_free": FREE_BOUNDS}
_LEARNABLE_OPTIONAL = ("fusion_weight_decay",)
_LOG_SCALE = ("fusion_lr", "body_lr")
#: The learning rate of the fusion logits at the known points of learnable mode.
DEFAULT_FUSION_LR = 5e-3
# KNOWN_WEIGHTS (name -> weights [E]): the settings every new study tries first, besides the checkpoint's own.


#: Hard bounds of learnable mode's fusion learning rate, around its soft default (see search.study.bounds).
FUSION_LR_HARD = (1e-6, 1.0)
#: The default hard cap and soft upper bound of a fixed weight.
DEFAULT_WEIGHT_CAP = 4.0
DEFAULT_SOFT_HIGH = 1.0


@dataclass(frozen=True)
class Param:
    """One parameter: searched in the soft range [low, high] (log-uniform when ``log``) inside the hard
    range [hard_low, hard_high] it may grow to (see :mod:`search.study.bounds`), or pinned to ``value``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    value: float | str | None = None
    hard_low: float | None = None
    hard_high: float | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            object.__setattr__(self, "hard_low", self.low if self.hard_low is None else min(self.hard_low, self.low))
            object.__setattr__(self, "hard_high", self.high if self.hard_high is None else max(self.hard_high, self.high))

    @property
    def searched(self) -> bool:
        return self.value is None

    def suggest(self, trial: optuna.Trial, bound: Any = None) -> float | str:
        """The trial's value: from the study's hard distribution when it stores bounds (``bound``), so every
        trial of a study shares one distribution and the sampler keeps proposals in the soft range
        (search.study.bounds); from the soft range [low, high] in a study without bounds (not made by a runner)."""
        if not self.searched:
            return self.value
        low, high = (bound.hard_low, bound.hard_high) if bound is not None else (self.low, self.high)
        return trial.suggest_float(self.name, low, high, log=self.log)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def clip(self, value: float) -> float:
        return min(max(value, self.low), self.high)

    def grid(self, points: int) -> list[float]:
        """``points`` values spread over the bounds (geometrically for a log parameter)."""
        if self.low == self.high or points == 1:
            return [float(self.low)]
        if self.log:
            return [float(v) for v in np.geomspace(self.low, self.high, points)]
        return [float(v) for v in np.linspace(self.low, self.high, points)]


def _param(name: str, raw: Any, default: tuple[float, float] | None, *, log: bool, mode: str = "learnable") -> Param:
    """Check one ``space`` entry of ``mode`` (or the default bounds when ``raw`` is None)."""
    where = f"space key {name!r}"
    share = name in SHARE_PARAMS and mode == "learnable"  # a share in (0, 1); in learnable_free a weight >= 0
    is_weight = name in FIXED_BOUNDS or (mode == "learnable_free" and name in INITIAL_PARAMS)
    if raw is None:
        low, high = default
        return Param(name, low, high, log)
    if isinstance(raw, str) and raw == "frozen":
        if name != "body_lr":
            raise StudyError(f"{where}: 'frozen' applies only to body_lr")
        return Param(name, value="frozen")
    if isinstance(raw, (list, tuple)):
        low, high = parse_bounds(raw, where)
        if log and low <= 0:
            raise StudyError(f"{where}: a log-uniform parameter needs bounds above 0, got [{low}, {high}]")
        if share and not 0 < low <= high < 1:
            raise StudyError(f"{where}: bounds must lie strictly inside (0, 1), got [{low}, {high}]")
        if is_weight:
            weight(low, f"{where}: low bound")
        if name == "fusion_weight_decay" and low < 0:
            raise StudyError(f"{where}: weight decay cannot be negative, got [{low}, {high}]")
        if low == high:
            return Param(name, value=low)
        return Param(name, low, high, log=log)
    number = as_number(raw)
    if number is None:
        raise StudyError(f"{where}: expected [low, high], a number or 'frozen', got {raw!r}")
    if is_weight:
        weight(number, where)
    if (log or share) and number <= 0:
        raise StudyError(f"{where}: expected a positive number, got {number}")
    if share and number >= 1:
        raise StudyError(f"{where}: expected a number strictly inside (0, 1), got {number}")
    return Param(name, value=number)


class SearchSpace:
    """The parameters of one mode, from a study spec's ``space`` (missing keys take the defaults)."""

    def __init__(self, mode: str, space: Mapping[str, Any] | None = None, *, weight_cap: float = DEFAULT_WEIGHT_CAP,
                 soft_high: float = DEFAULT_SOFT_HIGH) -> None:
        if mode not in MODES:
            raise StudyError(f"bad mode {mode!r}: expected one of {', '.join(MODES)}")
        space = dict(space or {})
        defaults = _DEFAULTS[mode]
        known = tuple(defaults) + (() if mode == "fixed" else _LEARNABLE_OPTIONAL)
        for key in space:
            if key not in known:
                raise StudyError(f"space key {key!r} is not a parameter of {mode} mode "
                                 f"(expected one of: {', '.join(known)})")
        self.mode = mode
        try:
            weight_cap = weight(weight_cap, "weight_cap")
            soft_high = weight(soft_high, "soft_high")
            if not 0 < soft_high <= weight_cap:
                raise StudyError(f"soft_high {soft_high} must lie in (0, weight_cap {weight_cap}]")
            if mode == "fixed":
                defaults = {name: (0.0, soft_high) for name in defaults}
            elif mode == "learnable_free":
                defaults = {**defaults, **{name: (min(FREE_BOUNDS[name][0], soft_high), soft_high)
                                           for name in INITIAL_PARAMS}}
            params = {name: _param(name, space.get(name), defaults.get(name), log=name in _LOG_SCALE, mode=mode)
                      for name in known if name in defaults or name in space}
        except UsageError as exc:  # a value rule of search.values: the same words, as a study error
            raise StudyError(str(exc)) from None
        hard = {name: (0.0, weight_cap) for name in FIXED_BOUNDS} if mode == "fixed" else {"fusion_lr": FUSION_LR_HARD}
        if mode == "learnable_free":
            hard.update({name: (FREE_WEIGHT_FLOOR, weight_cap) for name in INITIAL_PARAMS})
        self.params: dict[str, Param] = {
            name: (Param(name, p.low, p.high, p.log, hard_low=hard[name][0], hard_high=hard[name][1])
                   if p.searched and name in hard else p)
            for name, p in params.items()
        }

    def with_bounds(self, bounds: Mapping[str, Any]) -> "SearchSpace":
        """A copy whose searched parameters span a study's current soft ranges (see search.study.bounds)."""
        import copy
        import dataclasses

        grown = copy.copy(self)
        grown.params = {name: (dataclasses.replace(p, low=bounds[name].low, high=bounds[name].high)
                               if p.searched and name in bounds else p) for name, p in self.params.items()}
        return grown

    # ------------------------------------------------------------------------------------ sampling
    def suggest(self, trial: optuna.Trial, bounds: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Sample one trial's settings (the parameters the objective needs, nothing it measures).

        bounds: the study's stored :class:`search.study.bounds.Bound` per parameter (their hard ranges are
        the distributions); None: this space's own.
        """
        p, bounds = self.params, bounds or {}
        if self.mode == "fixed":
            return {"use_learnable_fusion": False,
                    **{name: float(p[name].suggest(trial, bounds.get(name))) for name in WEIGHT_PARAMS}}
        free = self.mode == "learnable_free"
        if free:
            weights = tuple(float(p[name].suggest(trial, bounds.get(name))) for name in INITIAL_PARAMS)
        else:
            weights = fusion_terms.weights_from_shares([float(p[name].suggest(trial, bounds.get(name)))
                                                        for name in SHARE_PARAMS])
        body = p["body_lr"]
        if body.value == "frozen":
            body_lr = None
        elif not body.searched:
            body_lr = float(body.value)
        else:
            trained = trial.suggest_categorical("body", ["frozen", "trained"]) == "trained"
            body_lr = float(body.suggest(trial, bounds.get("body_lr"))) if trained else None
        decay = p.get("fusion_weight_decay")
        # torch: trials only, not reading commands
        from are_model.enhancers import fusion_logits_from_weights
        from are_model.fusion import free_fusion_parameters

        start = free_fusion_parameters(weights) if free else fusion_logits_from_weights(weights)
        return {
            "use_learnable_fusion": True,
            **({"free_fusion": True} if free else {}),
            **fusion_terms.params_of(weights),
            "fusion_init_logits": [float(v) for v in start],
            "fusion_lr": float(p["fusion_lr"].suggest(trial, bounds.get("fusion_lr"))),
            "fusion_weight_decay": 0.0 if decay is None else float(decay.suggest(trial, bounds.get("fusion_weight_decay"))),
            "body_lr": body_lr,
        }

    def grid(self, points: int = 5) -> dict[str, list[Any]]:
        """The search space of Optuna's GridSampler: ``points`` values per searched parameter."""
        grid: dict[str, list[Any]] = {name: p.grid(points) for name, p in self.params.items() if p.searched}
        if self.mode in LEARNABLE_MODES and self.params["body_lr"].searched:
            grid["body"] = ["frozen", "trained"]
        return grid

    # ------------------------------------------------------------------------------- known points
    def point_of(self, weights: Sequence[float]) -> dict[str, Any] | None:
        """The params of one setting given by its fusion weights [E] (dimensionless; a user's flags file), as
        :meth:`known_points` makes each of its points: fixed mode the weights themselves, None when one lies
        outside the configured bounds; learnable modes the initial weights, clipped into the bounds (None for
        weights that have no learnable counterpart, all 0). Raises ValueError when ``weights`` is not one
        weight per fusion term."""
        fusion_terms.params_of(tuple(float(w) for w in weights))  # one weight per term, or ValueError
        return self._fixed_point(weights) if self.mode == "fixed" else self._learnable_point(weights)

    def known_points(self, checkpoint_weights: Sequence[float]) -> list[tuple[str, dict[str, Any]]]:
        """(name, params) of the settings a new study evaluates first, in order, without duplicates.

        checkpoint_weights: the checkpoint's own weights [E] (``AREModel.checkpoint_fusion_weights``).
        Fixed: the checkpoint's own weights, 0.2/0.8 and 0/0. Learnable and learnable_free: the checkpoint's
        own and 0.2/0.8 as initial weights, with the default fusion lr and a frozen body. A point whose
        value lies outside the configured bounds is clipped into them (learnable) or left out (fixed).
        Raises ValueError when checkpoint_weights is not one weight per fusion term.
        """
        own = tuple(float(w) for w in checkpoint_weights)
        fusion_terms.params_of(own)  # one weight per term, or ValueError
        named = [("checkpoint", own), *KNOWN_WEIGHTS.items()]
        points: list[tuple[str, dict[str, Any]]] = []
        for name, weights in named:
            params = self._fixed_point(weights) if self.mode == "fixed" else self._learnable_point(weights)
            if params is not None and all(params != other for _, other in points):
                points.append((name, params))
        return points

    def _fixed_point(self, weights: Sequence[float]) -> dict[str, float] | None:
        params: dict[str, float] = {}
        for name, value in zip(WEIGHT_PARAMS, weights):
            param = self.params[name]
            if not param.searched:
                if param.value != value:
                    return None
                continue
            if not param.contains(value):
                return None
            params[name] = value
        return params

    def _learnable_point(self, weights: Sequence[float]) -> dict[str, Any] | None:
        shares = fusion_terms.shares_from_weights(weights)
        if shares is None:
            return None  # "no enhancement" has no learnable counterpart
        if self.mode == "learnable_free":  # the initial weights themselves, not shares
            names, shares = INITIAL_PARAMS, tuple(float(w) for w in weights)
        else:
            names = SHARE_PARAMS
        params: dict[str, Any] = {}
        for name, share in zip(names, shares):
            start = self.params[name]
            if start.searched:
                params[start.name] = start.clip(share)
        lr = self.params["fusion_lr"]
        if lr.searched:
            params[lr.name] = lr.clip(DEFAULT_FUSION_LR)
        decay = self.params.get("fusion_weight_decay")
        if decay is not None and decay.searched:
            params[decay.name] = decay.low
        if self.params["body_lr"].searched:
            params["body"] = "frozen"
        return params
