"""The paired racing rule (search.pruners.paired): its decisions on planted per-query differences, and its
error rate where the truth is known."""
from __future__ import annotations

import numpy as np
import pytest

from search.pruners.paired import PairedRace, paired_standard_error

N = 828  # the validation queries of NELLInductive:v1


def _incumbent(rng: np.random.Generator, n: int = N) -> np.ndarray:
    """Reciprocal ranks shaped like a KG split's: many 1s, a long tail of small values."""
    ranks = np.where(rng.random(n) < 0.35, 1, rng.geometric(0.08, n))
    return 1.0 / ranks


def _race(race: PairedRace, trial: np.ndarray, best: np.ndarray, blocks: int = 8) -> tuple[bool, int]:
    """Look after each of ``blocks`` growing prefixes; (pruned, queries seen when it stopped)."""
    for end in np.linspace(len(best) / blocks, len(best), blocks).astype(int):
        decision = race.decide(trial[:end], best[:end], len(best))
        if decision.prune:
            return True, end
    return False, len(best)


def test_a_clearly_worse_setting_is_stopped_early():
    rng = np.random.default_rng(0)
    best = _incumbent(rng)
    worse = best.copy()
    hit = rng.random(N) < 0.3
    worse[hit] = best[hit] / 4          # a third of the queries lose: MRR about 0.05 lower
    assert worse.mean() < best.mean() - 0.03
    pruned, seen = _race(PairedRace(), worse, best)
    assert pruned and seen <= N // 4


def test_a_clearly_better_and_an_equal_setting_run_to_the_end():
    rng = np.random.default_rng(1)
    best = _incumbent(rng)
    better = np.minimum(1.0, best * np.where(rng.random(N) < 0.3, 2.0, 1.0))
    assert not _race(PairedRace(), better, best)[0]
    assert not _race(PairedRace(), best.copy(), best)[0]
    # about equal in the mean, noisy query by query: a fifth of the queries ranked lower than 1 move by one place
    noisy = best.copy()
    ranks = 1.0 / best
    move = (rng.random(N) < 0.2) & (ranks > 2)
    noisy[move] = 1.0 / (ranks[move] + rng.choice([-1, 1], int(move.sum())))
    assert abs(noisy.mean() - best.mean()) < 0.01
    assert not _race(PairedRace(), noisy, best)[0]


def test_a_setting_within_the_margin_is_rarely_stopped():
    """Under H0's boundary (the trial is exactly ``margin`` worse) the race stops at most ``alpha`` of the time."""
    rng = np.random.default_rng(2)
    race = PairedRace(alpha=0.05, margin=0.002)
    stopped = 0
    runs = 400
    for _ in range(runs):
        best = _incumbent(rng)
        d = rng.normal(0.0, 0.05, N)
        d += -race.margin - d.mean()  # the full-split difference is exactly -margin
        trial = best + d
        stopped += _race(race, trial, best)[0]
    assert stopped / runs <= race.alpha


def test_the_decision_says_what_it_saw():
    rng = np.random.default_rng(3)
    best = _incumbent(rng)
    decision = PairedRace().decide(best[:96] * 0.5, best[:96], N)
    assert decision.prune and decision.queries == 96 and decision.delta < 0
    assert decision.describe().startswith(f"{decision.delta:+.4f} vs best after 96 queries, p = ")
    assert PairedRace().decide(best[:10] * 0.5, best[:10], N).prune is False       # too few queries to look
    assert PairedRace().decide(best * 0.5, best, N).prune is False                  # the whole split: it completes


def test_the_standard_error_knows_the_population():
    d = np.array([0.1, -0.1, 0.2, -0.2])
    assert paired_standard_error(d, 4) == 0.0                                       # the whole population seen
    assert paired_standard_error(d, 10 ** 9) == pytest.approx(d.std(ddof=1) / 2, rel=1e-6)
    with pytest.raises(ValueError):
        paired_standard_error(d[:1], 5)
    with pytest.raises(ValueError):
        PairedRace().decide(d, d[:3], 10)
