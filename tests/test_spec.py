"""search.study.spec / names / values / yamlio: a study spec is validated once, errors name the file, line and key.

Real spec files on disk (and the repository's own studies/FBNELL.yaml); the CLI's parser for the
comparison of the value rules at the command line and in a spec.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import optuna
import pytest

from search.errors import AreSearchError, StudyError, UsageError, YamlError
from search.study.names import MODES, StudyName
from search.pruners import PRUNERS
from search.samplers import SAMPLERS
from search.study.spec import DEFAULTS, SPEC_ATTR, StudySpec, load_study_spec, merge_overrides, spec_from_values, stored_spec
from search.values import argparse_type, bounds, non_negative_int, positive_float, positive_int, weight, weight_bound
from search.flags.yamlio import read_yaml

optuna.logging.set_verbosity(optuna.logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
HEAD = "dataset: FBNELL\ncheckpoint: fusion\n"


def _spec_file(tmp_path: Path, body: str, name: str = "FBNELL.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


# ---------------------------------------------------------------------------------------------
# names


def test_study_names():
    name = StudyName.parse("FBNELL/fixed")
    assert (name.dataset, name.mode, str(name)) == ("FBNELL", "fixed", "FBNELL/fixed")
    name = StudyName.parse("FB15k237Inductive:v1/learnable")
    assert (name.dataset, name.mode) == ("FB15k237Inductive:v1", "learnable")
    assert StudyName.parse(str(name)) == name
    assert MODES == ("fixed", "learnable", "learnable_free")
    for bad in ("FBNELL", "FBNELL/fixed/x", "FBNELL/sideways", "/fixed", "FB NELL/fixed", ""):
        with pytest.raises(StudyError, match=repr(bad).replace("/", ".")) as info:
            StudyName.parse(bad)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("spelling", ["metafam", "Metafam", "METAFAM", "Metafam:Metafam", "metafam:metafam"])
def test_canonical_study_names(spelling):
    assert str(StudyName.of(spelling, "fixed")) == "Metafam:Metafam/fixed"
    assert StudyName.parse(f"{spelling}/learnable").canonical() == StudyName("Metafam:Metafam", "learnable")


def test_canonical_names_of_single_version_classes():
    assert str(StudyName.of("fbnell", "fixed")) == "FBNELL:FBNELL_v1/fixed"
    assert StudyName.of("FB15k237Inductive:v1", "fixed").dataset == "FB15k237Inductive:v1"
    with pytest.raises(Exception, match="unknown dataset 'NoSuchSet'"):
        StudyName.of("NoSuchSet", "fixed")


# ---------------------------------------------------------------------------------------------
# spec files


def test_example_spec_loads():
    spec = load_study_spec(REPO / "studies" / "FBNELL.yaml")
    assert spec == StudySpec(
        dataset="FBNELL:FBNELL_v1",  # the loader's canonical spelling of FBNELL
        checkpoint="fusion",
        mode="fixed",
        trials=40,
        seed=0,
        sampler="gp",
        pruner="paired",
        space={"similarity_enhancer_weight": [0.0, 1.0], "prompt_enhancer_weight": [0.0, 1.0]},
        budget={"stages": 4},
        storage=None,
    )
    assert str(spec.name) == "FBNELL:FBNELL_v1/fixed"


def test_defaults():
    expected = {"mode": "fixed", "trials": 40, "seed": 0, "sampler": "gp", "pruner": "paired", "space": {},
                "budget": {}, "storage": None, "valid_pairs": None, "budget_scale": 1.0}
    assert {key: DEFAULTS[key] for key in expected} == expected
    assert "dataset" not in DEFAULTS and "checkpoint" not in DEFAULTS  # required
    spec = spec_from_values({"dataset": "metafam", "checkpoint": "fusion"}, "here")
    assert spec == StudySpec(dataset="Metafam:Metafam", checkpoint="fusion")
    with pytest.raises(Exception):  # frozen: a spec that exists stays valid
        spec.trials = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    "body, key",
    [
        (HEAD + "trails: 40\n", "unknown key 'trails'"),
        (HEAD + "trials: forty\n", "key 'trials': expected a positive integer, got 'forty'"),
        (HEAD + "trials: true\n", "key 'trials': expected a positive integer, got True"),
        (HEAD + "trials: yes\n", "key 'trials': expected a positive integer, got 'yes'"),  # YAML 1.2: a string
        (HEAD + "trials: 0\n", "key 'trials': expected a positive integer, got 0"),
        (HEAD + "trials: 2.5\n", "key 'trials': expected a positive integer, got 2.5"),
        (HEAD + "seed: -1\n", "key 'seed': expected an integer >= 0, got -1"),
        (HEAD + "mode: sideways\n", "key 'mode': expected one of fixed, learnable, learnable_free, got 'sideways'"),
        (HEAD + "sampler: bayes\n", "key 'sampler'"),
        (HEAD + "pruner: sometimes\n", "key 'pruner'"),
        ("dataset: FBNELL\nmode: fixed\n", "key 'checkpoint' is required"),
        ("checkpoint: fusion\n", "key 'dataset' is required"),
        ("dataset: FBNELL\ncheckpoint: ''\n", "key 'checkpoint': expected a non-empty string"),
        (HEAD + "space:\n  fusion_lr: [0.1]\n", "key 'space.fusion_lr'"),
        (HEAD + "space:\n  fusion_lr: [0.1, 0.01]\n", "key 'space.fusion_lr': low 0.1 is above high 0.01"),
        (HEAD + "space:\n  prompt_enhancer_weight: [0, .inf]\n", "key 'space.prompt_enhancer_weight'"),
        (HEAD + "space:\n  prompt_enhancer_weight: [-0.5, 1]\n", "'prompt_enhancer_weight'"),
        (HEAD + "space: [0, 1]\n", "key 'space'"),
        (HEAD + "budget:\n  epochs: 0\n", "key 'budget.epochs'"),
        (HEAD + "budget:\n  stages: two\n", "key 'budget.stages'"),
        (HEAD + "budget:\n  epochs: 2\n", "'epochs'"),  # a learnable-mode key in a fixed-mode spec
        ("dataset: FB NELL\ncheckpoint: fusion\n", "key 'dataset': unknown dataset 'FB NELL'"),
        (HEAD + "storage: 12\n", "key 'storage'"),
        (HEAD + "storage: redis-ish\n", "key 'storage'"),
        (HEAD + "storage: sqlite://x.db\n", "key 'storage'"),
        (HEAD + "soft_high: 0\n", "key 'soft_high': expected a finite number > 0, got 0"),
        (HEAD + "weight_cap: 0\n", "key 'weight_cap': expected a finite number > 0, got 0"),
        (HEAD + "weight_cap: -1\nsoft_high: 2\n", "key 'weight_cap': expected a finite number > 0, got -1"),
        (HEAD + "weight_cap: 0.5\n", "keys 'soft_high' and 'weight_cap': soft_high 1 (the default) is above weight_cap 0.5"),
    ],
)
def test_spec_errors_name_file_and_key(tmp_path, body, key):
    path = _spec_file(tmp_path, body)
    with pytest.raises(StudyError) as info:
        load_study_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("body, line, key", [
    (HEAD + "trials: 40\nseed: 1\ntrials: 2\n", 5, "trials"),
    (HEAD + "space:\n  prompt_enhancer_weight: [0, 1]\n  prompt_enhancer_weight: [0, 0.5]\n", 5,
     "prompt_enhancer_weight"),
    ("dataset: FBNELL\ndataset: Metafam\ncheckpoint: fusion\n", 2, "dataset"),
])
def test_a_repeated_key_is_refused_with_file_line_and_key(tmp_path, body, line, key):
    path = _spec_file(tmp_path, body)
    with pytest.raises(AreSearchError) as info:
        load_study_spec(path)
    assert str(info.value) == f"{path}:{line}: duplicate key {key!r}"
    assert isinstance(info.value, YamlError) and info.value.exit_code == 2


def test_trials_40_then_2_is_never_read_as_2(tmp_path):
    path = _spec_file(tmp_path, HEAD + "trials: 40\ntrials: 2\n")
    with pytest.raises(YamlError, match=rf"^{path}:4: duplicate key 'trials'$"):
        read_yaml(path)


def test_yaml_1_2_numbers_in_a_spec(tmp_path):
    path = _spec_file(tmp_path, "dataset: nell995\ncheckpoint: fusion\nmode: learnable\nseed: 0o17\n"
                                "space:\n  fusion_lr: [1e-4, 1E-1]\n  body_lr: [1e-6, 1.0e-3]\n"
                                "  initial_similarity_weight: [.01, 0.99]\n", "NELL995.yaml")
    spec = load_study_spec(path)
    assert spec.space["fusion_lr"] == [1e-4, 0.1] and all(type(v) is float for v in spec.space["fusion_lr"])
    assert spec.space["body_lr"] == [1e-6, 1e-3] and spec.space["initial_similarity_weight"] == [0.01, 0.99]
    assert spec.seed == 15  # 0o17 is octal in YAML 1.2
    assert read_yaml(_spec_file(tmp_path, "a: 1e-4\nb: on\nc: yes\nd: 2.5e+3\n", "x.yaml")) == {
        "a": 1e-4, "b": "on", "c": "yes", "d": 2500.0}


def test_spec_yaml_and_shape_errors(tmp_path):
    path = _spec_file(tmp_path, "dataset: FBNELL\n  checkpoint: [fusion\n", "bad.yaml")
    with pytest.raises(AreSearchError, match=rf"^{path}:\d+: not valid YAML"):
        load_study_spec(path)
    for body, shape in (("- dataset: FBNELL\n", "a list"), ("", "empty"), ("# only a comment\n---\n", "empty"),
                        ("just text\n", "text"), ("3\n", "a number"), ("true\n", "true or false")):
        path.write_text(body)
        with pytest.raises(StudyError) as info:
            load_study_spec(path)
        assert str(info.value) == (f"{path}: the study spec is {shape}: expected a mapping of keys "
                                   "(dataset: ..., checkpoint: ...)")
        assert info.value.exit_code == 2
    path.write_bytes(b"dataset: FBNELL\xff\n")
    with pytest.raises(AreSearchError, match=rf"^{path}: not UTF-8 text \(byte 15\)$"):
        load_study_spec(path)
    with pytest.raises(AreSearchError, match=rf"^{tmp_path / 'none.yaml'}: cannot read"):
        load_study_spec(tmp_path / "none.yaml")


def test_learnable_spec_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _spec_file(tmp_path, "dataset: NELL995\ncheckpoint: fusion\nmode: learnable\npruner: asha\n"
                                "space:\n  initial_similarity_weight: [0.01, 0.99]\n  fusion_lr: [1e-4, 1.0e-1]\n"
                                "  body_lr: frozen\nbudget: {epochs: 2, batches_per_epoch: 50, batch_size: 16, "
                                "negatives: 64}\nstorage: studies/nell.db\n", "NELL995.yaml")
    spec = load_study_spec(path)
    assert spec.space == {"initial_similarity_weight": [0.01, 0.99], "fusion_lr": [1e-4, 0.1], "body_lr": "frozen"}
    assert spec.storage == f"sqlite:///{tmp_path}/studies/nell.db"  # made absolute once, where it entered
    merged = merge_overrides(spec, trials=12, mode=None, seed=None, budget={"epochs": 3}, storage="journal:x.log")
    assert (merged.trials, merged.mode, merged.seed, merged.storage) == (12, "learnable", 0, f"journal:{tmp_path}/x.log")
    assert merged.budget == {"epochs": 3, "batches_per_epoch": 50, "batch_size": 16, "negatives": 64}
    assert merge_overrides(spec, space={"body_lr": [1e-6, 1e-4]}).space["fusion_lr"] == [1e-4, 0.1]  # key by key
    assert spec.trials == 40  # the file's spec is not modified
    with pytest.raises(StudyError, match="^options: key 'mode': expected one of fixed, learnable"):
        merge_overrides(spec, mode="sideways")
    with pytest.raises(StudyError, match="^options: key 'trials': expected a positive integer, got 0$"):
        merge_overrides(spec, trials=0)
    with pytest.raises(StudyError, match="^options: unknown study setting 'trails'$"):
        merge_overrides(spec, trails=3)
    with pytest.raises(StudyError, match="^options: space key 'fusion_lr'"):  # the space's own rule
        merge_overrides(spec, space={"fusion_lr": [0.0, 0.1]})


def test_stored_spec_round_trip(tmp_path):
    spec = spec_from_values({"dataset": "metafam", "checkpoint": "fusion", "trials": 7, "sampler": "tpe",
                             "storage": str(tmp_path / "s.db")}, "here")
    study = optuna.create_study(study_name="Metafam:Metafam/fixed", direction="maximize")
    with pytest.raises(StudyError, match="study Metafam:Metafam/fixed has no stored spec"):
        stored_spec(study)
    study.set_user_attr(SPEC_ATTR, spec.to_attr())
    assert spec.to_attr()["storage"] is None  # where a study lives is not part of it
    assert stored_spec(study) == StudySpec(**{**spec.to_attr(), "storage": None})
    assert stored_spec(study).trials == 7 and stored_spec(study).dataset == "Metafam:Metafam"
    study.set_user_attr(SPEC_ATTR, {**spec.to_attr(), "trials": -3})
    with pytest.raises(StudyError, match="^study Metafam:Metafam/fixed: key 'trials'"):
        stored_spec(study)


# ---------------------------------------------------------------------------------------------
# one rule per value: the same words at the command line and in a spec


def _cli_error(argv: list[str]) -> str:
    from search.cli import build_parser

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    return stderr.getvalue().strip().splitlines()[-1]


@pytest.mark.parametrize("flag, key, raw", [
    ("--trials", "trials", "forty"),
    ("--trials", "trials", "0"),
    ("--trials", "trials", "-3"),
    ("--seed", "seed", "-1"),
    ("--seed", "seed", "seven"),
    ("--soft-high", "soft_high", "0"),
    ("--weight-cap", "weight_cap", "0"),
    ("--budget-scale", "budget_scale", "0"),
    ("--budget-scale", "budget_scale", "1.5"),
    ("--budget-scale", "budget_scale", "half"),
])
def test_value_rules_say_the_same_at_the_cli_and_in_a_spec(tmp_path, flag, key, raw):
    cli = _cli_error(["launch", "--dataset", "FBNELL", "--checkpoint", "fusion", f"{flag}={raw}"])
    path = _spec_file(tmp_path, HEAD + f"{key}: {raw}\n")
    with pytest.raises(StudyError) as info:
        load_study_spec(path)
    spec_words = str(info.value).split(f"key {key!r}: ", 1)[1]
    cli_words = cli.split(f"argument {flag}: ", 1)[1].removesuffix(" (see --help)")
    assert cli_words == spec_words
    assert spec_words.startswith("expected ")


@pytest.mark.parametrize("flag, key, raw, choices", [
    ("--mode", "mode", "sideways", MODES),
    ("--sampler", "sampler", "bayes", SAMPLERS),
    ("--pruner", "pruner", "sometimes", PRUNERS),
])
def test_choices_say_the_same_at_the_cli_and_in_a_spec(tmp_path, flag, key, raw, choices):
    cli = _cli_error(["launch", "--dataset", "FBNELL", "--checkpoint", "fusion", flag, raw])
    path = _spec_file(tmp_path, HEAD + f"{key}: {raw}\n")
    with pytest.raises(StudyError) as info:
        load_study_spec(path)
    spec_words = str(info.value).split(f"key {key!r}: ", 1)[1]
    assert spec_words == f"expected one of {', '.join(choices)}, got {raw!r}"
    assert cli.split(f"argument {flag}: ", 1)[1].removesuffix(" (see --help)") == spec_words


@pytest.mark.parametrize("rule, raw, words", [
    (positive_int, "0", "expected a positive integer, got 0"),
    (positive_int, "x", "expected a positive integer, got 'x'"),
    (non_negative_int, "-2", "expected an integer >= 0, got -2"),
    (weight, "-0.5", "expected a finite number >= 0, got -0.5"),
    (weight, "nan", "expected a finite number >= 0, got 'nan'"),
    (positive_float, "0", "expected a finite number > 0, got 0"),
    (positive_float, "inf", "expected a finite number > 0, got 'inf'"),
    (weight_bound, "0", "expected a finite number > 0, got 0"),
    (weight_bound, "-1", "expected a finite number > 0, got -1"),
])
def test_argparse_type_keeps_the_rule_and_its_words(rule, raw, words):
    import argparse

    with pytest.raises(UsageError) as direct:
        rule(raw, "--flag")
    assert str(direct.value) == f"--flag: {words}"
    with pytest.raises(argparse.ArgumentTypeError) as cli:
        argparse_type(rule, "--flag")(raw)
    assert str(cli.value) == words
    assert argparse_type(rule, "--flag").__name__ == rule.__name__


def test_weight_cap_and_soft_high_errors_name_the_value_given(tmp_path):
    """--weight-cap 0 blames weight_cap, --soft-high 0 says > 0 up front, and a soft_high above the cap
    names both keys; the prefix says the values are options, not a file."""
    spec = load_study_spec(_spec_file(tmp_path, HEAD + "weight_cap: 4\nsoft_high: 1\n"))
    with pytest.raises(StudyError) as info:
        merge_overrides(spec, weight_cap=0.0)
    assert str(info.value) == "options: key 'weight_cap': expected a finite number > 0, got 0.0"
    with pytest.raises(StudyError) as info:
        merge_overrides(spec, soft_high=0.0)
    assert str(info.value) == "options: key 'soft_high': expected a finite number > 0, got 0.0"
    with pytest.raises(StudyError) as info:
        merge_overrides(spec, soft_high=5.0)
    assert str(info.value) == ("options: keys 'soft_high' and 'weight_cap': soft_high 5 is above weight_cap 4; "
                               "a weight's first upper bound may not pass its cap")
    assert info.value.exit_code == 2
    assert merge_overrides(spec, soft_high=4.0).soft_high == 4.0  # up to the cap itself
    assert merge_overrides(spec, weight_cap=1.0).weight_cap == 1.0
    assert weight_bound("0.5", "--soft-high") == 0.5 and type(weight_bound(2, "x")) is float


def test_value_rules_accept_their_values():
    assert positive_int("12", "--n") == 12 and positive_int(3, "x") == 3
    assert non_negative_int("0", "--seed") == 0
    assert weight("0.2", "--w") == 0.2 and weight(1, "w") == 1.0 and type(weight(1, "w")) is float
    assert positive_float("1e-4", "--lr") == 1e-4
    assert bounds([1e-4, "0.1"], "b") == (1e-4, 0.1)
    for bad in ([1, 0], [1], "01", [True, 1], [0, float("nan")]):
        with pytest.raises(UsageError, match="^b: "):
            bounds(bad, "b")
    with pytest.raises(UsageError):
        positive_int(True, "--n")  # a bool is not a number


# ---------------------------------------------------------------------------------------------
# fusion terms: a third enhancer weight is one row of search/study/fusion_terms.py

_THIRD_TERM = r'''
import json, sys
from pathlib import Path

import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
import search.study as study_package

# the table with a third row, loaded as search.study.fusion_terms before anything reads it
path = Path(study_package.__file__).with_name("fusion_terms.py")
source = path.read_text().replace(
    '               "prompt enhancer weight", 0.8, "initial_prompt_weight"),\n)',
    '               "prompt enhancer weight", 0.8, "initial_prompt_weight"),\n'
    '    FusionTerm("rule", "rule_enhancer_weight", "rule_enhancer_weight", "w_rule", "rule enhancer weight", 0.0,\n'
    '               "initial_rule_weight", absent=0.0),\n)')
assert "w_rule" in source
module = type(sys)("search.study.fusion_terms")
module.__file__ = str(path)
sys.modules[module.__name__] = module
exec(compile(source, str(path), "exec"), module.__dict__)
study_package.fusion_terms = module

from search.cli import build_parser
from search.flags.export import FLAG_KEYS, flags_from_settings
from search.reports import campaign, plots
from search.study.settings import TrialSettings
from search.study.spaces import SearchSpace

out = {"flag_keys": list(FLAG_KEYS), "csv": [c for c in campaign.csv_columns() if "_w_" in c]}
fixed, learnable = SearchSpace("fixed"), SearchSpace("learnable")
out["fixed_params"], out["learnable_params"] = list(fixed.params), list(learnable.params)
out["known"] = fixed.known_points((0.2, 0.7, 0.1))
study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
trial = study.ask()
settings = learnable.suggest(trial)
out["learnable_weights"] = [settings[k] for k in ("similarity_enhancer_weight", "prompt_enhancer_weight",
                                                  "rule_enhancer_weight")]
out["logits"] = len(settings["fusion_init_logits"])
settings = TrialSettings.from_attr(fixed.suggest(study.ask()))
out["settings_keys"] = [k for k in settings.to_attr() if k.endswith("_weight")]
out["flags"] = list(flags_from_settings(settings))
out["text"] = settings.weights_text(1)
old = {"use_learnable_fusion": False, "similarity_enhancer_weight": 0.2, "prompt_enhancer_weight": 0.8}
out["old_record"] = list(TrialSettings.from_attr(old).weights)  # a trial stored before the third term
told = study.ask()
told.set_user_attr("settings", TrialSettings.from_attr(fixed.suggest(told)).to_attr())
study.tell(told, 0.5)
figure = plots.weights_figure(study, fixed, best=study.best_trial)
out["axes"] = [figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel()]
args = build_parser().parse_args(["evaluate", "--dataset", "x", "--checkpoint", "y", "--w-rule", "0.5"])
out["option"] = args.w_rule
print(json.dumps(out))
'''


def test_a_third_fusion_term_needs_only_its_row():
    """With one more FusionTerm row (and nothing else changed), spaces, settings, flags, the report's columns and
    the evaluate command's options all carry the third weight, under the names that row gives it."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", _THIRD_TERM], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    weights = ["similarity_enhancer_weight", "prompt_enhancer_weight", "rule_enhancer_weight"]
    assert out["flag_keys"] == ["use_learnable_fusion", *weights, "fusion_lr"]
    assert out["fixed_params"] == weights
    assert out["learnable_params"] == ["initial_similarity_weight", "initial_prompt_weight", "fusion_lr", "body_lr"]
    assert [name for name, _ in out["known"]] == ["checkpoint", "0.2/0.8/0", "no enhancement"]
    assert sum(out["learnable_weights"]) == pytest.approx(1.0) and min(out["learnable_weights"]) > 0
    assert out["logits"] == 3
    assert out["settings_keys"] == weights and out["flags"] == ["use_learnable_fusion", *weights]
    assert out["text"].startswith("w_sim=") and " w_rule=" in out["text"]
    assert "best_w_rule" in out["csv"] and "own_w_rule" in out["csv"]
    assert out["option"] == 0.5
    assert out["old_record"] == [0.2, 0.8, 0.0]
    assert out["axes"] == ["similarity enhancer weight w_sim", "prompt enhancer weight w_prompt"]  # first two terms


def test_the_two_released_terms_keep_their_names():
    """Studies, settings and flags files written by 0.2.0 hold these names: the table must keep them."""
    from search.study import fusion_terms

    names = [(t.enhancer, t.param, t.flag_key, t.symbol, t.initial_param, t.option) for t in fusion_terms.FUSION_TERMS]
    assert names[:2] == [
        ("similarity", "similarity_enhancer_weight", "similarity_enhancer_weight", "w_sim", "initial_similarity_weight",
         "--w-sim"),
        ("prompt", "prompt_enhancer_weight", "prompt_enhancer_weight", "w_prompt", "initial_prompt_weight",
         "--w-prompt")]
    assert [t.reference for t in fusion_terms.FUSION_TERMS[:2]] == [0.2, 0.8]
    assert all(t.absent is None for t in fusion_terms.FUSION_TERMS[:2])     # every stored record holds both
    if len(fusion_terms.FUSION_TERMS) == 2:  # the floats 0.2.0 computed
        assert fusion_terms.KNOWN_WEIGHTS == {"0.2/0.8": (0.2, 0.8), "no enhancement": (0.0, 0.0)}
        assert fusion_terms.weights_from_shares([0.3]) == (0.3, 1.0 - 0.3)
        assert fusion_terms.shares_from_weights((0.2, 0.6)) == (0.2 / (0.2 + 0.6),)
        assert fusion_terms.shares_from_weights((0.0, 0.0)) is None
