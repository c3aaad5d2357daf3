"""Paired racing: stop a trial once its per-query reciprocal ranks are worse than the incumbent's with confidence.

Every fixed-mode trial ranks the **same** validation queries, in the same seeded, relation-stratified order
(:func:`search.objectives.context.stage_plan`). So after each block of queries a trial can be compared with
the incumbent (the best complete trial) query by query: the differences ``d_i = RR_trial(i) - RR_best(i)``
vary far less than either trial's reciprocal ranks, because both rank the same hard and easy queries. The
mean of ``d`` over the whole split is exactly the difference of the two trials' MRRs, so the rule tests
what the study maximises.

The rule (:meth:`PairedRace.decide`): after ``n`` of the split's ``N`` queries, with ``mean`` and ``sd`` the
mean and standard deviation of ``d`` so far, the standard error with the finite-population correction
(the queries are drawn without replacement from the ``N``) is ``se = sd / sqrt(n) * sqrt((N - n) / (N - 1))``,
and the one-sided statistic ``t = (mean + margin) / se`` tests H0: "the trial's full-split MRR is at least
the incumbent's minus ``margin``". The trial is stopped when ``P(T_{n-1} <= t) < alpha / looks``.

*Error rate.* A trial whose full-split MRR is within ``margin`` of the incumbent's (or better) is stopped with
probability at most ``alpha`` over the whole race (Bonferroni over the ``looks`` planned looks; the t
distribution is the large-sample approximation of the mean of ``n`` paired differences, which is why no look is
made before ``min_queries`` queries). Defaults: ``alpha = 0.05``, ``margin = 0.002`` (the resolution at which
the benchmarks call two settings equal), ``min_queries = 30``.

*Why a paired t statistic rather than Wilcoxon's signed-rank test* (Optuna's ``WilcoxonPruner``): a study
maximises the **mean** reciprocal rank; the signed-rank test is about the median of the differences, and
many small gains with a few large losses (common: a weight change helps easy queries a little and breaks a few)
have a positive median and a negative mean. The t statistic on the mean difference judges what the
study's value is.

Sources: the paired design is SMAC's intensification (Hutter et al., "Sequential Model-Based Optimization for
General Algorithm Configuration", LION 2011): a challenger is raced against the incumbent on the incumbent's
instances; the finite-population correction is Cochran, *Sampling Techniques* (1977), eq. 2.12.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["RACE_ATTR", "RaceDecision", "PairedRace", "paired_standard_error"]

#: The user attr of a trial the race stopped: its :meth:`RaceDecision.to_attr` and the incumbent's number.
RACE_ATTR = "race"


@dataclass(frozen=True)
class RaceDecision:
    """One look of a race: ``prune`` (worse than the incumbent with confidence), ``delta`` (mean difference
    trial - incumbent of reciprocal rank over the ``queries`` ranked so far), ``se`` (its standard error,
    finite-population corrected), ``p`` (the one-sided p-value of H0: delta >= -margin; 1.0 when no test was
    made) and ``threshold`` (the level a p-value had to fall below at this look)."""

    prune: bool
    delta: float
    se: float
    p: float
    queries: int
    threshold: float

    def to_attr(self) -> dict[str, float | int | bool]:
        """A JSON-ready dict (stored as the trial's user attr ``race``)."""
        return asdict(self)

    def describe(self) -> str:
        """The decision in words, e.g. ``-0.0120 vs best after 96 queries, p = 0.003``."""
        return f"{self.delta:+.4f} vs best after {self.queries} queries, p = {self.p:.3g}"


def paired_standard_error(differences: np.ndarray, population: float) -> float:
    """The standard error of the mean of ``differences`` ([n] floats), drawn without replacement from a split
    of ``population`` queries (finite-population correction; 0 when the whole split is seen; none for
    ``math.inf``: the queries as a sample of the query distribution). Raises ValueError for fewer than two
    differences or a population smaller than them."""
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 differences, got {n}")
    if population < n:
        raise ValueError(f"population {population} is smaller than the {n} differences")
    fpc = 1.0 if math.isinf(population) else (population - n) / (population - 1) if population > 1 else 0.0
    return float(d.std(ddof=1) / math.sqrt(n) * math.sqrt(fpc))


@dataclass(frozen=True)
class PairedRace:
    """The racing rule of a study (see the module docstring): ``alpha`` the error rate of stopping a trial
    within ``margin`` (MRR) of the incumbent, spent evenly over ``looks`` looks; no look before
    ``min_queries`` queries. Raises ValueError for values outside (0, 1) / negative / below 1."""

    alpha: float = 0.05
    margin: float = 0.002
    looks: int = 8
    min_queries: int = 30

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")
        if not self.margin >= 0.0:
            raise ValueError(f"margin must be >= 0, got {self.margin!r}")
        if self.looks < 1 or self.min_queries < 2:
            raise ValueError(f"looks >= 1 and min_queries >= 2 expected, got {self.looks!r}, {self.min_queries!r}")

    @property
    def threshold(self) -> float:
        """The level each look's p-value is compared with (Bonferroni: ``alpha / looks``)."""
        return self.alpha / self.looks

    def decide(self, trial_rr: np.ndarray, incumbent_rr: np.ndarray, population: float) -> RaceDecision:
        """Whether to stop a trial after ranking the queries of ``trial_rr`` ([n] reciprocal ranks, in (0, 1]),
        paired index by index with ``incumbent_rr`` ([n], the incumbent's on the same queries), out of a split
        of ``population`` queries (``math.inf``: a learnable trial's look after an epoch, which ranks every
        query; its question is whether the model so far is worse on the query distribution, so no
        finite-population correction). Raises ValueError for arrays of different shapes."""
        a = np.asarray(trial_rr, dtype=np.float64)
        b = np.asarray(incumbent_rr, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"paired reciprocal ranks must be two [n] arrays, got {a.shape} and {b.shape}")
        d = a - b
        n = d.size
        delta = float(d.mean()) if n else 0.0
        if n < self.min_queries or n >= population:
            return RaceDecision(False, delta, float("nan"), 1.0, n, self.threshold)
        se = paired_standard_error(d, population)
        if se == 0.0:  # every difference equal: the sign of (delta + margin) is certain
            p = 0.0 if delta + self.margin < 0 else 1.0
        else:
            p = float(stats.t.cdf((delta + self.margin) / se, df=n - 1))
        return RaceDecision(p < self.threshold, delta, se, p, n, self.threshold)
