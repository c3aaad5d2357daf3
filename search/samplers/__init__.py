"""The samplers a study can use, by name: Optuna's own and :class:`StagedGPSampler` (``gp``, the default)."""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import optuna
from optuna.exceptions import ExperimentalWarning

from search.errors import StudyError, import_extra
from search.samplers.bounded import SoftBoundsSampler
from search.samplers.staged_gp import StagedGPSampler, estimate_pruned

__all__ = ["SAMPLERS", "make_sampler", "SoftBoundsSampler", "StagedGPSampler", "estimate_pruned"]

#: The sampler names a study spec and ``--sampler`` accept.
SAMPLERS = ("gp", "tpe", "random", "grid", "cmaes", "qmc")


def make_sampler(
    name: str, seed: int, *, search_space: Mapping[str, Sequence[Any]] | None = None, startup_trials: int = 10,
    deterministic: bool = False,
) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (one of SAMPLERS), seeded with ``seed``.

    ``gp`` is Gaussian-process BO that also learns from pruned trials (:mod:`search.samplers`); it
    samples at random until ``startup_trials`` trials are complete (known points count), and
    ``deterministic`` tells it that re-evaluating a setting gives the same value (fixed mode).
    TPE uses the constant liar so that parallel workers do not all propose the same point.
    ``grid`` needs ``search_space`` (parameter -> list of values).
    """
    samplers = optuna.samplers
    try:
        if name == "gp":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                # Learnable mode's body_lr exists only in trials that train the body: it is sampled
                # independently, as intended, so the per-trial warning about it is noise.
                return StagedGPSampler(seed=seed, n_startup_trials=startup_trials, deterministic_objective=deterministic,
                                       warn_independent_sampling=False)
        if name == "tpe":
            return samplers.TPESampler(seed=seed, constant_liar=True)
        if name == "random":
            return samplers.RandomSampler(seed=seed)
        if name == "qmc":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return samplers.QMCSampler(seed=seed)
        if name == "cmaes":
            import_extra("cmaes", feature="sampler 'cmaes'", extra="cmaes")  # Optuna imports it at the first sample

            return samplers.CmaEsSampler(seed=seed)
        if name == "grid":
            if not search_space:
                raise StudyError("sampler 'grid' needs a search space of parameter -> list of values")
            return samplers.GridSampler({k: list(v) for k, v in search_space.items()}, seed=seed)
    except ImportError as exc:
        raise StudyError(f"sampler {name!r} needs a package that is not installed ({exc})") from None
    raise StudyError(f"unknown sampler {name!r}: expected one of {', '.join(SAMPLERS)}")
