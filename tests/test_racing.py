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


# ------------------------------------------------------------------------------------ on real data
# NELLInductive:v1 with fusion.pth: 624 validation pairs, 828 queries.

import optuna  # noqa: E402
import torch  # noqa: E402

import search  # noqa: E402
from search.errors import StudyError  # noqa: E402
from search.objectives.context import stage_plan  # noqa: E402
from search.options import LoadOptions  # noqa: E402
from search.study.ranks import RANKS_ATTR, decode_ranks  # noqa: E402

DATASET = "NELLInductive:v1"


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


def test_a_validation_sample_is_one_stratified_prefix_whatever_the_stages(nell_context):
    queries, pairs = nell_context.split("valid").queries, nell_context.pairs("valid")
    whole = stage_plan(queries, pairs, 4, seed=0).order
    for stages in (1, 4, 7):
        plan = stage_plan(queries, pairs, stages, seed=0, limit=100)
        assert torch.equal(plan.order, whole[:100]) and plan.ends[-1] == 100
    assert torch.equal(nell_context.stage_plan("valid", 4, 100).order, whole[:100])
    # stratified: every (relation, direction) stratum holds its share of the 624 pairs, within 2 pairs
    first = pairs.by_pair[pairs.starts[:-1]]
    strata = queries.forward_relations[first] * 2 + queries.is_head[first].long()
    in_sample = torch.bincount(strata[whole[:100]], minlength=int(strata.max()) + 1).double()
    expected = torch.bincount(strata, minlength=int(strata.max()) + 1).double() * 100 / len(pairs)
    assert float((in_sample - expected).abs().max()) <= 2.0
    assert nell_context.sample_size("valid", 100)[0] == 100
    assert nell_context.sample_size("valid", None) == (len(pairs), len(queries))


def test_a_study_on_a_sample_ranks_the_same_queries_in_every_trial_and_resume(tmp_path, options):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = search.launch(dataset=DATASET, checkpoint="fusion", trials=3, valid_pairs=64, pruner="paired",
                          storage=url, options=options)
    assert first.counts.get("COMPLETE", 0) + first.counts.get("PRUNED", 0) == 3
    search.resume(f"{DATASET}/fixed", trials=4, storage=url, options=options)
    study = optuna.load_study(study_name=first.study, storage=url)
    assert study.user_attrs["spec"]["valid_pairs"] == 64
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    masks = [decode_ranks(t.user_attrs[RANKS_ATTR]) > 0 for t in complete]
    assert len(masks) >= 2 and all((mask == masks[0]).all() for mask in masks)
    for trial in complete:                       # a trial's value is the MRR of exactly those queries
        ranks = decode_ranks(trial.user_attrs[RANKS_ATTR])
        assert trial.value == pytest.approx(float((1.0 / ranks[ranks > 0]).mean()), abs=1e-12)
    assert 64 <= int(masks[0].sum()) < 828
    with pytest.raises(StudyError, match="validation sample of 64 pairs, not a validation sample of 32 pairs: .*; launch it "
                                         "with the same validation budget \\(--valid-pairs 64\\) or use another --storage$"):
        search.launch(dataset=DATASET, checkpoint="fusion", trials=5, valid_pairs=32, storage=url, options=options)


def test_the_race_stops_a_clearly_worse_known_point_and_says_why(tmp_path, options, nell_context):
    """The known points run in order: the checkpoint's weights (the first incumbent), 0.2/0.8, then 0/0, which
    ranks far worse; the race stops it early, and its whole-split MRR confirms the decision."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    search.launch(dataset=DATASET, checkpoint="fusion", trials=3, pruner="paired", no_stop=True, storage=url,
                  options=options)
    study = optuna.load_study(study_name=f"{DATASET}/fixed", storage=url)
    trials = study.get_trials()
    zero = next(t for t in trials if t.params == {"similarity_enhancer_weight": 0.0, "prompt_enhancer_weight": 0.0})
    assert zero.state == optuna.trial.TrialState.PRUNED
    race = zero.user_attrs["race"]
    assert race["prune"] and race["delta"] < -0.002 and race["p"] < race["threshold"] and race["queries"] < 828
    full, _ = nell_context.evaluate("valid", [0.0, 0.0])
    best = max(t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert full < best - 0.002                    # the prune was right on the whole split


def test_a_learnable_trial_is_raced_after_each_epoch_but_the_last(tmp_path, options):
    """Learnable mode races through its per-epoch validation: the known points (the checkpoint's 0.225/0.775 and
    0.2/0.8 as initial weights) run to the end and keep their ranks; a start at 0.99/0.01 (fixed 0.99/0.01 ranks
    0.301 on NELLInductive:v1's validation against 0.412 for the checkpoint's weights) is stopped after its first
    of two epochs, and says why."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = tmp_path / "learnable.yaml"
    spec.write_text(f"dataset: {DATASET}\ncheckpoint: fusion\nmode: learnable\ntrials: 2\npruner: paired\n"
                    "valid_pairs: 200\nbudget: {epochs: 2, batches_per_epoch: 1}\n")
    search.launch(spec, no_stop=True, storage=url, options=options)
    study = optuna.load_study(study_name=f"{DATASET}/learnable", storage=url)
    known = study.get_trials()
    assert [t.state for t in known] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(RANKS_ATTR in t.user_attrs and len(t.intermediate_values) == 2 for t in known)
    (share,) = [name for name in known[0].params if name.startswith("initial_")]
    study.enqueue_trial({**known[0].params, share: 0.99})
    search.resume(f"{DATASET}/learnable", trials=3, no_stop=True, storage=url, options=options)
    raced = optuna.load_study(study_name=f"{DATASET}/learnable", storage=url).get_trials()[2]
    assert raced.params[share] == 0.99 and raced.state == optuna.trial.TrialState.PRUNED
    assert list(raced.intermediate_values) == [1]  # stopped after epoch 1 of 2
    race = raced.user_attrs["race"]
    assert race["prune"] and race["delta"] < -0.002 and race["incumbent"] in (0, 1)
