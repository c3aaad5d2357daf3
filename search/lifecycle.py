"""The study lifecycle as a Python API: launch, resume, export, status, report.

``import search`` exposes these functions; ``are-search`` is argparse and formatting over them. Their
keyword arguments carry the CLI's long option names with ``_`` (``search.launch(dataset="FBNELL",
checkpoint="fusion", mode="fixed", trials=40, storage="sqlite:///s.db")``), they return a dataclass
per command and raise the project's one-line errors (:mod:`search.errors`). Like the CLI they are an
edge: options left unset fall back to the environment (``ARE_DATA_ROOT``, ``ARE_TEXT_ROOT``,
``ARE_CHECKPOINT_ROOT``, ``ARE_CACHE_DIR``, ``ARE_STORAGE``), resolved once by :class:`LoadOptions`.

Everything that makes a study resumable and reportable -- its spec (user attr ``spec``) and its
launch record (``launch``: checkpoint sha256, encoder) -- is written here before the first trial runs,
so a study launched from Python resumes from the CLI and the other way round. Reading commands
(``status``, ``export``, ``report``) open the storage read-only.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from search.bounds import growth_history, read_bounds
from search.errors import Interrupted, NoCompleteTrialError, StudyError, UsageError
from search.names import StudyName
from search.options import LoadOptions
from search.settings import TrialSettings
from search.stopping import clear_stop, stop_record
from search.spec import OPTIONS, SPEC_ATTR, StudySpec, load_study_spec, merge_overrides, spec_from_values, stored_spec
from search.storage import StorageURL, default_storage, storage_state
from search.values import path as path_rule

__all__ = [
    "DEFAULT_STUDIES_DIR",
    "STORAGE_ENV",
    "LAUNCH_ATTR",
    "BestTrial",
    "RunResult",
    "LaunchResult",
    "ResumeResult",
    "StudyStatus",
    "StatusResult",
    "ExportResult",
    "ReportResult",
    "resolve_storage",
    "launch",
    "resume",
    "export",
    "status",
    "report",
    "report_study",
]

_logger = logging.getLogger(__name__)

#: The folder of the default storage and reports, relative to the working directory.
DEFAULT_STUDIES_DIR = Path("studies")
#: The environment variable naming the default storage (before ``./studies/are-search.db``).
STORAGE_ENV = "ARE_STORAGE"
#: The study user attr holding the launch record (checkpoint sha256, encoder).
LAUNCH_ATTR = "launch"
_INPUT_KEYS = ("data_root", "text_root", "checkpoint_root", "cache_dir", "encoder", "offline", "device",
               "batch_size", "threads")


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class BestTrial:
    """The best complete trial of a study: number, validation MRR, settings."""

    trial: int
    value: float
    params: dict[str, Any]
    settings: TrialSettings | None


@dataclass(frozen=True)
class RunResult:
    """What a run of a study did: its name, storage (password masked), whether it was created now,
    how many trials this run added, trial counts by state, the best trial, the flags written, why it
    stopped before its budget (``stop``: reason and trial, None when it ran its budget) and the
    growths of its search range made during this run (``growth``, see :mod:`search.bounds`; ``status``
    lists them all)."""

    study: str
    storage: str
    created: bool
    trials_added: int
    budget: int
    counts: dict[str, int]
    best: BestTrial | None
    notes: list[str] = field(default_factory=list)
    exported: Any = None
    stop: dict[str, Any] | None = None
    growth: list[dict[str, Any]] = field(default_factory=list)
    #: What a study created by this run was warm-started with (its user attr ``warm_start``, see
    #: :mod:`search.warmstart`): ``{"from", "distance", "params", "trial", "value", "enqueued"}`` each.
    warm_start: list[dict[str, Any]] = field(default_factory=list)


class LaunchResult(RunResult):
    """The result of :func:`launch`."""


class ResumeResult(RunResult):
    """The result of :func:`resume`."""


@dataclass(frozen=True)
class StudyStatus:
    """One study of a storage: name, checkpoint and budget from its spec, counts, best trial, the
    current bounds per searched parameter (``space``: ``{"low", "high", "hard_low", "hard_high",
    "log"}``), the growths of its range and why it stopped early (``stop_reason``, None when it ran
    or is running its budget)."""

    study: str
    checkpoint: str | None
    budget: int | None
    counts: dict[str, int]
    best: BestTrial | None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    growth: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    #: RUNNING trials that no live worker vouches for (``search.stale.RunningTrial``), by number.
    stale: list[Any] = field(default_factory=list)
    #: What the study was warm-started with (its user attr ``warm_start``, see :mod:`search.warmstart`).
    warm_start: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StatusResult:
    """A storage (password masked), the state it was found in (``missing``, ``empty``, ``ready``,
    ``unknown``) and its studies."""

    storage: str
    state: str
    studies: list[StudyStatus]


@dataclass(frozen=True)
class ExportResult:
    """Flags files written (``search.flags.ExportedFlags``) and studies skipped with why."""

    storage: str
    written: list[Any]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportResult:
    """A report: the study, the folder, the files written and the numbers of ``summary.json``."""

    study: str
    storage: str
    out_dir: Path
    files: list[Path]
    summary: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# the edge: options, storage, checkpoint


def resolve_storage(storage: str | os.PathLike | StorageURL | None, spec_storage: str | None = None,
                    env: Mapping[str, str] | None = None) -> StorageURL:
    """The storage to use: ``storage``, else the spec's, else ``$ARE_STORAGE``, else ``./studies/are-search.db``."""
    env = os.environ if env is None else env
    chosen = storage or spec_storage or env.get(STORAGE_ENV)
    return StorageURL.parse(chosen) if chosen else default_storage(DEFAULT_STUDIES_DIR)


def _options(options: LoadOptions | None, given: Mapping[str, Any]) -> LoadOptions:
    values = {key: given.get(key) for key in _INPUT_KEYS}
    if options is None:
        return LoadOptions.resolve(**values)
    return options.replace(**values)


def _checkpoint_file(value: str, options: LoadOptions) -> Path:
    from search.checkpoints import resolve_checkpoint

    return resolve_checkpoint(value, root=options.checkpoint_root,
                              cache_dir=Path(options.cache_dir) / "checkpoints" if options.cache_dir else None,
                              download=options.download)


def _profile_of(path: Path) -> str:
    from are_model.checkpoint import CheckpointError, detect_profile, read_state_dict

    profile = detect_profile(read_state_dict(path).keys())
    if profile is None:
        raise CheckpointError(f"{path}: no ULTRA/SEMMA/ARE keys found")
    return profile


def _encoder_name(options: LoadOptions, encoder: str) -> str:
    """The name of the encoder ``encoder`` (a spec such as ``auto``) resolves to here: ``minilm``,
    ``jina:<revision>`` or ``vectors:<sha256>`` (never ``auto``); the encoder is cached for the run."""
    from are_model.text import build_encoder

    text = options.text(encoder)
    return build_encoder(text.encoder, jina_path=text.jina_path, jina_revision=text.jina_revision).name


def best_of(study: Any) -> BestTrial | None:
    """The best complete trial of ``study`` (ties: the earliest), or None."""
    from search.flags import best_trial

    try:
        trial = best_trial(study)
    except StudyError:
        return None
    return BestTrial(trial.number, float(trial.value), dict(trial.params), TrialSettings.maybe_from_trial(trial))


# ---------------------------------------------------------------------------------------------
# launch / resume


def _check_compatible(study: Any, spec: StudySpec, launch: dict[str, Any]) -> list[str]:
    """Refuse to continue a study with another checkpoint or space; notes for what is kept as stored."""
    from search.budget import FINISHED

    notes: list[str] = []
    stored_launch = study.user_attrs.get(LAUNCH_ATTR)
    if isinstance(stored_launch, dict):
        old, new = stored_launch.get("checkpoint_sha256"), launch.get("checkpoint_sha256")
        if old and new and old != new:
            raise StudyError(f"study {study.study_name} was run with another checkpoint (sha256 {old[:12]}..., "
                             f"now {new[:12]}...); use another --storage or dataset name")
        old, new = stored_launch.get("encoder_name"), launch.get("encoder_name")
        if old and new and old != new:
            raise StudyError(f"study {study.study_name} was run with text encoder {old}, now {new}: one study cannot "
                             f"mix encoders (pass --encoder {stored_launch.get('encoder') or old} or use another "
                             f"--storage)")
    stored = study.user_attrs.get(SPEC_ATTR)
    if isinstance(stored, dict) and stored_spec(study).search_space().params != spec.search_space().params:
        raise StudyError(f"study {study.study_name} was run with search space {stored.get('space')}, "
                         f"not {spec.space}; use another --storage or dataset name")
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if finished > spec.trials:
        notes.append(f"study {study.study_name} already has {finished} finished trials, more than --trials "
                     f"{spec.trials}: nothing to run")
    return notes


def check_run_options(run: Mapping[str, Any], options: LoadOptions) -> dict[str, Any]:
    """The Ray-only options that were given (``gpus_per_trial``, ...); UsageError for a wrong mix of
    local (``--workers``, ``--device``) and Ray options."""
    ray_only = {key: run.get(key) for key in ("gpus_per_trial", "cpus_per_trial", "max_concurrent", "address")}
    if run.get("ray"):
        if options.device is not None or run.get("workers") is not None:
            raise UsageError("with --ray, Ray places the trials: use --gpus-per-trial / --cpus-per-trial / "
                             "--max-concurrent instead of --device / --workers")
    else:
        given = ["--" + key.replace("_", "-") for key, value in ray_only.items() if value is not None]
        if given:
            raise UsageError(f"only with --ray: {', '.join(given)}")
    return {key: value for key, value in ray_only.items() if value is not None}


def fusion_checkpoint(checkpoint: str, options: LoadOptions) -> Path:
    """The file of ``checkpoint`` (a name or path); UsageError unless it is an ARE checkpoint."""
    path = _checkpoint_file(checkpoint, options)
    profile = _profile_of(path)
    if profile not in ("are-mix", "are-fusion"):
        raise UsageError(f"a fusion search needs an ARE checkpoint (are-mix or are-fusion); "
                         f"{checkpoint} is {profile}")
    return path


def make_launch_record(path: Path, options: LoadOptions, encoder: str) -> dict[str, Any]:
    """The study user attr ``launch``: the checkpoint's sha256 and file name, the encoder spec and its name."""
    from search.checkpoints import sha256_of

    return {"checkpoint_sha256": sha256_of(path), "checkpoint_file": path.name, "encoder": encoder,
            "encoder_name": _encoder_name(options, encoder)}


def prepare_study(spec: StudySpec, url: StorageURL, path: Path, launch_record: dict[str, Any], *,
                  fail_stale: bool = False) -> tuple[Any, bool, list[str], StudySpec]:
    """Open or create the study of ``spec`` for a run and make it ready: ``(study, created, notes, spec)``.

    A study created now gets its known points; an existing one must have been run with the same
    checkpoint, encoder and space (else StudyError), its stop record is cleared and its stale RUNNING
    trials are settled (:mod:`search.stale`). The spec and launch record are stored on the study,
    unless it already has more finished trials than ``spec.trials``: then ``notes`` says so and the
    returned spec is the stored one (nothing is to run).
    """
    from search.runners import open_study

    study, created = open_study(spec, url.url, path)
    notes = [] if created else _check_compatible(study, spec, launch_record)
    if not notes:
        clear_stop(study)  # a new run checks the stopping rule again
    if notes:  # more finished trials than asked for: the stored spec (and budget) stay as they are
        spec = stored_spec(study)
    else:
        study.set_user_attr(SPEC_ATTR, spec.to_attr())
        study.set_user_attr(LAUNCH_ATTR, launch_record)
    if not created:  # trials left RUNNING by workers that nothing vouches for: named, failed when stale
        from search.stale import settle_stale

        settle_stale(study, fail_stale=fail_stale)
    return study, created, notes, spec


class NewStudies:
    """The studies a run creates, so that bad input met before any of their trials finished removes them
    again, with the storage file when the run made it: a launch that fails on bad input leaves no
    half-made study (known points WAITING for a run that cannot start) behind.

    Use: ``new = NewStudies(url)`` before the first study is opened, ``new.add(study)`` for each one
    created, and ``with new.undo_on_bad_input(): <run the trials>``.
    """

    def __init__(self, url: StorageURL) -> None:
        self.url = url
        self.file_existed = url.kind not in ("sqlite", "journal") or storage_state(url).state != "missing"
        self.folder_existed = url.path is None or url.path.parent.exists()
        self.studies: list[Any] = []

    def add(self, study: Any) -> None:
        self.studies.append(study)

    @contextlib.contextmanager
    def undo_on_bad_input(self) -> Iterator[None]:
        from search.budget import FINISHED
        from search.errors import user_error_types

        try:
            yield
        except user_error_types():
            import optuna

            from search.storage import open_storage

            untouched = [study for study in self.studies
                         if not study.get_trials(deepcopy=False, states=FINISHED)]
            for study in untouched:
                optuna.delete_study(study_name=study.study_name, storage=open_storage(self.url))
                _logger.info("study %s removed again: bad input before any of its trials finished", study.study_name)
            if untouched and not self.file_existed and len(untouched) == len(self.studies):
                self._remove_file()
            raise

    def _remove_file(self) -> None:
        """The storage file this run created, now without a study (and the lock file beside it)."""
        from search.storage import list_studies, local_files, open_storage

        storage = open_storage(self.url, read_only=True)
        if list_studies(storage):  # another process put a study there meanwhile: keep the file
            return
        if hasattr(storage, "remove_session"):
            storage.remove_session()
        if hasattr(storage, "engine"):
            storage.engine.dispose()
        for path in local_files(self.url):
            path.unlink(missing_ok=True)
        if not self.folder_existed:
            with contextlib.suppress(OSError):  # only when nothing else went there meanwhile
                self.url.path.parent.rmdir()


def _run(spec: StudySpec, url: StorageURL, options: LoadOptions, *, encoder: str, run: Mapping[str, Any],
         flags: str | os.PathLike | None, progress: bool, result_type: type[RunResult]) -> RunResult:
    from are_model.data import resolve_dataset_name
    from search.budget import FINISHED, trial_counts
    from search.runners import WorkerSetup

    ray_only = check_run_options(run, options)
    resolve_dataset_name(spec.dataset)
    path = fusion_checkpoint(spec.checkpoint, options)
    device = "cpu" if run.get("ray") else options.resolved_device()
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    launch_record = make_launch_record(path, options, encoder)
    # before the study exists: a bad source creates nothing
    sources, stats = _warm_start_inputs(spec, url, options, quiet=not run.get("ray"))
    new = NewStudies(url)
    study, created, notes, spec = prepare_study(spec, url, path, launch_record, fail_stale=bool(run.get("fail_stale")))
    if created:
        new.add(study)
    warm_start: list[dict[str, Any]] = []
    if stats is not None and not notes:
        from search.warmstart import WARM_START_ATTR, apply_warm_start, record_graph_stats

        record_graph_stats(study, spec, options, stats)
        if created and spec.warm_start_from:  # only a study created now: a resumed one is never re-enqueued
            apply_warm_start(study, spec, sources, options, spec.warm_start_k)
            warm_start = list(study.user_attrs.get(WARM_START_ATTR) or [])
    before = len(study.get_trials(deepcopy=False, states=FINISHED))
    grown_before = len(growth_history(study))
    setup = WorkerSetup(str(path), options, device=device, encoder=encoder)
    if not notes:
        try:
            with new.undo_on_bad_input():
                if run.get("ray"):
                    from search.runners.ray import run_ray

                    study = run_ray(spec, url.url, setup, show_progress=progress, **ray_only)
                else:
                    from search.runners.local import run_local

                    study = run_local(spec, url.url, setup, n_workers=run.get("workers"), show_progress=progress)
        except KeyboardInterrupt:
            raise Interrupted(study.study_name) from None
    if not notes and stop_record(study) is None:  # held below its budget by a trial without a live worker
        from search.stale import blocking_error

        held = blocking_error(study, spec.trials)
        if held is not None:
            raise held
    after = len(study.get_trials(deepcopy=False, states=FINISHED))
    best = best_of(study)
    exported = None
    if flags is not None and best is not None:
        from search.flags import export_study

        exported = export_study(study, path_rule(flags, "--flags"))
    return result_type(study.study_name, url.safe, created, after - before, spec.trials, trial_counts(study), best,
                       notes, exported, stop_record(study), growth_history(study)[grown_before:], warm_start)


def _warm_start_inputs(spec: StudySpec, url: StorageURL, options: LoadOptions, *,
                       quiet: bool = True) -> tuple[list[Any], Any]:
    """``(sources, stats)`` of a run: the studies of ``spec.warm_start_from`` in ``url`` (StudyError
    naming one that is not there) and the GraphStats of ``spec.dataset`` (stored on the study as the
    user attr ``graph_stats``, see :mod:`search.warmstart`). Without a warm start a dataset that
    cannot be loaded here (a Ray driver without the data) gives None stats instead of an error."""
    from search.warmstart import dataset_stats, load_sources

    with quiet_dataset_reports(quiet):
        if spec.warm_start_from:
            return load_sources(url, spec.warm_start_from), dataset_stats(spec.dataset, options)
        try:
            return [], dataset_stats(spec.dataset, options)
        except Exception as exc:  # noqa: BLE001 -- only a record; the run loads the dataset itself
            _logger.debug("graph statistics of %s not recorded: %s", spec.dataset, exc)
            return [], None


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


def launch(spec_file: str | os.PathLike | None = None, *, dataset: str | None = None, checkpoint: str | None = None,
           mode: str | None = None, trials: int | None = None, seed: int | None = None, sampler: str | None = None,
           pruner: str | None = None, weight_cap: float | None = None, soft_high: float | None = None,
           no_stop: bool = False, stop_min_trials: int | None = None, stop_tolerance: float | None = None,
           warm_start_from: list[str] | str | None = None, warm_start_k: int | None = None,
           storage: str | os.PathLike | None = None, workers: int | None = None,
           ray: bool = False, gpus_per_trial: float | None = None, cpus_per_trial: float | None = None,
           max_concurrent: int | None = None, address: str | None = None, flags: str | os.PathLike | None = None,
           fail_stale: bool = False, progress: bool = False, settings_per_pass: int | None = None,
           options: LoadOptions | None = None, **inputs: Any) -> LaunchResult:
    """Start a study, or continue the study of the same (dataset, mode), until it has ``trials`` finished trials.

    spec_file: a study spec (YAML); the keyword arguments override it. Without one, ``dataset`` and
    ``checkpoint`` are required. settings_per_pass: fixed mode's trials a worker runs together, their
    settings ranked in shared entity passes (spec key, default 1; see :mod:`search.runners.batch`).
    weight_cap / soft_high: a fixed weight's hard cap and soft upper bound
    (see :mod:`search.bounds`); no_stop, stop_min_trials, stop_tolerance: the stopping rule (see
    :mod:`search.stopping`). warm_start_from, warm_start_k: a study created now first tries, after its
    known points, the best settings of the ``warm_start_k`` (default 3) studies among
    ``warm_start_from`` (names ``<dataset>/<mode>``, any spelling, in the same storage; StudyError
    naming one that is not there) whose graphs are nearest to its own (:mod:`search.warmstart`,
    :mod:`search.similarity`); a resumed study is never warm-started again. inputs: ``data_root``,
    ``text_root``, ``checkpoint_root``, ``cache_dir``, ``encoder``, ``offline``, ``device``,
    ``batch_size``, ``threads`` (see :class:`LoadOptions`), or a whole ``options``. progress: show
    progress bars on stderr. flags: export the best settings there when done. fail_stale: fail and
    re-queue now the RUNNING trials that no live worker vouches for (see :mod:`search.stale`; without
    it only those older than its age bound). Raises StudyError / UsageError / CheckpointError /
    DatasetError (one line each); KeyboardInterrupt propagates after the interrupted trial is re-queued.
    """
    unknown = set(inputs) - set(_INPUT_KEYS)
    if unknown:
        raise TypeError(f"launch() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    overrides = dict(dataset=dataset, checkpoint=checkpoint, mode=mode, trials=trials, seed=seed, sampler=sampler,
                     pruner=pruner, weight_cap=weight_cap, soft_high=soft_high, stop=False if no_stop else None,
                     stop_min_trials=stop_min_trials, stop_tolerance=stop_tolerance,
                     warm_start_from=warm_start_from, warm_start_k=warm_start_k)
    overrides["settings_per_pass"] = settings_per_pass
    if spec_file is not None:
        spec = merge_overrides(load_study_spec(spec_file), **overrides)
    else:
        missing = [f"--{key}" for key in ("dataset", "checkpoint") if overrides[key] is None]
        if missing:
            raise UsageError(f"launch needs {' and '.join(missing)} (or a study spec file)")
        spec = spec_from_values(overrides, OPTIONS)
    opts = _options(options, inputs)
    url = resolve_storage(storage, spec.storage)
    run = dict(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
               max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or "auto", run=run, flags=flags, progress=progress,
                result_type=LaunchResult)


def resume(study: str, *, trials: int | None = None, no_stop: bool = False, storage: str | os.PathLike | None = None,
           workers: int | None = None, ray: bool = False, gpus_per_trial: float | None = None,
           cpus_per_trial: float | None = None, max_concurrent: int | None = None, address: str | None = None,
           flags: str | os.PathLike | None = None, fail_stale: bool = False, progress: bool = False,
           settings_per_pass: int | None = None, options: LoadOptions | None = None,
           **inputs: Any) -> ResumeResult:
    """Continue ``study`` (``<dataset>/<mode>``, any spelling of the dataset) from its stored spec.

    trials: a new total budget (default: the stored one); settings_per_pass likewise. The encoder is
    the one the study was launched with unless ``encoder`` is given. Other arguments as :func:`launch`.
    """
    from search.storage import load_study

    unknown = set(inputs) - set(_INPUT_KEYS)
    if unknown:
        raise TypeError(f"resume() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    url = resolve_storage(storage)
    found = load_study(_open_read_only(url), StudyName.parse(study), where=url.safe)
    spec = stored_spec(found)
    if trials is not None or no_stop or settings_per_pass is not None:
        spec = merge_overrides(spec, trials=trials, stop=False if no_stop else None,
                               settings_per_pass=settings_per_pass)
    stored_launch = found.user_attrs.get(LAUNCH_ATTR) or {}
    opts = _options(options, inputs)
    run = dict(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
               max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or stored_launch.get("encoder") or "auto", run=run,
                flags=flags, progress=progress, result_type=ResumeResult)


# ---------------------------------------------------------------------------------------------
# reading commands


def _open_read_only(url: StorageURL) -> Any:
    from search.storage import open_storage

    return open_storage(url, read_only=True)


def status(*, storage: str | os.PathLike | None = None) -> StatusResult:
    """Every study of the storage with its trial counts and best trial; the storage is only read.

    A storage that does not exist or holds no schema gives an empty list and its state, not an error.
    """
    import optuna

    from search.budget import trial_counts
    from search.stale import running_trials
    from search.storage import list_studies

    url = resolve_storage(storage)
    state = storage_state(url)
    if state.state in ("missing", "empty"):
        return StatusResult(url.safe, state.state, [])
    backend = _open_read_only(url)
    entries = []
    for summary in list_studies(backend):
        study = optuna.load_study(study_name=summary.study_name, storage=backend)
        stored = study.user_attrs.get(SPEC_ATTR) if isinstance(study.user_attrs.get(SPEC_ATTR), dict) else {}
        stop = stop_record(study)
        entries.append(StudyStatus(summary.study_name, stored.get("checkpoint"), stored.get("trials"),
                                   trial_counts(study), best_of(study),
                                   {name: bound.to_attr() for name, bound in read_bounds(study).items()},
                                   growth_history(study), None if stop is None else stop.get("reason"),
                                   stale=[t for t in running_trials(study) if not t.provably_alive],
                                   warm_start=list(study.user_attrs.get("warm_start") or [])))
    return StatusResult(url.safe, "ready", entries)


def export(study: str | None = None, *, flags: str | os.PathLike | None = None,
           all: str | os.PathLike | None = None, storage: str | os.PathLike | None = None) -> ExportResult:  # noqa: A002
    """Write a study's best settings into ``flags`` (edited in place), or with ``all=DIR`` one
    ``DIR/<dataset>/flags.yaml`` per dataset (the better of its fixed and learnable studies).

    ``all`` is the CLI's ``--all``. The storage is only read. Raises UsageError for a wrong
    combination, StudyError / FlagsError (one line) otherwise; with ``all`` nothing is written unless
    every file can be.
    """
    from search.flags import export_all, export_study
    from search.storage import load_study

    url = resolve_storage(storage)
    if all is not None:
        if study is not None or flags is not None:
            raise UsageError("export --all DIR takes no STUDY and no --flags")
        done = export_all(_open_read_only(url), path_rule(all, "--all"))
        if not done.written:
            reasons = "; ".join(f"{study}: {why}" for study, why in done.skipped) or "it has no studies"
            raise NoCompleteTrialError(f"nothing to export from {url.safe} ({reasons})")
        return ExportResult(url.safe, list(done.written), list(done.skipped))
    if study is None or flags is None:
        raise UsageError("export needs STUDY and --flags PATH (or --all DIR)")
    found = load_study(_open_read_only(url), StudyName.parse(study), where=url.safe)
    return ExportResult(url.safe, [export_study(found, path_rule(flags, "--flags"))])


def report(study: str, *, out: str | os.PathLike | None = None, n_boot: int = 2000, seed: int = 0,
           storage: str | os.PathLike | None = None, progress: bool = False, options: LoadOptions | None = None,
           **inputs: Any) -> ReportResult:
    """Plots and summary of ``study``, and its best setting against the baselines on the test split.

    out: the report folder (default ``./studies/reports/<dataset>_<mode>``); n_boot, seed: the paired
    bootstrap's resamples and seed. The storage is only read.
    """
    from search.storage import load_study
    from search.values import non_negative_int, positive_int

    unknown = set(inputs) - set(_INPUT_KEYS)
    if unknown:
        raise TypeError(f"report() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    n_boot = positive_int(n_boot, "--n-boot")
    seed = non_negative_int(seed, "--seed")
    url = resolve_storage(storage)
    found = load_study(_open_read_only(url), StudyName.parse(study), where=url.safe)
    opts = _options(options, inputs)
    name = StudyName.parse(found.study_name)
    folder = path_rule(out if out is not None else
                       DEFAULT_STUDIES_DIR / "reports" / f"{name.dataset.replace(':', '_')}_{name.mode}", "--out")
    written = report_study(found, folder, options=opts, n_boot=n_boot, seed=seed, progress=progress)
    return ReportResult(found.study_name, url.safe, written.out_dir, list(written.files), written.summary)


def report_study(found: Any, out: str | os.PathLike, *, options: LoadOptions, n_boot: int = 2000, seed: int = 0,
                 progress: bool | str = False) -> Any:
    """Write the report of an opened study into ``out``: the one code path of :func:`report` and of a
    campaign's cross-dataset report (:mod:`search.campaign.crossreport`).

    found: an ``optuna.Study`` (opened read-only is enough); options: resolved :class:`LoadOptions`
    (the text encoder is the study's recorded one unless ``options.encoder`` is set); n_boot, seed: the
    paired bootstrap's resamples and seed; progress: True or ``"bar"`` shows a bar on stderr. Every
    evaluation's ranks are kept in ``<options.cache_dir>/ranks`` (:class:`search.rankcache.RankCache`),
    so a second report of the same settings runs no entity pass. Returns the
    :class:`search.reporting.Report`; raises StudyError (e.g. no complete trial), CheckpointError,
    DatasetError (one line each).
    """
    from search.engine import get_context
    from search.rankcache import RankCache
    from search.reporting import write_report

    spec = stored_spec(found)
    path = _checkpoint_file(spec.checkpoint, options)
    device = options.resolved_device()
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    stored_launch = found.user_attrs.get(LAUNCH_ATTR) or {}
    encoder = options.encoder or stored_launch.get("encoder") or "auto"
    # the process's context: the fixed and learnable studies of one dataset share its model and relation sides
    context = get_context(spec.dataset, path, data_root=options.data_root, text=options.text(encoder), device=device,
                          batch_size=options.batch_size, cache_dir=options.cache_dir, download=options.download)
    return write_report(found, context, Path(out), spec=spec, n_boot=n_boot, seed=seed,
                        show_progress=progress in (True, "bar"),  # a bar on a terminal only
                        rank_cache=RankCache.under(options.cache_dir))
