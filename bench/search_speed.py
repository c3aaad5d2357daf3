"""Benchmark: are-search versus the naive per-trial-process grid, on one dataset and checkpoint.

(a) naive: every trial is a fresh process (`are-search evaluate --json`) that loads everything and ranks
    the whole validation split; the 11 x 11 grid of (w_sim, w_prompt) in {0, 0.1, ..., 1}² is visited in
    a seeded random order;
(b) are-search: `run_local` with its sampler (by default the GP that learns from pruned trials,
    warm-started with the known points), cached relation side and staged, pruned evaluation, on a
    fresh SQLite study; run --repeats times with seeds seed, seed+1, ... (the median is compared).

The grid's best validation MRR is computed first through the cached engine (same numbers as (a), which
the benchmark checks point by point). Then each method runs until its best is within --tolerance of the
grid's best (naive: the grid is visited only that far; pass --full-grid to visit all 121 points).
Prints one JSON line and a table: wall time to the target, the ratio, trials and query evaluations used.
One seeded order is one draw: the naive figure is also given as its expectation over random orders,
(mean seconds per naive trial) x (121 + 1) / (m + 1) for m grid points within the tolerance.

    python bench/search_speed.py [--dataset Metafam] [--checkpoint fusion] [--trials 40] [--seed 0] [--repeats 3]
    python bench/search_speed.py --grid-points 3 --trials 4 --repeats 1 --tolerance 1   # a quick check that it runs

The roots come from --data-root / --text-root / --checkpoint-root / --cache-dir, else ARE_DATA_ROOT,
ARE_TEXT_ROOT, ARE_CHECKPOINT_ROOT, ARE_CACHE_DIR (read once, by search.options.LoadOptions.resolve).
"""
from __future__ import annotations

import argparse
import json
import math
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

def grid_values(points: int) -> list[float]:
    """``points`` weights evenly spread over [0, 1] (11: 0, 0.1, ..., 1)."""
    return [round(k / (points - 1), 4) for k in range(points)] if points > 1 else [0.0]


def same_mrr(a: float, b: float) -> bool:
    """Equal up to the order in which the mean of 1/rank was summed (identical ranks give |a - b| < 1e-12)."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)


def naive_trial(args: argparse.Namespace, options, w_sim: float, w_prompt: float) -> float:
    command = [sys.executable, "-m", "search", "evaluate", "--dataset", args.dataset, "--checkpoint", args.checkpoint,
               "--split", "valid", "--fusion", "fixed", "--w-sim", str(w_sim), "--w-prompt", str(w_prompt),
               "--encoder", args.encoder, "--json", "-q", "--data-root", options.data_root,
               "--cache-dir", options.cache_dir, "--device", "cpu"]
    if options.text_root:
        command += ["--text-root", options.text_root]
    if options.checkpoint_root:
        command += ["--checkpoint-root", options.checkpoint_root]
    if options.offline:
        command.append("--offline")
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
    parser.add_argument("--sampler", default="gp")
    parser.add_argument("--pruner", default="median")
    parser.add_argument("--repeats", type=int, default=3, help="are-search runs, seeds seed, seed+1, ...")
    parser.add_argument("--grid-points", type=int, default=11, help="weights per axis of the grid (11: 0, 0.1, ..., 1)")
    parser.add_argument("--data-root", help="default: $ARE_DATA_ROOT")
    parser.add_argument("--text-root", help="default: $ARE_TEXT_ROOT")
    parser.add_argument("--checkpoint-root", help="default: $ARE_CHECKPOINT_ROOT")
    parser.add_argument("--cache-dir", help="default: $ARE_CACHE_DIR, else ~/.cache/are-search")
    parser.add_argument("--offline", action="store_true", help="never download")
    args = parser.parse_args()
    if args.grid_points < 1 or args.repeats < 1 or args.trials < 1:
        parser.error("--grid-points, --repeats and --trials must be positive")
    logging.basicConfig(level=logging.WARNING)
    import torch

    from search.checkpoints import resolve_checkpoint
    from search.engine import SearchContext, stage_plan
    from search.options import LoadOptions

    # The edge: flags, then ARE_* variables, resolved once; everything below gets these options.
    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  encoder=args.encoder, offline=args.offline or None, device="cpu")
    checkpoint_path = str(resolve_checkpoint(args.checkpoint, root=options.checkpoint_root,
                                             cache_dir=Path(options.cache_dir) / "checkpoints",
                                             download=options.download))

    # The grid's values through the cached engine: the target both methods race to.
    context = SearchContext(args.dataset, checkpoint_path, data_root=options.data_root, text=options.text(),
                            cache_dir=options.cache_dir, download=options.download)
    grid_axis = grid_values(args.grid_points)
    points = [(s, p) for s in grid_axis for p in grid_axis]
    grid = {point: context.evaluate("valid", point)[0] for point in points}
    grid_best_point = max(grid, key=grid.get)
    target = grid[grid_best_point] - args.tolerance
    queries = len(context.split("valid").queries)
    # Queries ranked by the end of each of the 4 stages, under each run's stage order (seeded like the study).
    pairs = context.pairs("valid")
    stage_queries = {}
    for seed in range(args.seed, args.seed + args.repeats):
        plan = stage_plan(context.split("valid").queries, pairs, 4, seed)
        stage_queries[seed] = tuple(pairs.queries_of(plan.order[:end])[0].numel() for end in plan.ends)
    del context

    # (a) naive: fresh process per trial, seeded random order.
    order = points[:]
    random.Random(args.seed).shuffle(order)
    naive_start, naive_time, naive_trials, mismatches, naive_seen = time.perf_counter(), None, 0, [], {}
    for point in order:
        value = naive_trial(args, options, *point)
        naive_trials += 1
        naive_seen[point] = value
        if not same_mrr(value, grid[point]):
            mismatches.append({"point": point, "naive": value, "engine": grid[point]})
        if naive_time is None and value >= target:
            naive_time = time.perf_counter() - naive_start
            if not args.full_grid:
                break
    naive_per_trial = (time.perf_counter() - naive_start) / naive_trials

    # (b) are-search on a fresh study per repeat.
    runs, same_setting = [], []
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        run = search_run(args, seed, checkpoint_path, options, grid, target, stage_queries[seed])
        same_setting += [dict(row, naive=naive_seen.get(row["point"])) for row in run.pop("same_setting")]
        runs.append(run)
    reached = [run for run in runs if run["seconds_to_target"] is not None]
    median_run = sorted(reached, key=lambda run: run["seconds_to_target"])[(len(reached) - 1) // 2] if reached else None
    search_time = median_run["seconds_to_target"] if median_run else None
    within = sum(value >= target for value in grid.values())
    naive_expected = naive_per_trial * (len(points) + 1) / (within + 1)
    identical = all(same_mrr(row["are_search"], row["grid"]) and (row["naive"] is None or same_mrr(row["naive"], row["grid"]))
                    for row in same_setting)
    result = {
        "benchmark": "search_speed", "dataset": args.dataset, "checkpoint": args.checkpoint, "encoder": args.encoder,
        "threads": torch.get_num_threads(), "validation_queries": queries,
        "grid_points": len(points), "grid_best": {"point": grid_best_point, "mrr": round(grid[grid_best_point], 5)}, "tolerance": args.tolerance,
        "grid_points_within_tolerance": within,
        "naive": {"seconds_to_target": naive_time, "trials_to_target": naive_trials,
                  "query_evaluations": naive_trials * queries, "seconds_per_trial": naive_per_trial,
                  "expected_seconds_over_orders": naive_expected},
        "are_search": {"sampler": args.sampler, "pruner": args.pruner, "median_seconds_to_target": search_time,
                       "runs": runs},
        "speedup": (naive_time / search_time) if naive_time and search_time else None,
        "speedup_vs_expected_naive": (naive_expected / search_time) if search_time else None,
        "identical_mrr_for_identical_settings": identical and not mismatches,
        "checked_settings": len(same_setting) + len(naive_seen), "mismatches": mismatches,
    }
    print(json.dumps(result))
    print(f"{'method':<12} {'s to target':>12} {'trials':>7} {'query evals':>12}")
    print(f"{'naive':<12} {naive_time or float('nan'):>12.1f} {naive_trials:>7} {naive_trials * queries:>12}")
    print(f"{'naive (exp.)':<12} {naive_expected:>12.1f} {(len(points) + 1) / (within + 1):>7.1f} "
          f"{(len(points) + 1) / (within + 1) * queries:>12.0f}")
    for run in runs:
        print(f"{'are-search':<12} {run['seconds_to_target'] or float('nan'):>12.1f} {run['trials_to_target'] or 0:>7} "
              f"{run['query_evaluations_to_target'] or 0:>12}   seed {run['seed']}, best {run['best_mrr']:.4f}")
    print(f"speed-up {result['speedup'] or float('nan'):.1f}x (seeded naive order), "
          f"{result['speedup_vs_expected_naive'] or float('nan'):.1f}x (expected over orders), median of "
          f"{len(runs)} are-search runs; grid best {grid[grid_best_point]:.4f} at {grid_best_point} "
          f"({within} grid point(s) within {args.tolerance}); "
          f"identical MRR for identical settings: {result['identical_mrr_for_identical_settings']}")


def search_run(args: argparse.Namespace, seed: int, checkpoint_path: str, options, grid: dict, target: float,
               ends: tuple[int, ...]) -> dict:
    """One are-search run on a fresh study: time, trials and query evaluations until ``target``."""
    from search.runners import WorkerSetup
    from search.runners.local import run_local
    from search.spec import spec_from_values

    with tempfile.TemporaryDirectory() as folder:
        spec = spec_from_values({"dataset": args.dataset, "checkpoint": args.checkpoint, "mode": "fixed",
                                 "trials": args.trials, "seed": seed, "sampler": args.sampler,
                                 "pruner": args.pruner}, "bench/search_speed.py")
        setup = WorkerSetup(checkpoint_path, options, device="cpu", encoder=args.encoder)
        start = time.time()
        study = run_local(spec, f"sqlite:///{folder}/bench.db", setup, show_progress=False)
        trials = sorted(study.trials, key=lambda t: t.number)
    seconds, trials_used, queries_used, best, same_setting = None, 0, 0, float("-inf"), []
    at_target = (None, None)
    for trial in trials:
        if trial.datetime_complete is None:
            continue
        trials_used += 1
        reported = len(trial.intermediate_values)  # a repeat of a completed setting ranks nothing
        queries_used += ends[min(reported, len(ends)) - 1] if reported else 0
        settings = trial.user_attrs.get("settings", {})
        point = (settings.get("similarity_enhancer_weight"), settings.get("prompt_enhancer_weight"))
        if trial.value is not None and trial.state.name == "COMPLETE":
            if point in grid and reported:
                same_setting.append({"point": point, "are_search": trial.value, "grid": grid[point]})
            best = max(best, trial.value)
            if seconds is None and best >= target:
                seconds = trial.datetime_complete.timestamp() - start
                at_target = (trials_used, queries_used)
    return {"seed": seed, "seconds_to_target": seconds, "trials_to_target": at_target[0],
            "query_evaluations_to_target": at_target[1], "best_mrr": best, "trials": trials_used,
            "same_setting": same_setting}


if __name__ == "__main__":
    main()
