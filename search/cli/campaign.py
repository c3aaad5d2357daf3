"""``are-search campaign launch|resume|status|report|export``: argparse and formatting over :mod:`search.campaign`.

Added to the main parser by :func:`add_campaign_parser`; results go to stdout (a table, or JSON with
``--json``), errors are one line with the exit codes of :mod:`search.errors`, as for every command.
"""
from __future__ import annotations

import argparse
from typing import Any

from search.cli.common import (Parser, add_inputs, add_run_options, add_search_options, add_storage, arg_type, emit,
                               emit_json, load_options_of, print_export, progress_mode, run_options, search_keywords,
                               settings_text, study_lines, table, best_json)
from search.cli.study import sample_lines, valid_pairs

__all__ = ["add_commands"]

_EPILOG = {
    "launch": "examples:\n  are-search campaign launch --name inductive --group inductive_e --checkpoint fusion --trials 20\n"
              "  are-search campaign launch --datasets NELLInductive:v1,Metafam --checkpoint fusion "
              "--modes fixed,learnable --total-trials 60\n  are-search campaign launch campaigns/local-six.yaml --workers 2",
    "resume": "example:\n  are-search campaign resume inductive --storage studies/are-search.db",
    "status": "example:\n  are-search campaign status inductive --json",
    "report": "example:\n  are-search campaign report inductive --out reports/inductive --json",
    "export": "example:\n  are-search campaign export inductive --out flags/",
}


def _print_run(result: Any) -> int:
    from search.errors import EXIT_NO_COMPLETE_TRIAL

    emit(f"storage: {result.storage}")
    for note in result.notes:
        emit(note)
    rows = []
    timed = any(study.share is not None for study in result.studies)
    for study in result.studies:
        counts, best = study.counts, study.best
        done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        rows.append((study.study, f"{done}/{study.budget}", counts.get("COMPLETE", 0), counts.get("PRUNED", 0),
                     counts.get("FAIL", 0), counts.get("INTERRUPTED", 0), "-" if best is None else f"{best.value:.4f}",
                     "-" if best is None else settings_text(best.settings),
                     "-" if study.stop is None else f"stopped after trial {study.stop['trial']}")
                    + ((time_text(study.seconds, study.share),) if timed else ()))
    emit(table(rows, ("study", "done", "complete", "pruned", "failed", "interrupted", "best MRR", "best settings",
                      "early stop")
               + (("time spent / share",) if timed else ())))
    for study in result.studies:
        if study.stop is not None:
            emit(f"{study.study}: stopped early: {study.stop['reason']}")
    emit(f"campaign {result.campaign}: {result.trials_added} trial{'' if result.trials_added == 1 else 's'} finished in this run; "
          f"total budget {result.total_budget}")
    storage = f" --storage '{result.storage}'"
    emit(f"next: are-search campaign report {result.campaign}{storage} (bests vs baselines on test, per group); "
         f"are-search campaign export {result.campaign} --out flags/{storage}")
    return EXIT_NO_COMPLETE_TRIAL if any(s.best is None for s in result.studies) else 0


def time_text(seconds: float | None, share: float | None) -> str:
    """``12m30s / 30m`` (time spent / time share), ``12m30s`` without a share, ``-`` without either."""
    if seconds is None:
        return "-"
    return clock_text(seconds) + ("" if share is None else f" / {clock_text(share)}")


def clock_text(seconds: float) -> str:
    """Seconds as ``45s``, ``12m30s`` or ``3h05m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def cmd_launch(args: argparse.Namespace) -> int:
    from search.campaign.api import launch

    return _print_run(launch(args.spec_file, name=args.name, datasets=args.datasets, groups=args.group,
                             checkpoint=args.checkpoint, modes=args.modes, trials=args.trials,
                             total_trials=args.total_trials, settings_per_pass=args.settings_per_pass,
                             time_budget=args.time_budget, budget_scale=args.budget_scale,
                             **search_keywords(args), **run_options(args, campaign=True)))


def cmd_resume(args: argparse.Namespace) -> int:
    from search.campaign.api import resume

    return _print_run(resume(args.campaign, trials=args.trials, total_trials=args.total_trials,
                             time_budget=args.time_budget, no_stop=args.no_stop, **run_options(args, campaign=True)))


def cmd_status(args: argparse.Namespace) -> int:
    from search.campaign.api import status

    result = status(args.campaign, storage=args.storage)
    if args.json:
        emit_json({"campaign": result.campaign, "storage": result.storage, "spec": result.spec.to_attr(),
                    "done": result.done, "total_budget": result.total_budget, "finished": result.finished,
                    "studies": [
                        {"study": s.study, "budget": s.budget, "trials": s.counts, "best": best_json(s.best),
                         "space": s.space, "growth": s.growth, "stop_reason": s.stop_reason,
                         "stale": [t.to_json() for t in s.stale], "valid_pairs": valid_pairs(s),
                         **({"time": result.times[s.study]} if s.study in result.times else {})}
                        for s in result.studies],
                    "time_budget": result.spec.time_budget})
        return 0
    rows = []
    for entry in result.studies:
        counts, best = entry.counts, entry.best
        done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        rows.append((entry.study, f"{done}/{entry.budget}", counts.get("COMPLETE", 0), counts.get("PRUNED", 0),
                     counts.get("FAIL", 0), counts.get("INTERRUPTED", 0), counts.get("RUNNING", 0) + counts.get("WAITING", 0),
                     "-" if best is None else f"{best.value:.4f}", "-" if best is None else settings_text(best.settings),
                     time_text((result.times.get(entry.study) or {}).get("seconds"),
                               (result.times.get(entry.study) or {}).get("share"))))
    emit(f"storage: {result.storage}")
    count = len(result.studies)
    beyond = result.finished - result.done
    emit(f"campaign {result.campaign}: {result.done}/{result.total_budget} trials done "
          f"({count} stud{'y' if count == 1 else 'ies'}, checkpoint {result.spec.checkpoint})"
          + (f"; {beyond} more finished beyond the budget of a study the campaign adopted" if beyond else ""))
    if result.spec.time_budget is not None:
        emit(f"time budget {clock_text(result.spec.time_budget)}: "
             f"{clock_text(sum(t['seconds'] for t in result.times.values()))} spent (worker time; shares for one worker)")
    emit(table(rows, ("study", "done", "complete", "pruned", "failed", "interrupted", "running/queued", "best MRR",
                        "best settings", "time spent / share" if result.spec.time_budget is not None else "time spent")))
    for entry in result.studies:
        for line in study_lines(entry) + sample_lines(entry):
            emit(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from search.campaign.api import report

    result = report(args.campaign, out=args.out, n_boot=args.n_boot, seed=args.seed, storage=args.storage,
                    progress=progress_mode(args), options=load_options_of(args), test_pairs=args.test_pairs)
    if args.json:
        emit_json(result.to_json())
        return 0
    emit((result.out_dir / "campaign.md").read_text(encoding="utf-8"))
    emit(f"report written to {result.out_dir}: " + ", ".join(p.name for p in result.files if p.parent == result.out_dir))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from search.campaign.api import export

    return print_export(export(args.campaign, out=args.out, storage=args.storage))


def _duration_text(value: Any, what: str) -> str:
    """``value`` as given once :func:`search.values.duration` accepts it (the API reads the text again)."""
    from search.values import duration

    duration(value, what)
    return str(value).strip()


def add_commands(commands: Any, sub_common: argparse.ArgumentParser) -> None:
    """Add ``campaign`` and its five commands to the main parser's ``commands``."""
    from search.study.finetune import check_budget_scale
    from search.study.spec import DEFAULTS
    from search.values import non_negative_int, positive_int

    help_text = "many datasets and modes as one queue of trials, one budget and one cross-dataset report"
    parent = commands.add_parser("campaign", parents=[sub_common], help=help_text, description=help_text)
    campaign = parent.add_subparsers(dest="campaign_command", metavar="COMMAND", parser_class=Parser)
    campaign.required = True

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return campaign.add_parser(name, parents=[sub_common], help=text, description=text, epilog=_EPILOG[name])

    p = command("launch", "start (or continue) a campaign: one study per (dataset, mode)")
    p.add_argument("spec_file", nargs="?", metavar="CAMPAIGN.yaml", help="a campaign spec; options below override it")
    p.add_argument("--name", metavar="NAME", help="the campaign's name (default: the spec file's stem, else 'default')")
    p.add_argument("--datasets", metavar="A,B,...", help="datasets, any spelling the loader accepts")
    p.add_argument("--group", metavar="GROUP[,GROUP]",
                   help="benchmark groups: inductive_e, inductive_er, transductive, pretraining or all")
    p.add_argument("--checkpoint", metavar="PATH|NAME",
                   help="required here or in the spec: an ARE checkpoint file or a known name (fusion, ARE-V3, ARE-V5)")
    p.add_argument("--modes", metavar="fixed[,learnable[,learnable_free]]",
                   help="fusion modes, one study each (default: fixed)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=arg_type(positive_int, "--trials"), metavar="N",
                        help=f"finished trials per study (default: {DEFAULTS['trials']})")
    budget.add_argument("--total-trials", type=arg_type(positive_int, "--total-trials"), metavar="N",
                        help="finished trials for the whole campaign, split evenly; a study that stops early "
                             "gives the rest of its share to the others")
    p.add_argument("--time-budget", type=arg_type(_duration_text, "--time-budget"), metavar="90s|10m|3h",
                   help="worker time for the whole campaign (with --workers W, about 1/W of it in wall time), in "
                        "equal shares per study, each share buying trials at the study's measured cost per trial "
                        "(spec key time_budget; see docs/campaigns.md)")
    p.add_argument("--valid-pairs", type=arg_type(positive_int, "--valid-pairs"), metavar="N",
                   help="every study's validation budget: its trials rank the same N (anchor, relation) pairs "
                        "(spec key valid_pairs; default: the whole split, or what a time budget sets)")
    p.add_argument("--budget-scale", type=arg_type(check_budget_scale, "--budget-scale"), metavar="S",
                   help="learnable studies: run S (0 < S <= 1) of the official per-dataset batches per epoch "
                        "(spec key budget_scale; default 1: the official fine-tuning budget)")
    p.add_argument("--settings-per-pass", type=arg_type(positive_int, "--settings-per-pass"), metavar="K",
                   help="fixed-mode studies: K trials together, their settings sharing each entity pass "
                        "(spec key settings_per_pass, default 1)")
    add_search_options(p, campaign=True)
    add_storage(p)
    add_run_options(p, campaign=True)
    add_inputs(p)
    p.set_defaults(handler=cmd_launch)

    p = command("resume", "continue a campaign from its stored spec: every study runs exactly its remaining budget")
    p.add_argument("campaign", nargs="?", metavar="CAMPAIGN",
                   help="the campaign's name, or its spec file (default: the only campaign in the storage)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=arg_type(positive_int, "--trials"), metavar="N", help="new budget per study")
    budget.add_argument("--total-trials", type=arg_type(positive_int, "--total-trials"), metavar="N",
                        help="new budget for the whole campaign")
    p.add_argument("--time-budget", type=arg_type(_duration_text, "--time-budget"), metavar="90s|10m|3h",
                   help="a new time budget for the whole campaign, the time it ran so far included")
    p.add_argument("--no-stop", action="store_true", help="run every study's whole budget: no early stop")
    add_storage(p)
    add_run_options(p, campaign=True)
    add_inputs(p)
    p.set_defaults(handler=cmd_resume)

    p = command("status", "a campaign's studies, trials done out of its budget, best so far (reads the storage only)")
    p.add_argument("campaign", nargs="?", metavar="CAMPAIGN",
                   help="the campaign's name, or its spec file (default: the only campaign in the storage)")
    p.add_argument("--json", action="store_true", help="print one JSON object (spec, done, total_budget, studies)")
    add_storage(p)
    p.set_defaults(handler=cmd_status)

    p = command("report", "the cross-dataset report: campaign.md, campaign.csv, figures, each study's report")
    p.add_argument("campaign", nargs="?", metavar="CAMPAIGN",
                   help="the campaign's name, or its spec file (default: the only campaign in the storage)")
    p.add_argument("--out", metavar="DIR", help="default: ./studies/reports/campaign_<name>/")
    p.add_argument("--json", action="store_true", help="print one JSON object with the rows, group means and wins")
    p.add_argument("--n-boot", type=arg_type(positive_int, "--n-boot"), default=2000, metavar="N", help="bootstrap resamples")
    p.add_argument("--seed", type=arg_type(non_negative_int, "--seed"), default=0, metavar="S", help="bootstrap seed")
    p.add_argument("--test-pairs", type=arg_type(positive_int, "--test-pairs"), metavar="N",
                   help="rank each test split on a seeded sample of N (anchor, relation) pairs, stratified by relation, "
                        "where it has more (every setting on the same pairs; for graphs whose whole test split takes "
                        "hours on this device; default: the whole split)")
    add_storage(p)
    add_inputs(p)
    p.set_defaults(handler=cmd_report)

    p = command("export", "one OUT/<dataset>/flags.yaml per dataset of the campaign (best of its studies)")
    p.add_argument("campaign", nargs="?", metavar="CAMPAIGN",
                   help="the campaign's name, or its spec file (default: the only campaign in the storage)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder of DIR/<dataset>/flags.yaml (the canonical dataset name, ':' written as '_')")
    add_storage(p)
    p.set_defaults(handler=cmd_export)
