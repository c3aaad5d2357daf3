"""search.flags.export: best trial -> flags.yaml, from real Optuna studies in a temporary SQLite file.

The file edit itself (every YAML shape, refusals) is tested in test_yaml_edit.py; here: which trial
and which values are exported, the comment, and export_all's check-everything-then-write contract.
"""
from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import yaml as pyyaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.errors import EXIT_NO_COMPLETE_TRIAL, FlagsError, NoCompleteTrialError, StudyError
from search.flags.export import (
    FLAG_KEYS,
    ExportAllResult,
    ExportedFlags,
    best_trial,
    export_all,
    export_study,
    flags_from_settings,
)
from search.study.settings import TrialSettings
from search.flags.yaml_edit import COMMENT_MARKER

optuna.logging.set_verbosity(optuna.logging.WARNING)
import search.flags.export as export_module

NOW = "2026-01-02T03:04:05Z"

# The shape of the spec's section 8 table, as a user's file: comments, blank lines, quoted
# strings, `True`, flow and block lists, a nested mapping, paths, keys the export must not touch.
SAMPLE = """\
# flags.yaml -- read by ultra/parse.load_flags at import time
run: EnhancedUltra        # ultra | semma | EnhancedUltra
LLM: gpt4o
rg2_embedding: combined-sum
k: 0
model_embed: "jinaai"
topx: 0
threshold: 0.80   # documented, ignored
embedding_combiner: 'mlp'

eval_on_valid: True
use_cos_sim_weights: True
gpus: [0]
harder_setting: False
is-inverse-relation-classify: False

# paths
base_path: /T20030104/ynj/semma
ckpt_path: "/T20030104/ynj/semma/ckpts"
models_path: /T20030104/ynj/semma/models
kg_datasets_path: /T20030104/ynj/semma/kg-datasets
openrouter_path: /T20030104/ynj/semma/openrouter

max_similar_relations: 3
num_prompt_samples: 15
max_hops: 2
extra_lists:
    - a
    - "b"
nested:
    inner: {x: 1, y: [1, 2]}
    deeper:
        z: ~
use_similarity_enhancer: True
use_prompt_enhancer: True
use_learnable_fusion: True    # 5.3/5.4 vs 5.1
similarity_enhancer_weight: 0.5
prompt_enhancer_weight: 0.5
"""
TAIL = "use_learnable_fusion: True    # 5.3/5.4 vs 5.1\nsimilarity_enhancer_weight: 0.5\nprompt_enhancer_weight: 0.5\n"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(export_module, "_now", lambda: NOW)


def _settings(w_sim: float, w_prompt: float, lr: float | None = None) -> TrialSettings:
    return TrialSettings(use_learnable_fusion=lr is not None, weights=(w_sim, w_prompt), fusion_lr=lr,
                         checkpoint="fusion", split="valid")


def _study(storage, name: str, trials: list[tuple[str, float, TrialSettings | None]]) -> optuna.Study:
    """A real study whose trials are (state, value, settings) as an objective would leave them.

    ``settings`` None is a trial made by something else than are-search (no ``settings`` attr).
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    for state, value, settings in trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=states[state],
                value=value if state == "complete" else None,
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0.0, 1.0)},
                user_attrs={} if settings is None else {"settings": settings.to_attr()},
                intermediate_values={} if state == "fail" else {0: value},
            )
        )
    return study


@pytest.fixture()
def storage(tmp_path):
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'are-search.db'}")


@pytest.fixture()
def fixed_study(storage):
    return _study(
        storage,
        "FBNELL/fixed",
        [
            ("complete", 0.41, _settings(0.5, 0.5)),
            ("pruned", 0.99, _settings(0.9, 0.1)),  # higher intermediate value, but pruned
            ("fail", float("nan"), _settings(0.8, 0.8)),
            ("complete", 0.43, _settings(0.2123456789, 0.81)),
            ("complete", 0.42, _settings(0.3, 0.7)),
            ("complete", 0.43, _settings(0.1, 0.1)),  # ties go to the earlier trial 3
        ],
    )


def _aged(path: Path, content: str) -> tuple[bytes, int]:
    """Write ``content`` with an mtime a rewrite could not reproduce; returns (bytes, mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    old = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(old, old))
    return path.read_bytes(), path.stat().st_mtime_ns


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_best_trial_ignores_pruned_and_failed(fixed_study):
    best = best_trial(fixed_study)
    assert best.number == 3 and best.value == pytest.approx(0.43)
    assert TrialSettings.from_trial(best).weights[0] == 0.2123456789


def test_best_trial_without_complete_trial_names_the_study(storage):
    study = _study(storage, "FBNELL/learnable", [("pruned", 0.9, _settings(0.1, 0.9, 1e-3))])
    with pytest.raises(NoCompleteTrialError, match=r"^study FBNELL/learnable has no complete trial \(pruned and failed ones have no value to "
                                                  r"report or export\): run more with resume --trials$") as info:
        best_trial(study)
    assert info.value.exit_code == EXIT_NO_COMPLETE_TRIAL


def test_flags_from_settings():
    assert flags_from_settings(_settings(0.25, 0.75)) == {
        "use_learnable_fusion": False,
        "similarity_enhancer_weight": 0.25,
        "prompt_enhancer_weight": 0.75,
    }
    flags = flags_from_settings(_settings(0.2, 0.8, 0.0012345678))
    assert flags == {
        "use_learnable_fusion": True,
        "similarity_enhancer_weight": 0.2,
        "prompt_enhancer_weight": 0.8,
        "fusion_lr": 0.0012345678,                  # exactly what the trial ran
    }
    assert list(flags) == list(FLAG_KEYS)
    assert flags_from_settings(_settings(0, 1)) == {
        "use_learnable_fusion": False, "similarity_enhancer_weight": 0.0, "prompt_enhancer_weight": 1.0,
    }


def test_flag_keys_are_the_fusion_terms_and_stay_as_released():
    """flags.yaml files written by 0.2.0 hold these keys: the fusion-term table must keep naming them so."""
    assert FLAG_KEYS[:3] == ("use_learnable_fusion", "similarity_enhancer_weight", "prompt_enhancer_weight")
    assert FLAG_KEYS[-1] == "fusion_lr"


def test_settings_attr_keeps_the_released_layout():
    """The stored ``settings`` attr has one key per fusion term, in the order 0.2.0 wrote them."""
    attr = _settings(0.25, 0.75, 1e-3).to_attr()
    assert list(attr)[:3] == ["use_learnable_fusion", "similarity_enhancer_weight", "prompt_enhancer_weight"]
    assert "weights" not in attr
    assert TrialSettings.from_attr(attr) == _settings(0.25, 0.75, 1e-3)
    with pytest.raises(StudyError, match="lacks prompt_enhancer_weight"):
        TrialSettings.from_attr({"use_learnable_fusion": False, "similarity_enhancer_weight": 0.1})


@pytest.mark.parametrize("settings, message", [
    (TrialSettings(True, (0.2, 0.8)), "trial 7: a learnable-fusion trial without setting 'fusion_lr'"),
    (_settings(-0.1, 0.8), "trial 7: setting 'similarity_enhancer_weight': expected a finite number >= 0, got -0.1"),
    (_settings(0.1, float("nan")), "trial 7: setting 'prompt_enhancer_weight': expected a finite number >= 0, got nan"),
    (_settings(0.1, 0.8, 0.0), "trial 7: setting 'fusion_lr': expected a finite number > 0, got 0.0"),
    (TrialSettings("yes", (0.1, 0.8)), "trial 7: setting 'use_learnable_fusion' must be a bool, got 'yes'"),
])
def test_flags_from_settings_refuses_values_outside_their_rule(settings, message):
    with pytest.raises(StudyError) as info:
        flags_from_settings(settings, "trial 7")
    assert str(info.value) == message


def test_export_keeps_every_other_byte(tmp_path, fixed_study):
    path = tmp_path / "flags.yaml"
    path.write_text(SAMPLE)
    exported = export_study(fixed_study, path)
    flags = {"use_learnable_fusion": False, "similarity_enhancer_weight": 0.2123456789, "prompt_enhancer_weight": 0.81}
    assert exported == ExportedFlags("FBNELL/fixed", path, 3, 0.43, flags)
    assert path.read_text() == SAMPLE.replace(TAIL, (
        f"{COMMENT_MARKER} study FBNELL/fixed, trial 3, validation MRR 0.4300, {NOW}\n"
        "use_learnable_fusion: False    # 5.3/5.4 vs 5.1\n"
        "similarity_enhancer_weight: 0.2123456789\n"
        "prompt_enhancer_weight: 0.81\n"
    ))
    loaded = pyyaml.safe_load(path.read_text())  # as the model code reads it
    assert {k: loaded[k] for k in flags} == flags and type(loaded["similarity_enhancer_weight"]) is float


def test_second_export_replaces_the_comment_and_appends_missing_keys(tmp_path, storage, fixed_study):
    path = tmp_path / "flags.yaml"
    path.write_text(SAMPLE.replace("True    # 5.3", "true    # 5.3"))
    export_study(fixed_study, path)
    learnable = _study(storage, "FBNELL/learnable", [("complete", 0.45, _settings(0.3, 0.7, 1e-05))])
    exported = export_study(learnable, path)
    assert exported.flags["fusion_lr"] == 1e-05 and exported.trial == 0
    assert path.read_text() == SAMPLE.replace(TAIL, (
        f"{COMMENT_MARKER} study FBNELL/learnable, trial 0, validation MRR 0.4500, {NOW}\n"
        "use_learnable_fusion: true    # 5.3/5.4 vs 5.1\n"  # the file's own bool spelling
        "similarity_enhancer_weight: 0.3\n"
        "prompt_enhancer_weight: 0.7\n"
        "fusion_lr: 1.0e-05\n"  # appended, an exponent YAML 1.1 reads as a float
    ))
    assert pyyaml.safe_load(path.read_text())["fusion_lr"] == 1e-05


def test_new_file_when_missing(tmp_path, fixed_study):
    path = tmp_path / "flags.yaml"
    export_study(fixed_study, path)
    assert path.read_text() == (
        f"{COMMENT_MARKER} study FBNELL/fixed, trial 3, validation MRR 0.4300, {NOW}\n"
        "use_learnable_fusion: False\n"
        "similarity_enhancer_weight: 0.2123456789\n"
        "prompt_enhancer_weight: 0.81\n"
    )


def test_study_not_made_by_are_search_is_refused(tmp_path, storage):
    foreign = _study(storage, "FBNELL/fixed", [("complete", 0.5, None)])
    path = tmp_path / "flags.yaml"
    before = _aged(path, SAMPLE)
    with pytest.raises(StudyError) as info:
        export_study(foreign, path)
    assert str(info.value) == "study FBNELL/fixed: trial 0 has no 'settings' user attr (not run by are-search)"
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("content, message", [
    ("run: ultra\nrun: semma\n", "{path}:2: duplicate key 'run'"),
    ("run: ultra\nsimilarity_enhancer_weight:\n  - 0.2\n",
     "{path}:2: key 'similarity_enhancer_weight' holds a list, not a single value; replace it by hand"),
    ("- run: ultra\n", "{path}:1: the top level is a list; flags.yaml must be a mapping of keys"),
])
def test_malformed_file_is_left_untouched(tmp_path, fixed_study, content, message):
    path = tmp_path / "flags.yaml"
    before = _aged(path, content)
    with pytest.raises(FlagsError) as info:
        export_study(fixed_study, path)
    assert str(info.value) == message.format(path=path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert _files(tmp_path) == ["are-search.db", "flags.yaml"]


def test_export_all_one_file_per_dataset(tmp_path, storage, fixed_study):
    _study(storage, "FBNELL/learnable", [("complete", 0.40, _settings(0.1, 0.9, 1e-3))])
    _study(storage, "FB15k237Inductive:v1/learnable", [("complete", 0.55, _settings(0.4, 0.6, 2e-3))])
    _study(storage, "FB15k237Inductive:v1/fixed", [("complete", 0.50, _settings(0.2, 0.8))])
    _study(storage, "NELL995/fixed", [("pruned", 0.9, _settings(0.2, 0.8))])  # nothing to export
    out = tmp_path / "out"
    result = export_all(storage, out)

    inductive, fbnell = out / "FB15k237Inductive_v1" / "flags.yaml", out / "FBNELL" / "flags.yaml"
    assert result == ExportAllResult(
        written=[
            ExportedFlags("FB15k237Inductive:v1/learnable", inductive, 0, 0.55, {
                "use_learnable_fusion": True, "similarity_enhancer_weight": 0.4,
                "prompt_enhancer_weight": 0.6, "fusion_lr": 0.002}),
            ExportedFlags("FBNELL/fixed", fbnell, 3, 0.43, {
                "use_learnable_fusion": False, "similarity_enhancer_weight": 0.2123456789,
                "prompt_enhancer_weight": 0.81}),
        ],
        skipped=[("NELL995/fixed", "no complete trial")],
    )
    assert inductive.read_text() == (
        f"{COMMENT_MARKER} best of FB15k237Inductive:v1: FB15k237Inductive:v1/learnable "
        f"(over FB15k237Inductive:v1/fixed 0.5000), trial 0, validation MRR 0.5500, {NOW}\n"
        "use_learnable_fusion: True\n"
        "similarity_enhancer_weight: 0.4\n"
        "prompt_enhancer_weight: 0.6\n"
        "fusion_lr: 0.002\n"
    )
    assert fbnell.read_text() == (
        f"{COMMENT_MARKER} best of FBNELL: FBNELL/fixed (over FBNELL/learnable 0.4000), trial 3, "
        f"validation MRR 0.4300, {NOW}\n"
        "use_learnable_fusion: False\n"
        "similarity_enhancer_weight: 0.2123456789\n"
        "prompt_enhancer_weight: 0.81\n"
    )
    assert _files(out) == ["FB15k237Inductive_v1", "FB15k237Inductive_v1/flags.yaml", "FBNELL", "FBNELL/flags.yaml"]


def test_export_all_skips_a_foreign_study_with_its_reason(tmp_path, storage, fixed_study):
    _study(storage, "Metafam/fixed", [("complete", 0.9, None)])  # same naming, but not made by are-search
    _study(storage, "my-experiment", [("complete", 0.9, None)])  # not named <dataset>/<mode>
    out = tmp_path / "out"
    existing = out / "FBNELL" / "flags.yaml"
    _aged(existing, SAMPLE)
    result = export_all(str(storage.url), out)  # a storage URL works too
    assert [w.study for w in result.written] == ["FBNELL/fixed"] and result.written[0].path == existing
    assert result.skipped == [
        ("Metafam/fixed", "trial 0 has no 'settings' user attr (not run by are-search)"),
        ("my-experiment", "not named <dataset>/<mode>, so not an are-search study"),
    ]
    assert existing.read_text() == SAMPLE.replace(TAIL, (
        f"{COMMENT_MARKER} best of FBNELL: FBNELL/fixed, trial 3, validation MRR 0.4300, {NOW}\n"
        "use_learnable_fusion: False    # 5.3/5.4 vs 5.1\n"
        "similarity_enhancer_weight: 0.2123456789\n"
        "prompt_enhancer_weight: 0.81\n"
    ))
    assert _files(out) == ["FBNELL", "FBNELL/flags.yaml"]


def test_export_all_writes_nothing_when_a_target_is_malformed(tmp_path, storage, fixed_study):
    _study(storage, "Metafam/fixed", [("complete", 0.9, None)])
    _study(storage, "NELL995/learnable", [("complete", 0.6, _settings(0.5, 0.5, 1e-3))])
    out = tmp_path / "out"
    bad = out / "NELL995" / "flags.yaml"
    before = _aged(bad, "run: ultra\nfusion_lr: 1\nfusion_lr: 2\n")
    with pytest.raises(FlagsError) as info:
        export_all(storage, out)
    assert str(info.value) == f"{bad}:3: duplicate key 'fusion_lr'"
    assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before
    assert _files(out) == ["NELL995", "NELL995/flags.yaml"]  # FBNELL, checked first, was not written


def test_export_all_on_a_storage_without_exportable_study(tmp_path, storage):
    _study(storage, "FBNELL/fixed", [("fail", float("nan"), None)])
    result = export_all(storage, tmp_path / "out")
    assert result == ExportAllResult(written=[], skipped=[("FBNELL/fixed", "no complete trial")])
    assert not (tmp_path / "out").exists()
