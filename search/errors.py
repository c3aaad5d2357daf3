"""What can go wrong that a user can cause, and the exit status each kind of failure ends with.

Every error here carries a one-line message naming the file, key, option or value at fault; the
command line prints ``are-search <command>: error: <message>`` and exits with the error's ``exit_code``. The
Python API raises them as they are.

Exit statuses (also in the README):

====  =======================================================================================
0     success
1     an internal failure (a bug, or a worker process that crashed): a traceback is printed
2     bad input: an option, a study spec, a flags.yaml, a storage, a dataset, relation texts, a
      checkpoint (also one that could not be downloaded), a missing optional extra
3     the study ended without a single complete trial (nothing to report or export)
130   interrupted (Ctrl-C): finished trials are kept, the interrupted one does not count (its
      settings are queued again when it had any); ``resume`` continues the study
141   the reader of standard output went away (``are-search datasets | head``): nothing more is
      printed, as for any command killed by SIGPIPE
143   terminated (SIGTERM, e.g. from ``timeout``, a batch scheduler or ``kill``): as Ctrl-C
====  =======================================================================================
"""
from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_BAD_INPUT",
    "EXIT_NO_COMPLETE_TRIAL",
    "EXIT_INTERRUPTED",
    "EXIT_BROKEN_PIPE",
    "EXIT_TERMINATED",
    "AreSearchError",
    "UsageError",
    "StudyError",
    "StorageError",
    "FlagsError",
    "YamlError",
    "NoCompleteTrialError",
    "WorkerError",
    "MissingExtra",
    "import_extra",
    "Interrupted",
    "Terminated",
    "on_sigterm_raise",
    "user_error_types",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_NO_COMPLETE_TRIAL = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_TERMINATED = 143


class AreSearchError(ValueError):
    """Base of the errors a user can cause; ``str(error)`` is one line, ``exit_code`` its status."""

    exit_code = EXIT_BAD_INPUT


class UsageError(AreSearchError):
    """Options or arguments that cannot work together, or a value outside its rule."""


class StudyError(AreSearchError):
    """A study name, study spec or study content that cannot be used."""


class StorageError(StudyError):
    """A storage URL that cannot be parsed, opened or read."""


class FlagsError(AreSearchError):
    """A flags.yaml that cannot be edited safely, or a value that cannot be written into it."""


class YamlError(AreSearchError):
    """A YAML file that breaks the project's YAML policy (syntax, duplicate keys, not a mapping)."""


class NoCompleteTrialError(StudyError):
    """A study that ended its run without a single complete trial."""

    exit_code = EXIT_NO_COMPLETE_TRIAL


class WorkerError(AreSearchError):
    """A user error raised in a worker process, carried to the driver as its one line and exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MissingExtra(AreSearchError):
    """A feature whose optional extra is not installed: one line naming the feature, the extra, the pip command
    and the module that is missing (as a missing ``[text]`` extra is, see ``are_model.text.MissingExtraError``)."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(f"{feature} needs the optional extra [{extra}]: pip install 'are-search[{extra}]' "
                         f"(missing module {module})")
        self.feature, self.extra, self.module = feature, extra, module

    def __reduce__(self):  # picklable across processes despite the custom signature
        return type(self), (self.feature, self.extra, self.module)


def import_extra(module: str, *, feature: str, extra: str) -> object:
    """Import ``module``, or raise :class:`MissingExtra` (no chained traceback) naming ``feature`` and ``extra``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(feature, extra, error.name or module) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by :func:`on_sigterm_raise` in the main thread: a run ends as after Ctrl-C."""


def on_sigterm_raise() -> object:
    """Make SIGTERM raise :class:`Terminated` in this process (a command line or a spawned worker: the
    edge, never the library); returns the handler it replaced. Outside the main thread it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def terminate(signum: int, frame: object) -> None:
        # Once: a SIGTERM sent to the whole process group (``timeout`` does) reaches a worker twice, from
        # the sender and passed on by its driver; a second raise inside the first one's clean-up (the
        # trial being failed and re-queued) would leave that trial RUNNING.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminate)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run of ``study`` (a study name, or ``campaign <name>``): its running trials were
    re-queued; ``resume`` continues it. ``storage``: the run's storage (a :class:`search.storage.StorageURL`,
    or None when unknown), so the hint to continue can name it when it is not the default one."""

    def __init__(self, study: str, storage: object = None) -> None:
        super().__init__(study)
        self.study = study
        self.storage = storage

    def __reduce__(self):  # picklable across processes despite the custom signature
        return type(self), (self.study, self.storage)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input (one line, exit 2 or their ``exit_code``), not a bug.

    The model core's own errors are ValueError (CheckpointError, DatasetError) or FileNotFoundError, so they
    are covered without importing it; the one that is neither, ``are_model.text.MissingExtraError`` (an
    ImportError naming the extra to install), is added only when its module is loaded: an error cannot have
    been raised by a module that never ran. So asking costs no import of torch (``status``, ``export``)."""
    import sys

    known: tuple[type[BaseException], ...] = (AreSearchError, FileNotFoundError, ValueError, OSError)
    extras = sys.modules.get("are_model.text.extras")
    if extras is not None and hasattr(extras, "MissingExtraError"):
        known += (extras.MissingExtraError,)
    return known
