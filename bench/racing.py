"""Replay of 20-trial fixed-mode studies under three pruning rules, on settings ranked in full once.

For each dataset a grid of fixed settings (w_sim 0..--w-sim-max, w_prompt 0..--w-prompt-max, step --step) is
ranked once on the whole validation split with fusion.pth (per-query ranks kept in --cache). A study is then
replayed on those ranks, without a further entity pass: for each seed, the first --trials settings of a seeded
random order of the grid are run in that order, stage by stage in the study's seeded, relation-stratified stage
plan (4 stages: 1/8, 1/4, 1/2, all of the pairs), under

* ``median`` -- Optuna's MedianPruner as the studies use it (its defaults, fed the stage MRRs through
  ``trial.report`` / ``should_prune`` of a real in-memory study);
* ``paired`` -- the paired race of ``search.pruners.paired`` (alpha 0.05, margin 0.002, 3 looks) against the
  best complete trial so far, on the same queries;
* ``none`` -- every trial ranks the whole split.

Per dataset and rule it reports the fraction of the pairs a full study would rank that were ranked, how many
settings within 0.002 of the grid's best were discarded (pruned), and the time to the first complete trial
within 0.002 of the grid's best (pairs ranked until then x the measured seconds per pair; none when the 20
trials hold no such setting). One JSON line on stdout, a table on stderr::

    python bench/racing.py --datasets NELLInductive:v1 Metafam FBNELL --seeds 10 --cache .cache/racing
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


def _grid(w_sim_max: float, w_prompt_max: float, step: float) -> list[tuple[float, float]]:
    sims = np.round(np.arange(0.0, w_sim_max + step / 2, step), 6)
    prompts = np.round(np.arange(0.0, w_prompt_max + step / 2, step), 6)
    return [(float(a), float(b)) for a in sims for b in prompts]


def _ranks(context, grid, cache: Path | None, key: str) -> tuple[np.ndarray, float]:
    """([S, Q] ranks of every grid setting on the whole validation split, seconds per pair)."""
    import torch

    file = None if cache is None else cache / f"{key}.pt"
    if file is not None and file.is_file():
        saved = torch.load(file)
        return saved["ranks"].numpy(), float(saved["seconds_per_pair"])
    context.relation_side("valid")
    rows, start = [], time.perf_counter()
    for k, weights in enumerate(grid):
        rows.append(context.evaluate("valid", list(weights))[1])
        print(f"  {key}: {k + 1}/{len(grid)} settings ranked", file=sys.stderr, flush=True)
    seconds_per_pair = (time.perf_counter() - start) / (len(grid) * len(context.pairs("valid")))
    ranks = torch.stack(rows)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"ranks": ranks, "seconds_per_pair": seconds_per_pair, "grid": grid}, file)
    return ranks.numpy(), seconds_per_pair


def _replay(rule: str, order: list[int], rr: np.ndarray, prefixes: list[np.ndarray], ends: list[int],
            total_pairs: int) -> dict:
    """One study: the settings ``order`` run in turn under ``rule``; what each cost and how it ended."""
    import optuna

    from search.pruners.paired import PairedRace

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner()
                                if rule == "median" else optuna.pruners.NopPruner())
    race = PairedRace(looks=len(ends) - 1)
    population = rr.shape[1]
    best: int | None = None
    outcomes = []
    for setting in order:
        trial = study.ask()
        pruned_at = None
        for stage, queries in enumerate(prefixes):
            final = stage == len(prefixes) - 1
            trial.report(float(rr[setting, queries].mean()), stage + 1)
            if final:
                break
            if rule == "median" and trial.should_prune():
                pruned_at = stage
                break
            if rule == "paired" and best is not None:
                if race.decide(rr[setting, queries], rr[best, queries], population).prune:
                    pruned_at = stage
                    break
        if pruned_at is None:
            value = float(rr[setting].mean())
            study.tell(trial, value)
            if best is None or value > float(rr[best].mean()):
                best = setting
            outcomes.append((setting, total_pairs, value))
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            outcomes.append((setting, ends[pruned_at], None))
    return {"outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["NELLInductive:v1", "Metafam", "FBNELL"])
    parser.add_argument("--step", type=float, default=0.25, help="grid step (default 0.25)")
    parser.add_argument("--step-for", nargs="*", default=["FBNELL=0.5"], metavar="DATASET=STEP",
                        help="a coarser grid for dear datasets (default FBNELL=0.5)")
    parser.add_argument("--w-sim-max", type=float, default=1.0)
    parser.add_argument("--w-prompt-max", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--cache", type=Path, help="keep the grids' ranks here (a second run ranks nothing)")
    from search.cli import add_root_arguments

    add_root_arguments(parser)
    args = parser.parse_args()

    from are_model.pipeline import TextOptions
    from search.objectives.context import get_context
    from search.inputs.checkpoints import checkpoint_file
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir, device="cpu",
                                  offline=args.offline)
    steps = dict(item.split("=") for item in args.step_for)
    result = {"trials": args.trials, "seeds": args.seeds, "tolerance": args.tolerance, "datasets": {}}
    for dataset in args.datasets:
        step = float(steps.get(dataset, args.step))
        grid = _grid(args.w_sim_max, args.w_prompt_max, step)
        context = get_context(dataset, checkpoint_file("fusion", options), data_root=options.data_root,
                              text=TextOptions(root=options.text_root, cache_dir=options.cache_dir,
                                               download=options.download),
                              device="cpu", cache_dir=options.cache_dir)
        key = f"{dataset.replace(':', '_')}-{step:g}-{args.w_sim_max:g}-{args.w_prompt_max:g}"
        ranks, seconds_per_pair = _ranks(context, grid, args.cache, key)
        rr = 1.0 / ranks
        plan = context.stage_plan("valid", 4)
        pairs = context.pairs("valid")
        prefixes = [pairs.queries_of(plan.order[:end])[0].numpy() for end in plan.ends]
        total_pairs = len(pairs)
        mrr = rr.mean(axis=1)
        best = float(mrr.max())
        near = {k for k in range(len(grid)) if mrr[k] >= best - args.tolerance}
        per_rule = {}
        for rule in ("median", "paired", "none"):
            fractions, discards, times, reached = [], 0, [], 0
            for seed in range(args.seeds):
                order = list(np.random.default_rng(seed).permutation(len(grid))[:args.trials])
                outcomes = _replay(rule, order, rr, prefixes, list(plan.ends), total_pairs)["outcomes"]
                fractions.append(sum(cost for _, cost, _ in outcomes) / (len(outcomes) * total_pairs))
                discards += sum(1 for setting, _, value in outcomes if value is None and setting in near)
                spent = 0
                for setting, cost, value in outcomes:
                    spent += cost
                    if value is not None and value >= best - args.tolerance:
                        times.append(spent * seconds_per_pair)
                        reached += 1
                        break
            per_rule[rule] = {"pairs_fraction": float(np.mean(fractions)), "near_best_discarded": discards,
                              "time_to_target_s_median": float(np.median(times)) if times else None,
                              "reached": reached}
        result["datasets"][dataset] = {
            "grid": {"step": step, "w_sim_max": args.w_sim_max, "w_prompt_max": args.w_prompt_max,
                     "settings": len(grid)},
            "best": best, "best_at": list(grid[int(mrr.argmax())]), "near_best": len(near),
            "pairs": total_pairs, "queries": int(rr.shape[1]), "seconds_per_pair": seconds_per_pair,
            "rules": per_rule}
    print(json.dumps(result))
    print(f"{'dataset':<18}{'rule':<8}{'pairs ranked':>13}{'near-best discarded':>21}{'time to target (median)':>25}"
          f"{'reached':>9}", file=sys.stderr)
    for dataset, entry in result["datasets"].items():
        for rule, row in entry["rules"].items():
            when = "-" if row["time_to_target_s_median"] is None else f"{row['time_to_target_s_median']:.1f} s"
            print(f"{dataset:<18}{rule:<8}{row['pairs_fraction']:>12.1%}{row['near_best_discarded']:>21}"
                  f"{when:>25}{row['reached']:>6}/{args.seeds}", file=sys.stderr)
    if not math.isfinite(sum(e["best"] for e in result["datasets"].values())):
        raise SystemExit("a grid's best MRR is not finite")


if __name__ == "__main__":
    main()
