"""``launch --from-flags FILE`` (issue 19 item 9): the fusion weights of a user's flags file are tried as a known
point labelled ``your flags (<file>)``, and shown by the report; a flags file without them is one line naming the
file, before anything is loaded. Real launches on NELLInductive:v1 with fusion.pth (a 40-pair validation
budget keeps them short), real flags files under tmp_path.
"""
from __future__ import annotations

import time

import optuna
import pytest

import search
from search.cli import main
from search.errors import FlagsError
from search.flags.current import read_flags_point

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "NELLInductive:v1"
# a flags file as ULTRA/ARE keep them: model and training keys around the two fusion weights
FLAGS = """\
# ARE flags
checkpoint: ckpts/fusion.pth
use_learnable_fusion: false
similarity_enhancer_weight: 0.35
prompt_enhancer_weight: 0.6
batch_size: 64
"""


@pytest.mark.parametrize("text, said", [
    ("checkpoint: x.pth\nbatch_size: 64\n",
     "no fusion weights: keys similarity_enhancer_weight, prompt_enhancer_weight missing (the keys "
     "are-search export writes)"),
    ("similarity_enhancer_weight: 0.2\n", "no fusion weights: key prompt_enhancer_weight missing (the keys "
                                         "are-search export writes)"),
    ("similarity_enhancer_weight: -1\nprompt_enhancer_weight: 0.5\n",
     "key 'similarity_enhancer_weight': expected a finite number >= 0, got -1"),
    ("- 0.2\n- 0.8\n", "the flags file is a list: expected a mapping with similarity_enhancer_weight and "
                       "prompt_enhancer_weight"),
])
def test_a_flags_file_without_fusion_weights_is_one_line_before_anything_loads(text, said, tmp_path, capsys):
    flags = tmp_path / "flags.yaml"
    flags.write_text(text)
    db = tmp_path / "s.db"
    started = time.monotonic()
    assert main(["launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--from-flags", str(flags),
                 "--storage", str(db)]) == 2
    assert time.monotonic() - started < 10
    assert capsys.readouterr().err == f"are-search launch: error: {flags}: {said}\n"
    assert not db.exists()


def test_a_missing_file_or_a_fifo_is_refused_by_name(tmp_path):
    with pytest.raises(FlagsError, match=f"^{tmp_path / 'none.yaml'}: no such flags file"):
        read_flags_point(tmp_path / "none.yaml")
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(FlagsError, match=f"^{tmp_path / 'fifo.yaml'}: not a regular file"):
        read_flags_point(tmp_path / "fifo.yaml")  # never opened: it would block


def test_the_flags_weights_run_as_a_known_point_and_the_report_shows_them(tmp_path, data_root, text_root,
                                                                         checkpoint_root, cache_dir):
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    inputs = dict(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                  cache_dir=str(cache_dir), offline=True, device="cpu")
    result = search.launch(dataset=DATASET, checkpoint="fusion", trials=4, valid_pairs=40, pruner="none",
                           storage=storage, from_flags=flags, **inputs)
    study = optuna.load_study(study_name=result.study, storage=storage)
    trials = study.get_trials(deepcopy=False)
    labels = [t.user_attrs.get("known_point") for t in trials]
    assert labels == ["checkpoint", "0.2/0.8", "no enhancement", "your flags (flags.yaml)"]
    mine = trials[3]
    assert mine.state == optuna.trial.TrialState.COMPLETE
    assert mine.params == {"similarity_enhancer_weight": 0.35, "prompt_enhancer_weight": 0.6}
    assert study.user_attrs["from_flags"] == {"file": str(flags), "label": "your flags (flags.yaml)",
                                              "weights": [0.35, 0.6]}
    # launched again with the same file: the study has these settings, nothing is queued twice
    again = search.launch(dataset=DATASET, checkpoint="fusion", trials=4, valid_pairs=40, pruner="none",
                          storage=storage, from_flags=flags, **inputs)
    assert again.trials_added == 0 and len(study.get_trials(deepcopy=False)) == 4

    report = search.report(result.study, out=tmp_path / "report", n_boot=50, storage=storage, **inputs)
    rows = {row["label"]: row for row in report.summary["settings"]}
    assert rows["your flags (flags.yaml)"]["weights"] == [0.35, 0.6]
    assert rows["your flags (flags.yaml)"]["valid_source"] == "trial 3"
    assert "your flags (flags.yaml)" in (tmp_path / "report" / "summary.md").read_text()


def test_weights_outside_the_search_range_are_refused_naming_the_range(tmp_path, data_root, text_root,
                                                                      checkpoint_root, cache_dir):
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS.replace("prompt_enhancer_weight: 0.6", "prompt_enhancer_weight: 2.5"))
    db = tmp_path / "s.db"
    with pytest.raises(search.errors.UsageError) as error:
        search.launch(dataset=DATASET, checkpoint="fusion", trials=4, valid_pairs=40, storage=f"sqlite:///{db}",
                      from_flags=flags, data_root=str(data_root), text_root=str(text_root),
                      checkpoint_root=str(checkpoint_root), cache_dir=str(cache_dir), offline=True, device="cpu")
    assert str(error.value) == (
        f"{flags}: its fusion weights 0.35, 2.5 lie outside the search range (similarity_enhancer_weight [0, 1], "
        f"prompt_enhancer_weight [0, 1]) of study {DATASET}/fixed: give --soft-high (up to --weight-cap) to take "
        "them in")
    assert not db.exists()  # the study the launch made, and its file, are removed again


@pytest.mark.parametrize("extra, text, said", [
    ([], FLAGS.replace("use_learnable_fusion: false", "use_learnable_fusion: true"),
     "{flags}: use_learnable_fusion is true: its similarity_enhancer_weight and prompt_enhancer_weight are the initial "
     "weights of a fusion fine-tuned per dataset, not weights to rank with (evaluate --flags takes a fixed-mode export)"),
    (["--w-sim", "0.3"], FLAGS, "--flags gives the fixed weights: not with --w-sim"),
    (["--fusion", "learned"], FLAGS, "--flags gives the fixed weights: not with --fusion learned"),
    (["--fusion", "checkpoint"], FLAGS, "--flags gives the fixed weights: not with --fusion checkpoint"),
    ([], "use_learnable_fusion: false\n", "{flags}: no fusion weights: keys similarity_enhancer_weight, "
     "prompt_enhancer_weight missing (the keys are-search export writes)"),
], ids=["learnable export", "beside --w-sim", "beside --fusion learned", "beside --fusion checkpoint", "no weights"])
def test_evaluate_flags_refusals_are_one_line_before_anything_loads(tmp_path, capsys, extra, text, said):
    """``evaluate --flags FILE`` ranks the file's fixed weights (test_api: exactly the exported trial's value); a
    file whose weights are learnable fusion's initial ones, or one beside other weight options, is refused."""
    flags = tmp_path / "flags.yaml"
    flags.write_text(text)
    started = time.monotonic()
    assert main(["evaluate", "--dataset", "Metafam", "--checkpoint", "fusion", "--flags", str(flags), *extra]) == 2
    assert time.monotonic() - started < 10
    assert capsys.readouterr().err == f"are-search evaluate: error: {said.format(flags=flags)}\n"
