"""Benchmark: do warm starts that transfer reach a dataset's best sooner? Leave-one-out over local datasets.

Input: a storage (``--storage``) holding one finished fixed-mode study per dataset (the *sources*), e.g.
a campaign's, or built here with ``--build-sources`` (``search.launch(dataset=d, checkpoint=...,
mode="fixed", trials=--trials)`` for every dataset whose study is missing or short of its budget).

For each target dataset d:

* reference = the final best validation MRR of d's source study;
* for each seed s, two fresh studies of d in fresh temporary SQLite files, with d's source spec (same
  checkpoint, sampler, pruner, space, bounds, stopping rule) and seed s: *without* transfer (the known
  points, then the sampler), and *with* transfer (the known points, then the best settings of the
  ``--k`` sources nearest to d among the OTHER datasets' sources -- d's own is left out -- via
  :func:`search.study.warmstart.apply_warm_start`, then the sampler);
* each runs as ``are-search launch`` runs it (the study is opened, warm-started, opened again by the
  runner and driven one trial at a time, :func:`search.runners.local` style) until its first complete
  trial within ``--tolerance`` (0.002) of the reference -- *trials to target*, counting every trial it
  ran, pruned ones too -- or ``--trials`` trials ("not reached"); ``--full`` runs all of them anyway.
  Seconds to target are wall-clock from the first trial (the model, graphs and relation side are
  built before the clock starts, once per dataset and seed, shared by both arms).

Prints one JSON line and a table (dataset, reference, trials to target without / with transfer per seed
and their medians, the neighbours chosen and their distances) and a verdict line: transfer *helped*
when it reached the target sooner in more (dataset, seed) pairs than later, *did not help* when later
in more or never sooner, *mixed* when as often sooner as later. A run that never reached the target
counts as ``--trials + 1`` in comparisons and medians.

    python bench/transfer.py --storage sqlite:////work/tmp/transfer/sources.db [--build-sources]
        [--datasets FB15k237Inductive:v1,WN18RRInductive:v1,...] [--trials 12] [--seeds 0,1,2] [--k 2]

Targets can be measured in separate processes (``--targets D`` each, ``--out`` each; every process
reads the sources of all ``--datasets``), then combined: ``python bench/transfer.py --merge A.json
B.json ...`` prints the JSON line, table and verdict of them all. ``--encoder-map FILE.json`` gives a
text encoder per dataset (``{"dataset": "minilm" | "vectors.pt" | ...}``, paths relative to the file),
e.g. precomputed MiniLM vectors on a machine without the MiniLM package; without it each run uses the
encoder its source study was launched with.

The roots come from --data-root / --text-root / --checkpoint-root / --cache-dir, else ARE_DATA_ROOT,
ARE_TEXT_ROOT, ARE_CHECKPOINT_ROOT, ARE_CACHE_DIR (read once, by search.options.LoadOptions.resolve).
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the project
    sys.path.insert(0, str(ROOT))

DEFAULT_DATASETS = ("FB15k237Inductive:v1", "WN18RRInductive:v1", "NELLInductive:v1", "ILPC2022:small", "FBNELL",
                    "Metafam")


def _log(message: str) -> None:
    print(f"[transfer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_sources(storage: str, datasets: list[str], checkpoint: str, trials: int, options: Any,
                  encoders: dict[str, str]) -> None:
    """Launch (or resume) the fixed-mode study of every dataset in ``storage`` until it has ``trials``
    finished trials: exactly ``search.launch(dataset=d, checkpoint=..., mode="fixed", trials=...)``
    (with the dataset's encoder of ``encoders`` when it has one)."""
    import search
    from search.study.names import canonical_dataset

    for dataset in datasets:
        start = time.perf_counter()
        result = search.launch(dataset=dataset, checkpoint=checkpoint, mode="fixed", trials=trials, storage=storage,
                               options=options.replace(encoder=encoders.get(canonical_dataset(dataset))))
        _log(f"source {result.study}: best trial {result.best.trial} {result.best.value:.4f}, "
             f"{result.trials_added} trials added in {time.perf_counter() - start:.0f} s")


def run_arm(spec: Any, checkpoint_path: str, options: Any, device: str, encoder: str, folder: Path, *,
            reference: float, tolerance: float, sources: list[Any], k: int, full: bool) -> dict[str, Any]:
    """One fresh study of ``spec`` in its own SQLite file under ``folder``; with ``sources`` warm-started
    from the ``k`` nearest. Returns trials and seconds to the target, the best found and the warm points."""
    import optuna

    from search.study.budget import remaining_budget
    from search.objectives.fusion import FusionObjective
    from search.runners.setup import WorkerSetup, open_study
    from search.runners.step import run_step
    from search.study.stopping import StopRule, stop_record
    from search.study.warmstart import apply_warm_start

    url = f"sqlite:///{folder / ('with.db' if sources else 'without.db')}"
    study, created = open_study(spec, url, checkpoint_path)
    assert created, url
    points = apply_warm_start(study, spec, sources, options, k) if sources else []
    study, _ = open_study(spec, url, checkpoint_path)  # as run_local opens it: the runner's sampler
    setup = WorkerSetup(checkpoint_path, options, device=device, encoder=encoder)
    objective = FusionObjective(spec, setup.context(spec.dataset, spec.seed))  # built before the clock starts
    rule = StopRule.of(spec)
    start = time.perf_counter()
    hit_trials = hit_seconds = None
    ran = 0
    hit = None
    while remaining_budget(study, spec.trials) > 0 and stop_record(study) is None:
        # the trial just run: an enqueued one (known or warm point) has a lower number than those still queued
        (last,) = run_step(study, objective, spec.trials, rule=rule)
        ran += 1
        if hit is None and last.state == optuna.trial.TrialState.COMPLETE and last.value >= reference - tolerance:
            hit, hit_trials, hit_seconds = last, ran, time.perf_counter() - start
            if not full:
                break
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    return {"trials": hit_trials, "seconds": None if hit_seconds is None else round(hit_seconds, 1), "ran": ran,
            "run_seconds": round(time.perf_counter() - start, 1),
            "best": None if best is None else {"trial": best.number, "value": best.value, "params": best.params},
            "hit_by": None if hit is None else f"trial {hit.number}: {_origin(hit)}",
            "warm_points": [{"from": p.source, "distance": round(p.distance, 4), "params": p.params} for p in points]}


def _origin(trial: Any) -> str:
    """What proposed ``trial``: a known point, a warm start's source, or the sampler."""
    if "known_point" in trial.user_attrs:
        return f"known point {trial.user_attrs['known_point']}"
    if "warm_start_from" in trial.user_attrs:
        return f"warm start from {trial.user_attrs['warm_start_from']}"
    return "sampler"


def verdict(pairs: list[tuple[int, int]]) -> tuple[str, dict[str, int]]:
    """helped / did not help / mixed from (without, with) trials to target per (dataset, seed)."""
    sooner = sum(1 for without, with_ in pairs if with_ < without)
    later = sum(1 for without, with_ in pairs if with_ > without)
    counts = {"sooner": sooner, "later": later, "same": len(pairs) - sooner - later, "pairs": len(pairs)}
    if sooner > later:
        return "helped", counts
    if sooner == later and sooner > 0:
        return "mixed", counts
    return "did not help", counts


def load_encoder_map(path: str | None) -> dict[str, str]:
    """``{canonical dataset: encoder spec}`` from a JSON file; relative file paths resolve against it."""
    if not path:
        return {}
    from search.study.names import canonical_dataset

    folder = Path(path).resolve().parent
    raw = json.loads(Path(path).read_text())
    out = {}
    for dataset, spec in raw.items():
        local = folder / spec
        out[canonical_dataset(dataset)] = str(local) if spec not in ("auto", "minilm") and local.exists() else spec
    return out


def measure(args: argparse.Namespace, datasets: list[str], targets: list[str], seeds: list[int],
            write: Any) -> list[dict[str, Any]]:
    """The leave-one-out rows of ``targets`` (sources: the studies of all ``datasets``); ``write(rows)``
    is called after each run, so a run stopped midway leaves what it measured."""
    import dataclasses

    from search.objectives.context import clear_contexts
    from search.flags.export import best_trial
    from search.inputs.checkpoints import fusion_checkpoint
    from search.study.prepare import LAUNCH_ATTR
    from search.study.names import StudyName, canonical_dataset
    from search.options import LoadOptions
    from search.study.spec import stored_spec
    from search.storage import StorageURL, load_study, open_storage

    # The edge: flags, then ARE_* variables, resolved once; everything below gets these options.
    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  offline=args.offline or None, device=args.device)
    encoders = load_encoder_map(args.encoder_map)
    url = StorageURL.parse(args.storage)
    if args.build_sources:
        build_sources(url.url, targets, args.checkpoint, args.trials, options, encoders)
        if args.only_build:
            return []
    storage = open_storage(url, read_only=True)
    sources = {d: load_study(storage, StudyName.of(d, "fixed"), where=url.safe) for d in datasets}
    device = options.resolved_device()
    results: list[dict[str, Any]] = []
    for dataset in targets:
        source = sources[dataset]
        ref_trial = best_trial(source)
        reference = float(ref_trial.value)
        base = stored_spec(source)
        encoder = (encoders.get(canonical_dataset(dataset)) or options.encoder
                   or (source.user_attrs.get(LAUNCH_ATTR) or {}).get("encoder") or "auto")
        checkpoint_path = str(fusion_checkpoint(base.checkpoint, options))
        others = [sources[d] for d in datasets if d != dataset]  # leave the target's own source out
        row: dict[str, Any] = {"dataset": base.dataset, "reference": reference, "reference_trial": ref_trial.number,
                               "source_trials": len(source.get_trials(deepcopy=False)), "without": [], "with": [],
                               "neighbours": []}
        results.append(row)
        for seed in seeds:
            spec = dataclasses.replace(base, seed=seed, trials=args.trials, warm_start_from=[], storage=None)
            with tempfile.TemporaryDirectory(prefix="are-transfer-") as tmp:
                for arm, arm_sources in (("without", []), ("with", others)):
                    outcome = run_arm(spec, checkpoint_path, options, device, encoder, Path(tmp),
                                      reference=reference, tolerance=args.tolerance, sources=arm_sources, k=args.k,
                                      full=args.full)
                    outcome["seed"] = seed
                    row[arm].append(outcome)
                    if arm == "with" and not row["neighbours"]:
                        row["neighbours"] = outcome["warm_points"]
                    _log(f"{base.dataset} seed {seed} {arm} transfer: "
                         f"{outcome['trials'] if outcome['trials'] is not None else 'not reached in'} "
                         f"trials ({outcome['ran']} run, {outcome['run_seconds']} s)"
                         + (f", hit by {outcome['hit_by']}" if outcome["hit_by"] else ""))
                    write(results)
            clear_contexts()  # the next seed builds its own context: free this one's model and graphs
    return results


def summarise(results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of ``results``: medians per dataset, the verdict over (dataset, seed) pairs."""
    trials = meta["trials"]
    pairs: list[tuple[int, int]] = []
    for row in results:
        count = {arm: {r["seed"]: r["trials"] if r["trials"] is not None else trials + 1 for r in row[arm]}
                 for arm in ("without", "with")}
        both = sorted(set(count["without"]) & set(count["with"]))
        pairs += [(count["without"][seed], count["with"][seed]) for seed in both]
        row["median_without"] = statistics.median(count["without"].values()) if count["without"] else None
        row["median_with"] = statistics.median(count["with"].values()) if count["with"] else None
    word, counts = verdict(pairs)
    return {"bench": "transfer", **meta, "results": results, "verdict": word, "counts": counts,
            "median_without": statistics.median(a for a, _ in pairs) if pairs else None,
            "median_with": statistics.median(b for _, b in pairs) if pairs else None,
            "total_without": sum(a for a, _ in pairs), "total_with": sum(b for _, b in pairs)}


def print_report(document: dict[str, Any]) -> None:
    """The JSON line, the table and the verdict line on stdout."""
    print(json.dumps(document, default=str))
    trials = document["trials"]

    def trials_text(run: dict[str, Any]) -> str:
        return str(run["trials"]) if run["trials"] is not None else f">{trials}"

    header = ("dataset", "reference", "without (per seed)", "median", "with (per seed)", "median",
              "neighbours (distance)")
    rows = [(r["dataset"], f"{r['reference']:.4f} (t{r['reference_trial']})",
             " / ".join(trials_text(x) for x in r["without"]), r["median_without"],
             " / ".join(trials_text(x) for x in r["with"]), r["median_with"],
             ", ".join(f"{p['from'].split('/')[0]} ({p['distance']:.3f})" for p in r["neighbours"]) or "-")
            for r in document["results"]]
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    counts = document["counts"]
    print(f"trials to within {document['tolerance']} of each source study's best validation MRR, seeds "
          f"{', '.join(map(str, document['seeds']))}; '>{trials}': not reached in {trials} trials (counted as "
          f"{trials + 1})")
    print(f"verdict: transfer {document['verdict']}: sooner in {counts['sooner']} of {counts['pairs']} (dataset, seed) "
          f"pairs, later in {counts['later']}, the same in {counts['same']}; median trials {document['median_with']} "
          f"with vs {document['median_without']} without; total {document['total_with']} vs "
          f"{document['total_without']}")


def main() -> None:
    from search.cli import add_root_arguments  # no torch yet: thread settings below still apply

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="the storage of the finished fixed-mode source studies")
    parser.add_argument("--build-sources", action="store_true",
                        help="first launch / resume the fixed-mode source study of each target there to --trials")
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="comma-separated: the sources")
    parser.add_argument("--targets", help="comma-separated subset of --datasets to measure (default: all)")
    parser.add_argument("--only-build", action="store_true", help="with --build-sources: build, measure nothing")
    parser.add_argument("--checkpoint", default="fusion", help="checkpoint of --build-sources (default fusion)")
    parser.add_argument("--trials", type=int, default=12, help="trial budget of each run (and of built sources)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated study seeds")
    parser.add_argument("--k", type=int, default=2, help="nearest sources a warm-started study tries")
    parser.add_argument("--tolerance", type=float, default=0.002, help="validation MRR below the reference")
    parser.add_argument("--full", action="store_true", help="run all --trials trials even after the target")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--encoder-map", metavar="FILE.json", help="text encoder per dataset (see above)")
    parser.add_argument("--out", help="also write the JSON document here (rewritten after each run)")
    parser.add_argument("--merge", nargs="+", metavar="FILE.json", help="combine the documents of earlier runs")
    add_root_arguments(parser)
    args = parser.parse_args()
    if args.merge:
        documents = [json.loads(Path(path).read_text()) for path in args.merge]
        meta = {key: documents[0][key] for key in ("storage", "datasets", "trials", "seeds", "k", "tolerance", "device")}
        meta["seconds"] = max(d["seconds"] for d in documents)
        document = summarise([row for d in documents for row in d["results"]], meta)
        print_report(document)
        if args.out:
            Path(args.out).write_text(json.dumps(document, default=str) + "\n")
        return
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    targets = [d.strip() for d in args.targets.split(",") if d.strip()] if args.targets else datasets
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.storage:
        parser.error("--storage is required (unless --merge)")
    if args.trials < 1 or args.k < 1 or not seeds or len(datasets) < 2 or not set(targets) <= set(datasets):
        parser.error("--trials and --k must be positive, --seeds non-empty, --datasets at least two, "
                     "--targets among --datasets")
    logging.basicConfig(level=logging.WARNING)
    import optuna

    from search.storage import StorageURL

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    meta = {"storage": StorageURL.parse(args.storage).safe, "datasets": datasets, "trials": args.trials,
            "seeds": seeds, "k": args.k, "tolerance": args.tolerance, "device": args.device}

    def write(rows: list[dict[str, Any]]) -> None:
        if args.out:
            document = summarise(rows, {**meta, "seconds": round(time.perf_counter() - started, 1)})
            Path(args.out).write_text(json.dumps(document, default=str) + "\n")

    results = measure(args, datasets, targets, seeds, write)
    if args.only_build:
        return
    document = summarise(results, {**meta, "seconds": round(time.perf_counter() - started, 1)})
    print_report(document)
    write(results)


if __name__ == "__main__":
    main()
