"""Several fusion settings per entity pass: K-batched ranks equal one-by-one ranks bit for bit, in
rank_queries, in staged evaluation (SearchContext.evaluate_many), in FusionObjective.fixed_many and in a
local study with settings_per_pass (search.runners.step).

Real data: NELLInductive:v1 validation split (828 queries, 624 distinct (anchor, r') pairs) and the real
fusion.pth checkpoint on the CPU.
"""
from __future__ import annotations

import os

import optuna
import pytest
import torch
from optuna.trial import TrialState

from are_model.evaluate import rank_queries
from search.objectives.context import SearchContext
from search.errors import StudyError
from search.objectives.fusion import FusionObjective
from search.study.finetune import parse_budget
from search.options import LoadOptions
from search.runners import WorkerSetup, run_local
from search.study.spec import spec_from_values
from search.storage import StorageURL, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "NELLInductive:v1"
#: Four settings, the 0/0 point and a large w_prompt among them, so that the ranks differ between them.
SETTINGS = torch.tensor([[0.3, 0.6], [0.0, 0.0], [1.0, 2.5], [0.2, 0.8]])


@pytest.fixture(scope="module")
def context(nell_context) -> SearchContext:
    return nell_context


def _rank(context: SearchContext, weights: torch.Tensor, **kwargs) -> torch.Tensor:
    prepared = context.split("valid")
    kwargs.setdefault("batch_size", context.batch_size)
    return rank_queries(context.model, prepared.graph, prepared.queries, prepared.filters,
                        side=context.relation_side("valid"), weights=weights, pairs=context.pairs("valid"), **kwargs)


@pytest.fixture(scope="module")
def one_by_one(context) -> torch.Tensor:
    """Full-split ranks [4, Q] of SETTINGS, one rank_queries call per setting."""
    return torch.stack([_rank(context, weights) for weights in SETTINGS])


def test_the_settings_rank_differently(one_by_one):
    """Otherwise the comparisons below could not tell one setting's row from another's."""
    assert all(not torch.equal(one_by_one[k], one_by_one[j]) for k in range(4) for j in range(k))
    assert bool((one_by_one > 0).all())


@pytest.mark.parametrize("count", [2, 3, 4])
def test_k_batched_ranks_equal_one_by_one_ranks_bit_for_bit(context, one_by_one, count):
    """K = 3 does not divide the CPU batch of 16 rows: 5 pairs x 3 settings and one padded row a pass."""
    batched = _rank(context, SETTINGS[:count])
    assert batched.shape == (count, one_by_one.shape[1])
    assert torch.equal(batched, one_by_one[:count])


def test_k_batched_stages_equal_one_by_one(context, one_by_one):
    """A stage's pairs (a seeded, unsorted subset) ranked for 3 settings: the ranks of the whole split
    there, 0 elsewhere; the stages together give the whole split."""
    plan = context.stage_plan("valid", 3)
    total = torch.zeros(3, one_by_one.shape[1], dtype=torch.long)
    for stage in plan.stages():
        batched = _rank(context, SETTINGS[1:], select=stage)
        ranked = batched[0] > 0
        assert bool((batched[:, ranked] > 0).all()) and bool((batched[:, ~ranked] == 0).all())
        assert torch.equal(batched[:, ranked], one_by_one[1:, ranked])
        total += batched
    assert torch.equal(total, one_by_one[1:])


def test_more_settings_than_rows_are_ranked_in_groups(context):
    """Five settings with a batch of 2 rows: ranked 2, 2 and 1 at a time, still as one by one."""
    select = context.stage_plan("valid", 4).stages()[0][:9]
    settings = torch.cat([SETTINGS, torch.tensor([[0.5, 0.5]])])
    batched = _rank(context, settings, batch_size=2, select=select)
    alone = torch.stack([_rank(context, weights, batch_size=2, select=select) for weights in settings])
    assert torch.equal(batched, alone)


def test_one_setting_as_a_row_equals_the_plain_call(context, one_by_one):
    assert torch.equal(_rank(context, SETTINGS[:1]), one_by_one[:1])


@pytest.mark.parametrize("shape", [(3,), (2, 3), (0, 2), (1, 2, 2)])
def test_weights_of_another_shape_are_refused(context, shape):
    with pytest.raises(ValueError, match=r"\[2\] or \[K, 2\]"):
        _rank(context, torch.zeros(shape))


# ------------------------------------------------------------------------------ staged, K at once
def _staged_mrr(context: SearchContext, ranks: torch.Tensor, stages: int, upto: int) -> float:
    """The MRR `evaluate` reports after stage ``upto`` of ``stages``, from a setting's full-split ranks [Q]."""
    plan, pairs = context.stage_plan("valid", stages), context.pairs("valid")
    index, _ = pairs.queries_of(plan.order[:plan.ends[upto]])
    ranked = torch.zeros_like(ranks)
    ranked[index] = ranks[index]
    return float((1.0 / ranked[ranked > 0].double()).mean())


def test_evaluate_many_drops_settings_and_keeps_the_others_bit_for_bit(context, one_by_one):
    seen = []

    def on_stage(stage, active, mrrs, final):
        seen.append((stage, list(active), final))
        return [1] if stage == 0 else []

    mrrs, ranks = context.evaluate_many("valid", SETTINGS[:3], stages=3, on_stage=on_stage)
    assert seen == [(0, [0, 1, 2], False), (1, [0, 2], False), (2, [0, 2], True)]
    for k in (0, 2):  # ran to the end: the full-split ranks and MRR of evaluating the setting alone
        assert torch.equal(ranks[k], one_by_one[k])
        assert mrrs[k] == _staged_mrr(context, one_by_one[k], 3, 2)
    stage0 = ranks[1] > 0  # dropped after stage 0: that stage's ranks, 0 elsewhere
    assert torch.equal(ranks[1][stage0], one_by_one[1][stage0]) and int(stage0.sum()) < ranks.shape[1]
    assert mrrs[1] == _staged_mrr(context, one_by_one[1], 3, 0)


def _mrr(ranks: torch.Tensor) -> float:
    return float((1.0 / ranks[ranks > 0].double()).mean())


def test_fixed_many_reports_and_prunes_each_trial_on_its_own(context, one_by_one):
    """Four trials: one repeats a completed setting, one is pruned at step 1, two run to the end with
    the values and per-stage reports of their settings evaluated alone."""
    spec = spec_from_values({"dataset": DATASET.lower(), "checkpoint": "fusion", "mode": "fixed"}, "test")
    objective = FusionObjective(spec, context, report=None)
    study = optuna.create_study(direction="maximize")
    names = ("similarity_enhancer_weight", "prompt_enhancer_weight")
    study.add_trial(optuna.trial.create_trial(
        params=dict(zip(names, SETTINGS[3].tolist())), value=0.5,
        distributions={name: optuna.distributions.FloatDistribution(0.0, 4.0) for name in names}))
    for k in (0, 1, 2, 3):
        study.enqueue_trial(dict(zip(names, SETTINGS[k].tolist())))
    trials = [study.ask() for _ in range(4)]
    reports: dict[int, list[tuple[int, float]]] = {t.number: [] for t in trials}

    def report(trial, step, value, final):
        reports[trial.number].append((step, value))
        if trial.number == 2:  # SETTINGS[1]
            raise optuna.TrialPruned("test")

    objective.report = report
    outcomes = objective.fixed_many([(trial, objective.suggest(trial)) for trial in trials])
    assert outcomes[0] == _mrr(one_by_one[0]) and outcomes[2] == _mrr(one_by_one[2])
    assert isinstance(outcomes[1], optuna.TrialPruned)
    assert outcomes[3] == 0.5 and trials[3].user_attrs["repeat_of"] == 0  # SETTINGS[3]: nothing ranked
    stages = objective.budget.stages
    assert reports[2] == [(1, _staged_mrr(context, one_by_one[1], stages, 0))]
    for number, k in ((1, 0), (3, 2)):
        assert reports[number] == [(s + 1, _staged_mrr(context, one_by_one[k], stages, s)) for s in range(stages)]
    assert reports[4] == []


# ------------------------------------------------------------------------------------ the runner
class _PruneOddTrials(optuna.pruners.BasePruner):
    """Prunes every odd-numbered trial at its first report: a pruning decision known in advance."""

    def prune(self, study, trial) -> bool:
        return trial.number % 2 == 1


@pytest.fixture
def setup(data_root, text_root, checkpoint_root, cache_dir) -> WorkerSetup:
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True, device="cpu")
    return WorkerSetup(str(checkpoint_root / "fusion.pth"), options, device="cpu")


def test_a_study_with_four_settings_per_pass(tmp_path, setup, monkeypatch):
    """Six trials, four and then two at a time: the exact budget, every complete trial's value and every
    report those of its weights evaluated one by one, the odd trials pruned at their first stage."""
    import search.runners.setup as runners

    monkeypatch.setattr(runners, "make_pruner", lambda name: _PruneOddTrials())
    spec = spec_from_values({"dataset": DATASET.lower(), "checkpoint": "fusion", "mode": "fixed", "trials": 6,
                             "settings_per_pass": 4}, "test")
    url = StorageURL.parse(f"sqlite:///{tmp_path / 'k.db'}")
    study = run_local(spec, url, setup, show_progress=False)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED] * 3
    assert trials[3].datetime_start < trials[0].datetime_complete  # the first four ran together
    assert trials[4].datetime_start > trials[3].datetime_complete
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6
    assert sorted(t.user_attrs["known_point"] for t in trials[:3]) == ["0.2/0.8", "checkpoint", "no enhancement"]
    context = setup.context(spec.dataset, spec.seed)
    stages = parse_budget("fixed", spec.budget).stages
    for trial in trials:
        weights = (trial.params["similarity_enhancer_weight"], trial.params["prompt_enhancer_weight"])
        assert trial.user_attrs["worker_pid"] == os.getpid() and trial.user_attrs["settings"]["split"] == "valid"
        alone: list[float] = []

        def record(stage, value, final, pruned=trial.state == TrialState.PRUNED):
            alone.append(value)
            if pruned:
                raise optuna.TrialPruned("stop after the first stage, as the study did")

        if trial.state == TrialState.COMPLETE:
            mrr, _ = context.evaluate("valid", weights, stages=stages, on_stage=record)
            assert trial.value == mrr
        else:
            with pytest.raises(optuna.TrialPruned):
                context.evaluate("valid", weights, stages=stages, on_stage=record)
        assert [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)] == alone


def test_ctrl_c_in_a_pass_requeues_every_trial_of_it(tmp_path, setup, monkeypatch):
    """KeyboardInterrupt while the pass runs: its trials are failed and their settings queued again."""
    def interrupted(self, trials):
        raise KeyboardInterrupt

    monkeypatch.setattr(FusionObjective, "fixed_many", interrupted)
    spec = spec_from_values({"dataset": DATASET.lower(), "checkpoint": "fusion", "mode": "fixed", "trials": 8,
                             "settings_per_pass": 2}, "test")
    url = StorageURL.parse(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(KeyboardInterrupt):
        run_local(spec, url, setup, show_progress=False)
    study = optuna.load_study(study_name=str(spec.name), storage=open_storage(url, read_only=True))
    trials = study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    retries = [t for t in trials if t.state == TrialState.WAITING and "retry_of" in t.user_attrs]
    assert [t.number for t in failed] == [0, 1] and [t.user_attrs["retry_of"] for t in retries] == [0, 1]
    assert [t.params for t in failed] == [t.system_attrs["fixed_params"] for t in retries]
    assert not [t for t in trials if t.state == TrialState.RUNNING]


# --------------------------------------------------------------------------------- spec and flag
def test_settings_per_pass_key_and_flag():
    values = {"dataset": DATASET.lower(), "checkpoint": "fusion"}
    assert spec_from_values(values, "test").settings_per_pass == 1
    assert spec_from_values({**values, "settings_per_pass": 4}, "test").settings_per_pass == 4
    with pytest.raises(StudyError, match="settings_per_pass"):
        spec_from_values({**values, "settings_per_pass": 0}, "test")
    with pytest.raises(StudyError, match="fixed mode only"):
        spec_from_values({**values, "mode": "learnable", "settings_per_pass": 2}, "test")
    from search.cli import build_parser
    from search.cli.common import run_options

    for command in (["launch", "--dataset", "metafam", "--checkpoint", "fusion"], ["resume", "Metafam/fixed"]):
        args = build_parser().parse_args(command + ["--settings-per-pass", "4"])
        assert run_options(args)["settings_per_pass"] == 4
