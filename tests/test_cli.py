"""The are-search command line on real data and real checkpoints: results on stdout, one-line errors.

Most commands run in-process through ``search.cli.main``; those whose behaviour is about the process
(exit status, what reaches stderr, a read-only mount, the entry points) run as ``python -m search``. A
tiny fixed-mode study (3 trials on Metafam with fusion.pth: the three known points) is launched once
through the CLI into a temporary SQLite file and shared by the study commands; the tests that add
trials work on copies of it.

Study names are canonical: ``--dataset metafam`` makes the study ``Metafam:Metafam/fixed``, and every
command that takes a study finds it as ``Metafam/fixed`` too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

import search
from search.cli import main

REPO = Path(__file__).resolve().parents[1]
STUDY = "Metafam/fixed"  # as a user types it
CANONICAL = "Metafam:Metafam/fixed"  # as it is stored
STUDY_TRIALS = 3
KNOWN_POINTS = ["checkpoint", "0.2/0.8", "no enhancement"]
COMMANDS = ("evaluate", "inspect", "launch", "resume", "export", "status", "report")


def _inputs(data_root: Path, text_root: Path, cache_dir: Path) -> list[str]:
    return ["--data-root", str(data_root), "--text-root", str(text_root), "--cache-dir", str(cache_dir),
            "--device", "cpu", "--threads", "2"]


def small_study(tmp_path_factory, data_root: Path, text_root: Path, checkpoint_root: Path, cache_dir: Path) -> str:
    """Storage URL of the session's tiny Metafam/fixed study (launched through the CLI on first use).

    The dataset is given in lower case (``metafam``): the study is still ``Metafam:Metafam/fixed``.
    """
    folder = tmp_path_factory.getbasetemp() / "small-study"
    folder.mkdir(exist_ok=True)
    url = f"sqlite:///{folder / 'studies.db'}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["-q", "launch", "--dataset", "metafam", "--checkpoint", str(checkpoint_root / "fusion.pth"),
                       "--mode", "fixed", "--trials", str(STUDY_TRIALS), "--pruner", "none", "--seed", "0",
                       "--storage", url, "--flags", str(folder / "launch-flags.yaml"),
                       *_inputs(data_root, text_root, cache_dir)])
    lines = out.getvalue().splitlines()
    assert status == 0, out.getvalue()
    assert lines[0] == f"storage: {url}", lines
    summary = _study_line(lines)
    assert summary.startswith(f"study {CANONICAL}: best trial "), lines
    assert f"({STUDY_TRIALS} complete; {STUDY_TRIALS} finished in this run)" in summary, lines
    # the next step names the flags file this launch wrote, not a default one
    assert f"--flags {folder / 'launch-flags.yaml'} --storage" in lines[-1], lines
    return url


@pytest.fixture(scope="module")
def study_url(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir) -> str:
    return small_study(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir)


def _study_line(lines: list[str]) -> str:
    """The one result line of launch / resume about the study (other lines are notes)."""
    (line,) = [line for line in lines if line.startswith(f"study {CANONICAL}: ")]
    return line


def _db_file(url: str) -> Path:
    assert url.startswith("sqlite:///")
    return Path(url[len("sqlite:///"):])


def _copy_study(url: str, dest: Path) -> str:
    shutil.copy(_db_file(url), dest)
    return f"sqlite:///{dest}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"are-search( campaign)? [a-z]+: error: ", lines[0]), err  # the command's own prefix
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _subprocess(argv: list[str], env_extra: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "search", *argv], cwd=cwd, env=env, capture_output=True,
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


@pytest.mark.parametrize("case", ["missing path", "unknown name", "misspelt name", "unknown dataset",
                                  "weights without fixed", "fixed without weights", "learned on are-mix"])
def test_bad_input_is_one_line_error(capsys, case, tmp_path, data_root, checkpoint_root):
    dataset, checkpoint, extra, needle = "Metafam", str(checkpoint_root / "fusion.pth"), [], ""
    if case == "missing path":
        checkpoint, needle = str(tmp_path / "nope.pth"), "no such checkpoint file"
    elif case == "unknown name":
        checkpoint, needle = "ARE-V9", "unknown checkpoint 'ARE-V9'"
    elif case == "misspelt name":
        checkpoint, needle = "fusoin", "unknown checkpoint 'fusoin': did you mean 'fusion'?"
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
    # the symbols are explained on one line after the table
    (legend,) = [line for line in out.splitlines() if line.startswith("similarity enhancer: ")]
    assert all(f"{symbol} " in legend for symbol in "θλτκ") and "softmax temperature" in legend
    assert out.rstrip("\n").splitlines()[-1] == legend
    status, out, _ = _run(capsys, ["inspect", str(checkpoint_root / "ultra_3g.pth")])
    assert status == 0 and "similarity enhancer: " not in out  # no enhancer, no legend


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
    assert optuna.get_all_study_names(study_url) == [CANONICAL]  # one study, under the canonical name
    study = optuna.load_study(study_name=CANONICAL, storage=study_url)
    spec = study.user_attrs["spec"]
    assert spec["dataset"] == "Metafam:Metafam" and spec["mode"] == "fixed" and spec["trials"] == STUDY_TRIALS
    assert study.user_attrs["launch"]["checkpoint_sha256"].startswith("b4028f82")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == STUDY_TRIALS and all(t.state.name == "COMPLETE" for t in trials)
    assert [t.user_attrs.get("known_point") for t in trials[:3]] == KNOWN_POINTS
    assert all(isinstance(t.user_attrs["settings"], dict) for t in trials)


def test_status_json_and_table(capsys, study_url):
    status, out, err = _run(capsys, ["status", "--storage", study_url, "--json"])
    assert status == 0, err
    result = json.loads(out)  # exactly one JSON document on stdout
    assert set(result) == {"storage", "state", "studies"}
    assert result["storage"] == study_url and result["state"] == "ready"
    (entry,) = result["studies"]
    assert entry["study"] == CANONICAL and entry["trials"] == {"COMPLETE": STUDY_TRIALS}
    assert entry["budget"] == STUDY_TRIALS and entry["checkpoint"].endswith("fusion.pth")
    study = optuna.load_study(study_name=CANONICAL, storage=study_url)
    assert entry["best"]["value"] == pytest.approx(study.best_value)
    assert entry["best"]["trial"] == study.best_trial.number
    assert set(entry["best"]["settings"]) >= {"similarity_enhancer_weight", "prompt_enhancer_weight"}
    status, out, err = _run(capsys, ["status", "--storage", study_url])
    lines = out.splitlines()
    assert status == 0 and lines[0] == f"storage: {study_url}"
    (row,) = [line for line in lines if line.startswith(CANONICAL + " ")]  # its row of the table
    assert f"{STUDY_TRIALS}/{STUDY_TRIALS}" in row and f"{study.best_value:.4f}" in row


def test_status_of_missing_storage_creates_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path: printed as an absolute URL
    status, out, err = _run(capsys, ["status", "--storage", "none/studies.db"])
    assert status == 0, err
    assert out == f"storage: sqlite:///{tmp_path / 'none' / 'studies.db'} (does not exist): no studies\n"
    status, out, err = _run(capsys, ["status", "--storage", "none/studies.db", "--json"])
    assert status == 0, err
    assert json.loads(out) == {"storage": f"sqlite:///{tmp_path / 'none' / 'studies.db'}", "state": "missing",
                               "studies": []}
    assert list(tmp_path.iterdir()) == []


def test_status_of_an_empty_file_leaves_it_empty(capsys, tmp_path):
    empty = tmp_path / "s.db"
    empty.touch()
    url = f"sqlite:///{empty}"
    status, out, err = _run(capsys, ["status", "--storage", url])
    assert status == 0, err
    assert out == f"storage: {url} (holds no Optuna schema): no studies\n"
    status, out, err = _run(capsys, ["status", "--storage", url, "--json"])
    assert status == 0 and json.loads(out) == {"storage": url, "state": "empty", "studies": []}
    status, out, err = _run(capsys, ["export", STUDY, "--flags", str(tmp_path / "flags.yaml"), "--storage", url])
    _assert_one_line_error(status, err, url, "no Optuna schema")
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # no lock, journal or flags file


def test_export_writes_best_settings(capsys, study_url, tmp_path):
    flags = tmp_path / "flags.yaml"
    flags.write_text("# my flags\nrun: EnhancedUltra\nsimilarity_enhancer_weight: 0.5\n")
    status, out, err = _run(capsys, ["export", STUDY, "--flags", str(flags), "--storage", study_url])
    assert status == 0, err
    best = optuna.load_study(study_name=CANONICAL, storage=study_url).best_trial
    lines = out.splitlines()
    assert lines[0] == f"storage: {study_url}"
    assert lines[1].startswith(f"exported {CANONICAL} (trial {best.number}, validation MRR {best.value:.4f}) to "
                               f"{flags}: "), lines[1]
    settings = best.user_attrs["settings"]
    written = yaml.safe_load(flags.read_text())
    assert written["run"] == "EnhancedUltra" and written["use_learnable_fusion"] is False
    assert written["similarity_enhancer_weight"] == pytest.approx(settings["similarity_enhancer_weight"], rel=1e-5)
    assert written["prompt_enhancer_weight"] == pytest.approx(settings["prompt_enhancer_weight"], rel=1e-5)
    assert flags.read_text().startswith("# my flags\n")
    status, out, err = _run(capsys, ["export", "--all", str(tmp_path / "all"), "--storage", study_url])
    assert status == 0, err
    per_dataset = tmp_path / "all" / "Metafam_Metafam" / "flags.yaml"  # ':' in a dataset name becomes '_'
    assert per_dataset.is_file()
    assert out.splitlines()[1].startswith(f"exported {CANONICAL} (trial {best.number}, ") and str(per_dataset) in out
    assert yaml.safe_load(per_dataset.read_text())["prompt_enhancer_weight"] == written["prompt_enhancer_weight"]


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


def _read_only_folder(tmp_path: Path) -> str | None:
    """How this process can show a command a read-only folder: 'mount' (root: a read-only bind mount in
    a mount namespace), 'chmod' (not root: a folder without write permission), or None."""
    if os.geteuid() != 0:
        return "chmod"
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    return "mount" if probe.returncode == 0 else None


def test_status_and_export_on_a_read_only_folder(study_url, tmp_path):
    source, mounted, outputs = tmp_path / "source", tmp_path / "mounted", tmp_path / "out"
    for folder in (source, mounted, outputs):
        folder.mkdir()
    shutil.copy(_db_file(study_url), source / "s.db")
    before = _sha(source / "s.db")
    how = _read_only_folder(tmp_path)
    if how is None:
        pytest.skip("neither a read-only bind mount (unshare -m) nor a read-only permission is possible here")
    folder = mounted if how == "mount" else source
    url = f"sqlite:///{folder / 's.db'}"
    flags = outputs / "flags.yaml"
    python = shlex.quote(sys.executable)
    commands = {
        "status": f"status --storage {url}",
        "status_json": f"status --json --storage {url}",
        "export": f"export {STUDY} --flags {shlex.quote(str(flags))} --storage {url}",
    }
    script = " ; ".join(
        f"{python} -m search {args} >{outputs / name}.out 2>{outputs / name}.err; echo $? >{outputs / name}.rc"
        for name, args in commands.items())
    if how == "mount":
        script = (f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(mounted))} && "
                  f"mount -o remount,bind,ro {shlex.quote(str(mounted))} && "
                  f"( touch {shlex.quote(str(mounted / 'probe'))} 2>/dev/null && echo writable || echo read-only ) "
                  f">{outputs / 'mount'} ; {script}")
        argv = ["unshare", "-m", "sh", "-c", script]
    else:
        (source / "s.db").chmod(0o444)
        source.chmod(0o555)
        argv = ["sh", "-c", script]
    try:
        run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        source.chmod(0o755)
    assert run.returncode == 0, run.stderr
    if how == "mount":
        assert (outputs / "mount").read_text().strip() == "read-only"
    result = {name: ((outputs / f"{name}.rc").read_text().strip(), (outputs / f"{name}.out").read_text(),
                     (outputs / f"{name}.err").read_text()) for name in commands}
    for name, (rc, out, err) in result.items():
        assert rc == "0", f"{name}: {err}"
        assert "Traceback" not in err, f"{name}: {err}"
    rc, out, err = result["status"]
    assert out.splitlines()[0] == f"storage: {url}" and any(line.startswith(CANONICAL) for line in out.splitlines())
    listed = json.loads(result["status_json"][1])
    assert listed["state"] == "ready" and [s["study"] for s in listed["studies"]] == [CANONICAL]
    assert listed["studies"][0]["trials"] == {"COMPLETE": STUDY_TRIALS}
    rc, out, err = result["export"]
    assert out.splitlines()[1].startswith(f"exported {CANONICAL} (trial "), out
    assert yaml.safe_load(flags.read_text())["use_learnable_fusion"] is False
    assert flags.read_text().endswith("\n")
    # nothing was created beside the database (no s.db.lock, no journal) and the database is unchanged
    assert sorted(p.name for p in source.iterdir()) == ["s.db"]
    assert _sha(source / "s.db") == before


def test_one_study_whatever_the_spelling_and_resume(capsys, study_url, tmp_path, monkeypatch, data_root, text_root,
                                                   checkpoint_root, cache_dir):
    """launch --dataset metafam (the fixture, 3 trials), then Metafam (4), then Metafam:Metafam (5) on the
    same storage: one study, each known point run once; resume Metafam/fixed --trials 6 continues it."""
    inputs = _inputs(data_root, text_root, cache_dir)
    monkeypatch.chdir(tmp_path)
    url = _copy_study(study_url, tmp_path / "copy.db")
    launch = ["launch", "--checkpoint", str(checkpoint_root / "fusion.pth"), "--pruner", "none", *inputs]
    for trials, dataset in ((4, "Metafam"), (5, "Metafam:Metafam")):
        # a relative storage path is printed as the absolute URL
        status, out, err = _run(capsys, [*launch, "--dataset", dataset, "--trials", str(trials), "--storage", "copy.db"])
        assert status == 0, err
        lines = out.splitlines()
        assert lines[0] == f"storage: {url}", lines
        summary = _study_line(lines)
        assert summary.startswith(f"study {CANONICAL}: best trial ") and "; 1 finished in this run)" in summary, lines
    assert optuna.get_all_study_names(url) == [CANONICAL]
    study = optuna.load_study(study_name=CANONICAL, storage=url)
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    known = [t.user_attrs["known_point"] for t in trials if "known_point" in t.user_attrs]
    assert sorted(known) == sorted(KNOWN_POINTS)  # each once: a study is never re-enqueued
    # resume: its stored spec is enough; --trials raises the budget by one
    status, out, err = _run(capsys, ["resume", STUDY, "--storage", url, "--trials", "6", *inputs])
    assert status == 0, err
    assert out.splitlines()[0] == f"storage: {url}"
    study = optuna.load_study(study_name=CANONICAL, storage=url)
    assert [t.state.name for t in study.get_trials(deepcopy=False)] == ["COMPLETE"] * 6
    assert study.user_attrs["spec"]["trials"] == 6
    assert optuna.get_all_study_names(url) == [CANONICAL]


def test_launch_spec_file(capsys, study_url, tmp_path, data_root, text_root, checkpoint_root, cache_dir):
    inputs = _inputs(data_root, text_root, cache_dir)
    spec = tmp_path / "Metafam.yaml"
    spec.write_text(f"dataset: Metafam\ncheckpoint: {checkpoint_root / 'fusion.pth'}\nmode: fixed\ntrials: 2\n"
                    "pruner: none\n")
    # the file says 2 trials, the command line 3: the study has them already, nothing runs
    url = _copy_study(study_url, tmp_path / "copy.db")
    status, out, err = _run(capsys, ["launch", str(spec), "--trials", str(STUDY_TRIALS), "--storage", url, *inputs])
    assert status == 0, err
    assert out.splitlines()[0] == f"storage: {url}"
    assert f"({STUDY_TRIALS} complete; 0 finished in this run)" in out
    # a bad value in a spec file is one line naming the file and key
    spec.write_text("dataset: Metafam\ncheckpoint: fusion\nmode: sideways\n")
    status, out, err = _run(capsys, ["launch", str(spec), "--storage", url])
    _assert_one_line_error(status, err, str(spec), "mode")


def test_spec_with_a_repeated_key_is_one_line_error(tmp_path):
    spec = tmp_path / "Metafam.yaml"
    spec.write_text("dataset: Metafam\ncheckpoint: fusion\ntrials: 40\ntrials: 2\n")
    result = _subprocess(["launch", str(spec), "--storage", str(tmp_path / "s.db")])
    _assert_one_line_error(result.returncode, result.stderr, f"{spec}:4", "duplicate key", "'trials'")
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Metafam.yaml"]  # no storage made


def test_spec_reads_yaml_1_2_numbers(tmp_path):
    from search.study.spec import load_study_spec

    spec = tmp_path / "Metafam.yaml"
    spec.write_text("dataset: metafam\ncheckpoint: fusion\nspace:\n  similarity_enhancer_weight: [1e-4, 1]\n"
                    "  prompt_enhancer_weight: 5e-1\n")
    loaded = load_study_spec(spec)
    low, high = loaded.space["similarity_enhancer_weight"]
    assert isinstance(low, float) and low == pytest.approx(1e-4) and high == 1
    assert loaded.space["prompt_enhancer_weight"] == pytest.approx(0.5)
    assert loaded.dataset == "Metafam:Metafam"


def test_launch_refuses_ultra_and_another_checkpoint(capsys, study_url, data_root, text_root, checkpoint_root,
                                                     cache_dir):
    inputs = _inputs(data_root, text_root, cache_dir)
    status, out, err = _run(capsys, ["launch", "--dataset", "Metafam", "--checkpoint",
                                     str(checkpoint_root / "ultra_3g.pth"), "--storage", study_url, *inputs])
    _assert_one_line_error(status, err, "needs an ARE checkpoint")
    status, out, err = _run(capsys, ["launch", "--dataset", "Metafam", "--checkpoint",
                                     str(checkpoint_root / "ARE-V5.pth"), "--storage", study_url, *inputs])
    _assert_one_line_error(status, err, "another checkpoint")


def test_download_is_verified_and_atomic(tmp_path, checkpoint_root, monkeypatch):
    # file:// URLs go through the same urllib code path as the published https:// ones (no network here)
    from are_model.checkpoint import CheckpointError
    from search.inputs.checkpoints import (KNOWN_CHECKPOINTS, CheckpointDownloadError, download_checkpoint,
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
    # a failed download with no checkpoint root set says where a local copy would be read from
    monkeypatch.setitem(KNOWN_CHECKPOINTS, "fusion", missing)
    with pytest.raises(CheckpointDownloadError) as error:
        resolve_checkpoint("fusion", cache_dir=tmp_path / "cache3")
    assert str(error.value).startswith("cannot download checkpoint 'fusion' from file://")
    assert str(error.value).endswith("; no checkpoint root is set: point --checkpoint-root or ARE_CHECKPOINT_ROOT at "
                                     "a folder that holds fusion.pth")
    monkeypatch.undo()
    # a verified file in the cache is used by name, without a root and without downloading
    assert resolve_checkpoint("fusion", cache_dir=cache, download=False) == cache / "fusion.pth"
    with pytest.raises(CheckpointError, match="downloading is off"):
        resolve_checkpoint("ARE-V5", cache_dir=cache, download=False)


# ------------------------------------------------------------------------- entry points and streams


def test_version_prints_the_version():
    script = Path(sys.executable).with_name("are-search")
    argv = [str(script), "--version"] if script.is_file() else [sys.executable, "-m", "search", "--version"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"are-search {search.__version__}\n"
    assert search.__version__.count(".") == 2


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def test_help_of_every_command_shows_an_example_and_defaults(capsys):
    from search.study.spec import DEFAULTS

    top = _help(capsys, [])
    for command in COMMANDS:
        assert command in top, command
        text = _help(capsys, [command])
        assert f"usage: are-search {command}" in text
        assert "example" in text and f"are-search {command} " in text.split("example", 1)[1], command
    launch = _help(capsys, ["launch"])
    assert f"(default: {DEFAULTS['trials']})" in launch
    assert f"default: {DEFAULTS['sampler']}" in launch and f"default: {DEFAULTS['pruner']}" in launch
    assert "default: the stored one" in _help(capsys, ["resume"])
    assert "(default: 2000)" in _help(capsys, ["report"])


def test_results_on_stdout_logs_on_stderr(study_url, checkpoint_root):
    for argv in (["-vv", "status", "--json", "--storage", study_url], ["status", "-v", "--json", "--storage", study_url]):
        result = _subprocess(argv)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["studies"][0]["study"] == CANONICAL  # stdout is exactly one JSON document
    # a launch with nothing left to run, -v: INFO logs on stderr, the two result lines alone on stdout
    result = _subprocess(["-v", "launch", "--dataset", "Metafam", "--checkpoint", str(checkpoint_root / "fusion.pth"),
                          "--trials", str(STUDY_TRIALS), "--pruner", "none", "--storage", study_url, "--device", "cpu"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"storage: {study_url}" and _study_line(lines).endswith("0 finished in this run)"), lines
    assert not [line for line in lines if re.match(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) ", line)], lines
    assert re.search(r"^\d\d:\d\d:\d\d INFO ", result.stderr, re.M) and "storage:" not in result.stderr


def test_a_reader_that_goes_away_is_no_bad_input(data_root, text_root):
    """`are-search datasets | head`: the reader closes the pipe; the command stops quietly with 141 (as a command
    killed by SIGPIPE would), not 'error: [Errno 32] Broken pipe' and the bad-input status 2."""
    env = {**os.environ, "ARE_DATA_ROOT": str(data_root), "ARE_TEXT_ROOT": str(text_root)}
    process = subprocess.Popen([sys.executable, "-m", "search", "datasets"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # gone before the first line is written: every write meets EPIPE
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141, err.decode()
    assert b"error" not in err and b"Traceback" not in err, err.decode()
