"""Study naming, storage, study specs and the bookkeeping that makes a study resumable.

A study is named ``<dataset>/<mode>`` (for example ``FBNELL/fixed``) and lives in an Optuna storage:

* ``sqlite:///<path>`` -- the default, one embedded file under ``studies/`` (see
  :func:`default_storage_url`). Several worker processes of one host may open a fresh file at the
  same moment: schema and study creation are serialised behind an ``fcntl`` lock on
  ``<db>.lock`` and every connection waits up to a minute for a busy database instead of failing.
  The file holds Optuna's plain RDB schema, so ``optuna-dashboard sqlite:///...`` opens it.
* any other SQLAlchemy URL (``postgresql://``, ``mysql://`` ...) -- for many hosts.
* ``journal:<path>`` or a path ending in ``.log``/``.jsonl`` -- Optuna's journal file storage,
  which stays correct across hosts sharing a file system.

RDB storages run Optuna's heartbeats: a trial whose worker stopped beating for ``grace_period``
seconds is failed by :func:`optuna.storages.fail_stale_trials` (Optuna calls it at the start of
every trial) and re-queued by Optuna's retry callback. A worker killed on *this* host is noticed at
once by :func:`recover_dead_trials`, from the owner that :func:`mark_trial_owner` records.

Nothing here reads the working directory or ``flags.yaml``: every path and URL is an argument.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import inspect
import logging
import math
import os
import re
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import optuna
import yaml
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "MODES",
    "SAMPLERS",
    "PRUNERS",
    "StudyError",
    "BudgetReached",
    "StudyName",
    "StudySpec",
    "default_storage_url",
    "open_storage",
    "file_lock",
    "create_or_load_study",
    "list_studies",
    "mark_trial_owner",
    "recover_dead_trials",
    "remaining_budget",
    "within_budget",
    "load_study_spec",
    "merge_overrides",
    "make_sampler",
    "make_pruner",
    "as_number",
    "parse_bounds",
]

_logger = logging.getLogger(__name__)

MODES = ("fixed", "learnable")
SAMPLERS = ("gp", "tpe", "random", "grid", "cmaes", "qmc")
PRUNERS = ("median", "asha", "hyperband", "none")

#: How many times a trial whose worker died is put back in the queue before it is given up.
MAX_RETRY = 3
#: Seconds an SQLite connection waits for a busy database before it raises.
SQLITE_BUSY_TIMEOUT_S = 60.0

_DB_FILE_NAME = "are-search.db"
_DATASET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*\Z")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class StudyError(ValueError):
    """A study name, spec, storage URL or study content that cannot be used (one-line message)."""


class BudgetReached(optuna.exceptions.OptunaError):
    """Raised by an objective whose trial lies beyond the study's trial budget (see within_budget)."""


# ---------------------------------------------------------------------------------------------
# names


@dataclass(frozen=True)
class StudyName:
    """The name of one study: a dataset and a fusion mode, written ``<dataset>/<mode>``."""

    dataset: str
    mode: str

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not _DATASET_RE.match(self.dataset):
            raise StudyError(
                f"bad dataset name {self.dataset!r}: use letters, digits and _ . : + -"
            )
        if self.mode not in MODES:
            raise StudyError(f"bad mode {self.mode!r}: expected one of {', '.join(MODES)}")

    @classmethod
    def parse(cls, value: str) -> "StudyName":
        """Parse ``"FBNELL/fixed"`` or ``"FB15k237Inductive:v1/learnable"``."""
        if not isinstance(value, str) or value.count("/") != 1:
            raise StudyError(f"bad study name {value!r}: expected <dataset>/<mode>, e.g. FBNELL/fixed")
        dataset, mode = value.split("/")
        try:
            return cls(dataset, mode)
        except StudyError as exc:
            raise StudyError(f"bad study name {value!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.dataset}/{self.mode}"


# ---------------------------------------------------------------------------------------------
# storage


def default_storage_url(studies_dir: Path) -> str:
    """The default storage: an SQLite file ``are-search.db`` in ``studies_dir`` (absolute URL)."""
    return f"sqlite:///{(Path(studies_dir).resolve() / _DB_FILE_NAME).as_posix()}"


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive inter-process ``fcntl`` lock on ``lock_path`` (created if missing)."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _safe_url(url: str) -> str:
    """``url`` with any password masked, for messages and logs."""
    try:
        import sqlalchemy.engine

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: nothing to hide
        return url


def _sqlite_db_path(url: str) -> Path | None:
    """The database file of an ``sqlite://`` URL, or None for an in-memory database."""
    import sqlalchemy.engine

    database = sqlalchemy.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


def _retry_callback(max_retry: int) -> Any:
    """Optuna's callback that re-queues a trial failed by the heartbeat (name varies by version)."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is None:  # Optuna < 4.9
        cls = optuna.storages.RetryFailedTrialCallback
    return cls(max_retry=max_retry)


def _rdb_storage(
    url: str, engine_kwargs: dict[str, Any], heartbeat_interval: int, grace_period: int
) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = dict(
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
    )
    with warnings.catch_warnings():
        # heartbeats and their retry callback are marked experimental; they are what we want.
        warnings.simplefilter("ignore", ExperimentalWarning)
        params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
        # Optuna >= 4.9 calls it heartbeat_stale_trial_callback (failed_trial_callback is deprecated)
        name = "heartbeat_stale_trial_callback"
        kwargs[name if name in params else "failed_trial_callback"] = _retry_callback(MAX_RETRY)
        return optuna.storages.RDBStorage(url, **kwargs)


def open_storage(
    url: str, *, heartbeat_interval: int = 15, grace_period: int = 60
) -> optuna.storages.BaseStorage:
    """Open the storage named by ``url`` (see the module docstring for the accepted forms).

    SQLite and server databases get heartbeats every ``heartbeat_interval`` seconds; a trial
    silent for ``grace_period`` seconds is failed and retried up to ``MAX_RETRY`` times.
    Raises StudyError naming the URL when it cannot be used.
    """
    if not isinstance(url, str) or not url.strip():
        raise StudyError(
            f"bad storage URL {url!r}: expected sqlite:///..., postgresql://..., or journal:<path>"
        )
    if url.startswith("journal:") or ("://" not in url and url.endswith((".log", ".jsonl"))):
        path = Path(url[len("journal:"):] if url.startswith("journal:") else url)
        if not str(path):
            raise StudyError(f"bad storage URL {url!r}: journal:<path> needs a path")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StudyError(f"cannot open journal storage {url!r}: {exc}") from None
    if "://" not in url:
        raise StudyError(
            f"bad storage URL {url!r}: expected sqlite:///..., postgresql://..., mysql://... "
            "or journal:<path>"
        )
    import sqlalchemy.exc

    safe = _safe_url(url)
    try:
        if url.startswith("sqlite:"):
            db_path = _sqlite_db_path(url)
            engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
            if db_path is None:
                return _rdb_storage(url, engine_kwargs, heartbeat_interval, grace_period)
            db_path.parent.mkdir(parents=True, exist_ok=True)
            # Optuna creates the tables, the version row and the alembic stamp on first open;
            # two processes doing that at once on a fresh file can trip over each other.
            with file_lock(_lock_path_for(db_path)):
                return _rdb_storage(url, engine_kwargs, heartbeat_interval, grace_period)
        return _rdb_storage(url, {}, heartbeat_interval, grace_period)
    except sqlalchemy.exc.ArgumentError as exc:
        raise StudyError(f"bad storage URL {safe!r}: {exc}") from None
    except ImportError as exc:
        raise StudyError(f"cannot open storage {safe!r}: missing database driver ({exc})") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"cannot open storage {safe!r}: {reason}") from None


def _lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def _storage_lock_path(storage: optuna.storages.BaseStorage) -> Path | None:
    """The lock file that guards an SQLite storage file, else None."""
    backend = getattr(storage, "_backend", storage)  # unwrap Optuna's _CachedStorage
    url = getattr(backend, "url", None)
    if isinstance(backend, optuna.storages.RDBStorage) and isinstance(url, str) and url.startswith("sqlite:"):
        db_path = _sqlite_db_path(url)
        return None if db_path is None else _lock_path_for(db_path)
    return None


def create_or_load_study(
    storage: optuna.storages.BaseStorage,
    name: StudyName,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    lock_path: Path | None = None,
) -> tuple[optuna.Study, bool]:
    """Create the study ``name`` (direction maximize) or load it; returns ``(study, created_now)``.

    Safe when several processes call it at once on a fresh store: creation runs under the
    inter-process lock ``lock_path`` (by default ``<db>.lock`` for an SQLite storage), and a
    duplicate-name race is answered by loading the study the other process created.
    """
    if not isinstance(name, StudyName):
        raise StudyError(f"bad study name {name!r}: expected a StudyName")
    lock = Path(lock_path) if lock_path is not None else _storage_lock_path(storage)
    guard = file_lock(lock) if lock is not None else contextlib.nullcontext()
    with guard:
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=str(name),
                direction="maximize",
                sampler=sampler,
                pruner=pruner,
            )
            study.set_user_attr("dataset", name.dataset)
            study.set_user_attr("mode", name.mode)
            _logger.info("created study %s", name)
            return study, True
        except DuplicatedStudyError:
            study = optuna.load_study(study_name=str(name), storage=storage, sampler=sampler, pruner=pruner)
    if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        raise StudyError(f"study {name} exists but does not maximize a single value")
    _logger.info("loaded study %s (%d trials)", name, len(study.get_trials(deepcopy=False)))
    return study, False


def list_studies(storage: optuna.storages.BaseStorage) -> list[optuna.study.StudySummary]:
    """Summaries (with best trial) of every study in ``storage``, sorted by name."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    return sorted(summaries, key=lambda s: s.study_name)


# ---------------------------------------------------------------------------------------------
# trial owners, dead workers, budget


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a Linux process, or None when unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def mark_trial_owner(trial: optuna.Trial) -> None:
    """Record which process runs ``trial`` (call it when the trial starts).

    Sets the user attrs ``worker_host``, ``worker_pid``, ``worker_trial`` (the trial's own number,
    so a copy of these attrs carried into a retried trial is not mistaken for its owner) and, on
    Linux, ``worker_start`` (the process start time, so a re-used pid is not mistaken for it).
    """
    pid = os.getpid()
    trial.set_user_attr("worker_host", socket.gethostname())
    trial.set_user_attr("worker_pid", pid)
    trial.set_user_attr("worker_trial", trial.number)
    stat = _proc_stat(pid)
    if stat is not None:
        trial.set_user_attr("worker_start", stat[1])


def _owner_dead(trial: FrozenTrial) -> bool:
    """True when ``trial``'s recorded owner ran on this host and is no longer alive."""
    attrs = trial.user_attrs
    pid = attrs.get("worker_pid")
    if (
        attrs.get("worker_host") != socket.gethostname()
        or attrs.get("worker_trial") != trial.number
        or not isinstance(pid, int)
        or pid <= 0
    ):
        return False  # another host's trial, or no owner recorded yet: leave it to the heartbeat
    if pid == os.getpid():
        return False
    stat = _proc_stat(pid)
    if stat is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    state, start = stat
    if state in ("Z", "X"):  # zombie: killed but not yet reaped by its parent
        return True
    recorded = attrs.get("worker_start")
    return isinstance(recorded, int) and recorded != start  # the pid now belongs to someone else


def recover_dead_trials(study: optuna.Study, *, max_retry: int = MAX_RETRY) -> list[int]:
    """Fail the RUNNING trials whose worker died and re-queue their parameters once.

    Trials of other hosts are left to Optuna's heartbeat (:func:`optuna.storages.fail_stale_trials`,
    run here too); a RUNNING trial owned by a dead process of this host is set to FAIL now and its
    params are enqueued with ``user_attrs={"retry_of": number, "retry_count": n}`` so that the next
    optimize runs them first -- unless that trial was already the ``max_retry``-th retry of its
    settings. COMPLETE and PRUNED trials are never touched. Returns the numbers of the trials failed.
    """
    running_before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _owner_dead(trial):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError):
            continue  # another process finished or failed it first
        failed.append(trial.number)
        retry_count = int(trial.user_attrs.get("retry_count", 0)) + 1
        if retry_count > max_retry:
            _logger.warning(
                "study %s: trial %d died %d times with params %s; not retrying it again",
                study.study_name, trial.number, retry_count, trial.params,
            )
            continue
        study.enqueue_trial(
            dict(trial.params),
            user_attrs={"retry_of": trial.number, "retry_count": retry_count},
            skip_if_exists=False,
        )
        _logger.info(
            "study %s: trial %d was left running by dead pid %s; failed it and re-queued %s",
            study.study_name, trial.number, trial.user_attrs.get("worker_pid"), trial.params,
        )
    stale = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in running_before and t.number not in failed
    }
    if stale:
        _logger.info("study %s: heartbeat failed stale trials %s", study.study_name, sorted(stale))
    return sorted(set(failed) | stale)


def _in_progress(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and not _owner_dead(trial)


def remaining_budget(study: optuna.Study, total_trials: int) -> int:
    """How many more trials to start so that COMPLETE + PRUNED trials reach ``total_trials``.

    FAIL trials do not count (their retries do, once they finish); RUNNING trials of live workers
    count as in progress; RUNNING trials of dead workers of this host do not.
    """
    if isinstance(total_trials, bool) or not isinstance(total_trials, int) or total_trials < 0:
        raise StudyError(f"bad trial budget {total_trials!r}: expected a non-negative integer")
    trials = study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if t.state in _FINISHED)
    running = sum(1 for t in trials if _in_progress(t))
    return max(0, total_trials - done - running)


def within_budget(trial: optuna.Trial, total_trials: int) -> bool:
    """Whether ``trial`` is one of the first ``total_trials`` of its study (call it at trial start).

    Workers that start a trial at the same moment can together overshoot what
    :func:`remaining_budget` promised. Trial numbers are handed out atomically by the storage, so
    every worker can agree on which trials are surplus: those with at least ``total_trials``
    finished, live running or queued (WAITING) trials before them. An objective that gets False
    should call ``trial.study.stop()`` and raise :class:`BudgetReached` (pass it to
    ``optimize(catch=...)``): the surplus trial ends FAIL without running and is not counted.
    A worker that loops ``while remaining_budget(...) > 0: study.optimize(..., n_trials=1)``
    meets such a trial only in a true race, so a study gets at most ``workers - 1`` of them.
    """
    ahead = 0
    for other in trial.study.get_trials(deepcopy=False):
        if other.number >= trial.number:
            continue
        if other.state in _FINISHED or other.state == TrialState.WAITING or _in_progress(other):
            ahead += 1
    return ahead < total_trials


# ---------------------------------------------------------------------------------------------
# study specs


@dataclass
class StudySpec:
    """One study as a reviewable file ``studies/<dataset>.yaml``; CLI flags override it."""

    dataset: str
    checkpoint: str
    mode: str = "fixed"
    trials: int = 40
    seed: int = 0
    sampler: str = "gp"
    pruner: str = "median"
    space: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None

    @property
    def name(self) -> StudyName:
        """The study's name ``<dataset>/<mode>``."""
        return StudyName(self.dataset, self.mode)


_SPEC_FIELDS = {f.name: f for f in dataclasses.fields(StudySpec)}
_REQUIRED = ("dataset", "checkpoint")


def as_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string (PyYAML reads ``1e-4`` as a string)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_bounds(raw: Sequence[Any], label: str) -> tuple[float, float]:
    """``[low, high]`` of a space entry as two finite numbers with low <= high; StudyError naming ``label``."""
    if len(raw) != 2:
        raise StudyError(f"{label}: expected [low, high], got {list(raw)!r}")
    low, high = (as_number(v) for v in raw)
    if low is None or high is None:
        raise StudyError(f"{label}: bounds must be finite numbers, got {list(raw)!r}")
    if low > high:
        raise StudyError(f"{label}: low {low} is above high {high}")
    return low, high


def _check_space(space: Any, where: str) -> dict[str, Any]:
    if not isinstance(space, Mapping):
        raise StudyError(f"{where}: key 'space': expected a mapping of parameter -> [low, high]")
    checked: dict[str, Any] = {}
    for key, bounds in space.items():
        label = f"{where}: key 'space.{key}'"
        if not isinstance(key, str) or not key:
            raise StudyError(f"{label}: parameter names must be strings")
        if isinstance(bounds, str) and bounds == "frozen":
            checked[key] = bounds
            continue
        if isinstance(bounds, Sequence) and not isinstance(bounds, str):
            checked[key] = list(parse_bounds(bounds, label))
            continue
        number = as_number(bounds)
        if number is None:
            raise StudyError(f"{label}: expected [low, high], a number or 'frozen', got {bounds!r}")
        checked[key] = number
    return checked


def _check_budget(budget: Any, where: str) -> dict[str, Any]:
    if not isinstance(budget, Mapping):
        raise StudyError(f"{where}: key 'budget': expected a mapping of name -> positive integer")
    for key, value in budget.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StudyError(f"{where}: key 'budget.{key}': expected a positive integer, got {value!r}")
    return dict(budget)


def _validated(values: Mapping[str, Any], where: str) -> StudySpec:
    """Build a StudySpec from plain values, raising StudyError naming ``where`` and the key."""
    for key in values:
        if key not in _SPEC_FIELDS:
            raise StudyError(f"{where}: unknown key {key!r} (known: {', '.join(_SPEC_FIELDS)})")
    for key in _REQUIRED:
        if values.get(key) is None:
            raise StudyError(f"{where}: key {key!r} is required")
    out = dict(values)
    for key in ("dataset", "checkpoint", "mode", "sampler", "pruner"):
        if key in out and (not isinstance(out[key], str) or not out[key]):
            raise StudyError(f"{where}: key {key!r}: expected a non-empty string, got {out[key]!r}")
    for key, minimum in (("trials", 1), ("seed", 0)):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < minimum):
            raise StudyError(f"{where}: key {key!r}: expected an integer >= {minimum}, got {out[key]!r}")
    if "storage" in out and out["storage"] is not None and not isinstance(out["storage"], str):
        raise StudyError(f"{where}: key 'storage': expected a URL string, got {out['storage']!r}")
    if not _DATASET_RE.match(out["dataset"]):
        raise StudyError(f"{where}: key 'dataset': bad dataset name {out['dataset']!r}")
    if out.get("mode", "fixed") not in MODES:
        raise StudyError(f"{where}: key 'mode': expected one of {', '.join(MODES)}, got {out['mode']!r}")
    for key, choices in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if key in out and out[key] not in choices:
            raise StudyError(
                f"{where}: key {key!r}: expected one of {', '.join(choices)}, got {out[key]!r}"
            )
    if "space" in out:
        out["space"] = _check_space(out["space"], where)
    if "budget" in out:
        out["budget"] = _check_budget(out["budget"], where)
    return StudySpec(**out)


def load_study_spec(path: Path) -> StudySpec:
    """Read a study spec (YAML). Unknown keys, wrong types or a bad mode raise StudyError naming
    the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read study spec: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StudyError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a study spec must be a mapping of keys, got {type(data).__name__}")
    return _validated(data, str(path))


def merge_overrides(spec: StudySpec, **cli_values: Any) -> StudySpec:
    """A copy of ``spec`` with the CLI values that were given (None means "not given").

    ``space`` and ``budget`` given on the command line update the file's mappings key by key.
    """
    values = dataclasses.asdict(spec)
    for key, value in cli_values.items():
        if key not in _SPEC_FIELDS:
            raise StudyError(f"command line: unknown study setting {key!r}")
        if value is None:
            continue
        if key in ("space", "budget") and isinstance(value, Mapping):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return _validated(values, "command line")


def make_sampler(
    name: str, seed: int, *, search_space: Mapping[str, Sequence[Any]] | None = None, startup_trials: int = 10,
    deterministic: bool = False,
) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (one of SAMPLERS), seeded with ``seed``.

    ``gp`` is Gaussian-process BO that also learns from pruned trials (:mod:`search.samplers`); it
    samples at random until ``startup_trials`` trials are complete (known points count), and
    ``deterministic`` tells it that re-evaluating a setting gives the same value (fixed mode).
    TPE uses the constant liar so that parallel workers do not all propose the same point.
    ``grid`` needs ``search_space`` (parameter -> list of values).
    """
    samplers = optuna.samplers
    try:
        if name == "gp":
            from search.samplers import StagedGPSampler

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                # Learnable mode's body_lr exists only in trials that train the body: it is sampled
                # independently, as intended, so the per-trial warning about it is noise.
                return StagedGPSampler(seed=seed, n_startup_trials=startup_trials, deterministic_objective=deterministic,
                                       warn_independent_sampling=False)
        if name == "tpe":
            return samplers.TPESampler(seed=seed, constant_liar=True)
        if name == "random":
            return samplers.RandomSampler(seed=seed)
        if name == "qmc":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return samplers.QMCSampler(seed=seed)
        if name == "cmaes":
            import cmaes  # noqa: F401  (Optuna imports it lazily, at the first sample)

            return samplers.CmaEsSampler(seed=seed)
        if name == "grid":
            if not search_space:
                raise StudyError("sampler 'grid' needs a search space of parameter -> list of values")
            return samplers.GridSampler({k: list(v) for k, v in search_space.items()}, seed=seed)
    except ImportError as exc:
        raise StudyError(f"sampler {name!r} needs a package that is not installed ({exc})") from None
    raise StudyError(f"unknown sampler {name!r}: expected one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner called ``name``: median, asha (successive halving), hyperband or none."""
    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner()
    if name == "asha":
        # Trials report few steps (4 stages or a few epochs): rungs start at the first report.
        return pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "hyperband":
        return pruners.HyperbandPruner()
    if name == "none":
        return pruners.NopPruner()
    raise StudyError(f"unknown pruner {name!r}: expected one of {', '.join(PRUNERS)}")
