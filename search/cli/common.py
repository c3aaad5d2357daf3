"""What every command of the ``are-search`` command line shares: the parser class, the options each command
group adds (inputs, storage, search options, run options), and the plain-text and JSON output.

Results go to stdout (a plain-text table, or one JSON document with ``--json``); logs and progress go to
stderr. This module is part of the edge: it turns parsed arguments into the typed options of the Python
API (:class:`search.options.LoadOptions`, :class:`search.options.RunOptions`).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from search.errors import EXIT_BAD_INPUT
from search.values import (argparse_type, choice, non_negative_float, non_negative_int, positive_float, positive_int,
                           weight_bound)

__all__ = ["PROG", "Parser", "Formatter", "one_line", "option_words", "progress_mode", "emit", "emit_json", "table", "fmt_float",
           "settings_text", "best_json", "counts_text", "load_options_of", "run_options", "search_keywords",
           "print_export", "study_lines", "arg_type", "choice_of", "common_parser", "add_root_arguments", "add_inputs",
           "add_storage", "add_search_options", "add_run_options"]

PROG = "are-search"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``are-search <cmd>: error: ...``), exit status 2, defaults shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; an option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return text or type(error).__name__


#: Study and campaign keys whose command-line option is not ``--<key with dashes>``.
_KEY_OPTIONS = {"groups": "--group", "stop": "--no-stop"}


def option_words(text: str) -> str:
    """An error line in command-line words: the API's ``options: key 'dataset': ...`` (values given as keyword
    arguments or options, :data:`search.study.spec.OPTIONS`) becomes ``--dataset: ...``, ``options: keys
    'soft_high' and 'weight_cap'`` becomes ``--soft-high and --weight-cap``; a nested key (``budget.epochs``),
    which no option sets, stays ``key 'budget.epochs'``. Other lines are returned as they are."""
    import re

    from search.study.spec import OPTIONS

    prefix = f"{OPTIONS}: "
    if not text.startswith(prefix):
        return text
    rest = text[len(prefix):]
    found = re.match(r"keys? ((?:'[A-Za-z0-9_]+'|, | and | or )+)", rest)
    if found is None:
        return rest

    def option(key: re.Match) -> str:
        return _KEY_OPTIONS.get(key.group(1), "--" + key.group(1).replace("_", "-"))

    return re.sub(r"'([A-Za-z0-9_]+)'", option, found.group(1)) + rest[found.end():]


def progress_mode(args: argparse.Namespace) -> str | None:
    """``bar`` on a terminal, ``lines`` (one per finished trial) when stderr is a file or pipe, None when quiet."""
    if args.quiet or args.no_progress:
        return None
    return "bar" if sys.stderr.isatty() else "lines"


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def emit_json(value: Any) -> None:
    emit(json.dumps(value, indent=2, default=str))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """A plain-text table: columns padded to their widest cell."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(len(r) for r in cells))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_float(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def settings_text(settings: Any) -> str:
    if settings is None:
        return "-"
    parts = [settings.weights_text()]
    if settings.use_learnable_fusion:
        parts.append(f"fusion_lr={settings.fusion_lr:.3g}" if settings.fusion_lr else "fusion_lr=-")
        parts.append("body=frozen" if settings.body_lr is None else f"body_lr={settings.body_lr:.3g}")
        if settings.learned_weights is not None and len(settings.learned_weights) == len(settings.weights):
            parts.append("learned=" + "/".join(f"{w:.4f}" for w in settings.learned_weights))
    return " ".join(parts)


def best_json(best: Any) -> dict[str, Any] | None:
    if best is None:
        return None
    return {"trial": best.trial, "value": best.value, "params": best.params,
            "settings": None if best.settings is None else best.settings.to_attr()}


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"


def load_options_of(args: argparse.Namespace) -> Any:
    from search.options import LoadOptions

    return LoadOptions.resolve(**{key: getattr(args, key, None) for key in (
        "data_root", "text_root", "checkpoint_root", "cache_dir", "encoder", "device", "batch_size", "threads")},
        offline=bool(getattr(args, "offline", False)))


def run_options(args: argparse.Namespace, *, campaign: bool = False) -> dict[str, Any]:
    """The keywords of the options :func:`_add_run_options` added (a campaign has no --flags or --settings-per-pass)."""
    options = dict(storage=args.storage, workers=args.workers, ray=args.ray, gpus_per_trial=args.gpus_per_trial,
                   cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent, address=args.address,
                   fail_stale=args.fail_stale, progress=progress_mode(args), options=load_options_of(args))
    if not campaign:
        options.update(flags=args.flags, settings_per_pass=args.settings_per_pass)
    return options


def search_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of the options :func:`add_search_options` added, as ``launch`` (study or campaign) takes them,
    and a study launch's ``--from-flags`` when given."""
    return dict(seed=args.seed, sampler=args.sampler, pruner=args.pruner, weight_cap=args.weight_cap,
                soft_high=args.soft_high, no_stop=args.no_stop, stop_min_trials=args.stop_min_trials,
                stop_tolerance=args.stop_tolerance, warm_start_from=args.warm_start_from,
                warm_start_k=args.warm_start_k,
                **({"valid_pairs": args.valid_pairs} if getattr(args, "valid_pairs", None) is not None else {}),
                **({"from_flags": args.from_flags} if getattr(args, "from_flags", None) is not None else {}))


def print_export(result: Any) -> int:
    """The lines of an export (of a study, of every dataset, or of a campaign): what went where, what was skipped."""
    emit(f"storage: {result.storage}")
    for written in result.written:
        emit(f"exported {written.study} (trial {written.trial}, validation MRR {written.value:.4f}) to "
              f"{written.path}: " + ", ".join(f"{k}: {v}" for k, v in written.flags.items()))
    for study, why in result.skipped:
        emit(f"skipped {study}: {why}")
    return 0


def study_lines(entry: Any) -> list[str]:
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


def arg_type(rule: Callable[[Any, str], Any], flag: str) -> Callable[[str], Any]:
    return argparse_type(rule, flag)


def choice_of(choices: Sequence[str], flag: str) -> dict[str, Any]:
    """``type=`` and ``metavar=`` of an option with fixed choices, checked by :func:`search.values.choice`
    (the same words as in a study spec)."""
    def rule(value: Any, what: str) -> str:
        return choice(value, choices, what)

    rule.__name__ = "choice"
    return {"type": argparse_type(rule, flag), "metavar": "{" + ",".join(choices) + "}"}


def common_parser(*, suppress: bool) -> argparse.ArgumentParser:
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


def add_inputs(parser: argparse.ArgumentParser, *, only_checkpoint: bool = False) -> None:
    group = parser.add_argument_group("model inputs")
    add_root_arguments(group, only_checkpoint=only_checkpoint)
    if not only_checkpoint:
        group.add_argument("--encoder", metavar="SPEC",
                           help="text encoder: auto | minilm | jina[:PATH] | a file of precomputed vectors "
                                "(default: auto; resume/report: the one the study was launched with)")
        group.add_argument("--device", metavar="DEVICE", help="cpu | cuda | cuda:N (default: cuda when available)")
        group.add_argument("--batch-size", type=arg_type(positive_int, "--batch-size"), metavar="N",
                           help="(anchor, relation) pairs per entity pass (default: 16 on CPU, 64 on CUDA)")
        group.add_argument("--threads", type=arg_type(positive_int, "--threads"), metavar="N", help="CPU threads for torch")


def add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage: sqlite:///FILE, FILE.db, postgresql://..., journal:FILE "
                             "(default: $ARE_STORAGE, else ./studies/are-search.db)")


def add_search_options(parser: argparse.ArgumentParser, *, campaign: bool = False) -> None:
    """--seed, --sampler, --pruner, the range and stopping options and the warm start of a study's
    ``launch``, or (campaign) of every study a campaign launches."""
    from search.pruners import PRUNERS
    from search.samplers import SAMPLERS
    from search.study.spec import DEFAULTS

    the = "every study" if campaign else "the study"
    parser.add_argument("--seed", type=arg_type(non_negative_int, "--seed"), metavar="S", help=f"default: {DEFAULTS['seed']}")
    parser.add_argument("--sampler", **choice_of(SAMPLERS, "--sampler"), help=f"default: {DEFAULTS['sampler']}")
    parser.add_argument("--pruner", **choice_of(PRUNERS, "--pruner"),
                        help=f"default: {DEFAULTS['pruner']} (paired: race each fixed-mode trial against the best on "
                             "the same validation queries after each of its 4 stages; median/asha/hyperband: judge "
                             "stage MRRs; none)")
    if not campaign:
        parser.add_argument("--valid-pairs", type=arg_type(positive_int, "--valid-pairs"), metavar="N",
                            help="a validation budget: every trial ranks the same N (anchor, relation) pairs of the "
                                 "validation split, a seeded sample stratified by relation (spec key valid_pairs; "
                                 "default: the whole split)")
    bounds = parser.add_argument_group("search range and stopping")
    bounds.add_argument("--soft-high", type=arg_type(weight_bound, "--soft-high"), metavar="X",
                        help=f"fixed mode: first upper bound of both weights; grows when the best sits on it "
                             f"(default: {DEFAULTS['soft_high']:g})")
    bounds.add_argument("--weight-cap", type=arg_type(weight_bound, "--weight-cap"), metavar="X",
                        help=f"fixed mode: the bound a weight's range never grows past (default: {DEFAULTS['weight_cap']:g})")
    bounds.add_argument("--no-stop", action="store_true", help=f"{the} runs its whole budget: no early stop")
    bounds.add_argument("--stop-min-trials", type=arg_type(positive_int, "--stop-min-trials"), metavar="N",
                        help=f"complete trials before {the} may stop early (default: {DEFAULTS['stop_min_trials']})")
    bounds.add_argument("--stop-tolerance", type=arg_type(positive_float, "--stop-tolerance"), metavar="X",
                        help=f"stop when more trials are unlikely to gain more validation MRR than this "
                             f"(default: {DEFAULTS['stop_tolerance']:g})")
    warm = parser.add_argument_group("warm start")
    sources = "STUDY|campaign" if campaign else "STUDY"
    warm.add_argument("--warm-start-from", nargs="+", metavar=sources,
                      help="a study created now first tries, after its known points, the best settings of the "
                           "studies (<dataset>/<mode>, same storage, same mode, other datasets) whose graphs are "
                           "most similar to its own" + ("; 'campaign': the campaign's own finished studies"
                                                        if campaign else ""))
    warm.add_argument("--warm-start-k", type=arg_type(positive_int, "--warm-start-k"), metavar="K",
                      help=f"how many of them (default: {DEFAULTS['warm_start_k']})")


def add_run_options(parser: argparse.ArgumentParser, *, campaign: bool = False) -> None:
    """Where and how trials run: local workers or Ray, stale trials; for a study also --settings-per-pass
    and --flags. A campaign's workers all pull from its one queue of trials."""
    trial = "worker" if campaign else "trial"
    run = parser.add_argument_group("how trials run")
    run.add_argument("--workers", type=arg_type(positive_int, "--workers"), metavar="N",
                     help="local worker processes" + (" pulling from the campaign's one queue" if campaign else "")
                          + " (default 1)")
    run.add_argument("--ray", action="store_true",
                     help="run the workers as Ray tasks" if campaign else "run the trials with Ray Tune")
    run.add_argument("--gpus-per-trial", type=arg_type(non_negative_float, "--gpus-per-trial"), metavar="G",
                     help=f"Ray: GPUs per {trial}, fractions ok (default 0)")
    run.add_argument("--cpus-per-trial", type=arg_type(positive_float, "--cpus-per-trial"), metavar="C",
                     help=f"Ray: CPUs per {trial} (default 1)")
    run.add_argument("--max-concurrent", type=arg_type(positive_int, "--max-concurrent"), metavar="K",
                     help=f"Ray: {trial}s at once (default 2)")
    run.add_argument("--address", metavar="ADDR", help="Ray: address of an existing cluster (default: start one)")
    if not campaign:
        run.add_argument("--settings-per-pass", type=arg_type(positive_int, "--settings-per-pass"), metavar="K",
                         help="fixed mode, local workers: run K trials together, their settings sharing each entity "
                              "pass (same values as one by one; spec key settings_per_pass, default 1)")
        run.add_argument("--flags", metavar="PATH", help="export the best settings into this flags.yaml when done")
    run.add_argument("--fail-stale", action="store_true",
                     help="fail and re-queue now the RUNNING trials that no live worker vouches for (another host "
                          "without a heartbeat, a journal storage); without it only those older than max(10 x the "
                          "median trial duration, 10 min). A live local worker's trial is never failed")
