"""The are-search command line on real data and real checkpoints: results on stdout, one-line errors.

Most commands run in-process through ``search.cli.main``; two run as ``python -m search`` to check the
entry point and that a bad input ends without a traceback. A tiny fixed-mode study (3 trials on
Metafam with fusion.pth: the three known points) is launched once through the CLI into a temporary
SQLite file and shared by the study commands; `resume` adds a sampled fourth trial to a copy of it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from search.cli import main

REPO = Path(__file__).resolve().parents[1]
STUDY = "Metafam/fixed"
STUDY_TRIALS = 3


def _inputs(data_root: Path, text_root: Path, cache_dir: Path) -> list[str]:
    return ["--data-root", str(data_root), "--text-root", str(text_root), "--cache-dir", str(cache_dir),
            "--device", "cpu", "--threads", "2"]


def small_study(tmp_path_factory, data_root: Path, text_root: Path, checkpoint_root: Path, cache_dir: Path) -> str:
    """Storage URL of the session's tiny Metafam/fixed study (launched through the CLI on first use)."""
    folder = tmp_path_factory.getbasetemp() / "small-study"
    folder.mkdir(exist_ok=True)
    url = f"sqlite:///{folder / 'studies.db'}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["-q", "launch", "--dataset", "Metafam", "--checkpoint", str(checkpoint_root / "fusion.pth"),
                       "--mode", "fixed", "--trials", str(STUDY_TRIALS), "--pruner", "none", "--seed", "0",
                       "--storage", url, *_inputs(data_root, text_root, cache_dir)])
    assert status == 0, out.getvalue()
    assert f"study {STUDY}: best trial" in out.getvalue()
    return url


@pytest.fixture(scope="module")
def study_url(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir) -> str:
    return small_study(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir)


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("are-search: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _subprocess(argv: list[str], env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "search", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


# ------------------------------------------------------------------------------------------ evaluate


def test_evaluate_json_ultra_metafam(capsys, data_root, text_root, checkpoint_root, cache_dir):
    status, out, err = _run(capsys, ["evaluate", "--dataset", "Metafam", "--checkpoint",
                                     str(checkpoint_root / "ultra_3g.pth"), "--split", "test", "--json",
                                     *_inputs(data_root, text_root, cache_dir)])
    assert status == 0, err
    result = json.loads(out)  # exactly one JSON document on stdout
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10", "num_queries", "profile", "encoder", "fusion_weights",
                "dataset", "split", "checkpoint", "seconds"):
        assert key in result, key
    assert result["num_queries"] == 368
    assert result["mrr"] == pytest.approx(0.3298, abs=0.001)  # reference: 0.32976 (official ULTRA code)
    assert result["profile"] == "ultra"
    assert result["encoder"] is None and result["fusion_weights"] is None
    assert result["split"] == "test" and result["seconds"] > 0
    assert 0 <= result["hits@1"] <= result["hits@3"] <= result["hits@10"] <= 1


def test_evaluate_by_name_through_env_prints_table(capsys, monkeypatch, data_root, text_root, checkpoint_root,
                                                   cache_dir):
    monkeypatch.setenv("ARE_CHECKPOINT_ROOT", str(checkpoint_root))
    status, out, err = _run(capsys, ["evaluate", "--dataset", "Metafam", "--checkpoint", "ultra_3g",
                                     *_inputs(data_root, text_root, cache_dir)])
    assert status == 0, err
    assert str(checkpoint_root / "ultra_3g.pth") in out
    rows = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert rows["MRR"] == "0.3298" and rows["queries"] == "368"


def test_evaluate_fusion_checkpoint_reports_applied_weights(capsys, data_root, text_root, checkpoint_root, cache_dir):
    base = ["evaluate", "--dataset", "Metafam", "--checkpoint", str(checkpoint_root / "fusion.pth"), "--json",
            *_inputs(data_root, text_root, cache_dir)]
    status, out, err = _run(capsys, base)
    assert status == 0, err
    own = json.loads(out)
    assert own["profile"] == "are-fusion" and own["encoder"]
    assert own["fusion_weights"] == pytest.approx([0.2250, 0.7750], abs=5e-5)
    status, out, err = _run(capsys, base + ["--fusion", "fixed", "--w-sim", "0.2250", "--w-prompt", "0.7750"])
    assert status == 0, err
    fixed = json.loads(out)
    assert fixed["fusion_weights"] == [0.2250, 0.7750]
    assert fixed["mrr"] == pytest.approx(own["mrr"], abs=2e-3)  # the learned weights, rounded to 4 digits


def test_fixed_fusion_on_ultra_is_one_line_error(checkpoint_root, data_root):
    result = _subprocess(["evaluate", "--dataset", "Metafam", "--checkpoint", str(checkpoint_root / "ultra_3g.pth"),
                          "--data-root", str(data_root), "--fusion", "fixed", "--w-sim", "0.2", "--w-prompt", "0.8"])
    _assert_one_line_error(result.returncode, result.stderr, "needs an ARE checkpoint", "ultra")
    assert result.stdout == ""


@pytest.mark.parametrize("case", ["missing path", "unknown name", "unknown dataset", "weights without fixed",
                                  "fixed without weights", "learned on are-mix"])
def test_bad_input_is_one_line_error(capsys, case, tmp_path, data_root, checkpoint_root):
    dataset, checkpoint, extra, needle = "Metafam", str(checkpoint_root / "fusion.pth"), [], ""
    if case == "missing path":
        checkpoint, needle = str(tmp_path / "nope.pth"), "no such checkpoint file"
    elif case == "unknown name":
        checkpoint, needle = "ARE-V9", "unknown checkpoint 'ARE-V9'"
    elif case == "unknown dataset":
        dataset, needle = "Metafarm", "unknown dataset 'Metafarm'"
    elif case == "weights without fixed":
        extra, needle = ["--w-sim", "0.3"], "--fusion fixed"
    elif case == "fixed without weights":
        extra, needle = ["--fusion", "fixed", "--w-sim", "0.3"], "--w-prompt"
    else:
        checkpoint, extra, needle = str(checkpoint_root / "ARE-V3.pth"), ["--fusion", "learned"], "are-mix"
    status, out, err = _run(capsys, ["evaluate", "--dataset", dataset, "--checkpoint", checkpoint,
                                     "--data-root", str(data_root), *extra])
    _assert_one_line_error(status, err, needle)
    assert out == ""


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--dataset", "Metafam", "--checkpoint", "fusion", "--split", "train"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice" in err


# ------------------------------------------------------------------------------------------- inspect


def test_inspect_fusion(capsys, checkpoint_root):
    status, out, err = _run(capsys, ["inspect", str(checkpoint_root / "fusion.pth")])
    assert status == 0, err
    assert "are-fusion" in out and "0.2250" in out and "0.7750" in out
    status, out, err = _run(capsys, ["inspect", str(checkpoint_root / "fusion.pth"), "--json"])
    assert status == 0, err
    result = json.loads(out)
    for key in ("checkpoint", "profile", "num_parameters", "num_keys", "fusion_weights", "fusion_logits",
                "similarity_enhancer", "sha256", "known_name"):
        assert key in result, key
    assert result["profile"] == "are-fusion" and result["known_name"] == "fusion"
    assert [round(w, 4) for w in result["fusion_weights"]] == [0.2250, 0.7750]
    assert [round(v, 4) for v in result["fusion_logits"]] == [-1.2168, 0.0198]
    assert result["num_keys"] > 100 and result["num_parameters"] > 100_000


def test_inspect_are_mix_shows_similarity_enhancer(capsys, checkpoint_root):
    status, out, err = _run(capsys, ["inspect", str(checkpoint_root / "ARE-V3.pth"), "--json"])
    assert status == 0, err
    result = json.loads(out)
    assert result["profile"] == "are-mix" and result["fusion_weights"] == [1.0, 0.0]
    enhancer = result["similarity_enhancer"]
    # spec §3.1, trained values of ARE-V3.pth
    assert [round(enhancer[k], 4) for k in ("theta", "lambda", "tau", "kappa")] == [0.5898, 0.0407, 0.7759, 0.6375]
    status, out, _ = _run(capsys, ["inspect", str(checkpoint_root / "ARE-V3.pth")])
    assert "θ 0.5898" in out and "λ 0.0407" in out and "τ 0.7759" in out and "κ 0.6375" in out


def test_checkpoint_names_resolve_through_env_root(capsys, monkeypatch, checkpoint_root, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty download cache
    monkeypatch.setenv("ARE_CHECKPOINT_ROOT", str(checkpoint_root))
    for name in ("ultra_3g", "semma", "ARE-V3", "ARE-V5", "fusion"):
        status, out, err = _run(capsys, ["inspect", name, "--json", "--offline"])
        assert status == 0, err
        result = json.loads(out)
        assert result["checkpoint"] == str(checkpoint_root / f"{name}.pth")
        assert result["known_name"] == name  # the local copies are the published files (sha256)
    # without a root, offline, a name is an error naming the checkpoint and where it comes from
    monkeypatch.delenv("ARE_CHECKPOINT_ROOT")
    status, out, err = _run(capsys, ["inspect", "fusion", "--offline"])
    _assert_one_line_error(status, err, "'fusion'", "downloading is off", "https://github.com/ACynj/semma/raw/")
    # --checkpoint-root on the command line works as the variable does
    status, out, err = _run(capsys, ["inspect", "fusion", "--checkpoint-root", str(checkpoint_root), "--offline"])
    assert status == 0, err
    assert "0.2250" in out


def test_python_dash_m_entry(checkpoint_root):
    result = _subprocess(["inspect", "ultra_3g", "--json", "--offline"], {"ARE_CHECKPOINT_ROOT": str(checkpoint_root)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["profile"] == "ultra"


# -------------------------------------------------------------------------------- study commands


def test_launch_stores_spec_and_known_points(study_url):
    study = optuna.load_study(study_name=STUDY, storage=study_url)
    spec = study.user_attrs["spec"]
    assert spec["dataset"] == "Metafam" and spec["mode"] == "fixed" and spec["trials"] == STUDY_TRIALS
    assert study.user_attrs["launch"]["checkpoint_sha256"].startswith("b4028f82")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == STUDY_TRIALS and all(t.state.name == "COMPLETE" for t in trials)
    known = [t.user_attrs.get("known_point") for t in trials[:3]]
    assert known == ["checkpoint", "0.2/0.8", "no enhancement"]
    assert all(isinstance(t.user_attrs["settings"], dict) for t in trials)


def test_status_json(capsys, study_url):
    status, out, err = _run(capsys, ["status", "--storage", study_url, "--json"])
    assert status == 0, err
    result = json.loads(out)
    assert result["storage"] == study_url
    (entry,) = result["studies"]
    assert entry["study"] == STUDY and entry["trials"] == {"COMPLETE": STUDY_TRIALS}
    study = optuna.load_study(study_name=STUDY, storage=study_url)
    assert entry["best"]["value"] == pytest.approx(study.best_value)
    assert entry["best"]["trial"] == study.best_trial.number
    assert set(entry["best"]["settings"]) >= {"similarity_enhancer_weight", "prompt_enhancer_weight"}
    status, out, err = _run(capsys, ["status", "--storage", study_url])
    assert status == 0 and STUDY in out and f"{study.best_value:.4f}" in out


def test_status_of_missing_storage_creates_nothing(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'none' / 'studies.db'}"
    status, out, err = _run(capsys, ["status", "--storage", url, "--json"])
    assert status == 0 and json.loads(out)["studies"] == []
    assert not (tmp_path / "none").exists()


def test_export_writes_best_settings(capsys, study_url, tmp_path):
    flags = tmp_path / "flags.yaml"
    flags.write_text("# my flags\nrun: EnhancedUltra\nsimilarity_enhancer_weight: 0.5\n")
    status, out, err = _run(capsys, ["export", STUDY, "--flags", str(flags), "--storage", study_url])
    assert status == 0, err
    best = optuna.load_study(study_name=STUDY, storage=study_url).best_trial.user_attrs["settings"]
    written = yaml.safe_load(flags.read_text())
    assert written["run"] == "EnhancedUltra" and written["use_learnable_fusion"] is False
    assert written["similarity_enhancer_weight"] == pytest.approx(best["similarity_enhancer_weight"], rel=1e-5)
    assert written["prompt_enhancer_weight"] == pytest.approx(best["prompt_enhancer_weight"], rel=1e-5)
    assert flags.read_text().startswith("# my flags\n")
    status, out, err = _run(capsys, ["export", "--all", str(tmp_path / "all"), "--storage", study_url])
    assert status == 0, err
    assert (tmp_path / "all" / "Metafam" / "flags.yaml").is_file()


def test_export_to_malformed_flags_is_one_line_error(capsys, study_url, tmp_path):
    flags = tmp_path / "flags.yaml"
    flags.write_text("run: [EnhancedUltra\nk: 0\n")
    before = flags.read_bytes()
    status, out, err = _run(capsys, ["export", STUDY, "--flags", str(flags), "--storage", study_url])
    _assert_one_line_error(status, err, str(flags))
    assert flags.read_bytes() == before


@pytest.mark.parametrize("argv, needle", [
    (["export", "Metafam/learnable", "--flags", "x.yaml"], "no study Metafam/learnable"),
    (["export", "Metafam", "--flags", "x.yaml"], "expected <dataset>/<mode>"),
    (["resume", "Metafam/learnable"], "no study Metafam/learnable"),
    (["export", STUDY], "--flags"),
])
def test_study_command_errors(capsys, study_url, argv, needle):
    status, out, err = _run(capsys, [*argv, "--storage", study_url])
    _assert_one_line_error(status, err, needle)


def test_launch_spec_file_and_resume_continue_the_study(capsys, study_url, tmp_path, data_root, text_root,
                                                        checkpoint_root, cache_dir):
    inputs = _inputs(data_root, text_root, cache_dir)
    spec = tmp_path / "Metafam.yaml"
    spec.write_text(f"dataset: Metafam\ncheckpoint: {checkpoint_root / 'fusion.pth'}\nmode: fixed\ntrials: 2\n"
                    "pruner: none\n")
    # the file says 2 trials, the command line 4: the study has them already, nothing runs
    status, out, err = _run(capsys, ["launch", str(spec), "--trials", str(STUDY_TRIALS), "--storage", study_url,
                                     *inputs])
    assert status == 0, err
    assert f"({STUDY_TRIALS} complete)" in out
    # resume on a copy of the study: its stored spec is enough; --trials raises the budget by one
    copy = tmp_path / "copy.db"
    shutil.copy(study_url[len("sqlite:///"):], copy)
    copy_url = f"sqlite:///{copy}"
    status, out, err = _run(capsys, ["resume", STUDY, "--storage", copy_url, "--trials", str(STUDY_TRIALS + 1),
                                     *inputs])
    assert status == 0, err
    study = optuna.load_study(study_name=STUDY, storage=copy_url)
    assert len(study.get_trials(deepcopy=False)) == STUDY_TRIALS + 1
    assert study.user_attrs["spec"]["trials"] == STUDY_TRIALS + 1
    # a bad spec file is one line naming the file and key
    spec.write_text("dataset: Metafam\ncheckpoint: fusion\nmode: sideways\n")
    status, out, err = _run(capsys, ["launch", str(spec), "--storage", copy_url])
    _assert_one_line_error(status, err, str(spec), "mode")


def test_launch_refuses_ultra_and_another_checkpoint(capsys, study_url, data_root, text_root, checkpoint_root,
                                                     cache_dir):
    inputs = _inputs(data_root, text_root, cache_dir)
    status, out, err = _run(capsys, ["launch", "--dataset", "Metafam", "--checkpoint",
                                     str(checkpoint_root / "ultra_3g.pth"), "--storage", study_url, *inputs])
    _assert_one_line_error(status, err, "needs an ARE checkpoint")
    status, out, err = _run(capsys, ["launch", "--dataset", "Metafam", "--checkpoint",
                                     str(checkpoint_root / "ARE-V5.pth"), "--storage", study_url, *inputs])
    _assert_one_line_error(status, err, "another checkpoint")


def test_download_is_verified_and_atomic(tmp_path, checkpoint_root):
    # file:// URLs go through the same urllib code path as the published https:// ones (no network here)
    from are_model.checkpoint import CheckpointError
    from search.checkpoints import (KNOWN_CHECKPOINTS, CheckpointDownloadError, download_checkpoint,
                                    resolve_checkpoint)

    published = KNOWN_CHECKPOINTS["fusion"]
    assert published.url.startswith("https://github.com/ACynj/semma/raw/") and len(published.sha256) == 64
    good = dataclasses.replace(published, url=(checkpoint_root / "fusion.pth").as_uri())
    cache = tmp_path / "cache"
    path = download_checkpoint(good, cache)
    assert path == cache / "fusion.pth" and path.read_bytes() == (checkpoint_root / "fusion.pth").read_bytes()
    wrong = dataclasses.replace(published, name="ARE-V3", url=(checkpoint_root / "ARE-V5.pth").as_uri(),
                                sha256=KNOWN_CHECKPOINTS["ARE-V3"].sha256)
    with pytest.raises(CheckpointDownloadError, match=r"'ARE-V3' from file://.*ARE-V5\.pth: sha256"):
        download_checkpoint(wrong, cache)
    missing = dataclasses.replace(published, url=(tmp_path / "gone.pth").as_uri())
    with pytest.raises(CheckpointDownloadError, match=r"cannot download checkpoint 'fusion' from file://"):
        download_checkpoint(missing, tmp_path / "cache2")
    assert sorted(p.name for p in cache.iterdir()) == ["fusion.pth"]  # no partial files left behind
    assert not any((tmp_path / "cache2").iterdir())
    # a verified file in the cache is used by name, without a root and without downloading
    assert resolve_checkpoint("fusion", cache_dir=cache, download=False) == cache / "fusion.pth"
    with pytest.raises(CheckpointError, match="downloading is off"):
        resolve_checkpoint("ARE-V5", cache_dir=cache, download=False)
