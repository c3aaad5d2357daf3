"""Statistics of a report: the paired bootstrap interval of a test-MRR difference.

Two fusion settings ranked on the same test queries give two rank vectors ``ranks_a`` and
``ranks_b`` of shape ``[Q]`` (query ``q`` has rank ``ranks_a[q]`` under setting a). Their MRR
difference is the mean of the per-query reciprocal-rank differences

    d[q] = 1 / ranks_a[q] - 1 / ranks_b[q],        MRR(a) - MRR(b) = mean(d),

so the paired bootstrap over queries is the one-sample bootstrap of the mean of ``d``: each of the
``n_boot`` resamples draws Q query indices with replacement (the same queries for both settings,
which keeps the pairing), and the interval is the percentile interval of the resampled means
(Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 6 and 13). Resampling queries
to judge an IR metric's difference follows Sakai, "Evaluating evaluation metrics based on the
bootstrap", SIGIR 2006. The resampling itself is :func:`scipy.stats.bootstrap` (vectorized,
``method="percentile"``), seeded, and run in blocks so memory stays bounded on large test splits.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["BootstrapInterval", "paired_bootstrap", "reciprocal_rank_differences"]

#: Resampled entries (resamples x queries, float64) held in memory at once.
_BLOCK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class BootstrapInterval:
    """MRR(a) - MRR(b) on the full query set, and its percentile bootstrap interval [low, high].

    confidence: the interval's nominal coverage (0.95: a 95% interval); n_boot: resamples; seed: the
    generator's seed (same inputs and seed, same interval).
    """

    diff: float
    low: float
    high: float
    confidence: float
    n_boot: int
    seed: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or below 0."""
        return self.low > 0 or self.high < 0


def _rank_vector(ranks: Any, name: str) -> np.ndarray:
    """A flat float64 array from a tensor (any device), array or sequence of ranks."""
    if hasattr(ranks, "detach"):  # a torch tensor, without importing torch here
        ranks = ranks.detach().cpu().numpy()
    array = np.asarray(ranks, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: ranks must be finite")
    return array


def reciprocal_rank_differences(ranks_a: Any, ranks_b: Any) -> np.ndarray:
    """d = 1/ranks_a - 1/ranks_b, shape [Q]: the per-query reciprocal-rank gain of a over b."""
    a, b = _rank_vector(ranks_a, "ranks_a"), _rank_vector(ranks_b, "ranks_b")
    if a.shape != b.shape:
        raise ValueError(f"paired bootstrap needs rank vectors of one length, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("paired bootstrap needs at least one query")
    if (a < 1).any() or (b < 1).any():
        raise ValueError("ranks must be >= 1")
    return 1.0 / a - 1.0 / b


def _seed_keyword() -> str:
    """scipy >= 1.15 takes ``rng``; older releases only ``random_state``."""
    return "rng" if "rng" in inspect.signature(_scipy_stats.bootstrap).parameters else "random_state"


def paired_bootstrap(ranks_a: Any | Sequence[int], ranks_b: Any | Sequence[int], *, n_boot: int = 2000,
                     seed: int = 0, confidence: float = 0.95) -> BootstrapInterval:
    """Paired percentile bootstrap interval of MRR(ranks_a) - MRR(ranks_b).

    ranks_a, ranks_b: [Q] ranks (>= 1) of the same Q queries, in the same order, under two settings
    (tensors, arrays or sequences). Resamples queries with replacement ``n_boot`` times from
    ``numpy.random.default_rng(seed)``; the interval holds the central ``confidence`` share of the
    resampled mean differences (percentile method). ``diff`` is the difference on the whole split.
    With one query there is nothing to resample: the interval is that query's difference.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    delta = reciprocal_rank_differences(ranks_a, ranks_b)                 # [Q]
    diff = float(delta.mean())
    if delta.size == 1:
        return BootstrapInterval(diff, diff, diff, float(confidence), int(n_boot), int(seed))
    block = max(1, _BLOCK_ENTRIES // delta.size)                           # resamples per block
    result = _scipy_stats.bootstrap(
        (delta,), np.mean, n_resamples=int(n_boot), batch=block, vectorized=True, axis=-1,
        confidence_level=float(confidence), method="percentile",
        **{_seed_keyword(): np.random.default_rng(int(seed))},
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return BootstrapInterval(diff, low, high, float(confidence), int(n_boot), int(seed))
