"""search's Python API and the CLI share one study lifecycle: a study started from one resumes,
exports and reports from the other (NELLInductive:v1 with fusion.pth, real files)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import search
from search.errors import StudyError, UsageError
from search.api import LaunchResult, ResumeResult, StatusResult
from search.options import LoadOptions

REPO = Path(__file__).resolve().parents[1]
DATASET = "NELLInductive:v1"


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir) -> LoadOptions:
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


def _cli(*argv: str, options: LoadOptions) -> subprocess.CompletedProcess:
    inputs = ["--data-root", options.data_root, "--text-root", options.text_root, "--checkpoint-root",
              options.checkpoint_root, "--cache-dir", options.cache_dir, "--device", "cpu", "--threads", "2"]
    command, rest = argv[0], list(argv[1:])
    if command in ("export", "status"):
        inputs = []
    return subprocess.run([sys.executable, "-m", "search", "-q", command, *rest, *inputs], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def _finished(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=url)
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def test_python_launch_then_cli_resume_and_export(tmp_path, options):
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = search.launch(dataset="nellinductive:v1", checkpoint="fusion", mode="fixed", trials=2, pruner="none",
                           storage=url, options=options)
    assert isinstance(result, LaunchResult)
    assert result.study == f"{DATASET}/fixed" and result.created and result.trials_added == 2
    assert result.storage == url and result.best is not None and 0 < result.best.value < 1
    resumed = _cli("resume", "NELLInductive:v1/fixed", "--trials", "3", "--storage", url, options=options)
    assert resumed.returncode == 0, resumed.stderr
    assert f"study {DATASET}/fixed: best trial" in resumed.stdout
    assert len(_finished(url, f"{DATASET}/fixed")) == 3
    again = _cli("resume", "NELLInductive:v1/fixed", "--storage", url, options=options)  # its budget is spent
    assert again.returncode == 0 and f"study {DATASET}/fixed already has its 3 trials: nothing to run; give " \
        "--trials 8 (or more) to run more" in again.stdout, again.stdout + again.stderr
    assert len(_finished(url, f"{DATASET}/fixed")) == 3
    flags = tmp_path / "flags.yaml"
    exported = _cli("export", f"{DATASET}/fixed", "--flags", str(flags), "--storage", url, options=options)
    assert exported.returncode == 0, exported.stderr
    text = flags.read_text()
    assert "use_learnable_fusion: False" in text and "similarity_enhancer_weight:" in text


def test_cli_launch_then_python_resume_status_export(tmp_path, options):
    url = f"sqlite:///{tmp_path / 's.db'}"
    launched = _cli("launch", "--dataset", DATASET, "--checkpoint", "fusion", "--trials", "2", "--pruner", "none",
                    "--storage", url, options=options)
    assert launched.returncode == 0, launched.stderr
    resumed = search.resume(f"{DATASET}/fixed", trials=3, storage=url, options=options)
    assert isinstance(resumed, ResumeResult) and not resumed.created and resumed.trials_added == 1
    assert resumed.counts.get("COMPLETE", 0) + resumed.counts.get("PRUNED", 0) == 3
    state = search.status(storage=url)
    assert isinstance(state, StatusResult) and state.state == "ready"
    assert [(s.study, s.budget) for s in state.studies] == [(f"{DATASET}/fixed", 3)]
    written = search.export(f"{DATASET}/fixed", flags=tmp_path / "flags.yaml", storage=url)
    assert written.written[0].trial == resumed.best.trial
    with pytest.raises(UsageError):
        search.export(f"{DATASET}/fixed", storage=url)  # neither --flags nor --all


def test_api_errors_are_one_line(tmp_path, options):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(StudyError, match="does not exist"):
        search.resume(f"{DATASET}/fixed", storage=url, options=options)
    assert not (tmp_path / "none.db").exists()  # reading commands create nothing
    with pytest.raises(StudyError, match="trials"):
        search.launch(dataset=DATASET, checkpoint="fusion", trials=0, storage=url, options=options)
    with pytest.raises(TypeError, match="colour"):
        search.launch(dataset=DATASET, checkpoint="fusion", colour="red")
    assert search.status(storage=url).state == "missing"


def test_provenance_recorded_and_mixing_refused(tmp_path, options):
    """Trials record the encoder actually used (never ``auto``); a study refuses another encoder or checkpoint."""
    import torch

    url = f"sqlite:///{tmp_path / 's.db'}"
    result = search.launch(dataset="Metafam", checkpoint="fusion", trials=1, pruner="none", storage=url,
                           options=options)
    assert result.best.settings.encoder == "minilm"
    study = optuna.load_study(study_name="Metafam:Metafam/fixed", storage=url)
    assert study.user_attrs["launch"]["encoder_name"] == "minilm"
    assert study.metric_names == ["validation MRR"]
    vectors = tmp_path / "vectors.pt"
    torch.save(torch.randn(10, 64), vectors)
    with pytest.raises(StudyError, match=r"text encoder minilm, now vectors:[0-9a-f]{64}"):
        search.resume("Metafam/fixed", trials=2, storage=url, options=options.replace(encoder=str(vectors)))
    with pytest.raises(StudyError, match="another checkpoint"):
        search.launch(dataset="Metafam", checkpoint="ARE-V5", trials=2, storage=url, options=options)
    assert len(optuna.load_study(study_name="Metafam:Metafam/fixed", storage=url).trials) >= 1


def test_exported_weights_evaluate_to_the_trials_value_exactly(tmp_path, options):
    """``export`` writes the weights the best trial ran, to the last bit: ``evaluate --flags`` on the exported file
    gives that trial's validation MRR exactly (NELLInductive:v1; the best is a setting with many digits)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    search.launch(dataset=DATASET, checkpoint="fusion", trials=3, pruner="none", storage=url, options=options)
    study = optuna.load_study(study_name=f"{DATASET}/fixed", storage=url)
    study.enqueue_trial({"similarity_enhancer_weight": 0.37951234567891, "prompt_enhancer_weight": 2.5743210987654})
    search.resume(f"{DATASET}/fixed", trials=4, storage=url, options=options)
    best = study.best_trial
    assert best.params["prompt_enhancer_weight"] == 2.5743210987654          # the many-digit setting is the best
    flags = tmp_path / "flags.yaml"
    search.export(f"{DATASET}/fixed", flags=flags, storage=url)
    from search.flags.yamlio import read_yaml

    written = read_yaml(flags)
    assert (written["similarity_enhancer_weight"], written["prompt_enhancer_weight"]) == (
        best.params["similarity_enhancer_weight"], best.params["prompt_enhancer_weight"])
    # what a user runs next: evaluate the exported file itself
    result = _cli("evaluate", "--dataset", DATASET, "--checkpoint", "fusion", "--split", "valid", "--flags",
                  str(flags), "--json", options=options)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    shown = json.loads(result.stdout)
    assert shown["mrr"] == best.value and shown["fusion"] == "fixed"


def test_a_study_resumes_where_its_checkpoint_path_is_gone_but_the_file_is_found_by_name_and_hash(tmp_path, options,
                                                                                                   checkpoint_root):
    """A study launched with a checkpoint *path* (as on another host) resumes after that path is gone: the
    checkpoint is found by its file name in the checkpoint root and used because its sha256 is the recorded one;
    trials record the file's name, not the path."""
    import shutil

    elsewhere = tmp_path / "other-host" / "fusion.pth"
    elsewhere.parent.mkdir()
    shutil.copyfile(checkpoint_root / "fusion.pth", elsewhere)
    url = f"sqlite:///{tmp_path / 's.db'}"
    search.launch(dataset=DATASET, checkpoint=str(elsewhere), trials=1, pruner="none", storage=url, options=options)
    elsewhere.unlink()
    resumed = search.resume(f"{DATASET}/fixed", trials=2, storage=url, options=options)
    assert resumed.trials_added == 1
    trials = optuna.load_study(study_name=f"{DATASET}/fixed", storage=url).get_trials()
    assert {t.user_attrs["settings"]["checkpoint_path"] for t in trials if t.state.is_finished()} == {"fusion.pth"}

    (tmp_path / "other-root").mkdir()      # a root without it, and no download: one line naming both
    with pytest.raises(Exception, match=r"no such checkpoint file.*nor is fusion\.pth with sha256"):
        search.resume(f"{DATASET}/fixed", trials=3, storage=url,
                      options=options.replace(checkpoint_root=str(tmp_path / "other-root"), offline=True,
                                              cache_dir=str(tmp_path / "cache")))
