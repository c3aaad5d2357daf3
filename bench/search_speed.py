"""Benchmark: are-search with its defaults versus the naive per-process grid, until within a tolerance of a wide grid's best.

The grid: (w_sim, w_prompt) in {0, step, ..., --w-sim-max} x {0, step, ..., --w-prompt-max} (default
step 0.25 over [0, 1] x [0, 3]: 5 x 13 = 65 settings, reaching beyond the default soft range [0, 1]² of
are-search so that the optimum need not sit in its corner; on an idle 2-core machine a setting costs
3-5 s, so --step 0.1, 11 x 31 = 341 settings, also stays under half an hour per dataset there, but not
on a machine shared with other jobs). Its validation MRRs are computed in this process through the
cached engine (``SearchContext.evaluate(..., "valid")``), which gives the same number as a fresh
``are-search evaluate`` process, bit for bit (checked below); the target is the grid's best MRR minus
--tolerance (default 0.002).

(a) naive: every trial is a fresh process (``are-search evaluate --json``) that loads everything and
    ranks the whole validation split. The grid is not run as processes: the first --naive-runs
    settings of seed --seed's random order are (their MRRs are checked against the grid's), and their
    mean wall time per process stands for every grid point (the median is given too: one process slowed
    by another job moves the mean). They run in turns with the are-search runs (a share before each),
    so that both meet the same load of a shared machine. Reported: the expectation over random orders,
    mean seconds x (G + 1) / (m + 1) for m of the G grid points within the tolerance (the expected
    position of the first of them), and seed --seed's order, mean seconds x the position of the first
    setting within the tolerance in that order.
(b) are-search: ``search.launch`` with nothing but dataset, checkpoint, trials and seed (its default
    sampler, pruner, known points, soft bounds and stopping rule; --sampler / --pruner override them)
    on a fresh SQLite storage in a temporary folder, --repeats times with seeds seed, seed+1, ...
    The time to target runs from the call of ``launch`` (so it includes loading the dataset, checkpoint
    and text vectors) to the completion time of the first trial whose validation MRR reaches the
    target; a run whose best stays below the target within its budget is reported as not reached.
    The median over the repeats is compared (a run that did not reach the target counts as slowest).

CPU seconds are given next to wall seconds (naive: the child process's user + system time; are-search:
this process's CPU time, sampled every 0.2 s against the trials' completion times), since on a machine
shared with other jobs wall time depends on their load; the load average before each phase is recorded.

Prints one JSON line per dataset as it finishes, then one table row per dataset and one line per
are-search run. --grid-cache DIR keeps every setting's MRR (with the checkpoint's sha256) so that a
second run, or an interrupted one, computes only what is missing. --keep-studies DIR keeps each
are-search study for ``are-search report`` (seed 0 with --trials 20 is the study of ``are-search launch
--dataset D --checkpoint fusion --trials 20``).

On a GPU, ``--device cuda`` runs the grid, the naive processes and are-search there (the ratio depends on how
a trial's cost compares with a process start-up, so it differs from the CPU's).

    nice -n 5 python bench/search_speed.py [--datasets NELLInductive:v1 Metafam] [--checkpoint fusion]
        [--w-sim-max 1 --w-prompt-max 3 --step 0.25] [--trials 40] [--repeats 3] [--naive-runs 6] [--grid-cache DIR]
    python bench/search_speed.py --grid-only --grid-cache DIR                # only the grids, kept for later runs
    python bench/search_speed.py --datasets Metafam --step 0.5 --w-prompt-max 1 --trials 4 --repeats 1 --naive-runs 1   # a quick check that it runs

The roots come from --data-root / --text-root / --checkpoint-root / --cache-dir, else ARE_DATA_ROOT,
ARE_TEXT_ROOT, ARE_CHECKPOINT_ROOT, ARE_CACHE_DIR (read once, by search.options.LoadOptions.resolve).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

Point = tuple[float, float]


def axis(high: float, step: float) -> list[float]:
    """0, step, 2·step, ..., up to ``high`` (rounded to 4 decimals, so 0.1·3 is 0.3)."""
    count = int(math.floor(high / step + 1e-9))
    return [round(k * step, 4) for k in range(count + 1)]


def same_mrr(a: float, b: float) -> bool:
    """Equal up to the order in which the mean of 1/rank was summed (identical ranks give |a - b| < 1e-12)."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)


def code_version() -> dict:
    """The commit measured at, and the files of the model and search code that differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*command: str) -> str:
        run = subprocess.run(["git", *command], cwd=root, capture_output=True, text=True)
        return run.stdout.rstrip() if run.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "are_model", "search").splitlines()
    return {"commit": git("rev-parse", "HEAD") or None, "changed": sorted(line[3:] for line in changed)}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class CpuClock:
    """This process's CPU seconds (all its threads) against wall time, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.2) -> None:
        self.samples: list[tuple[float, float]] = [(time.time(), time.process_time())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.samples.append((time.time(), time.process_time()))

    def __enter__(self) -> "CpuClock":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), time.process_time()))

    def cpu_at(self, wall: float) -> float:
        """CPU seconds used from the start until wall time ``wall`` (interpolated between samples)."""
        start = self.samples[0][1]
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:]):
            if t0 <= wall <= t1:
                return c0 - start + (c1 - c0) * ((wall - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return self.samples[-1][1] - start


def naive_trial(args: argparse.Namespace, options, dataset: str, w_sim: float, w_prompt: float) -> tuple[float, float, float]:
    """(validation MRR, wall seconds, CPU seconds) of one fresh ``are-search evaluate`` process."""
    command = [sys.executable, "-m", "search", "evaluate", "--dataset", dataset, "--checkpoint", args.checkpoint,
               "--split", "valid", "--fusion", "fixed", "--w-sim", str(w_sim), "--w-prompt", str(w_prompt),
               "--encoder", args.encoder, "--json", "-q", "--data-root", options.data_root,
               "--cache-dir", options.cache_dir, "--device", options.device]
    if options.text_root:
        command += ["--text-root", options.text_root]
    if options.checkpoint_root:
        command += ["--checkpoint-root", options.checkpoint_root]
    if options.offline:
        command.append("--offline")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit(f"search_speed: naive trial {dataset} ({w_sim}, {w_prompt}) failed: {run.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(run.stdout)["mrr"], seconds, cpu


def compute_grid(args: argparse.Namespace, options, dataset: str, checkpoint_path: str, sha256: str,
                 points: list[Point]) -> tuple[str, dict[Point, float], float | None]:
    """(canonical dataset name, point -> validation MRR, seconds spent computing the missing ones; None
    when all were cached).

    With --grid-cache, one file per (dataset, checkpoint, encoder) keeps every setting computed so far
    (written after each), so an interrupted grid continues and another step reuses the shared settings.
    """
    from search.objectives.context import SearchContext

    cache, grid, name = None, {}, None
    if args.grid_cache:
        key = f"{dataset}-{Path(checkpoint_path).stem}-{args.encoder}" + ("" if options.device == "cpu" else f"-{options.device}")
        cache = Path(args.grid_cache) / ("".join(c if c.isalnum() or c in "-._" else "_" for c in key) + ".json")
        if cache.exists():
            stored = json.loads(cache.read_text())
            if stored.get("checkpoint_sha256") == sha256 and stored.get("encoder") == args.encoder:
                name = stored["dataset"]
                grid = {(row[0], row[1]): row[2] for row in stored["grid"]}
    missing = [point for point in points if point not in grid]
    if not missing and name is not None:
        return name, {point: grid[point] for point in points}, None
    start = time.perf_counter()
    context = SearchContext(dataset, checkpoint_path, data_root=options.data_root, text=options.text(),
                            cache_dir=options.cache_dir, download=options.download, device=options.device)
    name = context.dataset
    for point in missing:
        grid[point] = context.evaluate("valid", point)[0]
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"dataset": name, "checkpoint_sha256": sha256, "encoder": args.encoder,
                                         "grid": [[w, p, v] for (w, p), v in grid.items()]}))
    seconds = time.perf_counter() - start
    del context
    return name, {point: grid[point] for point in points}, seconds


def search_run(args: argparse.Namespace, options, dataset: str, seed: int, grid: dict[Point, float],
               target: float) -> dict:
    """One ``search.launch`` with the defaults on a fresh storage: time and trials until ``target``."""
    import optuna

    import search
    from search.study.bounds import growth_history
    from search.study.stopping import stop_record

    overrides = {key: value for key, value in (("sampler", args.sampler), ("pruner", args.pruner)) if value}
    with tempfile.TemporaryDirectory() as folder:
        if args.keep_studies:  # a storage per run, kept for are-search report / status
            Path(args.keep_studies).mkdir(parents=True, exist_ok=True)
            tag = "".join(c if c.isalnum() else "_" for c in dataset)
            folder = str(Path(args.keep_studies).resolve() / f"{tag}-seed{seed}")
            Path(folder).mkdir(exist_ok=False)
        storage = f"sqlite:///{folder}/bench.db"
        with CpuClock() as clock:
            start = time.time()
            result = search.launch(dataset=dataset, checkpoint=args.checkpoint, trials=args.trials, seed=seed,
                                   storage=storage, options=options, **overrides)
            total = time.time() - start
        study = optuna.load_study(study_name=result.study, storage=storage)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        growth, stop, spec = growth_history(study), stop_record(study), study.user_attrs.get("spec", {})
    seconds, cpu, at_target, finished, best, best_20, same_setting = None, None, None, 0, float("-inf"), float("-inf"), []
    best_trial = None
    for trial in trials:
        if trial.state.name not in ("COMPLETE", "PRUNED"):
            continue
        finished += 1
        if trial.state.name != "COMPLETE" or trial.value is None:
            continue
        settings = trial.user_attrs.get("settings", {})
        point = (settings.get("similarity_enhancer_weight"), settings.get("prompt_enhancer_weight"))
        if point in grid and "repeat_of" not in trial.user_attrs:
            same_setting.append({"point": point, "are_search": trial.value, "grid": grid[point]})
        if trial.value > best:
            best, best_trial = trial.value, {"trial": trial.number, "w_sim": point[0], "w_prompt": point[1]}
        if finished <= 20:
            best_20 = max(best_20, trial.value)
        if seconds is None and trial.value >= target:
            seconds = trial.datetime_complete.timestamp() - start
            cpu = clock.cpu_at(trial.datetime_complete.timestamp())
            at_target = {"trials": finished, "trial": trial.number, "point": point, "mrr": trial.value}
    return {"seed": seed, "seconds_to_target": seconds, "cpu_seconds_to_target": cpu, "at_target": at_target, "best_mrr": best,
            "best": best_trial, "best_mrr_first_20": best_20, "finished_trials": finished,
            "total_seconds": total, "total_cpu_seconds": clock.cpu_at(math.inf),
            "growth": [{k: g[k] for k in ("trial", "param", "to")} for g in growth],
            "stop": stop, "storage": storage if args.keep_studies else None,
            "spec": {k: v for k, v in spec.items() if k not in ("dataset", "checkpoint", "storage", "seed", "trials")},
            "same_setting": same_setting}


def median_reached(values: list[float | None]) -> float | None:
    """The median, a run that never reached the target (None) counting as the slowest; None if that is the median."""
    median = statistics.median(math.inf if value is None else value for value in values)
    return None if math.isinf(median) or math.isnan(median) else median


def bench_dataset(args: argparse.Namespace, options, dataset: str, checkpoint_path: str, sha256: str) -> dict:
    w_sims, w_prompts = axis(args.w_sim_max, args.step), axis(args.w_prompt_max, args.step)
    points = [(s, p) for s in w_sims for p in w_prompts]
    loads = {"grid": load_average()}
    name, grid, grid_seconds = compute_grid(args, options, dataset, checkpoint_path, sha256, points)
    best_point = max(points, key=lambda point: (grid[point], -point[1], -point[0]))
    target = grid[best_point] - args.tolerance
    within = sorted(point for point in points if grid[point] >= target)

    # (a) naive: a handful of real processes give the seconds per trial; positions come from the grid.
    # (b) are-search with its defaults. The naive processes run in turns with the are-search runs (a
    # share before each), so that both meet the same load of a shared machine.
    order = points[:]
    random.Random(args.seed).shuffle(order)
    position = next(k for k, point in enumerate(order, 1) if grid[point] >= target)
    naive_runs, mismatches, runs, same_setting = [], [], [], []
    share = -(-args.naive_runs // args.repeats)
    for repeat, seed in enumerate(range(args.seed, args.seed + args.repeats)):
        loads[f"naive_{repeat}"] = load_average()
        for point in order[repeat * share:min((repeat + 1) * share, args.naive_runs)]:
            mrr, seconds, cpu = naive_trial(args, options, dataset, *point)
            naive_runs.append({"point": point, "mrr": mrr, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)})
            if not same_mrr(mrr, grid[point]):
                mismatches.append({"point": point, "naive": mrr, "grid": grid[point]})
        loads[f"are_search_{seed}"] = load_average()
        run = search_run(args, options, dataset, seed, grid, target)
        same_setting += run.pop("same_setting")
        runs.append(run)
    loads["end"] = load_average()
    per_trial = statistics.fmean(run["seconds"] for run in naive_runs)
    median_per_trial = statistics.median(run["seconds"] for run in naive_runs)
    cpu_per_trial = statistics.fmean(run["cpu_seconds"] for run in naive_runs)
    expected_position = (len(points) + 1) / (len(within) + 1)
    naive_expected = per_trial * expected_position
    naive_seeded = per_trial * position
    median, median_cpu = (median_reached([run[key] for run in runs]) for key in ("seconds_to_target", "cpu_seconds_to_target"))
    mismatches += [{"point": row["point"], "are_search": row["are_search"], "grid": row["grid"]}
                   for row in same_setting if not same_mrr(row["are_search"], row["grid"])]
    reached = [run for run in runs if run["at_target"]]
    return {
        "benchmark": "search_speed", "dataset": name, "checkpoint": args.checkpoint, "encoder": args.encoder,
        "threads": __import__("torch").get_num_threads(),
        "grid": {"w_sim": [w_sims[0], w_sims[-1]], "w_prompt": [w_prompts[0], w_prompts[-1]], "step": args.step,
                 "points": len(points), "best": {"point": best_point, "mrr": grid[best_point]},
                 "within_tolerance": [{"point": p, "mrr": round(grid[p], 5)} for p in within],
                 "engine_seconds": grid_seconds},
        "tolerance": args.tolerance, "target": target,
        "naive": {"runs": naive_runs, "seconds_per_trial": per_trial, "median_seconds_per_trial": median_per_trial,
                  "expected_seconds_at_median": median_per_trial * expected_position,
                  "cpu_seconds_per_trial": cpu_per_trial,
                  "expected_position": expected_position, "expected_seconds": naive_expected,
                  "expected_cpu_seconds": cpu_per_trial * expected_position, "seed": args.seed, "seed_position": position,
                  "seed_point": order[position - 1], "seed_seconds": naive_seeded},
        "are_search": {"trials": args.trials, "median_seconds_to_target": median,
                       "median_cpu_seconds_to_target": median_cpu, "runs": runs,
                       "median_trials_to_target": statistics.median(run["at_target"]["trials"] for run in reached)
                       if reached else None},
        "speedup_vs_expected": naive_expected / median if median else None,
        "speedup_vs_seed": naive_seeded / median if median else None,
        "cpu_speedup_vs_expected": cpu_per_trial * expected_position / median_cpu if median_cpu else None,
        "identical_mrr_for_identical_settings": not mismatches,
        "checked_settings": len(naive_runs) + len(same_setting), "mismatches": mismatches,
        "load_average": loads,
    }


def print_table(results: list[dict]) -> None:
    def num(value, digits=1):
        return "not reached" if value is None else f"{value:.{digits}f}"

    print(f"{'dataset':<18} {'grid':>5} {'grid best (w_sim, w_prompt)':>30} {'m':>3} {'naive exp. s':>12} "
          f"{'naive seed s':>12} {'are-search s (median; runs)':>34} {'exp./median':>11} {'trials to target':>16}")
    for r in results:
        best = r["grid"]["best"]
        runs = r["are_search"]["runs"]
        each = ", ".join(num(run["seconds_to_target"]) for run in runs)
        trials = ", ".join(str(run["at_target"]["trials"]) if run["at_target"] else "-" for run in runs)
        print(f"{r['dataset']:<18} {r['grid']['points']:>5} "
              f"{best['mrr']:>10.4f} at ({best['point'][0]:g}, {best['point'][1]:g}){'':>8} "
              f"{len(r['grid']['within_tolerance']):>3} {r['naive']['expected_seconds']:>12.1f} "
              f"{r['naive']['seed_seconds']:>12.1f} {num(r['are_search']['median_seconds_to_target']) + ' (' + each + ')':>34} "
              f"{num(r['speedup_vs_expected'], 1) + 'x' if r['speedup_vs_expected'] else 'n/a':>11} {trials:>16}")
    for r in results:
        n = r["naive"]
        print(f"{r['dataset']}: naive {n['seconds_per_trial']:.1f} s ({n['cpu_seconds_per_trial']:.1f} CPU s) per process "
              f"(mean of {len(n['runs'])}; median {n['median_seconds_per_trial']:.1f} s, expected "
              f"{n['expected_seconds_at_median']:.1f} s at the median), expected "
              f"position {n['expected_position']:.1f}, seed {n['seed']}'s order reaches the target at position "
              f"{n['seed_position']} {tuple(n['seed_point'])}; identical MRR for identical settings: "
              f"{r['identical_mrr_for_identical_settings']} ({r['checked_settings']} checked); CPU seconds: naive expected "
              f"{n['expected_cpu_seconds']:.0f}, are-search median {num(r['are_search']['median_cpu_seconds_to_target'])}, "
              f"ratio {num(r['cpu_speedup_vs_expected'])}x; load average {r['load_average']}")
        for run in r["are_search"]["runs"]:
            best = run["best"] or {}
            grown = ", ".join(f"{g['param'].split('_')[0]}->{g['to']:g}@{g['trial']}" for g in run["growth"]) or "none"
            print(f"  are-search seed {run['seed']}: {num(run['seconds_to_target'])} s "
                  f"({num(run['cpu_seconds_to_target'])} CPU s) to target "
                  f"({run['at_target']['trials'] if run['at_target'] else '-'} trials), best {run['best_mrr']:.4f} "
                  f"at ({best.get('w_sim', float('nan')):.4f}, {best.get('w_prompt', float('nan')):.4f}) in "
                  f"{run['finished_trials']} trials / {run['total_seconds']:.0f} s (first 20: {run['best_mrr_first_20']:.4f}); "
                  f"grown: {grown}; stop: {(run['stop'] or {}).get('reason', 'budget')}")


def main() -> None:
    from search.cli import add_root_arguments  # no torch yet: thread settings below still apply

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["NELLInductive:v1", "Metafam"])
    parser.add_argument("--checkpoint", default="fusion")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--w-sim-max", type=float, default=1.0)
    parser.add_argument("--w-prompt-max", type=float, default=3.0)
    parser.add_argument("--step", type=float, default=0.25)
    parser.add_argument("--trials", type=int, default=None, help="are-search's trial budget (default: its own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--sampler", help="override are-search's default sampler")
    parser.add_argument("--pruner", help="override are-search's default pruner")
    parser.add_argument("--repeats", type=int, default=3, help="are-search runs, seeds seed, seed+1, ...")
    parser.add_argument("--naive-runs", type=int, default=6, help="real naive processes timed (first of the seeded order)")
    parser.add_argument("--grid-cache", help="folder keeping each grid's MRRs between runs")
    parser.add_argument("--keep-studies", help="keep each are-search run's SQLite study in DIR/<dataset>-seed<seed>/bench.db")
    parser.add_argument("--grid-only", action="store_true", help="compute (and cache) the grids, print their best, stop")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda[:N]: the grid, the naive processes and are-search all run there "
                             "(CUDA sums are not bit-reproducible: a CUDA grid is cached apart from the CPU one)")
    add_root_arguments(parser)
    args = parser.parse_args()
    if args.repeats < 1 or args.naive_runs < 1 or (args.trials is not None and args.trials < 1):
        parser.error("--repeats, --naive-runs and --trials must be positive")
    if args.step <= 0 or args.w_sim_max < 0 or args.w_prompt_max < 0:
        parser.error("--step must be positive, the maxima non-negative")
    logging.basicConfig(level=logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from search.inputs.checkpoints import resolve_checkpoint, sha256_of
    from search.options import LoadOptions
    from search.study.spec import DEFAULTS

    args.trials = args.trials or DEFAULTS["trials"]
    # The edge: flags, then ARE_* variables, resolved once; everything below gets these options.
    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  encoder=args.encoder, offline=args.offline or None, device=args.device)
    checkpoint_path = str(resolve_checkpoint(args.checkpoint, root=options.checkpoint_root,
                                             cache_dir=Path(options.cache_dir) / "checkpoints",
                                             download=options.download))
    sha256 = sha256_of(Path(checkpoint_path))
    if args.grid_only:
        points = [(w, p) for w in axis(args.w_sim_max, args.step) for p in axis(args.w_prompt_max, args.step)]
        for dataset in args.datasets:
            name, grid, seconds = compute_grid(args, options, dataset, checkpoint_path, sha256, points)
            best = max(points, key=lambda point: (grid[point], -point[1], -point[0]))
            within = [point for point in points if grid[point] >= grid[best] - args.tolerance]
            print(json.dumps({"dataset": name, "points": len(points), "engine_seconds": seconds,
                              "best": {"point": best, "mrr": grid[best]}, "within_tolerance": within}), flush=True)
        return
    results, version = [], code_version()
    for dataset in args.datasets:
        results.append({**bench_dataset(args, options, dataset, checkpoint_path, sha256), "code": version})
        print(json.dumps(results[-1]), flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
