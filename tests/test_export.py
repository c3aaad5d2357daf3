"""search.export: best trial -> flags.yaml, edited in place on real files from real Optuna studies."""
from __future__ import annotations

import os
import time
from pathlib import Path

import optuna
import pytest
import yaml as pyyaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from ruamel.yaml import YAML

from search.export import (
    COMMENT_MARKER,
    FLAG_KEYS,
    FlagsError,
    best_trial,
    export_all,
    export_study,
    flags_from_settings,
    write_flags,
)
from search.studies import StudyError, StudyName, create_or_load_study, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

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


def _study(storage, name: str, trials: list[tuple[str, float, dict]]) -> optuna.Study:
    """A real study whose trials are (state, value, settings) as an objective would leave them."""
    study, _ = create_or_load_study(storage, StudyName.parse(name))
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    for state, value, settings in trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=states[state],
                value=value if state == "complete" else None,
                params={"similarity_enhancer_weight": settings["similarity_enhancer_weight"]},
                distributions={"similarity_enhancer_weight": FloatDistribution(0.0, 1.0)},
                user_attrs={"settings": settings},
                intermediate_values={} if state == "fail" else {0: value},
            )
        )
    return study


def _settings(w_sim: float, w_prompt: float, lr: float | None = None) -> dict:
    out = {"similarity_enhancer_weight": w_sim, "prompt_enhancer_weight": w_prompt, "checkpoint": "fusion"}
    if lr is not None:
        out["fusion_lr"] = lr
    return out


@pytest.fixture()
def storage(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'are-search.db'}")


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
        ],
    )


def _unwritten_lines(text: str) -> list[str]:
    keys = tuple(f"{k}:" for k in FLAG_KEYS)
    return [
        line
        for line in text.splitlines()
        if not line.startswith(keys) and not line.startswith(COMMENT_MARKER)
    ]


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_best_trial_ignores_pruned_and_failed(fixed_study):
    best = best_trial(fixed_study)
    assert best.number == 3 and best.value == pytest.approx(0.43)
    assert best.user_attrs["settings"]["similarity_enhancer_weight"] == 0.2123456789


def test_best_trial_without_complete_trial_names_the_study(storage):
    study = _study(storage, "FBNELL/learnable", [("pruned", 0.9, _settings(0.1, 0.9, 1e-3))])
    with pytest.raises(StudyError, match="FBNELL/learnable"):
        best_trial(study)


def test_flags_from_settings():
    assert flags_from_settings(_settings(0.25, 0.75), "fixed") == {
        "use_learnable_fusion": False,
        "similarity_enhancer_weight": 0.25,
        "prompt_enhancer_weight": 0.75,
    }
    flags = flags_from_settings(_settings(0.2, 0.8, 0.0012345678), "learnable")
    assert flags == {
        "use_learnable_fusion": True,
        "similarity_enhancer_weight": 0.2,
        "prompt_enhancer_weight": 0.8,
        "fusion_lr": 0.00123457,
    }
    with pytest.raises(StudyError, match="fusion_lr"):
        flags_from_settings(_settings(0.2, 0.8), "learnable")
    with pytest.raises(StudyError, match="'sideways'"):
        flags_from_settings(_settings(0.2, 0.8), "sideways")


def test_export_keeps_every_other_line(tmp_path, fixed_study):
    path = tmp_path / "flags.yaml"
    path.write_text(SAMPLE)
    flags = export_study(fixed_study, path)
    text = path.read_text()

    assert flags == {
        "use_learnable_fusion": False,
        "similarity_enhancer_weight": 0.212346,
        "prompt_enhancer_weight": 0.81,
    }
    assert _unwritten_lines(text) == _unwritten_lines(SAMPLE)
    lines = text.splitlines()
    assert lines[lines.index("use_learnable_fusion: False    # 5.3/5.4 vs 5.1") - 1].startswith(
        f"{COMMENT_MARKER} study FBNELL/fixed, trial 3, validation MRR 0.4300, "
    )
    assert "similarity_enhancer_weight: 0.212346" in lines and "prompt_enhancer_weight: 0.81" in lines
    assert "fusion_lr" not in text
    for loaded in (pyyaml.safe_load(text), YAML(typ="rt").load(text)):
        for key, value in flags.items():
            if isinstance(value, bool):
                assert loaded[key] is value
            else:
                assert isinstance(loaded[key], float) and loaded[key] == value
        assert isinstance(loaded["similarity_enhancer_weight"], float)
        assert loaded["use_learnable_fusion"] is False
    assert list(YAML(typ="rt").load(text)) == list(YAML(typ="rt").load(SAMPLE))


def test_second_export_replaces_the_comment_and_appends_missing_keys(tmp_path, storage, fixed_study):
    path = tmp_path / "flags.yaml"
    path.write_text(SAMPLE.replace("True    # 5.3", "true    # 5.3"))
    export_study(fixed_study, path)
    learnable = _study(storage, "FBNELL/learnable", [("complete", 0.45, _settings(0.3, 0.7, 1e-05))])
    export_study(learnable, path)
    text = path.read_text()
    lines = text.splitlines()
    markers = [line for line in lines if line.startswith(COMMENT_MARKER)]
    assert len(markers) == 1 and "FBNELL/learnable" in markers[0]
    assert "use_learnable_fusion: true    # 5.3/5.4 vs 5.1" in lines  # the file's own bool style
    assert lines[-1] == "fusion_lr: 1.0e-05"  # appended at the end, YAML 1.1-safe exponent
    assert pyyaml.safe_load(text)["fusion_lr"] == 1e-05
    assert YAML(typ="rt").load(text)["fusion_lr"] == 1e-05
    assert _unwritten_lines(text) == _unwritten_lines(SAMPLE)


def test_new_file_when_missing(tmp_path, fixed_study):
    path = tmp_path / "flags.yaml"
    export_study(fixed_study, path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith(f"{COMMENT_MARKER} study FBNELL/fixed, trial 3")
    assert lines[1:] == [
        "use_learnable_fusion: False",
        "similarity_enhancer_weight: 0.212346",
        "prompt_enhancer_weight: 0.81",
    ]


@pytest.mark.parametrize(
    "content, line",
    [
        ("run: ultra\n\tk: 0\n", 2),  # a tab where indentation belongs
        ("- run: ultra\n- k: 0\n", None),  # a top-level list
        ('run: ultra\nLLM: "gpt4o\nk: 0\n', None),  # an unclosed quote
        ("run: ultra\nrun: semma\n", 2),  # a duplicated key
    ],
)
def test_malformed_file_is_left_untouched(tmp_path, fixed_study, content, line):
    path = tmp_path / "flags.yaml"
    path.write_text(content)
    old = os.stat(path).st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(old, old))  # an mtime a rewrite could not reproduce
    before = _snapshot(path)
    with pytest.raises(FlagsError) as info:
        export_study(fixed_study, path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if line is not None:
        assert f"{path}:{line}:" in message
    assert _snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["are-search.db", "are-search.db.lock", "flags.yaml"]


def test_flag_key_holding_a_mapping_is_refused(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("run: ultra\nprompt_enhancer_weight:\n  a: 1\n")
    before = _snapshot(path)
    with pytest.raises(FlagsError, match=r"flags.yaml:2: key 'prompt_enhancer_weight' holds a mapping"):
        write_flags(path, {"prompt_enhancer_weight": 0.5}, comment="x")
    assert _snapshot(path) == before


def test_plain_floats_only(tmp_path):
    import numpy as np

    path = tmp_path / "flags.yaml"
    path.write_text("a: 1\nsimilarity_enhancer_weight: !!float 3\n")
    flags = {"similarity_enhancer_weight": np.float32(0.2), "fusion_lr": np.float64(3e-4)}
    write_flags(path, flags, comment="c")
    text = path.read_text()
    assert "similarity_enhancer_weight: 0.2\n" in text and "fusion_lr: 0.0003\n" in text
    assert "!!" not in text and "numpy" not in text
    with pytest.raises(FlagsError, match="'fusion_lr'"):
        write_flags(path, {"fusion_lr": float("nan")}, comment="c")


def test_export_all_one_file_per_dataset(tmp_path, storage, fixed_study):
    _study(storage, "FBNELL/learnable", [("complete", 0.40, _settings(0.1, 0.9, 1e-3))])
    _study(storage, "FB15k237Inductive:v1/learnable", [("complete", 0.55, _settings(0.4, 0.6, 2e-3))])
    _study(storage, "FB15k237Inductive:v1/fixed", [("complete", 0.50, _settings(0.2, 0.8))])
    _study(storage, "NELL995/fixed", [("pruned", 0.9, _settings(0.2, 0.8))])  # nothing to export
    out = tmp_path / "out"
    paths = export_all(storage, out)
    assert paths == [out / "FB15k237Inductive_v1" / "flags.yaml", out / "FBNELL" / "flags.yaml"]

    inductive = pyyaml.safe_load(paths[0].read_text())
    assert inductive == {
        "use_learnable_fusion": True,
        "similarity_enhancer_weight": 0.4,
        "prompt_enhancer_weight": 0.6,
        "fusion_lr": 0.002,
    }
    comment = paths[0].read_text().splitlines()[0]
    assert "FB15k237Inductive:v1/learnable" in comment and "FB15k237Inductive:v1/fixed 0.5000" in comment
    fbnell = pyyaml.safe_load(paths[1].read_text())
    assert fbnell["use_learnable_fusion"] is False and fbnell["similarity_enhancer_weight"] == 0.212346
    assert "FBNELL/fixed" in paths[1].read_text().splitlines()[0]


def test_atomic_write_leaves_no_temp_file_and_keeps_mode(tmp_path, fixed_study):
    path = tmp_path / "flags.yaml"
    path.write_text(SAMPLE)
    path.chmod(0o640)
    time.sleep(0.01)
    export_study(fixed_study, path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["are-search.db", "are-search.db.lock", "flags.yaml"]
