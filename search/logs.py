"""Logging of the command line and of its worker processes: one stderr handler, one policy.

At the default level (WARNING) Optuna's trial-failure records caused by Ctrl-C or by a surplus
trial (:class:`search.study.budget.BudgetReached`) are dropped -- the CLI says what happened in one line --
and Optuna's experimental-feature warnings are not shown; ``-v`` shows everything.
"""
from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from typing import Iterator

__all__ = ["configure_logging", "level_for", "quiet_dataset_reports"]


class _QuietTrialFailures(logging.Filter):
    """Drop Optuna's trial-failure records (with traceback) for Ctrl-C and for surplus trials, and the
    bare "failed with value None" line that follows any failure record (the first one says why)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from search.study.budget import BudgetReached

        exc = record.exc_info[0] if record.exc_info else None
        if exc is not None and issubclass(exc, (KeyboardInterrupt, BudgetReached)):
            return False
        message = record.getMessage()
        # Optuna follows the record with the error by a bare "Trial N failed with value None."
        return not ("KeyboardInterrupt" in message or "BudgetReached" in message
                    or re.fullmatch(r"Trial \d+ failed with value None\.?", message))


class _Handler(logging.StreamHandler):
    """The stderr handler :func:`configure_logging` installs (a class of its own, so a second call finds it)."""


def level_for(verbose: int, quiet: bool) -> int:
    """The log level of ``-v`` (count) and ``-q``."""
    return logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]


def configure_logging(level: int) -> None:
    """Send this process's logs (Optuna's too) to stderr at ``level``, replacing an earlier call's handler."""
    import optuna

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    quiet = level >= logging.WARNING
    if quiet:
        handler.addFilter(_QuietTrialFailures())
    root.addHandler(handler)
    root.setLevel(level)
    # Python warnings of the libraries (deprecations, experimental features) only from -v on.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR if quiet else logging.WARNING)
    if quiet:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(min(level, logging.WARNING) if level <= logging.INFO else logging.WARNING)


@contextlib.contextmanager
def quiet_dataset_reports(quiet: bool = True) -> Iterator[None]:
    """A driver's look at a dataset before its run (graph statistics, sizes) stays quiet: the run loads the
    dataset again, in this process or its local workers, and logs what its files hold then, so each launch
    says it once. Ray workers' logs do not reach the driver: there (``quiet=False``) the driver says it."""
    if not quiet:
        yield
        return
    data_logger = logging.getLogger("are_model.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        data_logger.setLevel(level)
