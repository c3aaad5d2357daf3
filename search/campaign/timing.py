"""A campaign's time budget: what a trial of each study costs, and how the time is shared among the studies.

**Cost.** Before a study of a timed campaign runs its first trial, the worker that takes it measures its cost
(:mod:`search.runners.cost`): seconds per validation pair on this device, timed on one entity pass of a few
pairs, and the pairs a trial ranks (the whole split, or its validation budget ``valid_pairs``); for a
learnable study also seconds per fine-tuning batch, and the batches and validations (one per epoch) a trial
runs (:func:`estimated_trial_seconds`). It is
stored as the study's user attr ``cost`` (:data:`COST_ATTR`). Once trials have finished, the measured
mean -- the time the study's trials ran divided by how many finished -- replaces the estimate.

**Time spent.** A study's time is its set-up (building the model's graphs and relation side, the cost
probe; recorded in ``cost``) plus, for each worker that ran its trials, the wall time during which at
least one of them ran on that worker (the union of their start-to-end intervals, so K trials run together
in one step count once), summed over workers (two workers running trials of one study side by side spend
twice the time; the worker is the process a trial's owner attrs name, :func:`search.study.budget.owner_attrs`).
The campaign's time is the sum over its studies: with one worker that is its wall time less what loading
the datasets at the start takes; with W workers the campaign's clock runs W times as fast.

**The rule.** Time budget T, W workers, S studies: every study gets an equal share T·W/S. A study that
needs less -- it stopped early, or reaching its trial budget (``trials`` / ``total_trials``) costs less
than its share -- keeps what it needs and the rest is shared equally among the others, again until no
study is given more than it can use (water filling); a study that has already spent more than an equal
share (trials in flight when the budget changed, a resumed run, trials dearer than their estimate) keeps
what it spent, which the others no longer share. In one formula: every study's share is
``min(max(L, spent), need)`` for the one level L at which the shares sum to T·W. A study's trial budget is then what its share
affords at its cost per trial, but at least its floor -- its known points (the checkpoint's own weights and
0.2/0.8 in fixed mode), so every study has its baselines -- and at most its trial budget. Where even the
floor at full validation would not fit a share, the study's validation budget is set so that it does
(:func:`choose_valid_pairs`; never fewer than :data:`MIN_VALID_PAIRS` pairs), once, before its first
trial: a study's sample never changes under trials already run.

**The clock.** A run's workers also keep a deadline: the run's start plus what is left of T (the
campaign's time so far divided by W). A worker starts no trial whose expected cost passes it; the trials
in flight finish, so a campaign out of time ends with every trial finished and nothing RUNNING, and
``campaign resume --time-budget`` with a larger T continues it.

Everything here is a pure function of the stored state (the spec, each study's trials and ``cost``
record), so every worker computes the same shares and a killed campaign resumes to the same account.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial

__all__ = ["COST_ATTR", "GRAPH_SIZE_KEYS", "graph_size", "MIN_VALID_PAIRS", "TRIAL_OVERHEAD_S", "StudyClock",
           "TimeShare", "trial_seconds", "estimated_trial_seconds",
           "study_clock", "allocate_time", "choose_valid_pairs", "eta_seconds"]

#: The study user attr holding its measured cost: ``seconds_per_pair`` (one entity pass, this device),
#: ``pairs`` (ranked by one trial), ``split_pairs`` (the whole validation split), ``valid_pairs`` (the
#: validation budget set, or None), ``setup_s`` (set-up and probe seconds, summed over the workers that
#: took the study up), ``device``, and the validation graph's ``entities``, ``relations`` and ``edges``
#: (:func:`graph_size`; absent from records written before they were added).
COST_ATTR = "cost"
#: The keys of :func:`graph_size`, which a cost record holds too.
GRAPH_SIZE_KEYS = ("entities", "relations", "edges")
#: The smallest validation budget a time budget sets (fewer pairs make an MRR too noisy to compare).
MIN_VALID_PAIRS = 32
#: Seconds a trial costs besides ranking its pairs (the sampler's proposal, storage writes), in the estimate
#: made before any trial of the study finished.
TRIAL_OVERHEAD_S = 1.0


def graph_size(graph: Any) -> dict[str, int]:
    """``{"entities", "relations", "edges"}`` of a split's graph (:class:`are_model.data.graph.GraphContext`):
    its nodes, its relations with their inverses (2R) and its directed edges, inverse edges included. The
    cost probe records the validation graph's (:mod:`search.runners.cost`), a report each split's
    (``graphs`` of :func:`search.reports.study.write_report`'s summary)."""
    return {"entities": int(graph.num_nodes), "relations": int(graph.num_relations),
            "edges": int(graph.edge_index.shape[1])}


@dataclass(frozen=True)
class StudyClock:
    """What the time allocation needs of one study: its name; finished (COMPLETE + PRUNED) and running trials;
    whether it stopped early; its trial budget without a clock (``cap``); its floor (known points);
    ``spent`` seconds (set-up + trials); ``per_trial`` seconds a trial costs (measured mean, else the
    probe's estimate; None before the probe)."""

    name: str
    finished: int
    running: int
    stopped: bool
    cap: int
    floor: int
    spent: float
    per_trial: float | None

    def need(self) -> float:
        """Seconds this study can use in all: what reaching its cap costs (its share when the cost is unknown
        yet: ``inf``); a stopped study needs what it spent."""
        if self.stopped:
            return self.spent
        if self.per_trial is None:
            return math.inf
        left = max(0, self.cap - self.finished)
        return self.spent + left * self.per_trial


@dataclass(frozen=True)
class TimeShare:
    """A study's part of the time budget: ``share`` seconds and the trial budget it affords (``trials``)."""

    share: float
    trials: int


def _worker_of(trial: FrozenTrial) -> tuple[Any, ...]:
    """The process that ran ``trial`` (host, pid, start time from its owner attrs); ``()`` for a trial that
    names none (written before owners were recorded): such trials are taken as one worker's."""
    attrs = trial.user_attrs
    if attrs.get("worker_pid") is None:
        return ()
    return (attrs.get("worker_host"), attrs.get("worker_pid"),
            attrs.get("worker_started_at", attrs.get("worker_start")))


def trial_seconds(trials: Iterable[FrozenTrial]) -> tuple[float, int]:
    """(worker seconds ``trials`` took, how many of them ran to an end), over trials with both a start and an
    end time (FAIL ones too: their time was spent).

    Per worker (:func:`_worker_of`), the union of its trials' [start, complete] intervals (K trials it ran
    together in one step count once); summed over workers, so trials run side by side on two workers count
    twice, as they took two workers' time."""
    by_worker: dict[tuple[Any, ...], list[tuple[Any, Any]]] = {}
    count = 0
    for t in trials:
        if t.datetime_start is not None and t.datetime_complete is not None:
            by_worker.setdefault(_worker_of(t), []).append((t.datetime_start, t.datetime_complete))
            count += 1
    total = 0.0
    for spans in by_worker.values():
        end = None
        for start, stop in sorted(spans):
            if end is None or start >= end:
                total += (stop - start).total_seconds()
                end = stop
            elif stop > end:
                total += (stop - end).total_seconds()
                end = stop
    return total, count


def estimated_trial_seconds(cost: Mapping[str, Any]) -> float:
    """A trial's seconds as the probe's ``cost`` record estimates them: its validation passes (``validations``,
    1 for a fixed-mode trial) of ``pairs`` pairs at ``seconds_per_pair``, plus a learnable trial's fine-tuning
    (``batches`` at ``seconds_per_batch``), plus :data:`TRIAL_OVERHEAD_S`."""
    passes = int(cost.get("validations", 1))
    tuning = float(cost.get("seconds_per_batch", 0.0)) * int(cost.get("batches", 0))
    return float(cost["seconds_per_pair"]) * int(cost["pairs"]) * passes + tuning + TRIAL_OVERHEAD_S


def study_clock(name: str, trials: Sequence[FrozenTrial], cost: Mapping[str, Any] | None, *, finished: int,
                running: int, stopped: bool, cap: int) -> StudyClock:
    """The :class:`StudyClock` of a study from its trials and its ``cost`` record (None: not measured yet)."""
    ran, count = trial_seconds(trials)
    setup = float((cost or {}).get("setup_s", 0.0))
    floor = max(1, sum(1 for t in trials if "known_point" in t.user_attrs))
    per_trial = None
    done = sum(1 for t in trials if t.datetime_complete is not None and t.state.name in ("COMPLETE", "PRUNED"))
    if done:
        per_trial = ran / count if count else None
    elif cost and cost.get("seconds_per_pair") is not None:
        per_trial = estimated_trial_seconds(cost)
    return StudyClock(name, finished, running, stopped, cap, floor, setup + ran, per_trial)


def allocate_time(budget: float, clocks: Sequence[StudyClock]) -> dict[str, TimeShare]:
    """Study name -> its share of ``budget`` seconds (worker seconds: the time budget times the workers) and
    the trial budget the share affords (see the module doc). A study whose cost is unknown gets a budget of
    one trial more than it has (at least its floor), so that a worker takes it up and measures it.

    The shares are water filling with a floor and a ceiling per study: one level L for all, each study's share
    ``min(max(L, spent), need)`` -- never less than it already spent (that time is gone), never more than it
    can use -- with L the level at which the shares sum to the budget (every study gets its need when the
    needs fit; only what it spent when even that does not), solved exactly on the piecewise-linear sum."""
    lows = [max(0.0, c.spent) for c in clocks]
    highs = [max(low, c.need()) for low, c in zip(lows, clocks)]

    def total(level: float) -> float:
        return sum(min(max(level, low), high) for low, high in zip(lows, highs))

    if not clocks:
        return {}
    if total(math.inf) <= budget:      # every need fits (an unknown need is inf and never does)
        level = math.inf
    elif total(0.0) >= budget:         # what was spent already exceeds the budget: nobody gets more
        level = 0.0
    else:                              # total() is piecewise linear between the lows and highs: solve exactly
        previous = 0.0
        for point in sorted({v for v in lows + highs if 0.0 < v < math.inf}) + [math.inf]:
            if total(point) >= budget:
                break
            previous = point
        # on (previous, point) a study's share is the level exactly when it is neither above its low nor at its high
        active = sum(1 for low, high in zip(lows, highs) if low <= previous and high >= point)
        level = previous + (budget - total(previous)) / active
    shares = {c.name: min(max(level, lo), hi) for c, lo, hi in zip(clocks, lows, highs)}
    out = {}
    for clock in clocks:
        share = shares[clock.name]
        if clock.stopped:
            trials = clock.finished
        elif clock.per_trial is None:
            trials = min(clock.cap, max(clock.floor, clock.finished + clock.running + 1))
        else:
            # (a share equal to a study's need affords exactly its cap: no float rounding below it)
            afford = math.floor(max(0.0, share - clock.spent - clock.running * clock.per_trial) / clock.per_trial
                                + 1e-9)
            trials = min(clock.cap, max(min(clock.floor, clock.cap), clock.finished + clock.running + afford))
        out[clock.name] = TimeShare(share, trials)
    return out


def choose_valid_pairs(share: float, seconds_per_pair: float, split_pairs: int, floor: int,
                       limit: int | None = None) -> int | None:
    """The validation budget that lets ``floor`` trials fit in ``share`` seconds at ``seconds_per_pair``
    (with :data:`TRIAL_OVERHEAD_S` each): None when the whole split (``split_pairs``, or ``limit``, the
    campaign's own ``valid_pairs``) fits, else that many pairs, at least :data:`MIN_VALID_PAIRS`."""
    pairs = split_pairs if limit is None else min(limit, split_pairs)
    per_trial = max(share / max(1, floor) - TRIAL_OVERHEAD_S, 0.0)
    fits = int(per_trial / seconds_per_pair) if seconds_per_pair > 0 else pairs
    if fits >= pairs:
        return limit if limit is not None and limit < split_pairs else None
    return min(pairs, max(MIN_VALID_PAIRS, fits))


def eta_seconds(clocks: Sequence[StudyClock], shares: Mapping[str, TimeShare], workers: int,
                deadline_left: float | None) -> float | None:
    """Expected wall seconds until every study has its trial budget: the remaining trials at their cost per
    trial, over ``workers``, and never past the deadline (``deadline_left`` seconds); None while a study's
    cost is unknown and no deadline bounds it."""
    total = 0.0
    for clock in clocks:
        left = max(0, shares[clock.name].trials - clock.finished) if not clock.stopped else 0
        if left and clock.per_trial is None:
            return deadline_left
        total += left * (clock.per_trial or 0.0)
    eta = total / max(1, workers)
    return eta if deadline_left is None else max(0.0, min(eta, deadline_left))
