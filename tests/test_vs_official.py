"""bench/vs_official.py: the torch_scatter stand-in it writes for the official environment, and one tiny
side-by-side run (32 FBNELL test queries, 1 round, 1 thread) against the official ULTRA checkout.

The run needs ../shared/reference/ULTRA (skipped when that checkout is absent), the data and checkpoint roots,
a C++ compiler and ninja (ULTRA's rspmm kernel is JIT-built on first use, into .cache/ultra-official/), and
builds .cache/ultra-official-venv on first use (easydict from PyPI, or the stand-in when offline).
It takes about 30 s once the environment and the kernel exist.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ULTRA = ROOT.parent / "shared" / "reference" / "ULTRA"


def load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_vs_official", ROOT / "bench" / "vs_official.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_scatter_standin_matches_torch():
    script = load_script()
    shim = types.ModuleType("torch_scatter_shim")
    exec(script.TORCH_SCATTER_SHIM, shim.__dict__)
    index = torch.tensor([0, 2, 2, 1, 0])
    src = torch.tensor([1, 1, 1, 1, 1])
    assert shim.scatter_add(src, index).tolist() == [2, 1, 2]
    assert shim.scatter_add(src, index, dim_size=5).tolist() == [2, 1, 2, 0, 0]
    values = torch.arange(10.0).view(5, 2)
    assert torch.equal(shim.scatter(values, index, dim=0, reduce="mean"),
                       torch.tensor([[4.0, 5.0], [6.0, 7.0], [3.0, 4.0]]))
    assert torch.equal(shim.scatter(values, index, dim=0, reduce="max"),
                       torch.tensor([[8.0, 9.0], [6.0, 7.0], [4.0, 5.0]]))


def test_vs_official_tiny_run(data_root, checkpoint_root, tmp_path):
    if not (ULTRA / "script" / "run.py").is_file():
        pytest.skip(f"no official ULTRA checkout at {ULTRA}")
    env = dict(os.environ, ARE_DATA_ROOT=str(data_root), ARE_CHECKPOINT_ROOT=str(checkpoint_root),
               ARE_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "vs_official.py"), "--device", "cpu", "--dataset",
                          "FBNELL", "--threads", "1", "--rounds", "1", "--limit-queries", "32"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in ("official_qps", "ours_qps", "ratio", "ranks_equal", "ranks_exactly_equal", "tie_rule", "dataset",
                "split", "threads", "device", "rounds", "queries", "official_batch_size", "ours_batch_size"):
        assert key in result, key
    assert result["dataset"] == "FBNELL:FBNELL_v1" and result["split"] == "test" and result["queries"] == 32
    assert result["threads"] == 1 and result["official_threads"] == 1 and result["ours_threads"] == 1
    assert result["official_qps"] > 0 and result["ours_qps"] > 0
    assert result["triples_equal"] and result["ranks_stable_across_rounds"]
    assert result["ranks_equal"], result.get("first_mismatches")
    assert result["mrr_official"] == result["mrr_ours"] or not result["ranks_exactly_equal"]
    assert "queries/s" in run.stderr


def test_finetune_vs_official_tiny_run(data_root, checkpoint_root, tmp_path):
    """bench/finetune_vs_official.py end to end on 2 batches of FB15k237Inductive:v1, one seed: both sides load
    the same model (equal zero-shot test MRR), both fine-tune (the MRR moves), and the table is written."""
    if not (ULTRA / "script" / "run.py").is_file():
        pytest.skip(f"no official ULTRA checkout at {ULTRA}")
    env = dict(os.environ, ARE_DATA_ROOT=str(data_root), ARE_CHECKPOINT_ROOT=str(checkpoint_root),
               ARE_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "finetune_vs_official.py"), "--dataset",
                          "FB15k237Inductive:v1", "--seeds", "0", "--bpe", "2", "--fresh", "--jobs", "2",
                          "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    (line,) = run.stdout.strip().splitlines()
    row = json.loads(line)
    assert row["dataset"] == "FB15k237Inductive:v1" and row["batches_per_epoch"] == 2
    official, ours = row["official"], row["ours"]
    assert official["batches"] == ours["batches"] == 2 and official["seeds"] == ours["seeds"] == [0]
    assert abs(official["zero_shot_mrr"] - ours["zero_shot_mrr"]) < 1e-3
    for side in (official, ours):
        assert side["mrr"][0] != pytest.approx(side["zero_shot_mrr"], abs=1e-6)
    assert row["within"] == (row["band"][0] <= ours["mrr"][0] <= row["band"][1])
    assert "| FB15k237Inductive:v1 | 1 × 2 batches | official |" in (tmp_path / "out" / "table.md").read_text()
