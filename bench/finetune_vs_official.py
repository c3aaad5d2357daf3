"""Benchmark: are_model's fine-tuning against the official ULTRA code's, same checkpoint, data, recipe and seeds.

    python bench/finetune_vs_official.py                       # FB15k237Inductive:v1 and Metafam, seeds 0 1 2
    python bench/finetune_vs_official.py --dataset Metafam --seeds 0 --bpe 20   # a quick check

Every (side, dataset, seed) is one run in a process of its own, one thread each (``--threads``), ``--jobs`` at a
time (default 2, one per core of this machine; the official runs, the longest, first). A finished run's JSON is
kept under .cache/ultra-official/finetune-runs/ and read back when the same run is asked again (``--fresh``:
run it anyway), so an interrupted benchmark resumes. The two sides:

* official: bench/official_finetune_runner.py in the official environment (bench/vs_official.py's, set up on
  first use), which runs ULTRA's own ``train_and_validate`` and ``test`` of ``script/run.py`` from
  ``--ultra-root`` (default ../shared/reference/ULTRA, MIT, read-only; nothing of it copied here);
* ours: :func:`are_model.fine_tune` with the same recipe, :class:`are_model.FineTuneConfig` ``(batch_size=16,
  num_negatives=256, body_lr=5e-4, body_weight_decay=0.01, adversarial_temperature=1.0, seed=seed,
  order_seed=0)``, on the
  ``ultra_3g`` model (no fusion: the whole body trains, as ULTRA's does), then ``evaluate_split`` on the test
  split.

The recipe is ULTRA's ``config/inductive/inference.yaml``: AdamW (lr 5e-4, torch's default weight decay
0.01) on every parameter, batch 16 training triples (the first half corrupting tails, the rest heads), 256
strict negatives each (drawn uniformly, with replacement, among the entities not known true in the training
graph), self-adversarial binary cross-entropy at temperature 1, the batch's own edges (and those of its
negatives) removed from the message graph. Budgets: FB15k237Inductive:v1 the official one of
``script/run_many.py`` (1 epoch, a full pass: 266 batches of 16 of its 4245 training triples); Metafam a stated
smaller one, 1 epoch of 30 batches (run_many: 3 full epochs, 2592 batches; ``--bpe`` to change it), the same
for both implementations.

The order of the training triples: ULTRA's ``DataLoader`` draws them through a ``DistributedSampler`` with its
default seed 0 and the epoch, so every official run sees the same order and its ``--seed`` moves only the
negatives. By default ours trains in that very order (``FineTuneConfig.order_seed=0``: the same permutation,
``torch.randperm`` from a generator seeded 0 + epoch), so both sides' seeds move the negatives only;
``--order own`` shuffles with each run's seed instead (are-search's default in its learnable trials). With a
budget of a few batches the order matters: on Metafam, 30 batches, ours with its own orders gave 0.980 /
0.993 / 0.995 test MRR against the official order's 0.943 / 0.960 / 0.946 (2026-12-05).

Other differences, by construction of the two codes (none changes what is optimised):

* the last batch of a full pass: ULTRA's holds the remainder (4245 = 265 x 16 + 5), ours wraps around to 16;
* the random streams: ULTRA draws negatives with the global ``torch.rand``, ours with a seeded generator,
  so equal seeds do not give equal draws: the comparison is between seed spreads, not run by run;
* ULTRA validates after the epoch and reloads the best epoch's checkpoint; with one epoch that is the model
  it has. Its validation pass is not counted in its ``finetune_seconds``.

Acceptance (are-search's issue 18, item 1): every one of our test MRRs lies within the official runs' spread [min, max]
or within +-0.01 of their mean, whichever is wider (``within`` in the output). With three seeds a side that band
is itself noisy, so the output also gives ``permutation_p``: the two-sided p-value of the difference of the
means, exact over every split of the pooled runs (``--seeds 0 1 2 3 4 5 6 7`` for eight a side).

Output: one JSON line on stdout per dataset and a Markdown table on stderr; ``--out DIR`` also writes
``results.json`` and ``table.md`` there (bench/results/finetune-vs-official/ holds the committed run).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import vs_official  # noqa: E402  (the official environment and the inputs, shared with that benchmark)

DEFAULT_BUDGETS = {"FB15k237Inductive:v1": (1, None), "Metafam": (1, 30)}
METRICS = ("mrr", "hits@1", "hits@3", "hits@10")
TOLERANCE = 0.01


def ours_worker(args: argparse.Namespace) -> None:
    """Our side: zero-shot test metrics, fine-tune, test metrics again; one JSON line on stdout."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import torch

    torch.set_num_threads(args.threads)
    from are_model import FineTuneConfig, evaluate_split, fine_tune, load_checkpoint, load_dataset, prepare_split

    model, _ = load_checkpoint(args.checkpoint, device="cpu")
    dataset = load_dataset(args.dataset, args.data_root, cache_dir=args.cache_dir, download=False)
    train, test = prepare_split(dataset, "train"), prepare_split(dataset, "test")

    def metrics() -> dict:
        values, _ = evaluate_split(model, test)
        return {key: float(values[key]) for key in METRICS}

    zero_shot = metrics()
    config = FineTuneConfig(epochs=args.epochs, batches_per_epoch=args.bpe, batch_size=16, num_negatives=256,
                            body_lr=5e-4, body_weight_decay=0.01, adversarial_temperature=1.0, seed=args.seed,
                            order_seed=0 if args.order == "official" else None)
    begin = time.perf_counter()
    result = fine_tune(model, train, config)
    seconds = time.perf_counter() - begin
    triples = int(train.triples.shape[0])
    proto.write(json.dumps({"side": "ours", "dataset": args.dataset, "seed": args.seed, "epochs": args.epochs,
                            "batches": args.bpe or -(-triples // 16), "train_triples": triples,
                            "zero_shot": zero_shot, "finetuned": metrics(), "finetune_seconds": round(seconds, 2),
                            "losses": result.losses, "order": args.order, "threads": torch.get_num_threads()}) + "\n")


def _spawn(command: list[str], threads: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               NUMBA_NUM_THREADS=str(threads), PYTHONNOUSERSITE="1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env, cwd=HERE.parent)


def _finish(process: subprocess.Popen, log: Path, what: str) -> dict:
    out, _ = process.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = log.read_text()[-2000:]
        raise SystemExit(f"finetune_vs_official: the {what} run failed (exit {process.returncode}); {log}:\n{tail}")
    return json.loads(lines[-1])


def permutation_p(first: list[float], second: list[float]) -> float:
    """Two-sided p-value of the difference of the two means under exchangeability (an exact permutation test:
    every split of the pooled values into groups of these sizes, e.g. C(16, 8) = 12870 for 8 seeds a side)."""
    pooled, k = first + second, len(first)
    observed = abs(statistics.fmean(first) - statistics.fmean(second))
    total = sum(pooled)
    count = extreme = 0
    for chosen in itertools.combinations(range(len(pooled)), k):
        a = sum(pooled[i] for i in chosen)
        if abs(a / k - (total - a) / (len(pooled) - k)) >= observed - 1e-12:
            extreme += 1
        count += 1
    return extreme / count


def summarise(dataset: str, runs: list[dict], epochs: int, bpe: int | None) -> dict:
    """The comparison of one dataset: per side the test MRRs by seed, mean, sample sd, min, max; the band the
    acceptance allows (the wider of the official spread and +-TOLERANCE around its mean) and whether every one
    of our MRRs lies in it; the fine-tuning seconds per batch of each side."""
    out = {"dataset": dataset, "epochs": epochs, "batches_per_epoch": bpe or "full pass"}
    for side in ("official", "ours"):
        mine = sorted((r for r in runs if r["side"] == side), key=lambda r: r["seed"])
        mrrs = [r["finetuned"]["mrr"] for r in mine]
        out[side] = {"seeds": [r["seed"] for r in mine], "mrr": mrrs, "mean": statistics.fmean(mrrs),
                     "sd": statistics.stdev(mrrs) if len(mrrs) > 1 else 0.0, "min": min(mrrs), "max": max(mrrs),
                     "zero_shot_mrr": mine[0]["zero_shot"]["mrr"],
                     "hits@10_mean": statistics.fmean(r["finetuned"]["hits@10"] for r in mine),
                     "seconds_per_batch": statistics.fmean(r["finetune_seconds"] / (r["batches"] * epochs)
                                                           for r in mine),
                     "batches": mine[0]["batches"]}
    official = out["official"]
    low = min(official["min"], official["mean"] - TOLERANCE)
    high = max(official["max"], official["mean"] + TOLERANCE)
    out["band"] = [low, high]
    out["within"] = all(low <= m <= high for m in out["ours"]["mrr"])
    out["mean_difference"] = out["ours"]["mean"] - official["mean"]
    out["permutation_p"] = permutation_p(out["ours"]["mrr"], official["mrr"])
    out["speed_ratio"] = official["seconds_per_batch"] / out["ours"]["seconds_per_batch"]
    return out


def _inside_text(row: dict) -> str:
    """``all 3 of ours inside``, or ``2 of 8 of ours outside (0.9043, 0.9846)``."""
    low, high = row["band"]
    outside = [m for m in row["ours"]["mrr"] if not low <= m <= high]
    total = len(row["ours"]["mrr"])
    if not outside:
        return f"all {total} of ours inside"
    return f"{len(outside)} of {total} of ours outside (" + ", ".join(f"{m:.4f}" for m in outside) + ")"


def table(rows: list[dict]) -> str:
    lines = ["| dataset | budget | side | zero-shot test MRR | fine-tuned test MRR by seed | mean ± sd | "
             "Hits@10 (mean) | s / batch |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        budget = f"{row['epochs']} × {row['official']['batches']} batches"
        for side in ("official", "ours"):
            s = row[side]
            lines.append(f"| {row['dataset']} | {budget} | {side} | {s['zero_shot_mrr']:.4f} | "
                         + " / ".join(f"{m:.4f}" for m in s["mrr"]) + f" | {s['mean']:.4f} ± {s['sd']:.4f} | "
                         f"{s['hits@10_mean']:.4f} | {s['seconds_per_batch']:.2f} |")
    lines.append("")
    for row in rows:
        lines.append(f"- {row['dataset']}, {len(row['ours']['mrr'])} seeds a side: ours − official mean test MRR "
                     f"{row['mean_difference']:+.4f} (two-sided permutation p = {row['permutation_p']:.2f}); allowed band "
                     f"[{row['band'][0]:.4f}, {row['band'][1]:.4f}] (the wider of the official seeds' range and "
                     f"±{TOLERANCE} of their mean): {_inside_text(row)}; "
                     f"fine-tuning {row['speed_ratio']:.2f}× the official speed (1 thread each, run side by side)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", nargs="+", help="one or more (default: FB15k237Inductive:v1 Metafam)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: 1 (FB15k237Inductive:v1 and Metafam, see the budgets above)")
    parser.add_argument("--bpe", type=int, default=None,
                        help="batches per epoch (default: a full pass on FB15k237Inductive:v1, 30 on Metafam, "
                             "else 100)")
    parser.add_argument("--threads", type=int, default=1, help="threads per run (default 1)")
    parser.add_argument("--order", choices=["official", "own"], default="official",
                        help="our side's order of training triples: the official runs' (DistributedSampler, seed 0; "
                             "default) or shuffled with each run's seed")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # a worker's
    parser.add_argument("--checkpoint", default="ultra_3g")
    parser.add_argument("--data-root")
    parser.add_argument("--checkpoint-root")
    parser.add_argument("--cache-dir")
    parser.add_argument("--ultra-root", default=str(vs_official.DEFAULT_ULTRA))
    parser.add_argument("--official-venv", default=str(vs_official.DEFAULT_VENV))
    parser.add_argument("--out", help="a folder for results.json and table.md")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2: one per core here)")
    parser.add_argument("--fresh", action="store_true", help="run again what .cache/ultra-official/finetune-runs holds")
    parser.add_argument("--side", choices=["both", "official", "ours"], default="both",
                        help="run one side only (to spread the runs over machines or cores; nothing is compared)")
    args = parser.parse_args()
    if args.worker == "ours":
        args.dataset = args.dataset[0]
        ours_worker(args)
        return

    from are_model.data.registry import resolve_dataset_name

    vs_official.setup(Path(args.official_venv))
    official_python = vs_official.venv_python(Path(args.official_venv))
    logs, kept = vs_official.WORK_DIR / "finetune-logs", vs_official.WORK_DIR / "finetune-runs"
    logs.mkdir(parents=True, exist_ok=True)
    kept.mkdir(parents=True, exist_ok=True)
    plans, jobs = [], []
    for requested in args.dataset or list(DEFAULT_BUDGETS):
        args.dataset = requested
        name, setting, checkpoint, data_root, cache_dir = vs_official.resolve_inputs(args)
        epochs, bpe = next((b for key, b in DEFAULT_BUDGETS.items() if resolve_dataset_name(key) == name), (1, 100))
        epochs = args.epochs or epochs
        bpe = args.bpe if args.bpe is not None else bpe
        plans.append((name, epochs, bpe))
        for side in ("official", "ours") if args.side == "both" else (args.side,):
            for seed in args.seeds:
                budget = ["--epochs", str(epochs), "--seed", str(seed), "--threads", str(args.threads)]
                budget += ["--bpe", str(bpe)] if bpe else []
                if side == "official":
                    command = [str(official_python), str(HERE / "official_finetune_runner.py"),
                               "--ultra-root", args.ultra_root, "--dataset", name, "--setting", setting,
                               "--data-root", data_root, "--work-dir", str(vs_official.WORK_DIR),
                               "--checkpoint", checkpoint, *budget]
                else:
                    command = [sys.executable, __file__, "--worker", "ours", "--dataset", name, "--checkpoint",
                               checkpoint, "--data-root", data_root, "--cache-dir", cache_dir, "--order", args.order,
                               *budget]
                slug = f"{side}-{name.replace(':', '-')}-e{epochs}-b{bpe or 'full'}-seed{seed}-t{args.threads}"
                slug += f"-order-{args.order}" if side == "ours" else ""
                jobs.append((name, slug, command))

    def run(job: tuple[str, str, list[str]]) -> dict:
        """One run in a process of its own; a run already finished with the same settings (its JSON kept under
        .cache/ultra-official/finetune-runs/) is read back, so an interrupted benchmark resumes."""
        name, slug, command = job
        done = kept / f"{slug}.json"
        if done.is_file() and not args.fresh:
            return json.loads(done.read_text())
        log = logs / f"{slug}.log"
        result = _finish(_spawn(command, args.threads, log), log, slug)
        done.write_text(json.dumps(result) + "\n")
        print(f"finetune_vs_official: {slug}: test MRR {result['finetuned']['mrr']:.4f}, "
              f"{result['finetune_seconds']:.0f} s", file=sys.stderr, flush=True)
        return result

    # --jobs processes at a time (one core each with the default one thread), official runs first (the longest)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip((slug for _, slug, _ in jobs), pool.map(run, jobs)))
    if args.side != "both":
        return
    rows = []
    for name, epochs, bpe in plans:
        runs = [results[slug] for job_name, slug, _ in jobs if job_name == name]
        row = summarise(name, runs, epochs, bpe)
        row["runs"] = runs
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    text = table(rows)
    print(text, file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
        (out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
