"""The ``are-search`` command line: argparse and formatting over the Python API (:mod:`search.api`).

Results go to stdout (a plain-text table, or one JSON document with ``--json``); logs and progress go
to stderr (``-v`` for more, ``-q`` for errors only). A problem with the input ends the command with one
line ``are-search <command>: error: ...`` on stderr (values named by their option: ``--dataset``) and the
error's exit status (:mod:`search.errors`: 2 for bad
input, 3 when a study ended without a complete trial, 130 when interrupted), never a traceback.

This module is an edge: it resolves the environment (``ARE_*``) and the working directory once,
into a :class:`search.options.LoadOptions` and a storage URL, and passes them down.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Sequence

from search.version import __version__
from search.cli import campaign, study
from search.cli.common import PROG, Parser, add_root_arguments, common_parser, one_line, option_words
from search.errors import (EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, on_sigterm_raise,
                           user_error_types)
from search.logs import configure_logging, level_for

__all__ = ["COMMAND_GROUPS", "PROG", "add_root_arguments", "build_parser", "command_prog", "main", "entry"]

_logger = logging.getLogger("search.cli")

#: The command registry: each group adds its commands to the main parser (``add_commands(commands, common)``),
#: every command sets its ``handler``. A new command group is one module and one entry here.
COMMAND_GROUPS = (study, campaign)


def build_parser() -> argparse.ArgumentParser:
    """The ``are-search`` parser: global options and every command of :data:`COMMAND_GROUPS`."""
    parser = Parser(prog=PROG, parents=[common_parser(suppress=False)],
                    description="Per-dataset Optuna search of ARE's enhancer fusion settings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    sub_common = common_parser(suppress=True)
    for group in COMMAND_GROUPS:
        group.add_commands(commands, sub_common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see :mod:`search.errors`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(level_for(args.verbose, args.quiet))
    previous = on_sigterm_raise()  # SIGTERM (timeout, a batch scheduler, kill) ends a run as Ctrl-C does
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:  # `are-search datasets | head`: the reader is gone, which is no bad input
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE
    except user_error_types() as error:  # evaluated when an error arrives: the types of what has run
        _logger.debug("%s failed", args.command, exc_info=True)
        sys.stderr.write(f"{command_prog(args)}: error: {option_words(one_line(error))}\n")
        return int(getattr(error, "exit_code", EXIT_BAD_INPUT))
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated) or isinstance(interrupt.__context__, Terminated)
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        study = getattr(interrupt, "study", None)
        storage = _storage_option(getattr(interrupt, "storage", None))
        if study and study.startswith("campaign "):
            sys.stderr.write(f"{PROG}: {what}: finished trials are kept, the interrupted ones do not count; "
                             f"continue with: {PROG} campaign resume {study[len('campaign '):]}{storage}\n")
        elif study:
            flags = getattr(args, "flags", None)  # the run would have written them at its end: so will the resume
            again = f" --flags {shlex.quote(str(flags))}" if flags else ""
            sys.stderr.write(f"{PROG}: {what}: finished trials are kept, the interrupted one does not count; "
                             f"continue with: {PROG} resume {study}{storage}{again}\n")
        else:
            sys.stderr.write(f"{PROG}: {what}\n")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def command_prog(args: argparse.Namespace) -> str:
    """``are-search <command>`` (``are-search campaign <command>``): the prefix of a command's one-line errors,
    the same as argparse gives its own (``are-search launch: error: argument --trials: ...``)."""
    words = [PROG, getattr(args, "command", None), getattr(args, "campaign_command", None)]
    return " ".join(word for word in words if word)


def _storage_option(url: object) -> str:
    """`` --storage 'URL'`` (password masked) for a hint to continue a run on ``url``, or "" when ``url`` is
    unknown or the storage a command given no ``--storage`` uses anyway (``$ARE_STORAGE``, else the default)."""
    if url is None:
        return ""
    from search.options import resolve_storage

    try:
        if url == resolve_storage(None):
            return ""
    except ValueError:  # an unparsable $ARE_STORAGE: name the run's storage
        pass
    return f" --storage '{url}'"


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
