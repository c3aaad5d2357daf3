"""The ``are-search`` command line: argparse and formatting over the Python API (:mod:`search.lifecycle`).

Results go to stdout (a plain-text table, or one JSON document with ``--json``); logs and progress go
to stderr (``-v`` for more, ``-q`` for errors only). A problem with the input ends the command with one
line ``are-search: error: ...`` on stderr and the error's exit status (:mod:`search.errors`: 2 for bad
input, 3 when a study ended without a complete trial, 130 when interrupted), never a traceback.

This module is an edge: it resolves the environment (``ARE_*``) and the working directory once,
into a :class:`search.options.LoadOptions` and a storage URL, and passes them down.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Callable, Sequence

from search import __version__
from search.logs import configure_logging, level_for
from search.errors import (EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_NO_COMPLETE_TRIAL, EXIT_TERMINATED, Terminated,
                           on_sigterm_raise, user_error_types)
from search.values import (argparse_type, choice, non_negative_float, non_negative_int, positive_float, positive_int,
                           weight, weight_bound)

__all__ = ["main", "build_parser"]

_logger = logging.getLogger("search.cli")
PROG = "are-search"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``are-search <cmd>: error: ...``), exit status 2, defaults shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; an option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


# ---------------------------------------------------------------------------------------------
# output helpers


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return text or type(error).__name__


def _progress(args: argparse.Namespace) -> str | None:
    """``bar`` on a terminal, ``lines`` (one per finished trial) when stderr is a file or pipe, None when quiet."""
    if args.quiet or args.no_progress:
        return None
    return "bar" if sys.stderr.isatty() else "lines"


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _emit_json(value: Any) -> None:
    _emit(json.dumps(value, indent=2, default=str))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """A plain-text table: columns padded to their widest cell."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(len(r) for r in cells))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _float(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _settings_text(settings: Any) -> str:
    if settings is None:
        return "-"
    parts = [f"w_sim={_float(settings.similarity_enhancer_weight)}", f"w_prompt={_float(settings.prompt_enhancer_weight)}"]
    if settings.use_learnable_fusion:
        parts.append(f"fusion_lr={settings.fusion_lr:.3g}" if settings.fusion_lr else "fusion_lr=-")
        parts.append("body=frozen" if settings.body_lr is None else f"body_lr={settings.body_lr:.3g}")
        if settings.learned_weights is not None and len(settings.learned_weights) == 2:
            parts.append(f"learned={settings.learned_weights[0]:.4f}/{settings.learned_weights[1]:.4f}")
    return " ".join(parts)


def _best_json(best: Any) -> dict[str, Any] | None:
    if best is None:
        return None
    return {"trial": best.trial, "value": best.value, "params": best.params,
            "settings": None if best.settings is None else best.settings.to_attr()}


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"


def _options(args: argparse.Namespace) -> Any:
    from search.options import LoadOptions

    return LoadOptions.resolve(**{key: getattr(args, key, None) for key in (
        "data_root", "text_root", "checkpoint_root", "cache_dir", "encoder", "device", "batch_size", "threads")},
        offline=bool(getattr(args, "offline", False)))


# ---------------------------------------------------------------------------------------------
# commands


def cmd_evaluate(args: argparse.Namespace) -> int:
    from search.evaluate import evaluate

    result = evaluate(args.dataset, args.checkpoint, _options(args), split=args.split, fusion=args.fusion,
                      w_sim=args.w_sim, w_prompt=args.w_prompt, progress=_progress(args) == "bar")
    if args.json:
        _emit_json(result)
        return 0
    applied = result["fusion_weights"]
    rows = [("dataset", result["dataset"]), ("split", result["split"]),
            ("checkpoint", f"{result['checkpoint']} ({result['profile']})"),
            ("encoder", result["encoder"] or "- (ULTRA: no text)"),
            ("fusion", "-" if applied is None else f"{result['fusion']}: w_sim {applied[0]:.4f}, w_prompt {applied[1]:.4f}"),
            ("queries", result["num_queries"]), ("MRR", _float(result["mrr"])), ("MR", _float(result["mr"], 2)),
            ("Hits@1", _float(result["hits@1"])), ("Hits@3", _float(result["hits@3"])),
            ("Hits@10", _float(result["hits@10"])), ("seconds", f"{result['seconds']:.1f}")]
    _emit(_table(rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from search.evaluate import inspect_checkpoint

    result = inspect_checkpoint(args.checkpoint, _options(args))
    if args.json:
        _emit_json(result)
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
        w_sim, w_prompt = result["fusion_weights"]
        if result["fusion"] == "learned":
            logits = ", ".join(f"{v:.4f}" for v in result["fusion_logits"])
            rows.append(("fusion", f"learned: w_sim {w_sim:.4f} / w_prompt {w_prompt:.4f} (logits {logits})"))
        else:
            rows.append(("fusion", f"fixed: w_sim {w_sim:.4f} / w_prompt {w_prompt:.4f} (similarity enhancer only)"))
        s = result["similarity_enhancer"]
        lam = f"{s['lambda']:.4f}" + ("" if s["lambda_used"] else " (unused)")
        rows.append(("similarity", f"θ {s['theta']:.4f}  λ {lam}  τ {s['tau']:.4f}  κ {s['kappa']:.4f} "
                                   f"({s['variant']})"))
    _emit(_table(rows))
    return 0


def _run_options(args: argparse.Namespace, *, campaign: bool = False) -> dict[str, Any]:
    """The keywords of the options :func:`_add_run_options` added (a campaign has no --flags or --settings-per-pass)."""
    options = dict(storage=args.storage, workers=args.workers, ray=args.ray, gpus_per_trial=args.gpus_per_trial,
                   cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent, address=args.address,
                   fail_stale=args.fail_stale, progress=_progress(args), options=_options(args))
    if not campaign:
        options.update(flags=args.flags, settings_per_pass=args.settings_per_pass)
    return options


def search_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of the options :func:`add_search_options` added, as ``launch`` (study or campaign) takes them."""
    return dict(seed=args.seed, sampler=args.sampler, pruner=args.pruner, weight_cap=args.weight_cap,
                soft_high=args.soft_high, no_stop=args.no_stop, stop_min_trials=args.stop_min_trials,
                stop_tolerance=args.stop_tolerance, warm_start_from=args.warm_start_from,
                warm_start_k=args.warm_start_k)


def _print_run(result: Any) -> int:
    _emit(f"storage: {result.storage}")
    for note in result.notes:
        _emit(note)
    for growth in result.growth:
        _emit(f"range grown: {growth['param']} {growth['side']} bound {growth['from']:g} -> {growth['to']:g} "
              f"(best trial {growth['best_trial']} sat on it, before trial {growth['trial']})")
    for point in getattr(result, "warm_start", []):
        params = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in point["params"].items())
        _emit(f"warm start from {point['from']} (distance {point['distance']:.3f}, its trial {point['trial']}, "
              f"validation MRR {point['value']:.4f}): {params}"
              + ("" if point["enqueued"] else " (not queued: the study has these settings already)"))
    if result.stop is not None:
        _emit(f"stopped early after trial {result.stop['trial']}: {result.stop['reason']}")
    best = result.best
    if best is None:
        _emit(f"study {result.study}: no complete trial ({_counts_text(result.counts)})")
        return EXIT_NO_COMPLETE_TRIAL
    _emit(f"study {result.study}: best trial {best.trial}, validation MRR {best.value:.4f}, "
          f"{_settings_text(best.settings)} ({_counts_text(result.counts)}; {result.trials_added} finished in this run)")
    if result.exported is not None:
        flags = result.exported.flags
        _emit(f"exported to {result.exported.path}: " + ", ".join(f"{k}: {v}" for k, v in flags.items()))
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from search.lifecycle import launch

    return _print_run(launch(args.spec_file, dataset=args.dataset, checkpoint=args.checkpoint, mode=args.mode,
                             trials=args.trials, **search_keywords(args), **_run_options(args)))


def cmd_resume(args: argparse.Namespace) -> int:
    from search.lifecycle import resume

    return _print_run(resume(args.study, trials=args.trials, no_stop=args.no_stop, **_run_options(args)))


def cmd_export(args: argparse.Namespace) -> int:
    from search.lifecycle import export

    return print_export(export(args.study, flags=args.flags, all=args.all, storage=args.storage))


def print_export(result: Any) -> int:
    """The lines of an export (of a study, of every dataset, or of a campaign): what went where, what was skipped."""
    _emit(f"storage: {result.storage}")
    for written in result.written:
        _emit(f"exported {written.study} (trial {written.trial}, validation MRR {written.value:.4f}) to "
              f"{written.path}: " + ", ".join(f"{k}: {v}" for k, v in written.flags.items()))
    for study, why in result.skipped:
        _emit(f"skipped {study}: {why}")
    return 0


def _study_lines(entry: Any) -> list[str]:
    """The lines under a status table for one study (``StudyStatus``): search range and its growth, early
    stop, RUNNING trials no live worker vouches for, warm start. Used by ``status`` and ``campaign status``."""
    ranges = ", ".join(f"{name} [{b['low']:g}, {b['high']:g}]" for name, b in entry.space.items())
    grown = "; ".join(f"{g['param']} {g['side']} {g['from']:g} -> {g['to']:g} before trial {g['trial']}"
                      for g in entry.growth)
    lines = [f"{entry.study}: search range {ranges or '-'}" + (f" (grown: {grown})" if grown else "")]
    if entry.stop_reason:
        lines.append(f"{entry.study}: stopped early: {entry.stop_reason}")
    lines += [f"{entry.study}: {trial.describe()} is RUNNING, no live worker vouches for it: {trial.why}"
              for trial in entry.stale]
    for point in getattr(entry, "warm_start", []):
        lines.append(f"{entry.study}: warm start from {point['from']} (distance {point['distance']:.3f}): "
                     + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in point["params"].items())
                     + ("" if point.get("enqueued", True) else " (not queued: the study had these settings already)"))
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    from search.lifecycle import status

    result = status(storage=args.storage)
    if args.json:
        _emit_json({"storage": result.storage, "state": result.state, "studies": [
            {"study": s.study, "checkpoint": s.checkpoint, "budget": s.budget, "trials": s.counts,
             "best": _best_json(s.best), "space": s.space, "growth": s.growth, "stop_reason": s.stop_reason,
             "stale": [t.to_json() for t in s.stale], "warm_start": s.warm_start}
            for s in result.studies]})
        return 0
    if not result.studies:
        state = {"missing": "does not exist", "empty": "holds no Optuna schema"}.get(result.state, "has no studies")
        _emit(f"storage: {result.storage} ({state}): no studies")
        return 0
    rows = []
    for entry in result.studies:
        best, counts = entry.best, entry.counts
        done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        budget = f"/{entry.budget}" if entry.budget else ""
        rows.append((entry.study, entry.checkpoint or "-", f"{done}{budget}", counts.get("COMPLETE", 0),
                     counts.get("PRUNED", 0), counts.get("FAIL", 0), counts.get("RUNNING", 0) + counts.get("WAITING", 0),
                     "-" if best is None else f"{best.value:.4f}", "-" if best is None else best.trial,
                     "-" if best is None else _settings_text(best.settings)))
    _emit(f"storage: {result.storage}")
    _emit(_table(rows, ("study", "checkpoint", "done", "complete", "pruned", "failed", "running/queued",
                        "best MRR", "trial", "best settings")))
    for entry in result.studies:
        for line in _study_lines(entry):
            _emit(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from search.lifecycle import report

    result = report(args.study, out=args.out, n_boot=args.n_boot, seed=args.seed, storage=args.storage,
                    progress=_progress(args), options=_options(args))
    summary = result.summary
    rows = []
    for row in summary["settings"]:
        diff = row["diff_vs_best"]
        rows.append((row["label"], f"{row['weights'][0]:.4f}/{row['weights'][1]:.4f}", _float(row["valid_mrr"]),
                     row["valid_source"], _float(row["test"]["mrr"]), _float(row["test"]["hits@10"]),
                     "-" if diff is None else f"{diff['diff']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"))
    _emit(f"storage: {result.storage}")
    _emit(_table(rows, ("setting", "w_sim/w_prompt", "valid MRR", "valid from", "test MRR", "test H@10",
                        "best - setting, test MRR [95% CI]")))
    if summary.get("note"):
        _emit(summary["note"])
    ranges = ", ".join(f"{name} [{b['low']:g}, {b['high']:g}]" for name, b in summary["space"].items())
    grown = "; ".join(f"{g['param']} {g['side']} {g['from']:g} -> {g['to']:g} before trial {g['trial']} "
                      f"(best trial {g['best_trial']} sat on it)" for g in summary["growth"])
    _emit(f"search range: {ranges or '-'}" + (f" (grown: {grown})" if grown else ""))
    if summary["stop"]:
        _emit(f"stopped early after trial {summary['stop']['trial']}: {summary['stop']['reason']}")
    _emit(f"report written to {result.out_dir}: " + ", ".join(p.name for p in result.files))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from search.catalogue import catalogue
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root)
    entries = catalogue(options.data_root, options.text_root)
    if args.json:
        _emit_json({"datasets": [entry.to_json() for entry in entries]})
        return 0
    rows = [(e.name, e.group, e.setting, "yes" if e.present else "no", "yes" if e.texts else "no", e.source)
            for e in entries]
    _emit(f"data root: {options.data_root}; text root: {options.text_root or '- (not set)'}")
    _emit(_table(rows, ("dataset", "group", "setting", "present", "texts", "source")))
    benchmark = [e for e in entries if e.group != "other"]
    _emit(f"{len(benchmark)} benchmark graphs and {len(entries) - len(benchmark)} other datasets; "
          f"{sum(e.present for e in entries)} present, {sum(e.texts for e in entries)} with relation texts")
    return 0


# ---------------------------------------------------------------------------------------------
# the parser


def _type(rule: Callable[[Any, str], Any], flag: str) -> Callable[[str], Any]:
    return argparse_type(rule, flag)


def _choice(choices: Sequence[str], flag: str) -> dict[str, Any]:
    """``type=`` and ``metavar=`` of an option with fixed choices, checked by :func:`search.values.choice`
    (the same words as in a study spec)."""
    def rule(value: Any, what: str) -> str:
        return choice(value, choices, what)

    rule.__name__ = "choice"
    return {"type": argparse_type(rule, flag), "metavar": "{" + ",".join(choices) + "}"}


def _common(*, suppress: bool) -> argparse.ArgumentParser:
    """-v / -q / --no-progress, accepted before and after the command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
                        help="more log output on stderr (-vv for debug)")
    parent.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="only errors on stderr, no progress bars")
    parent.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="no progress bars")
    return parent


def add_root_arguments(parser: Any, *, only_checkpoint: bool = False) -> None:
    """--data-root, --text-root (not with ``only_checkpoint``), --cache-dir, --checkpoint-root and --offline
    on ``parser`` (or an argument group), the options :meth:`search.options.LoadOptions.resolve` takes;
    also used by the benchmarks in bench/."""
    if not only_checkpoint:
        parser.add_argument("--data-root", metavar="DIR",
                            help="dataset root (default: $ARE_DATA_ROOT, else ~/.cache/are-search/raw; "
                                 "missing files are downloaded)")
        parser.add_argument("--text-root", metavar="DIR",
                            help="relation texts root (default: $ARE_TEXT_ROOT, then download)")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: $ARE_CACHE_DIR or ~/.cache/are-search)")
    parser.add_argument("--checkpoint-root", metavar="DIR",
                        help="folder of <name>.pth for checkpoint names "
                             "(default: $ARE_CHECKPOINT_ROOT, else downloaded into the cache)")
    parser.add_argument("--offline", action="store_true", help="never download (datasets, texts, checkpoints)")


def _add_inputs(parser: argparse.ArgumentParser, *, only_checkpoint: bool = False) -> None:
    group = parser.add_argument_group("model inputs")
    add_root_arguments(group, only_checkpoint=only_checkpoint)
    if not only_checkpoint:
        group.add_argument("--encoder", metavar="SPEC",
                           help="text encoder: auto | minilm | jina[:PATH] | a file of precomputed vectors "
                                "(default: auto; resume/report: the one the study was launched with)")
        group.add_argument("--device", metavar="DEVICE", help="cpu | cuda | cuda:N (default: cuda when available)")
        group.add_argument("--batch-size", type=_type(positive_int, "--batch-size"), metavar="N",
                           help="(anchor, relation) pairs per entity pass (default: 16 on CPU, 64 on CUDA)")
        group.add_argument("--threads", type=_type(positive_int, "--threads"), metavar="N", help="CPU threads for torch")


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage: sqlite:///FILE, FILE.db, postgresql://..., journal:FILE "
                             "(default: $ARE_STORAGE, else ./studies/are-search.db)")


def add_search_options(parser: argparse.ArgumentParser, *, campaign: bool = False) -> None:
    """--seed, --sampler, --pruner, the range and stopping options and the warm start of a study's
    ``launch``, or (campaign) of every study a campaign launches."""
    from search.pruners import PRUNERS
    from search.samplers import SAMPLERS
    from search.spec import DEFAULTS

    the = "every study" if campaign else "the study"
    parser.add_argument("--seed", type=_type(non_negative_int, "--seed"), metavar="S", help=f"default: {DEFAULTS['seed']}")
    parser.add_argument("--sampler", **_choice(SAMPLERS, "--sampler"), help=f"default: {DEFAULTS['sampler']}")
    parser.add_argument("--pruner", **_choice(PRUNERS, "--pruner"),
                        help=f"default: {DEFAULTS['pruner']} (4 validation stages per fixed-mode trial)")
    bounds = parser.add_argument_group("search range and stopping")
    bounds.add_argument("--soft-high", type=_type(weight_bound, "--soft-high"), metavar="X",
                        help=f"fixed mode: first upper bound of both weights; grows when the best sits on it "
                             f"(default: {DEFAULTS['soft_high']:g})")
    bounds.add_argument("--weight-cap", type=_type(weight_bound, "--weight-cap"), metavar="X",
                        help=f"fixed mode: the bound a weight's range never grows past (default: {DEFAULTS['weight_cap']:g})")
    bounds.add_argument("--no-stop", action="store_true", help=f"{the} runs its whole budget: no early stop")
    bounds.add_argument("--stop-min-trials", type=_type(positive_int, "--stop-min-trials"), metavar="N",
                        help=f"complete trials before {the} may stop early (default: {DEFAULTS['stop_min_trials']})")
    bounds.add_argument("--stop-tolerance", type=_type(positive_float, "--stop-tolerance"), metavar="X",
                        help=f"stop when more trials are unlikely to gain more validation MRR than this "
                             f"(default: {DEFAULTS['stop_tolerance']:g})")
    warm = parser.add_argument_group("warm start")
    sources = "STUDY|campaign" if campaign else "STUDY"
    warm.add_argument("--warm-start-from", nargs="+", metavar=sources,
                      help="a study created now first tries, after its known points, the best settings of the "
                           "studies (<dataset>/<mode>, same storage, same mode, other datasets) whose graphs are "
                           "most similar to its own" + ("; 'campaign': the campaign's own finished studies"
                                                        if campaign else ""))
    warm.add_argument("--warm-start-k", type=_type(positive_int, "--warm-start-k"), metavar="K",
                      help=f"how many of them (default: {DEFAULTS['warm_start_k']})")


def add_run_options(parser: argparse.ArgumentParser, *, campaign: bool = False) -> None:
    """Where and how trials run: local workers or Ray, stale trials; for a study also --settings-per-pass
    and --flags. A campaign's workers all pull from its one queue of trials."""
    trial = "worker" if campaign else "trial"
    run = parser.add_argument_group("how trials run")
    run.add_argument("--workers", type=_type(positive_int, "--workers"), metavar="N",
                     help="local worker processes" + (" pulling from the campaign's one queue" if campaign else "")
                          + " (default 1)")
    run.add_argument("--ray", action="store_true",
                     help="run the workers as Ray tasks" if campaign else "run the trials with Ray Tune")
    run.add_argument("--gpus-per-trial", type=_type(non_negative_float, "--gpus-per-trial"), metavar="G",
                     help=f"Ray: GPUs per {trial}, fractions ok (default 0)")
    run.add_argument("--cpus-per-trial", type=_type(positive_float, "--cpus-per-trial"), metavar="C",
                     help=f"Ray: CPUs per {trial} (default 1)")
    run.add_argument("--max-concurrent", type=_type(positive_int, "--max-concurrent"), metavar="K",
                     help=f"Ray: {trial}s at once (default 2)")
    run.add_argument("--address", metavar="ADDR", help="Ray: address of an existing cluster (default: start one)")
    if not campaign:
        run.add_argument("--settings-per-pass", type=_type(positive_int, "--settings-per-pass"), metavar="K",
                         help="fixed mode, local workers: run K trials together, their settings sharing each entity "
                              "pass (same values as one by one; spec key settings_per_pass, default 1)")
        run.add_argument("--flags", metavar="PATH", help="export the best settings into this flags.yaml when done")
    run.add_argument("--fail-stale", action="store_true",
                     help="fail and re-queue now the RUNNING trials that no live worker vouches for (another host "
                          "without a heartbeat, a journal storage); without it only those older than max(10 x the "
                          "median trial duration, 10 min). A live local worker's trial is never failed")


_EPILOG = {
    "evaluate": "example:\n  are-search evaluate --dataset FBNELL --checkpoint fusion --split valid "
                "--fusion fixed --w-sim 0.2 --w-prompt 0.8",
    "inspect": "example:\n  are-search inspect fusion",
    "launch": "examples:\n  are-search launch --dataset FBNELL --checkpoint fusion --mode fixed --trials 40\n"
              "  are-search launch studies/FBNELL.yaml --trials 60",
    "resume": "example:\n  are-search resume FBNELL/fixed --trials 60",
    "export": "examples:\n  are-search export FBNELL/fixed --flags flags.yaml\n  are-search export --all flags/",
    "status": "example:\n  are-search status --json",
    "report": "example:\n  are-search report FBNELL/fixed --out reports/fbnell",
}


def build_parser() -> argparse.ArgumentParser:
    from search.names import MODES
    from search.spec import DEFAULTS

    parser = _Parser(prog=PROG, parents=[_common(suppress=False)],
                     description="Per-dataset Optuna search of ARE's enhancer fusion settings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    sub_common = _common(suppress=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002
        return commands.add_parser(name, parents=[sub_common], help=help, description=help, epilog=_EPILOG[name])

    p = command("evaluate", "evaluate one checkpoint on one split")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--checkpoint", required=True, metavar="PATH|NAME")
    p.add_argument("--split", choices=("valid", "test"), default="test", help="the split to rank")
    p.add_argument("--fusion", choices=("checkpoint", "fixed", "learned"), default="checkpoint",
                   help="the checkpoint's own fusion, fixed weights, or the learned ones (are-fusion)")
    p.add_argument("--w-sim", type=_type(weight, "--w-sim"), metavar="X", help="similarity enhancer weight (--fusion fixed)")
    p.add_argument("--w-prompt", type=_type(weight, "--w-prompt"), metavar="Y", help="prompt enhancer weight (--fusion fixed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_inputs(p)
    p.set_defaults(handler=cmd_evaluate)

    p = command("inspect", "profile, size and fusion of a checkpoint")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pth file or a known name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_inputs(p, only_checkpoint=True)
    p.set_defaults(handler=cmd_inspect)

    p = command("launch", "start (or continue) a study")
    p.add_argument("spec_file", nargs="?", metavar="SPEC.yaml", help="a study spec; options below override it")
    p.add_argument("--dataset", metavar="NAME", help="any spelling the loader accepts (metafam, Metafam:Metafam)")
    p.add_argument("--checkpoint", metavar="PATH|NAME")
    p.add_argument("--mode", **_choice(MODES, "--mode"), help=f"fusion mode (default: {DEFAULTS['mode']})")
    p.add_argument("--trials", type=_type(positive_int, "--trials"), metavar="N",
                   help=f"finished trials the study should reach (default: {DEFAULTS['trials']})")
    add_search_options(p)
    _add_storage(p)
    add_run_options(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_launch)

    p = command("resume", "continue a study from its stored spec")
    p.add_argument("study", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed")
    p.add_argument("--trials", type=_type(positive_int, "--trials"), metavar="N",
                   help="new total trial budget (default: the stored one)")
    p.add_argument("--no-stop", action="store_true", help="run the whole budget: no early stop")
    _add_storage(p)
    add_run_options(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_resume)

    p = command("export", "write a study's best settings to flags.yaml")
    p.add_argument("study", nargs="?", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed (not with --all)")
    p.add_argument("--flags", metavar="PATH", help="the flags.yaml to edit (created when missing)")
    p.add_argument("--all", metavar="DIR", help="one DIR/<dataset>/flags.yaml per dataset (best of its studies)")
    _add_storage(p)
    p.set_defaults(handler=cmd_export)

    p = command("status", "list studies, trials and best so far (reads the storage only)")
    p.add_argument("--json", action="store_true", help="print one JSON object (studies with trials, best, space, growth, stop_reason, stale)")
    _add_storage(p)
    p.set_defaults(handler=cmd_status)

    p = command("report", "plots, and the best setting vs the baselines on validation and test")
    p.add_argument("study", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed")
    p.add_argument("--out", metavar="DIR", help="default: ./studies/reports/<dataset>_<mode>/")
    p.add_argument("--n-boot", type=_type(positive_int, "--n-boot"), default=2000, metavar="N", help="bootstrap resamples")
    p.add_argument("--seed", type=_type(non_negative_int, "--seed"), default=0, metavar="S", help="bootstrap seed")
    _add_storage(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_report)

    help_text = "list every registered dataset: group, setting, source, present under the data root, relation texts"
    p = commands.add_parser("datasets", parents=[sub_common], help=help_text, description=help_text,
                            epilog="examples:\n  are-search datasets\n  are-search datasets --json")
    p.add_argument("--json", action="store_true",
                   help='print {"datasets": [{"name", "group", "setting", "source", "present", "texts"}, ...]}')
    p.add_argument("--data-root", metavar="DIR",
                   help="dataset root (default: $ARE_DATA_ROOT, else ~/.cache/are-search/raw)")
    p.add_argument("--text-root", metavar="DIR", help="relation texts root (default: $ARE_TEXT_ROOT)")
    p.set_defaults(handler=cmd_datasets)

    from search.campaign.cli import add_campaign_parser

    add_campaign_parser(commands, sub_common)
    return parser


# ---------------------------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see :mod:`search.errors`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level_for(args.verbose, args.quiet))
    try:
        known = user_error_types()
    except ImportError as error:  # a broken installation: say which module is missing
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return EXIT_BAD_INPUT
    previous = on_sigterm_raise()  # SIGTERM (timeout, a batch scheduler, kill) ends a run as Ctrl-C does
    try:
        return int(args.handler(args) or 0)
    except known as error:
        _logger.debug("%s failed", args.command, exc_info=True)
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return int(getattr(error, "exit_code", EXIT_BAD_INPUT))
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated) or isinstance(interrupt.__context__, Terminated)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        study = getattr(interrupt, "study", None)
        if study and study.startswith("campaign "):
            sys.stderr.write(f"{PROG}: {what}: finished trials are kept, the interrupted ones do not count; "
                             f"continue with: {PROG} campaign resume {study[len('campaign '):]}\n")
        elif study:
            sys.stderr.write(f"{PROG}: {what}: finished trials are kept, the interrupted one does not count; "
                             f"continue with: {PROG} resume {study}\n")
        else:
            sys.stderr.write(f"{PROG}: {what}\n")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """The console script: :func:`main`, then exit. After Ctrl-C a library thread that was being started
    when the interrupt landed (Optuna's heartbeat) may never be told to stop: exit without waiting for it."""
    import os
    import threading

    code = main()
    if code == EXIT_INTERRUPTED and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                        if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
