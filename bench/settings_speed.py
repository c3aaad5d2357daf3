"""Benchmark: fusion settings per second when K settings share each entity pass (fixed mode, issue 9).

A fixed-mode trial costs the entity passes of the validation split: one row per distinct (anchor, r')
pair, whatever the weights. With ``settings_per_pass: K`` a worker ranks K trials' settings together,
``rank_queries(weights=[K, 2])``, each pass holding ``rows // K`` pairs of each of the K settings. This
bench times that on the warm SearchContext (relation side cached, pairs built: what a trial costs):
the whole validation split for N seeded settings in [0, 2]², ranked K at a time, for each K. K = 1 is
``weights=[2]``, the one-by-one path. Rounds interleave the K values (their order rotated each round)
so that the drift of a shared machine hits every K alike; the table gives the median round's wall and
process CPU seconds (the CPU seconds are the steadier measure on a loaded machine). Every K's
ranks are compared with K = 1's (``identical``: bit for bit, which holds whenever the rows per pass are
the same; ``--scale-rows`` gives K settings K times the rows, what a GPU would use).

    python bench/settings_speed.py [--datasets NELLInductive:v1 Metafam] [--ks 1 2 4 8] [--threads 2]
    python bench/settings_speed.py --device cuda --scale-rows          # on a GPU: rows = 64·K

The roots come from --data-root / --text-root / --checkpoint-root / --cache-dir / --encoder, else
ARE_DATA_ROOT, ARE_TEXT_ROOT, ARE_CHECKPOINT_ROOT, ARE_CACHE_DIR (read once, by
search.options.LoadOptions.resolve).

Measured, fusion.pth, validation split, median round (settings/s; CPU s = process CPU seconds):

* CPU, this 2-core x86 machine shared with other test runs (load ~11), 2 threads, 16 rows a pass, 8
  settings, 1 round, NELLInductive:v1 (624 pairs): ``python bench/settings_speed.py --offline``

      K     1      2      4      8
      s/s   0.082  0.079  0.084  0.060    (wall, dominated by the other runs' load)
      CPU s 50.8   49.5   47.7   49.1     (for the 8 settings: within 6 %)

  On the CPU the cost is the rows: K settings need K times the rows of one, so K > 1 saves only the
  per-pass overhead and the last pass's padding; the CPU seconds stay flat. settings_per_pass stays 1
  there (a value other than 1 costs nothing but gains nothing either); ranks identical for every K.
* CUDA, one H200 (torch 2.11, cu130), 16 settings, 3 rounds, ``--device cuda [--scale-rows]
  --settings 16 --ks 1 2 4 8 16`` with the MiniLM vectors as a ``--encoder`` file:

      rows a pass              K = 1    2      4      8      16
      64 (fixed)   NELL v1     14.1   14.0   14.5   14.3   13.9
                   Metafam      7.0    6.9    7.0    6.9    6.6
      64·K         NELL v1     13.7   16.1   17.4   18.1   18.9    (1.31x at K = 8)
                   Metafam      7.0    8.0    8.6    8.9    9.1    (1.28x at K = 8)

  With the rows fixed K changes nothing; with 64 pairs of each setting a pass (64·K rows) it gains
  1.3x at K = 8 and little more at 16, so a GPU worker should use K = 8 (the engine gives CUDA passes
  64·K rows, search.objectives.context.SearchContext.evaluate_many). Why the gain is not larger was not profiled
  (CPU seconds equal wall there only because synchronising spins); one candidate is the CUDA path of
  relational_aggregate, which multiplies each (setting, relation) column block of a pass with its own
  kernel, so its launches grow with K. On CUDA two runs of the same setting need not give identical
  ranks (NELLInductive:v1 K = 1 already differed from its first run: atomic scatter-adds), so
  ``identical`` is a CPU property.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _settings(count: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 2, generator=generator) * 2.0


def _rank(context, weights, k: int, rows: int):
    """Ranks [N, Q] of the N settings ``weights``, ranked k at a time with ``rows`` rows per pass."""
    import torch

    from are_model.evaluate import rank_queries

    prepared, side, pairs = context.split("valid"), context.relation_side("valid"), context.pairs("valid")
    weights = weights.to(context.device)
    out = []
    for start in range(0, weights.shape[0], k):  # a few groups of settings, not a hot path
        group = weights[start:start + k]
        ranks = rank_queries(context.model, prepared.graph, prepared.queries, prepared.filters, side=side,
                             weights=group[0] if k == 1 else group, batch_size=rows, pairs=pairs)
        out.append(ranks.unsqueeze(0) if k == 1 else ranks)
    if context.device.type == "cuda":
        torch.cuda.synchronize()
    return torch.cat(out).cpu()


def measure(dataset: str, args: argparse.Namespace, options) -> dict:
    import torch

    from search.objectives.context import get_context

    context = get_context(dataset, args.checkpoint, data_root=options.data_root, text=options.text(args.encoder),
                          device=args.device, cache_dir=options.cache_dir, download=options.download)
    base = args.rows or context.batch_size
    start = time.perf_counter()
    side = context.relation_side("valid")  # the warm part: built once, as a worker does before its trials
    warm_seconds = time.perf_counter() - start
    pairs = context.pairs("valid")
    weights = _settings(args.settings, args.seed)
    # The one-by-one ranks, also the warm-up: compiles (or loads) the kernels, builds the message plans.
    reference = _rank(context, weights, 1, base)
    seconds: dict[int, list[float]] = {k: [] for k in args.ks}
    cpu: dict[int, list[float]] = {k: [] for k in args.ks}
    identical = {k: True for k in args.ks}
    for round_ in range(args.rounds):
        shift = round_ % len(args.ks)
        for k in args.ks[shift:] + args.ks[:shift]:
            start, cpu_start = time.perf_counter(), time.process_time()
            ranks = _rank(context, weights, k, base * (k if args.scale_rows else 1))
            seconds[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - cpu_start)
            identical[k] = identical[k] and torch.equal(ranks, reference)
    one = statistics.median(seconds[1]) if 1 in seconds else None
    rows_out = {}
    for k in args.ks:
        median = statistics.median(seconds[k])
        rows_out[str(k)] = {"rows_per_pass": base * (k if args.scale_rows else 1), "seconds": round(median, 3),
                            "settings_per_s": round(args.settings / median, 4),
                            "speedup_vs_k1": None if one is None else round(one / median, 3),
                            "cpu_seconds": round(statistics.median(cpu[k]), 3),
                            "rounds": [round(s, 3) for s in seconds[k]], "identical_to_k1": identical[k]}
    return {"dataset": context.dataset, "queries": len(context.split("valid").queries), "pairs": len(pairs),
            "relation_side_seconds": round(warm_seconds, 3), "relations": int(side.relations.numel()), "k": rows_out}


def main() -> None:
    from search.cli import add_root_arguments  # no torch yet: thread settings below still apply

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["NELLInductive:v1"])
    parser.add_argument("--checkpoint", default="fusion", help="a .pth file or a known name (default: fusion)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--settings", type=int, default=8, help="settings ranked per K and round (default 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch / Numba / OpenMP threads (default 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=None, help="rows per entity pass (default: the device's batch size)")
    parser.add_argument("--scale-rows", action="store_true", help="K settings get K times the rows per pass")
    parser.add_argument("--encoder", default=None, help="text encoder (default: auto, or $ARE_JINA_PATH); a .pt of vectors")
    add_root_arguments(parser)
    args = parser.parse_args()
    if any(k < 1 or args.settings % k for k in args.ks):
        sys.exit(f"settings_speed: every K must divide --settings {args.settings}: {args.ks}")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):  # before torch and Numba load
        os.environ[name] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from search.inputs.checkpoints import resolve_checkpoint
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  offline=args.offline or None, encoder=args.encoder)
    args.encoder = options.encoder or "auto"
    args.checkpoint = str(resolve_checkpoint(args.checkpoint, root=options.checkpoint_root,
                                             cache_dir=Path(options.cache_dir) / "checkpoints",
                                             download=options.download))
    results = [measure(name, args, options) for name in args.datasets]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(json.dumps({"benchmark": "settings_speed", "device": device, "threads": args.threads,
                      "checkpoint": Path(args.checkpoint).name, "settings": args.settings, "rounds": args.rounds,
                      "scale_rows": args.scale_rows, "datasets": results}))
    print(f"{'dataset':<22} {'K':>3} {'rows':>5} {'seconds':>8} {'CPU s':>8} {'settings/s':>11} {'vs K=1':>7} "
          f"{'identical':>9}")
    for result in results:
        for k, row in result["k"].items():
            speedup = "" if row["speedup_vs_k1"] is None else f"{row['speedup_vs_k1']:.2f}x"
            print(f"{result['dataset']:<22} {k:>3} {row['rows_per_pass']:>5} {row['seconds']:>8.2f} "
                  f"{row['cpu_seconds']:>8.2f} {row['settings_per_s']:>11.3f} {speedup:>7} "
                  f"{str(row['identical_to_k1']):>9}")


if __name__ == "__main__":
    main()
