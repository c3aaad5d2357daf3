"""Learnable budgets that mean something (issue 18 item 2): the official per-dataset fine-tuning budgets.

* :data:`search.study.finetune.OFFICIAL_FINETUNING` is ULTRA's ``default_finetuning_config``: the test reads
  the official ``script/run_many.py`` as data (its syntax tree, nothing of it runs) and compares;
* a learnable study's budget defaults to its dataset's official one, scaled only by ``budget_scale`` and the
  spec's ``budget``; a study made before (its stored spec has no ``budget_scale``) keeps the 2 x 50 it ran;
* the budget that ran is written with each trial and said in the report.
"""
from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest

from are_model.data import DATASETS
from search.errors import StudyError
from search.reports.study import _budget_text
from search.reports.study_text import summary_markdown
from search.study.finetune import (FALLBACK_BATCHES, FALLBACK_EPOCHS, OFFICIAL_FINETUNING, official_budget,
                                   official_key, parse_budget)
from search.study.settings import TrialSettings
from search.study.spec import SPEC_ATTR, spec_from_values, stored_spec

RUN_MANY = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ULTRA" / "script" / "run_many.py"


def _official_table() -> dict[str, tuple[int, int | None]]:
    """``default_finetuning_config`` of the official run_many.py, read as a literal ('null' -> None)."""
    tree = ast.parse(RUN_MANY.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["default_finetuning_config"]:
            table = ast.literal_eval(node.value)
            return {name: (epochs, None if batches == "null" else batches) for name, (epochs, batches) in table.items()}
    raise AssertionError(f"{RUN_MANY}: no default_finetuning_config")


@pytest.mark.skipif(not RUN_MANY.is_file(), reason=f"the official ULTRA code is not at {RUN_MANY}")
def test_the_table_is_run_many_s():
    official = _official_table()
    assert len(official) == 32 and official["Metafam"] == (3, None) and official["CoDExSmall"] == (1, 4000)
    assert OFFICIAL_FINETUNING == official


def test_every_catalogued_graph_has_an_official_budget():
    missing = [name for name in DATASETS if official_key(name) not in OFFICIAL_FINETUNING]
    assert missing == []
    assert official_budget("ILPC2022:small") == (3, None) and official_budget("ILPC2022:large") == (1, 1000)
    assert official_budget("NELLInductive:v3") == (3, None) and official_budget("HM:indigo") == (1, 100)
    assert official_budget("NoSuchGraph") is None and official_budget(None) is None


@pytest.mark.parametrize("mode", ["learnable", "learnable_free"])
def test_learnable_budgets_default_to_the_official_ones(mode):
    metafam = spec_from_values({"dataset": "metafam", "checkpoint": "fusion", "mode": mode}, "here")
    budget = metafam.fine_tune_budget()
    assert (budget.epochs, budget.batches_per_epoch, budget.scale) == (3, None, 1.0)
    assert budget.batches(13_821) == 864                 # Metafam's 13 821 training triples: a full pass of 16
    assert budget.steps(mode) == 3 and budget.for_mode(mode)["epochs"] == 3
    assert budget.describe(13_821) == ("3 epochs x 864 batches (batches of 16 triples, 64 negatives each): "
                                       "Metafam:Metafam's official budget (run_many.py: 3 epochs x a full pass "
                                       "= 864 batches)")
    scaled = spec_from_values({"dataset": "metafam", "checkpoint": "fusion", "mode": mode, "budget_scale": 0.05},
                              "here").fine_tune_budget()
    assert (scaled.epochs, scaled.batches(13_821)) == (3, 43) and "x budget_scale 0.05" in scaled.describe(13_821)
    codex = parse_budget(mode, {}, "CoDExSmall", 0.001)
    assert (codex.epochs, codex.batches(32_888)) == (1, 4)   # 0.001 x 4000 batches (the table's, not a full pass)
    tiny = parse_budget(mode, {}, "HM:1k", 0.001)
    assert tiny.batches(10) == 1                              # never below one batch
    # the spec's budget is used as given, whatever the scale; the old default is one such budget
    given = parse_budget(mode, {"epochs": FALLBACK_EPOCHS, "batches_per_epoch": FALLBACK_BATCHES}, "Metafam:Metafam",
                         0.5)
    assert (given.epochs, given.batches(13_821)) == (2, 50)
    assert given.describe(13_821).endswith("Metafam:Metafam's official budget (run_many.py: 3 epochs x a full pass "
                                           "= 864 batches), the spec's budget sets epochs, batches_per_epoch")
    fixed = parse_budget("fixed", {}, "Metafam:Metafam")
    assert fixed.for_mode("fixed") == {"stages": 4} and fixed.steps("fixed") == 4


@pytest.mark.parametrize("values, words", [
    ({"mode": "learnable", "budget_scale": 0}, "key 'budget_scale': expected a number in (0, 1], got 0"),
    ({"mode": "learnable", "budget_scale": 1.5}, "key 'budget_scale': expected a number in (0, 1], got 1.5"),
    ({"mode": "learnable", "budget_scale": "half"}, "key 'budget_scale': expected a number in (0, 1], got 'half'"),
    ({"mode": "fixed", "budget_scale": 0.5}, "key 'budget_scale': scales the fine-tuning budget of the learnable "
                                             "modes, not fixed mode (got 0.5)"),
])
def test_a_bad_budget_scale_is_one_line(values, words):
    with pytest.raises(StudyError) as info:
        spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", **values}, "studies/x.yaml")
    assert str(info.value) == f"studies/x.yaml: {words}"


def test_a_study_made_before_the_official_budgets_keeps_its_budget():
    spec = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable",
                             "budget_scale": 0.25}, "here")
    study = optuna.create_study(study_name=str(spec.name), direction="maximize")
    study.set_user_attr(SPEC_ATTR, spec.to_attr())
    assert stored_spec(study) == spec and stored_spec(study).fine_tune_budget().epochs == 3
    old = {key: value for key, value in spec.to_attr().items() if key != "budget_scale"}
    study.set_user_attr(SPEC_ATTR, {**old, "budget": {"negatives": 8}})
    kept = stored_spec(study)
    assert kept.budget == {"epochs": 2, "batches_per_epoch": 50, "negatives": 8}
    assert kept.fine_tune_budget().batches(13_821) == 50
    study.set_user_attr(SPEC_ATTR, {**old, "mode": "fixed"})  # a fixed study has no fine-tuning budget to keep
    assert stored_spec(study).budget == {}


def test_the_report_says_which_budget_ran():
    spec = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable_free",
                             "budget_scale": 0.05}, "here")
    ran = "3 epochs x 43 batches (batches of 16 triples, 64 negatives each): the record of the trial"
    best = TrialSettings(True, (0.2, 0.8), fusion_lr=0.01, fine_tune={"epochs": 3, "budget": ran}, free_fusion=True)
    assert _budget_text(spec, best) == ran                                   # the trial's own record first
    unrecorded = TrialSettings(True, (0.2, 0.8), fusion_lr=0.01)
    assert _budget_text(spec, unrecorded) == spec.fine_tune_budget().describe()
    assert "0.05 of a full pass" in _budget_text(spec, unrecorded)
    fixed = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion"}, "here")
    assert _budget_text(fixed, unrecorded) is None
    summary = {"study": "Metafam:Metafam/learnable_free", "version": "x", "dataset": "Metafam:Metafam",
               "mode": "learnable_free", "checkpoint": "fusion.pth", "profile": "are-fusion", "encoder": "minilm",
               "sampler": "gp", "pruner": "paired", "seed": 0, "space_text": "", "trials": {"COMPLETE": 1},
               "best": {"trial": 0, "value": 0.5}, "bootstrap": {"seed": 0, "confidence": 0.95, "n_boot": 10},
               "settings": [{"label": "best", "weights": [0.2, 0.8], "valid_mrr": 0.5, "valid_source": "trial 0",
                             "diff_vs_best": None, "test": {"mrr": 0.5, "mr": 3.0, "hits@1": 0.4, "hits@3": 0.5,
                                                             "hits@10": 0.6, "num_queries": 10}}],
               "plots": [], "omitted": {}, "budget_text": ran}
    assert f"| fine-tuning budget | {ran} |" in summary_markdown(summary).splitlines()
    assert "fine-tuning budget" not in summary_markdown({**summary, "budget_text": None})


def test_a_study_is_not_continued_with_another_fine_tuning_budget():
    from search.study.prepare import check_compatible

    old_attr = {key: value for key, value in spec_from_values(
        {"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable"}, "here").to_attr().items()
        if key != "budget_scale"}                                   # made before the official budgets: 2 x 50
    study = optuna.create_study(study_name="Metafam:Metafam/learnable", direction="maximize")
    study.set_user_attr(SPEC_ATTR, old_attr)
    official = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable"}, "here")
    assert check_compatible(study, official, {}) == []             # nothing finished yet: any budget
    study.add_trial(optuna.trial.create_trial(value=0.5))
    with pytest.raises(StudyError) as info:
        check_compatible(study, official, {})
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "study Metafam:Metafam/learnable fine-tuned its trials for 2 epochs x 50 batches (batches of 16 triples, "
        "64 negatives each): Metafam:Metafam's official budget (run_many.py: 3 epochs x a full pass), the spec's "
        "budget sets epochs, batches_per_epoch, not 3 epochs x a full pass")
    same = spec_from_values({"dataset": "Metafam", "checkpoint": "fusion", "mode": "learnable",
                             "budget": {"epochs": 2, "batches_per_epoch": 50}, "budget_scale": 0.5}, "here")
    assert check_compatible(study, same, {}) == []                  # the same batches (a scale on given keys: none)


def test_a_run_says_the_fine_tuning_budget_before_its_first_trial():
    from search.runners.progress import header

    spec = spec_from_values({"dataset": "FB15k237Inductive:v1", "checkpoint": "fusion", "mode": "learnable_free",
                             "trials": 3, "budget_scale": 0.1}, "here")
    study = optuna.create_study(study_name=str(spec.name), direction="maximize")
    assert ("; fine-tuning budget per trial: 1 epoch x 0.1 of a full pass (batches of 16 triples, 64 negatives "
            "each): FB15k237Inductive:v1's official budget (run_many.py: 1 epoch x a full pass), batches per epoch "
            "x budget_scale 0.1;") in header(study, spec)
    fixed = spec_from_values({"dataset": "FB15k237Inductive:v1", "checkpoint": "fusion"}, "here")
    assert "fine-tuning" not in header(study, fixed)
