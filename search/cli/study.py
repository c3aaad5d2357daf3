"""``are-search evaluate|inspect|launch|resume|export|status|report|datasets``: argparse and formatting over the
study commands of the Python API (:mod:`search.api`, :mod:`search.evaluate`, :mod:`search.inputs.catalogue`).

:func:`add_commands` adds them to the main parser; :mod:`search.cli` keeps the registry of command groups.
"""
from __future__ import annotations

import argparse
from typing import Any

from search.cli.common import (add_inputs, add_run_options, add_search_options, add_storage, arg_type,
                               best_json, choice_of, counts_text, emit, emit_json, fmt_float, load_options_of,
                               print_export, progress_mode, run_options, search_keywords, settings_text, study_lines,
                               table)
from search.errors import EXIT_NO_COMPLETE_TRIAL, FlagsError, UsageError
from search.reports.study_text import interval_text
from search.study.bounds import growth_text
from search.study.fusion_terms import FUSION_TERMS, joined, symbols, weights_text
from search.values import non_negative_int, positive_int, weight

__all__ = ["add_commands"]


_EPILOG = {
    "evaluate": "example:\n  are-search evaluate --dataset FBNELL --checkpoint fusion --split valid "
                "--fusion fixed --w-sim 0.2 --w-prompt 0.8\n"
                "  are-search evaluate --dataset FBNELL --checkpoint fusion --flags flags.yaml   # what export wrote",
    "inspect": "example:\n  are-search inspect fusion",
    "launch": "examples:\n  are-search launch --dataset FBNELL --checkpoint fusion --mode fixed --trials 40\n"
              "  are-search launch studies/FBNELL.yaml --trials 60",
    "resume": "example:\n  are-search resume FBNELL/fixed --trials 60",
    "export": "examples:\n  are-search export FBNELL/fixed --flags flags.yaml\n  are-search export --all flags/",
    "status": "example:\n  are-search status --json",
    "report": "example:\n  are-search report FBNELL/fixed --out reports/fbnell",
}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from search.evaluate import evaluate

    fusion, weights = args.fusion or "checkpoint", [getattr(args, term.symbol) for term in FUSION_TERMS]
    if args.flags is not None:
        fusion, weights = "fixed", list(_flags_weights(args))
    result = evaluate(args.dataset, args.checkpoint, load_options_of(args), split=args.split, fusion=fusion,
                      weights=weights, progress=progress_mode(args) == "bar")
    if args.json:
        emit_json(result)
        return 0
    applied = result["fusion_weights"]
    rows = [("dataset", result["dataset"]), ("split", result["split"]),
            ("checkpoint", f"{result['checkpoint']} ({result['profile']})"),
            ("encoder", result["encoder"] or "- (ULTRA: no text)"),
            ("fusion", "-" if applied is None else f"{result['fusion']}: " + weights_text(applied, sep=", ", assign=" ")),
            ("queries", result["num_queries"]), ("MRR", fmt_float(result["mrr"])), ("MR", fmt_float(result["mr"], 2)),
            ("Hits@1", fmt_float(result["hits@1"])), ("Hits@3", fmt_float(result["hits@3"])),
            ("Hits@10", fmt_float(result["hits@10"])), ("seconds", f"{result['seconds']:.1f}")]
    emit(table(rows))
    return 0


def _flags_weights(args: argparse.Namespace) -> tuple[float, ...]:
    """``evaluate --flags FILE``: the fixed weights of the flags file (UsageError beside --w-sim/--w-prompt or
    another --fusion; FlagsError for a file without them, or one whose fusion is learnable)."""
    from search.flags.current import read_flags_point

    given = [term.option for term in FUSION_TERMS if getattr(args, term.symbol) is not None]
    if given or args.fusion not in (None, "fixed"):
        raise UsageError(f"--flags gives the fixed weights: not with {', '.join(given) or '--fusion ' + args.fusion}")
    point = read_flags_point(args.flags, "--flags")
    if point.learnable:
        keys = " and ".join(term.flag_key for term in FUSION_TERMS)
        raise FlagsError(f"{point.path}: use_learnable_fusion is true: its {keys} are the initial weights of a "
                         f"fusion fine-tuned per dataset, not weights to rank with (evaluate --flags takes a "
                         f"fixed-mode export)")
    return point.weights


def cmd_inspect(args: argparse.Namespace) -> int:
    from search.evaluate import inspect_checkpoint

    result = inspect_checkpoint(args.checkpoint, load_options_of(args))
    if args.json:
        emit_json(result)
        return 0
    rows: list[tuple[str, Any]] = [
        ("checkpoint", result["checkpoint"]),
        ("known as", result["known_name"] or "- (not a published checkpoint)"),
        ("sha256", result["sha256"]),
        ("profile", result["profile"]),
        ("parameters", f"{result['num_parameters']:,}"),
        ("keys", result["num_keys"]),
    ]
    if result["fusion_weights"] is not None:
        weights = weights_text(result["fusion_weights"], sep=" / ", assign=" ")
        if result["fusion"] == "learned":
            logits = ", ".join(f"{v:.4f}" for v in result["fusion_logits"])
            rows.append(("fusion", f"learned: {weights} (logits {logits})"))
        else:
            rows.append(("fusion", f"fixed: {weights} (similarity enhancer only)"))
        s = result["similarity_enhancer"]
        lam = f"{s['lambda']:.4f}" + ("" if s["lambda_used"] else " (unused)")
        rows.append(("similarity", f"θ {s['theta']:.4f}  λ {lam}  τ {s['tau']:.4f}  κ {s['kappa']:.4f} "
                                   f"({s['variant']})"))
    emit(table(rows))
    if result["similarity_enhancer"] is not None:
        emit(SIMILARITY_LEGEND)
    return 0


#: What the symbols of ``inspect``'s similarity row stand for (the similarity enhancer, are_model.enhancers).
SIMILARITY_LEGEND = ("similarity enhancer: θ threshold (relations whose cosine to the query relation exceeds it are "
                     "its neighbours), λ mixing strength (mix variant only), τ softmax temperature, κ similarity "
                     "weight scale; (delta / mix) its variant")


def _dashboard_hint(storage: str) -> str:
    """``optuna-dashboard <storage>`` when it is installed, else how to install it (the ``[dashboard]`` extra)."""
    import importlib.util

    if importlib.util.find_spec("optuna_dashboard") is not None:
        return f"optuna-dashboard {storage}"
    return f"optuna-dashboard {storage} (after pip install 'are-search[dashboard]')"


def _print_run(result: Any) -> int:
    emit(f"storage: {result.storage}")
    for note in result.notes:
        emit(note)
    for growth in result.growth:
        emit(growth_text(growth))
    for point in getattr(result, "warm_start", []):
        params = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in point["params"].items())
        emit(f"warm start from {point['from']} (distance {point['distance']:.3f}, its trial {point['trial']}, "
              f"validation MRR {point['value']:.4f}): {params}"
              + ("" if point["enqueued"] else " (not queued: the study has these settings already)"))
    if result.stop is not None:
        emit(f"stopped early after trial {result.stop['trial']}: {result.stop['reason']}")
    finished = result.counts.get("COMPLETE", 0) + result.counts.get("PRUNED", 0)
    if result.trials_added == 0 and result.stop is None and finished >= result.budget:
        emit(f"study {result.study} already has its {result.budget} trials: nothing to run; give --trials "
             f"{result.budget + 5} (or more) to run more")
    best = result.best
    if best is None:
        emit(f"study {result.study}: no complete trial ({counts_text(result.counts)})")
        return EXIT_NO_COMPLETE_TRIAL
    emit(f"study {result.study}: best trial {best.trial}, validation MRR {best.value:.4f}, "
          f"{settings_text(best.settings)} ({counts_text(result.counts)}; {result.trials_added} finished in this run)")
    if result.exported is not None:
        flags = result.exported.flags
        emit(f"exported to {result.exported.path}: " + ", ".join(f"{k}: {v}" for k, v in flags.items()))
    storage = f" --storage '{result.storage}'"
    target = result.exported.path if result.exported is not None else "flags.yaml"  # the file this run wrote
    emit(f"next: are-search report {result.study}{storage} (best vs baselines on test); are-search export "
         f"{result.study} --flags {target}{storage}; {_dashboard_hint(result.storage)}")
    return 0


#: The help of ``--checkpoint`` (evaluate, launch).
CHECKPOINT_HELP = ("an ARE checkpoint: a .pth file, or a known name (fusion, ARE-V3, ARE-V5; evaluate also ultra_3g, "
                   "semma) found under --checkpoint-root or downloaded")


def cmd_launch(args: argparse.Namespace) -> int:
    from search.api import launch

    return _print_run(launch(args.spec_file, dataset=args.dataset, checkpoint=args.checkpoint, mode=args.mode,
                             trials=args.trials, budget_scale=args.budget_scale, **search_keywords(args),
                             **run_options(args)))


def cmd_resume(args: argparse.Namespace) -> int:
    from search.api import resume

    return _print_run(resume(args.study, trials=args.trials, no_stop=args.no_stop, **run_options(args)))


def cmd_export(args: argparse.Namespace) -> int:
    from search.api import export

    return print_export(export(args.study, flags=args.flags, all=args.all, storage=args.storage))


def valid_pairs(entry: Any) -> int | None:
    """The validation budget of a study of ``status`` (``StudyStatus.valid_pairs``, from its stored spec): the
    pairs of the validation split every trial ranks; None for the whole split."""
    return getattr(entry, "valid_pairs", None)


def sample_lines(entry: Any) -> list[str]:
    """The line under a status table for a study searched on a validation sample (none for the whole split)."""
    pairs = valid_pairs(entry)
    if pairs is None:
        return []
    return [f"{entry.study}: searched on a validation sample of {pairs} pairs (every trial ranks the same pairs; "
            "its values are the sample's MRR)"]


def cmd_status(args: argparse.Namespace) -> int:
    from search.api import status

    result = status(storage=args.storage)
    if args.json:
        emit_json({"storage": result.storage, "state": result.state, "studies": [
            {"study": s.study, "checkpoint": s.checkpoint, "budget": s.budget, "trials": s.counts,
             "best": best_json(s.best), "space": s.space, "growth": s.growth, "stop_reason": s.stop_reason,
             "stale": [t.to_json() for t in s.stale], "warm_start": s.warm_start,
             "valid_pairs": valid_pairs(s)}
            for s in result.studies]})
        return 0
    if not result.studies:
        state = {"missing": "does not exist", "empty": "holds no Optuna schema"}.get(result.state, "has no studies")
        emit(f"storage: {result.storage} ({state}): no studies")
        return 0
    rows = []
    for entry in result.studies:
        best, counts = entry.best, entry.counts
        done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        budget = f"/{entry.budget}" if entry.budget else ""
        rows.append((entry.study, entry.checkpoint or "-", f"{done}{budget}", counts.get("COMPLETE", 0),
                     counts.get("PRUNED", 0), counts.get("FAIL", 0), counts.get("INTERRUPTED", 0),
                     counts.get("RUNNING", 0) + counts.get("WAITING", 0),
                     "-" if best is None else f"{best.value:.4f}", "-" if best is None else best.trial,
                     "-" if best is None else settings_text(best.settings)))
    emit(f"storage: {result.storage}")
    emit(table(rows, ("study", "checkpoint", "done", "complete", "pruned", "failed", "interrupted", "running/queued",
                        "best MRR", "trial", "best settings")))
    for entry in result.studies:
        for line in study_lines(entry) + sample_lines(entry):
            emit(line)
    return 0


def sample_line(sample: dict[str, Any]) -> str:
    """A report's validation sample in one line: its size and the standard error of a paired MRR difference
    (the test numbers' own line, :func:`test_line`, says where they come from)."""
    from search.reports.study_text import sample_text

    line = f"searched on a {sample_text(sample)}: every validation MRR above is the sample's"
    paired = sample.get("paired")
    if paired is not None:
        line += (f"; standard error of a paired MRR difference at this size {paired['se']:.4f} "
                 f"({paired['setting']} - {paired['against']}: {paired['delta']:+.4f})")
    return line


def test_line(sample: dict[str, Any] | None) -> str:
    """Where a report's test numbers come from: the whole split, or its test sample (``--test-pairs``)."""
    from search.reports.study_text import sample_size_text

    if not sample:
        return "test numbers are the whole test split's"
    return (f"test numbers are on a test sample of {sample_size_text(sample)}, seed {sample['seed']}: every setting "
            "ranked on the same pairs")


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from search.api import report

    result = report(args.study, out=args.out, n_boot=args.n_boot, seed=args.seed, storage=args.storage,
                    progress=progress_mode(args), options=load_options_of(args), test_pairs=args.test_pairs)
    summary = result.summary
    rows = []
    for row in summary["settings"]:
        diff = row["diff_vs_best"]
        rows.append((row["label"], joined(row["weights"], sep="/"), fmt_float(row["valid_mrr"]),
                     row["valid_source"], fmt_float(row["test"]["mrr"]), fmt_float(row["test"]["hits@10"]),
                     "-" if diff is None else interval_text(diff["diff"], diff["low"], diff["high"])))
    emit(f"storage: {result.storage}")
    emit(table(rows, ("setting", symbols("/"), "valid MRR", "valid from", "test MRR", "test H@10",
                        "best - setting, test MRR [95% CI]")))
    if summary.get("note"):
        emit(summary["note"])
    from search.reports.study_text import known_points_only_text, mixed_text

    if summary.get("known_points_only"):
        emit(known_points_only_text(summary).replace("**", ""))
    for mixed in summary.get("mixed") or []:
        emit(mixed_text(mixed).replace("**", ""))
    if summary.get("valid_sample"):
        emit(sample_line(summary["valid_sample"]))
    emit(test_line(summary.get("test_sample")))
    ranges = ", ".join(f"{name} [{b['low']:g}, {b['high']:g}]" for name, b in summary["space"].items())
    grown = "; ".join(f"{g['param']} {g['side']} {g['from']:g} -> {g['to']:g} before trial {g['trial']} "
                      f"(best trial {g['best_trial']} sat on it)" for g in summary["growth"])
    emit(f"search range: {ranges or '-'}" + (f" (grown: {grown})" if grown else ""))
    if summary["stop"]:
        emit(f"stopped early after trial {summary['stop']['trial']}: {summary['stop']['reason']}")
    emit(f"report written to {result.out_dir}: " + ", ".join(p.name for p in result.files))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from search.inputs.catalogue import catalogue
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root)
    entries = catalogue(options.data_root, options.text_root)
    if args.json:
        emit_json({"datasets": [entry.to_json() for entry in entries]})
        return 0
    from search.inputs.catalogue import LOCAL

    def size(e: Any) -> tuple[str, str, str]:
        if e.counted is None:
            return "-", "-", "-"
        mark = "*" if e.counted == LOCAL else ""
        splits = " / ".join(f"{role} {n:,}" for role, n in e.triples.items())
        return f"{e.entities:,}{mark}", f"{e.relations:,}{mark}", splits

    rows = [(e.name, e.group, e.setting, "yes" if e.present else "no", "yes" if e.texts else "no", *size(e), e.source)
            for e in entries]
    emit(f"data root: {options.data_root}; text root: {options.text_root or '- (not set)'}")
    emit(table(rows, ("dataset", "group", "setting", "present", "texts", "entities", "relations", "triples per file",
                      "source")))
    benchmark = [e for e in entries if e.group != "other"]
    emit(f"{len(benchmark)} benchmark graphs and {len(entries) - len(benchmark)} other datasets; "
          f"{sum(e.present for e in entries)} present, {sum(e.texts for e in entries)} with relation texts")
    emit(f"sizes: * measured from the local files now ({sum(e.counted == LOCAL for e in entries)}), else as the "
         f"registry measured them; - not measured (no local files, no registry record). Counts are of the raw files "
         "(are_model/data/counts.py): distinct entities and relations over all triple files, triples per file.")
    emit("cite each dataset's source:")
    cited: dict[str, list[str]] = {}
    for e in entries:
        cited.setdefault(e.citation, []).append(e.name)
    for citation, names in cited.items():
        emit(f"  {_family_names(names)}: {citation}")
    return 0


def _family_names(names: list[str]) -> str:
    """The names of one citation, versions after their class name once: ``HM:1k/3k/5k/indigo, FBNELL:FBNELL_v1``."""
    by_class: dict[str, list[str]] = {}
    for name in names:
        cls, _, version = name.partition(":")
        by_class.setdefault(cls, []).append(version)
    return ", ".join(cls if versions == [""] else f"{cls}:{'/'.join(versions)}" for cls, versions in by_class.items())


def add_commands(commands: Any, sub_common: argparse.ArgumentParser) -> None:
    """Add the study commands to the main parser's ``commands`` (an argparse sub-parsers action)."""
    from search.study.names import MODES
    from search.study.spec import DEFAULTS

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002
        return commands.add_parser(name, parents=[sub_common], help=help, description=help, epilog=_EPILOG[name])

    p = command("evaluate", "evaluate one checkpoint on one split")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--checkpoint", required=True, metavar="PATH|NAME", help=CHECKPOINT_HELP)
    p.add_argument("--split", choices=("valid", "test"), default="test", help="the split to rank")
    p.add_argument("--fusion", choices=("checkpoint", "fixed", "learned"), default=None,
                   help="the checkpoint's own fusion, fixed weights, or the learned ones (are-fusion) (default: "
                        "checkpoint; fixed with --flags)")
    for term, metavar in zip(FUSION_TERMS, "XYZUVW"):  # --w-sim X, --w-prompt Y: one option per fusion term
        p.add_argument(term.option, dest=term.symbol, type=arg_type(weight, term.option), metavar=metavar,
                       help=f"{term.label} (--fusion fixed)")
    p.add_argument("--flags", metavar="FILE", help="fixed weights from a flags file (its similarity_enhancer_weight "
                   "and prompt_enhancer_weight, as export writes them): implies --fusion fixed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_inputs(p)
    p.set_defaults(handler=cmd_evaluate)

    p = command("inspect", "profile, size and fusion of a checkpoint")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pth file or a known name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_inputs(p, only_checkpoint=True)
    p.set_defaults(handler=cmd_inspect)

    p = command("launch", "start (or continue) a study")
    p.add_argument("spec_file", nargs="?", metavar="SPEC.yaml", help="a study spec; options below override it")
    p.add_argument("--dataset", metavar="NAME", help="any spelling the loader accepts (metafam, Metafam:Metafam)")
    p.add_argument("--checkpoint", metavar="PATH|NAME", help=CHECKPOINT_HELP + " (required here or in the spec)")
    p.add_argument("--mode", **choice_of(MODES, "--mode"), help=f"fusion mode (default: {DEFAULTS['mode']})")
    p.add_argument("--trials", type=arg_type(positive_int, "--trials"), metavar="N",
                   help=f"finished trials the study should reach (default: {DEFAULTS['trials']})")
    from search.study.finetune import check_budget_scale

    p.add_argument("--budget-scale", type=arg_type(check_budget_scale, "--budget-scale"), metavar="S",
                   help="learnable modes: run S (0 < S <= 1) of the official per-dataset batches per epoch "
                        "(spec key budget_scale; default 1: the official fine-tuning budget, e.g. Metafam 3 full "
                        "epochs; the spec's budget keys are used as given)")
    add_search_options(p)
    add_storage(p)
    add_run_options(p)
    add_inputs(p)
    p.add_argument("--from-flags", metavar="FILE",
                   help="your ULTRA/ARE flags file: its fusion weights (similarity_enhancer_weight, "
                        "prompt_enhancer_weight) are tried as a known point, 'your flags (FILE)' in reports "
                        "(spec key from_flags; not --flags, which is where the best is exported)")
    p.set_defaults(handler=cmd_launch)

    p = command("resume", "continue a study from its stored spec")
    p.add_argument("study", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed")
    p.add_argument("--trials", type=arg_type(positive_int, "--trials"), metavar="N",
                   help="new total trial budget (default: the stored one)")
    p.add_argument("--no-stop", action="store_true", help="run the whole budget: no early stop")
    add_storage(p)
    add_run_options(p)
    add_inputs(p)
    p.set_defaults(handler=cmd_resume)

    p = command("export", "write a study's best settings to flags.yaml")
    p.add_argument("study", nargs="?", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed (not with --all)")
    p.add_argument("--flags", metavar="PATH", help="the flags.yaml to edit (created when missing)")
    p.add_argument("--all", metavar="DIR", help="one DIR/<dataset>/flags.yaml per dataset (best of its studies)")
    add_storage(p)
    p.set_defaults(handler=cmd_export)

    p = command("status", "list studies, trials and best so far (reads the storage only)")
    p.add_argument("--json", action="store_true", help="print one JSON object (studies with trials, best, space, growth, stop_reason, stale)")
    add_storage(p)
    p.set_defaults(handler=cmd_status)

    p = command("report", "plots, and the best setting vs the baselines on validation and test")
    p.add_argument("study", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed")
    p.add_argument("--out", metavar="DIR", help="default: ./studies/reports/<dataset>_<mode>/")
    p.add_argument("--n-boot", type=arg_type(positive_int, "--n-boot"), default=2000, metavar="N", help="bootstrap resamples")
    p.add_argument("--seed", type=arg_type(non_negative_int, "--seed"), default=0, metavar="S", help="bootstrap seed")
    p.add_argument("--test-pairs", type=arg_type(positive_int, "--test-pairs"), metavar="N",
                   help="rank each test split on a seeded sample of N (anchor, relation) pairs, stratified by relation, "
                        "where it has more (every setting on the same pairs; for graphs whose whole test split takes "
                        "hours on this device; default: the whole split)")
    add_storage(p)
    add_inputs(p)
    p.set_defaults(handler=cmd_report)

    help_text = "list every registered dataset: group, setting, source, present under the data root, relation texts"
    p = commands.add_parser("datasets", parents=[sub_common], help=help_text, description=help_text,
                            epilog="examples:\n  are-search datasets\n  are-search datasets --json")
    p.add_argument("--json", action="store_true",
                   help='print {"datasets": [{"name", "group", "setting", "source", "present", "texts", "entities", '
                        '"relations", "triples", "counted", "citation"}, ...]}')
    p.add_argument("--data-root", metavar="DIR",
                   help="dataset root (default: $ARE_DATA_ROOT, else ~/.cache/are-search/raw)")
    p.add_argument("--text-root", metavar="DIR", help="relation texts root (default: $ARE_TEXT_ROOT)")
    p.set_defaults(handler=cmd_datasets)
