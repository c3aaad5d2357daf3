"""Benchmark: are-search versus the naive per-trial-process grid, on one dataset and checkpoint.

(a) naive: every trial is a fresh process (`are-search evaluate --json`) that loads everything and ranks
    the whole validation split; the 11 x 11 grid of (w_sim, w_prompt) in {0, 0.1, ..., 1}² is visited in
    a seeded random order;
(b) are-search: `run_local` with its sampler (TPE, warm-started), cached relation side and staged,
    pruned evaluation, on a fresh SQLite study.

The grid's best validation MRR is computed first through the cached engine (same numbers as (a), which
the benchmark checks point by point). Then each method runs until its best is within --tolerance of the
grid's best (naive: the grid is visited only that far; pass --full-grid to visit all 121 points).
Prints one JSON line and a table: wall time to the target, the ratio, trials and query evaluations used.

    python bench/search_speed.py [--dataset Metafam] [--checkpoint fusion] [--trials 40] [--seed 0]

Needs ARE_DATA_ROOT, ARE_TEXT_ROOT and ARE_CHECKPOINT_ROOT (or the matching flags).
"""
from __future__ import annotations

import argparse
import json
import math
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = [round(0.1 * k, 1) for k in range(11)]


def same_mrr(a: float, b: float) -> bool:
    """Equal up to the order in which the mean of 1/rank was summed (identical ranks give |a - b| < 1e-12)."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)


def naive_trial(args: argparse.Namespace, w_sim: float, w_prompt: float) -> float:
    command = [sys.executable, "-m", "search", "evaluate", "--dataset", args.dataset, "--checkpoint", args.checkpoint,
               "--split", "valid", "--fusion", "fixed", "--w-sim", str(w_sim), "--w-prompt", str(w_prompt),
               "--encoder", args.encoder, "--json", "-q"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"search_speed: naive trial ({w_sim}, {w_prompt}) failed: {run.stderr.strip()}")
    return json.loads(run.stdout)["mrr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Metafam")
    parser.add_argument("--checkpoint", default="fusion")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--full-grid", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    from are_model.pipeline import TextOptions
    from search.checkpoints import resolve_checkpoint
    from search.engine import SearchContext, stage_ends
    from search.runners.local import run_local
    from search.studies import StudySpec

    checkpoint_path = str(resolve_checkpoint(args.checkpoint, root=os.environ.get("ARE_CHECKPOINT_ROOT")))
    text = TextOptions(root=os.environ.get("ARE_TEXT_ROOT"), encoder=args.encoder)

    # The grid's values through the cached engine: the target both methods race to.
    context = SearchContext(args.dataset, checkpoint_path, text=text)
    points = [(s, p) for s in GRID for p in GRID]
    grid = {point: context.evaluate("valid", point)[0] for point in points}
    grid_best_point = max(grid, key=grid.get)
    target = grid[grid_best_point] - args.tolerance
    queries = len(context.split("valid").queries)
    del context

    # (a) naive: fresh process per trial, seeded random order.
    order = points[:]
    random.Random(args.seed).shuffle(order)
    naive_start, naive_time, naive_trials, mismatches, naive_seen = time.perf_counter(), None, 0, [], {}
    for point in order:
        value = naive_trial(args, *point)
        naive_trials += 1
        naive_seen[point] = value
        if not same_mrr(value, grid[point]):
            mismatches.append({"point": point, "naive": value, "engine": grid[point]})
        if naive_time is None and value >= target:
            naive_time = time.perf_counter() - naive_start
            if not args.full_grid:
                break

    # (b) are-search on a fresh study.
    with tempfile.TemporaryDirectory() as folder:
        storage = f"sqlite:///{folder}/bench.db"
        spec = StudySpec(dataset=args.dataset, checkpoint=args.checkpoint, mode="fixed", trials=args.trials,
                         seed=args.seed, sampler="tpe", pruner="median")
        search_start = time.time()
        study = run_local(spec, storage, data_root=os.environ.get("ARE_DATA_ROOT"), text_root=text.root,
                          checkpoint_path=checkpoint_path, encoder=args.encoder, show_progress=False)
        trials = sorted(study.trials, key=lambda t: t.number)
    ends = stage_ends(queries, 4)
    search_time, search_trials, search_queries, best, same_setting = None, 0, 0, float("-inf"), []
    for trial in trials:
        if trial.datetime_complete is None:
            continue
        search_trials += 1
        reported = len(trial.intermediate_values)
        search_queries += ends[min(max(reported, 1), len(ends)) - 1]
        settings = trial.user_attrs.get("settings", {})
        point = (settings.get("similarity_enhancer_weight"), settings.get("prompt_enhancer_weight"))
        if trial.value is not None and trial.state.name == "COMPLETE":
            if point in grid:
                same_setting.append({"point": point, "are_search": trial.value, "grid": grid[point],
                                     "naive": naive_seen.get(point)})
            best = max(best, trial.value)
            if search_time is None and best >= target:
                search_time = trial.datetime_complete.timestamp() - search_start
                search_trials_to_target, search_queries_to_target = search_trials, search_queries
    identical = all(same_mrr(row["are_search"], row["grid"]) and (row["naive"] is None or same_mrr(row["naive"], row["grid"]))
                    for row in same_setting)
    result = {
        "benchmark": "search_speed", "dataset": args.dataset, "checkpoint": args.checkpoint, "encoder": args.encoder,
        "threads": torch.get_num_threads(), "validation_queries": queries,
        "grid_best": {"point": grid_best_point, "mrr": round(grid[grid_best_point], 5)}, "tolerance": args.tolerance,
        "naive": {"seconds_to_target": naive_time, "trials_to_target": naive_trials,
                  "query_evaluations": naive_trials * queries},
        "are_search": {"seconds_to_target": search_time,
                       "trials_to_target": search_trials_to_target if search_time else None,
                       "query_evaluations_to_target": search_queries_to_target if search_time else None,
                       "best_mrr": round(best, 5), "trials": search_trials},
        "speedup": (naive_time / search_time) if naive_time and search_time else None,
        "identical_mrr_for_identical_settings": identical and not mismatches,
        "checked_settings": len(same_setting) + len(naive_seen), "mismatches": mismatches,
    }
    print(json.dumps(result))
    print(f"{'method':<12} {'s to target':>12} {'trials':>7} {'query evals':>12}")
    print(f"{'naive':<12} {naive_time or float('nan'):>12.1f} {naive_trials:>7} {naive_trials * queries:>12}")
    print(f"{'are-search':<12} {search_time or float('nan'):>12.1f} {result['are_search']['trials_to_target'] or 0:>7} "
          f"{result['are_search']['query_evaluations_to_target'] or 0:>12}")
    print(f"speed-up {result['speedup'] or float('nan'):.1f}x; grid best {grid[grid_best_point]:.4f} at {grid_best_point}; "
          f"identical MRR for identical settings: {result['identical_mrr_for_identical_settings']}")


if __name__ == "__main__":
    main()
