"""search.objectives.context / spaces / objectives: cached vs uncached ranking, staged evaluation, warm start.

Real data (NELLInductive:v1, the smallest real validation split: 828 queries; FBNELL valid queries for the
stage plan) and the real fusion.pth checkpoint on the CPU.
"""
from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from are_model.checkpoint import read_state_dict
from are_model.data import load_dataset
from are_model.evaluate import build_queries, query_pairs, rank_queries, ranking_metrics
from are_model.pipeline import TextOptions
from search.objectives.context import SearchContext, get_context, stage_plan
from search.objectives.fusion import FusionObjective
from search.study.finetune import parse_budget
from search.runners.setup import open_study
from search.errors import StudyError
from search.study.spaces import SearchSpace
from search.study.spec import StudySpec, spec_from_values

optuna.logging.set_verbosity(optuna.logging.WARNING)

WEIGHTS = (0.3, 0.6)
DATASET = "NELLInductive:v1"


@pytest.fixture(scope="module")
def context(nell_context) -> SearchContext:
    return nell_context


@pytest.fixture(scope="module")
def cached(context):
    """Full-split evaluation with the cached relation side at WEIGHTS."""
    return context.evaluate("valid", WEIGHTS)


def _uncached_ranks(context: SearchContext, weights: tuple[float, ...] | None) -> torch.Tensor:
    """A fresh model's forward through rank_queries (relation side computed there, no cache)."""
    model = context.fresh_model()
    if weights is not None:
        model.use_fixed_fusion(weights)
    prepared = context.split("valid")
    return rank_queries(model, prepared.graph, prepared.queries, prepared.filters, side=None,
                        batch_size=context.batch_size)


# ------------------------------------------------------------------------------------------ cache
def test_context_is_built_once_per_process(context, data_root, text_root, cache_dir, fusion_path):
    text = TextOptions(root=str(text_root), cache_dir=str(cache_dir), download=False)
    again = get_context(DATASET, fusion_path, data_root=data_root, text=text, cache_dir=cache_dir)
    assert again is context
    assert context.relation_side("valid") is context.relation_side("valid")


def test_cached_and_uncached_give_identical_ranks(context, cached):
    mrr, ranks = cached
    uncached = _uncached_ranks(context, WEIGHTS)
    assert torch.equal(ranks, uncached.cpu())
    assert mrr == pytest.approx(ranking_metrics(uncached)["mrr"], abs=1e-12)
    assert ranks.shape == (len(context.split("valid").queries),) and 0.05 < mrr < 1


def test_fixed_softmax_weights_equal_the_learned_fusion(context):
    learned = context.model.checkpoint_fusion_weights()
    assert learned == pytest.approx((0.225, 0.775), abs=1e-3)
    fixed_mrr, fixed_ranks = context.evaluate("valid", learned)
    own = _uncached_ranks(context, None)  # fusion.pth's own learnable fusion: softmax(logits)
    assert torch.equal(fixed_ranks, own.cpu())
    assert fixed_mrr == pytest.approx(ranking_metrics(own)["mrr"], abs=1e-12)


# ---------------------------------------------------------------------------------------- stages
@pytest.fixture(scope="module")
def fbnell_valid(data_root, cache_dir):
    data = load_dataset("FBNELL", data_root, cache_dir=cache_dir, download=False).valid
    queries = build_queries(data.target_edge_index, data.target_edge_type, int(data.num_relations))
    return queries, query_pairs(queries, int(data.num_nodes))


def test_stage_plan_partitions_and_stratifies(fbnell_valid):
    queries, pairs = fbnell_valid
    total = len(pairs)
    assert total == 1435 and len(queries) == 2110  # answers that share (anchor, r') share a pair
    plan = stage_plan(queries, pairs, 4, seed=0)
    assert plan.ends == (-(-total // 8), -(-total // 4), -(-total // 2), total)
    parts = plan.stages()
    assert [p.numel() for p in parts] == [b - a for a, b in zip((0,) + plan.ends[:-1], plan.ends)]
    assert torch.equal(torch.sort(torch.cat(parts)).values, torch.arange(total))
    covered, _ = pairs.queries_of(plan.order)
    assert torch.equal(torch.sort(covered).values, torch.arange(len(queries)))

    first_query = pairs.by_pair[pairs.starts[:-1]]
    strata = queries.forward_relations[first_query] * 2 + queries.is_head[first_query].long()
    sizes = torch.bincount(strata, minlength=int(strata.max()) + 1).double()
    assert (sizes > 0).sum() > 100  # FBNELL: many relation strata, most of them small
    for end in plan.ends:
        counts = torch.bincount(strata[plan.order[:end]], minlength=sizes.numel()).double()
        expected = sizes * end / total
        assert (counts - expected).abs().max() <= 2.0, f"prefix {end} is not proportional"


def test_stage_plan_is_seeded(fbnell_valid):
    queries, pairs = fbnell_valid
    first, again = stage_plan(queries, pairs, 4, seed=3), stage_plan(queries, pairs, 4, seed=3)
    other = stage_plan(queries, pairs, 4, seed=4)
    assert torch.equal(first.order, again.order)
    assert not torch.equal(first.order, other.order)
    assert stage_plan(queries, pairs, 1).ends == (len(pairs),)
    with pytest.raises(ValueError, match="stages"):
        stage_plan(queries, pairs, 0)


def test_staged_evaluation_reports_prefixes_and_ends_on_the_full_split(context, cached):
    full_mrr, full_ranks = cached
    reports: list[tuple[int, float, bool]] = []
    mrr, ranks = context.evaluate("valid", WEIGHTS, stages=4, on_stage=lambda *r: reports.append(r))
    assert mrr == full_mrr and torch.equal(ranks, full_ranks)
    plan = context.stage_plan("valid", 4)
    assert [(s, f) for s, _, f in reports] == [(0, False), (1, False), (2, False), (3, True)]
    for (stage, value, _), end in zip(reports, plan.ends):
        so_far, _ = context.pairs("valid").queries_of(plan.order[:end])
        assert value == pytest.approx(float((1.0 / full_ranks[so_far].double()).mean()), abs=1e-12)
    assert reports[-1][1] == full_mrr
    # Another stage order batches the pairs differently: the ranks stay the same, bit for bit.
    reseeded = SearchContext.__new__(SearchContext)
    reseeded.__dict__.update(context.__dict__, stage_seed=context.stage_seed + 1, _plans={})
    mrr, ranks = reseeded.evaluate("valid", WEIGHTS, stages=4)
    assert not torch.equal(reseeded.stage_plan("valid", 4).order, plan.order)
    assert mrr == full_mrr and torch.equal(ranks, full_ranks)


def _spec(**values) -> StudySpec:
    """A validated spec of the study of DATASET (its canonical spelling)."""
    return spec_from_values({"dataset": DATASET.lower(), "checkpoint": "fusion", **values}, "test")


def test_a_pruned_trial_stops_after_its_first_stage(context):  # reported as step 1 (steps count from 1)
    spec = _spec(space={"similarity_enhancer_weight": 0.0, "prompt_enhancer_weight": 0.0})
    seen: list[int] = []

    def report(trial, step, value, final):
        seen.append(step)
        raise optuna.TrialPruned("test")

    study = optuna.create_study(direction="maximize")
    study.optimize(FusionObjective(spec, context, report=report), n_trials=1)
    trial = study.trials[0]
    assert seen == [1] and trial.state == TrialState.PRUNED
    assert trial.user_attrs["settings"]["similarity_enhancer_weight"] == 0.0



def test_a_repeated_fixed_setting_reuses_the_completed_value(context, cached):
    spec = _spec()
    study = optuna.create_study(direction="maximize")
    for _ in range(2):
        study.enqueue_trial(dict(zip(("similarity_enhancer_weight", "prompt_enhancer_weight"), WEIGHTS)))
    evaluated: list[int] = []
    objective = FusionObjective(spec, context, report=lambda trial, step, value, final: evaluated.append(trial.number))
    study.optimize(objective, n_trials=2)
    first, second = study.trials
    assert first.value == second.value == cached[0]
    assert second.user_attrs["repeat_of"] == 0 and "repeat_of" not in first.user_attrs
    assert evaluated == [0, 0, 0, 0]  # four stages of trial 0; the repeat ranked nothing

# ---------------------------------------------------------------------------------------- spaces
def test_spaces_bounds_and_settings(tmp_path, fusion_path):
    """Trials of a study opened as the runners open it (its sampler, its stored ranges) stay in the spec's bounds."""
    url = f"sqlite:///{tmp_path / 'spaces.db'}"
    fixed_spec = _spec(sampler="random", space={"prompt_enhancer_weight": [0.0, 0.5]})
    learnable_spec = _spec(mode="learnable", sampler="random", space={"fusion_weight_decay": [0.0, 0.1]})
    fixed_study, _ = open_study(fixed_spec, url, fusion_path)
    learnable_study, _ = open_study(learnable_spec, url, fusion_path)
    fixed, learnable = SearchSpace("fixed", fixed_spec.space), SearchSpace("learnable", learnable_spec.space)
    # known points outside the bounds are left out: fusion.pth's own 0.225/0.775 and 0.2/0.8 exceed 0.5
    assert [t.user_attrs["known_point"] for t in fixed_study.get_trials(states=(TrialState.WAITING,))] == [
        "no enhancement"]
    for _ in range(6):  # the known points first, then the sampler's proposals
        trial = fixed_study.ask()
        settings = fixed.suggest(trial)
        assert settings["use_learnable_fusion"] is False
        assert 0 <= settings["similarity_enhancer_weight"] <= 1 and 0 <= settings["prompt_enhancer_weight"] <= 0.5
        trial = learnable_study.ask()
        settings = learnable.suggest(trial)
        w = settings["similarity_enhancer_weight"]
        assert settings["prompt_enhancer_weight"] == pytest.approx(1 - w) and 0.01 <= w <= 0.99
        assert torch.softmax(torch.tensor(settings["fusion_init_logits"]), 0)[0].item() == pytest.approx(w, abs=1e-6)
        assert 1e-4 <= settings["fusion_lr"] <= 0.1 and 0 <= settings["fusion_weight_decay"] <= 0.1
        assert settings["body_lr"] is None or 1e-6 <= settings["body_lr"] <= 1e-3
        assert trial.params["body"] == ("frozen" if settings["body_lr"] is None else "trained")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    frozen = SearchSpace("learnable", {"body_lr": "frozen", "fusion_lr": 0.01})
    settings = frozen.suggest(study.ask())
    assert settings["body_lr"] is None and settings["fusion_lr"] == 0.01 and settings["fusion_weight_decay"] == 0.0

    for mode, space, key in [("fixed", {"fusion_lr": [1e-3, 1e-2]}, "'fusion_lr'"),
                             ("learnable", {"initial_similarity_weight": [0.0, 1.0]}, "'initial_similarity_weight'"),
                             ("learnable", {"fusion_lr": [0.0, 0.1]}, "'fusion_lr'"),
                             ("fixed", {"similarity_enhancer_weight": "frozen"}, "'similarity_enhancer_weight'"),
                             ("fixed", {"prompt_enhancer_weight": [1, 0]}, "'prompt_enhancer_weight'")]:
        with pytest.raises(StudyError, match=key) as info:
            SearchSpace(mode, space)
        assert "\n" not in str(info.value)
    with pytest.raises(StudyError, match="'epochs'"):
        parse_budget("fixed", {"epochs": 2})


def test_known_points():
    fixed = SearchSpace("fixed")
    assert fixed.known_points((1.0, 0.0)) == [  # ARE-V3/V5: the similarity enhancer alone
        ("checkpoint", {"similarity_enhancer_weight": 1.0, "prompt_enhancer_weight": 0.0}),
        ("0.2/0.8", {"similarity_enhancer_weight": 0.2, "prompt_enhancer_weight": 0.8}),
        ("no enhancement", {"similarity_enhancer_weight": 0.0, "prompt_enhancer_weight": 0.0}),
    ]
    assert [n for n, _ in fixed.known_points((0.2, 0.8))] == ["checkpoint", "no enhancement"]
    learnable = SearchSpace("learnable").known_points((1.0, 0.0))
    assert learnable == [
        ("checkpoint", {"initial_similarity_weight": 0.99, "fusion_lr": 5e-3, "body": "frozen"}),
        ("0.2/0.8", {"initial_similarity_weight": 0.2, "fusion_lr": 5e-3, "body": "frozen"}),
    ]


def test_warm_start_enqueued_once(tmp_path, fusion_path, checkpoint_root):
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    spec = _spec(mode="fixed")
    study, created = open_study(spec, url, fusion_path)
    assert created and study.study_name == f"{DATASET}/fixed" and study.metric_names == ["validation MRR"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["known_point"] for t in waiting] == ["checkpoint", "0.2/0.8", "no enhancement"]
    assert waiting[0].system_attrs["fixed_params"]["similarity_enhancer_weight"] == pytest.approx(0.22502, abs=1e-5)
    again, created = open_study(spec, url, fusion_path)  # resumed: nothing new
    assert not created and len(again.get_trials()) == 3

    learnable = spec_from_values({"dataset": "metafam", "checkpoint": "ARE-V3", "mode": "learnable"}, "test")
    study, created = open_study(learnable, url, checkpoint_root / "ARE-V3.pth")
    assert created and [t.system_attrs["fixed_params"] for t in study.get_trials()] == [
        {"initial_similarity_weight": 0.99, "fusion_lr": 5e-3, "body": "frozen"},
        {"initial_similarity_weight": 0.2, "fusion_lr": 5e-3, "body": "frozen"}]
    assert len(open_study(learnable, url, checkpoint_root / "ARE-V3.pth")[0].get_trials()) == 2


# ------------------------------------------------------------------------------------- learnable
def test_learnable_trial_fine_tunes_a_fresh_copy(context):
    spec = _spec(mode="learnable", space={"initial_similarity_weight": 0.5, "fusion_lr": 0.05, "body_lr": "frozen"},
                 budget={"epochs": 2, "batches_per_epoch": 2, "batch_size": 4, "negatives": 8})
    study = optuna.create_study(direction="maximize")
    study.optimize(FusionObjective(spec, context), n_trials=1)
    trial = study.trials[0]
    settings = trial.user_attrs["settings"]
    assert trial.state == TrialState.COMPLETE and sorted(trial.intermediate_values) == [1, 2]
    assert settings["use_learnable_fusion"] and settings["body_lr"] is None
    assert settings["split"] == "valid" and settings["dataset"] == context.dataset
    assert settings["fine_tune"]["epochs"] == 2 and settings["fusion_init_logits"][0] == settings["fusion_init_logits"][1]
    learned = settings["learned_weights"]
    assert learned != pytest.approx([0.5, 0.5], abs=1e-4) and sum(learned) == pytest.approx(1.0)
    value, _ = context.evaluate("valid", learned)
    assert trial.value == pytest.approx(value, abs=1e-4)
    # the context's own model (whose relation side is cached) is untouched
    checkpoint = read_state_dict(context.checkpoint_path)
    assert all(torch.equal(value.cpu(), checkpoint[key]) for key, value in context.model.state_dict().items())
