"""search.reports.stats: the paired bootstrap of an MRR difference.

Besides known cases, the interval is checked against two independent references on rank vectors
shaped like a real test split (1194 queries as FBNELL's, heavy-tailed ranks, two correlated
settings): a plain NumPy resampling of the queries, and the normal approximation of the mean.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from search.reports.stats import BootstrapInterval, paired_bootstrap, reciprocal_rank_differences


def _ranks(n: int, seed: int, high: int = 50) -> torch.Tensor:
    return torch.randint(1, high, (n,), generator=torch.Generator().manual_seed(seed))


def _real_shaped(q: int = 1194, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two rank vectors of the same queries: heavy-tailed (many rank 1-3, a long tail), correlated."""
    rng = np.random.default_rng(seed)
    base = np.minimum(rng.zipf(1.6, size=q), 2000)                  # [Q] ranks of setting b
    noise = rng.integers(-1, 2, size=q)                              # a moves some queries by one
    better = np.maximum(1, base + noise - (rng.random(q) < 0.08))    # a helps ~8% of the queries a bit
    return better.astype(np.int64), base.astype(np.int64)


def test_identical_rank_vectors_give_zero_interval():
    ranks = _ranks(500, 0)
    interval = paired_bootstrap(ranks, ranks.clone(), n_boot=1000, seed=3)
    assert (interval.diff, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.excludes_zero


def test_clear_improvement_excludes_zero_and_brackets_the_known_difference():
    worse = _ranks(800, 1, high=20) + 1             # ranks 2..20
    better = torch.ones_like(worse)                  # every query at rank 1
    expected = float((1.0 / better.double() - 1.0 / worse.double()).mean())
    interval = paired_bootstrap(better, worse, n_boot=2000, seed=0)
    assert interval.diff == pytest.approx(expected, abs=1e-12)
    assert 0 < interval.low < interval.diff < interval.high
    assert interval.excludes_zero
    reverse = paired_bootstrap(worse, better, n_boot=2000, seed=0)
    assert reverse.high < 0 and reverse.diff == pytest.approx(-expected)


def test_small_difference_on_few_queries_does_not_exclude_zero():
    # two queries of 200 move from rank 2 to rank 1 and two from rank 1 to rank 3: noise, not a gain
    base = _ranks(200, 5, high=10)
    other = base.clone()
    other[:2], base[:2] = 1, 2
    other[2:4], base[2:4] = 3, 1
    interval = paired_bootstrap(other, base, n_boot=2000, seed=0)
    assert interval.low < 0 < interval.high


def test_bootstrap_is_seeded_and_paired():
    a, b = _ranks(300, 7), _ranks(300, 8)
    first = paired_bootstrap(a, b, n_boot=1500, seed=11)
    assert isinstance(first, BootstrapInterval)
    assert (first.n_boot, first.seed, first.confidence) == (1500, 11, 0.95)
    assert paired_bootstrap(a, b, n_boot=1500, seed=11) == first
    assert paired_bootstrap(a, b, n_boot=1500, seed=12) != first
    # plain lists and NumPy arrays give the same interval as tensors
    assert paired_bootstrap(a.tolist(), b.tolist(), n_boot=1500, seed=11) == first
    assert paired_bootstrap(a.numpy(), b.numpy(), n_boot=1500, seed=11) == first


def test_pairing_matters():
    # b is a with a few queries improved: paired, the gain is tiny but certain; shuffling b breaks the pairs
    a = _ranks(1000, 3, high=30)
    b = a.clone()
    b[:50] = torch.clamp(b[:50] - 1, min=1)
    paired = paired_bootstrap(b, a, n_boot=1000, seed=0)
    assert paired.low >= 0 and paired.high > 0
    unpaired = paired_bootstrap(b[torch.randperm(1000, generator=torch.Generator().manual_seed(0))], a,
                                n_boot=1000, seed=0)
    assert (unpaired.high - unpaired.low) > 5 * (paired.high - paired.low)


def test_many_queries_are_resampled_in_blocks_and_the_interval_shrinks():
    # many queries: resampled in blocks; the interval still shrinks like 1/sqrt(Q)
    a, b = _ranks(40_000, 1), _ranks(40_000, 2)
    wide = paired_bootstrap(a[:400], b[:400], n_boot=400, seed=0)
    narrow = paired_bootstrap(a, b, n_boot=400, seed=0)
    assert narrow.low <= narrow.diff <= narrow.high
    assert (narrow.high - narrow.low) < (wide.high - wide.low) / 5


def test_interval_matches_an_independent_resampling_and_the_normal_approximation():
    a, b = _real_shaped()
    interval = paired_bootstrap(a, b, n_boot=4000, seed=0)
    delta = 1.0 / a - 1.0 / b
    assert interval.diff == pytest.approx(delta.mean(), abs=1e-15)
    width = interval.high - interval.low
    assert width > 0
    # plain NumPy: resample the queries (same indices for a and b), percentile interval
    rng = np.random.default_rng(12345)
    index = rng.integers(0, len(a), size=(4000, len(a)))                       # [n_boot, Q]
    means = (1.0 / a[index] - 1.0 / b[index]).mean(axis=1)                     # [n_boot]
    low, high = np.percentile(means, [2.5, 97.5])
    assert interval.low == pytest.approx(low, abs=0.1 * width)
    assert interval.high == pytest.approx(high, abs=0.1 * width)
    # the normal approximation of a mean of 1194 differences: mean +- 1.96 sd / sqrt(Q)
    half = 1.959964 * delta.std(ddof=1) / np.sqrt(len(delta))
    assert width == pytest.approx(2 * half, rel=0.1)
    assert interval.low == pytest.approx(delta.mean() - half, abs=0.1 * width)


def test_confidence_widens_the_interval():
    a, b = _real_shaped(seed=1)
    narrow = paired_bootstrap(a, b, n_boot=2000, seed=0, confidence=0.8)
    wide = paired_bootstrap(a, b, n_boot=2000, seed=0, confidence=0.99)
    assert wide.low < narrow.low <= narrow.diff <= narrow.high < wide.high
    assert wide.confidence == 0.99


def test_one_query_has_a_degenerate_interval():
    interval = paired_bootstrap([1], [4], n_boot=100, seed=0)
    assert interval.diff == interval.low == interval.high == pytest.approx(0.75)
    assert interval.excludes_zero


def test_reciprocal_rank_differences_shape():
    d = reciprocal_rank_differences(torch.tensor([1, 2, 4]), [2, 2, 1])
    assert d.shape == (3,)
    assert d.tolist() == pytest.approx([0.5, 0.0, -0.75])


@pytest.mark.parametrize("a, b", [([1, 2], [1]), ([], []), ([0, 1], [1, 1]), ([1.0, float("nan")], [1, 1])])
def test_bootstrap_rejects_bad_ranks(a, b):
    with pytest.raises(ValueError):
        paired_bootstrap(torch.tensor(a, dtype=torch.double), torch.tensor(b, dtype=torch.double))


@pytest.mark.parametrize("kwargs", [{"n_boot": 0}, {"n_boot": 2.5}, {"n_boot": True}, {"confidence": 1.0},
                                    {"confidence": 0.0}])
def test_bootstrap_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2, 3], [2, 2, 2], **kwargs)
