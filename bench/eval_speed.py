"""Benchmark: zero-shot evaluation of ultra_3g on FBNELL test on the CPU, with 1 and 2 threads.

Prints one JSON line, then a table: queries/s, wall seconds and peak RSS per thread count. Each thread
count runs in its own process so that peak RSS is its own. Queries that share (anchor, relation) share
one entity pass (FBNELL test: 1194 queries, 884 passes); passes/s is the per-pass speed. Anchor on a 2-core machine of this kind: the
official ULTRA code with its fused C++ kernel, 42 queries/s with 2 threads (21 with 1), 0.8 GB peak RSS.

    python bench/eval_speed.py [--dataset FBNELL] [--checkpoint PATH|NAME] [--threads 1 2] [--batch-size N]
    python bench/eval_speed.py --dataset Metafam --threads 1     # a quick check that it runs

The roots come from --data-root / --checkpoint-root / --cache-dir, else ARE_DATA_ROOT, ARE_CHECKPOINT_ROOT,
ARE_CACHE_DIR (read once, by search.options.LoadOptions.resolve, and passed to each thread count's process).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from are_model.checkpoint import load_checkpoint
    from are_model.data import load_dataset
    from are_model.evaluate import rank_queries, ranking_metrics
    from are_model.pipeline import default_batch_size, prepare_split

    model, info = load_checkpoint(args.checkpoint)
    dataset = load_dataset(args.dataset, args.data_root, cache_dir=args.cache_dir, download=not args.offline)
    prepared = prepare_split(dataset, "test")
    batch_size = args.batch_size or default_batch_size("cpu")
    queries = prepared.queries
    # Warm-up on a few queries: compiles (or loads) the kernels and builds the message plans.
    rank_queries(model, prepared.graph, queries.subset(torch.arange(min(32, len(queries)))), prepared.filters,
                 batch_size=batch_size)
    start = time.perf_counter()
    ranks = rank_queries(model, prepared.graph, queries, prepared.filters, batch_size=batch_size)
    seconds = time.perf_counter() - start
    metrics = ranking_metrics(ranks)
    passes = torch.unique(queries.query_relations * prepared.graph.num_nodes + queries.anchors).numel()
    return {"threads": args.threads, "queries": metrics["num_queries"], "seconds": round(seconds, 3),
            "queries_per_s": round(metrics["num_queries"] / seconds, 2), "entity_passes": passes,
            "passes_per_s": round(passes / seconds, 2), "mrr": round(metrics["mrr"], 5),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "batch_size": batch_size, "profile": info.profile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="FBNELL")
    parser.add_argument("--checkpoint", default="ultra_3g", help="a .pth file or a known name (default: ultra_3g)")
    parser.add_argument("--data-root", help="default: $ARE_DATA_ROOT")
    parser.add_argument("--checkpoint-root", help="default: $ARE_CHECKPOINT_ROOT")
    parser.add_argument("--cache-dir", help="default: $ARE_CACHE_DIR, else ~/.cache/are-search")
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # the parent resolved everything: absolute paths, a checkpoint file
        args.threads = args.threads[0]
        print(json.dumps(worker(args)))
        return
    from search.inputs.checkpoints import resolve_checkpoint
    from search.options import LoadOptions

    # The edge: flags, then ARE_* variables, resolved once; the worker processes get the results as flags.
    options = LoadOptions.resolve(data_root=args.data_root, checkpoint_root=args.checkpoint_root,
                                  cache_dir=args.cache_dir, offline=args.offline or None)
    args.checkpoint = str(resolve_checkpoint(args.checkpoint, root=options.checkpoint_root,
                                             cache_dir=Path(options.cache_dir) / "checkpoints",
                                             download=options.download))
    args.data_root, args.cache_dir, args.offline = options.data_root, options.cache_dir, options.offline
    rows = []
    for threads in args.threads:
        command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--dataset", args.dataset,
                   "--checkpoint", args.checkpoint, "--data-root", args.data_root, "--cache-dir", args.cache_dir]
        if args.offline:
            command.append("--offline")
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            sys.exit(f"eval_speed: the {threads}-thread run failed: {run.stderr.strip().splitlines()[-1]}")
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    print(json.dumps({"benchmark": "eval_speed", "dataset": args.dataset, "checkpoint": Path(args.checkpoint).name,
                      "device": "cpu", "runs": rows, "anchor_official_fused_kernel_qps": {"1": 21, "2": 42}}))
    print(f"{'threads':>7} {'queries':>8} {'seconds':>8} {'queries/s':>10} {'passes/s':>9} {'peak RSS GB':>12} {'MRR':>8}")
    for row in rows:
        print(f"{row['threads']:>7} {row['queries']:>8} {row['seconds']:>8.2f} {row['queries_per_s']:>10.1f} "
              f"{row['passes_per_s']:>9.1f} {row['peak_rss_gb']:>12.3f} {row['mrr']:>8.4f}")


if __name__ == "__main__":
    main()
