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

import logging
import os
from pathlib import Path
from typing import Any

from search.errors import Interrupted, NoCompleteTrialError, UsageError, import_extra
from search.options import DEFAULT_STUDIES_DIR, INPUT_KEYS, LoadOptions, RunOptions, load_options, resolve_storage
from search.results import (BestTrial, ExportResult, LaunchResult, ReportResult, ResumeResult, RunResult,
                            StatusResult, StudyStatus, best_of)
from search.storage import StorageURL, storage_state
from search.study.bounds import growth_history, read_bounds
from search.study.names import StudyName
from search.study.prepare import (LAUNCH_ATTR, NewStudies, dataset_record, make_launch_record, prepare_study,
                                  warm_start_inputs)
from search.study.spec import OPTIONS, SPEC_ATTR, StudySpec, load_study_spec, merge_overrides, spec_from_values, stored_spec
from search.study.stopping import stop_record
from search.values import file_to_write, folder_to_write
from search.values import path as path_rule

__all__ = ["BestTrial", "RunResult", "LaunchResult", "ResumeResult", "StudyStatus", "StatusResult", "ExportResult",
           "ReportResult", "RunOptions", "launch", "resume", "export", "status", "report", "report_study"]


_logger = logging.getLogger(__name__)

def _run(spec: StudySpec, url: StorageURL, options: LoadOptions, *, encoder: str, run: RunOptions,
         flags: str | os.PathLike | None, progress: bool, result_type: type[RunResult],
         recorded: dict[str, Any] | None = None, flags_point: Any = None) -> RunResult:
    from search.storage.state import require_regular_files

    # first, before torch is imported (seconds on a loaded machine): a storage that cannot be written is one line
    require_regular_files(url, writing=True)
    run = run.checked(options)
    if run.ray:  # before anything is made: a missing extra is bad input
        import_extra("ray.tune", feature="--ray", extra="ray")
    ray_only = run.ray_resources()
    if flags is not None:  # before any trial runs: a FIFO or a device node is refused, not found at the end
        file_to_write(flags, "--flags")
    from are_model.data import resolve_dataset_name
    from search.inputs.checkpoints import fusion_checkpoint
    from search.runners.setup import WorkerSetup, known_points_only_warning
    from search.study.budget import FINISHED, trial_counts

    resolve_dataset_name(spec.dataset)
    path = fusion_checkpoint(spec.checkpoint, options, recorded)  # recorded: a resumed study's launch record
    device = "cpu" if run.ray else options.resolved_device()
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    launch_record = {**make_launch_record(path, options, encoder), **dataset_record(spec.dataset, options)}
    new = NewStudies(url)  # a writer's first look at the storage: a hot journal is rolled back
    # before the study exists: a bad source creates nothing
    sources, stats = warm_start_inputs(spec, url, options, quiet=not run.ray)
    with new.undo_on_bad_input():  # bad input from here on (a full disk too) removes what the run made
        study, created, notes, spec = prepare_study(spec, url, path, launch_record, fail_stale=run.fail_stale,
                                                    new=new)
        warm_start: list[dict[str, Any]] = []
        if stats is not None and not notes:
            from search.study.warmstart import WARM_START_ATTR, apply_warm_start, record_graph_stats

            record_graph_stats(study, spec, options, stats)
            if created and spec.warm_start_from:  # only a study created now: a resumed one is never re-enqueued
                apply_warm_start(study, spec, sources, options, spec.warm_start_k)
                warm_start = list(study.user_attrs.get(WARM_START_ATTR) or [])
        if flags_point is not None and not notes:  # the user's own settings, tried as a known point
            from search.runners.setup import enqueue_flags_point

            enqueue_flags_point(study, spec, flags_point, bounds=read_bounds(study))
        warning = None if notes else known_points_only_warning(study, spec)
        if warning is not None:
            _logger.warning("%s", warning)
        before = len(study.get_trials(deepcopy=False, states=FINISHED))
        grown_before = len(growth_history(study))
        setup = WorkerSetup(str(path), options, device=device, encoder=encoder)
        if not notes:
            try:
                if run.ray:
                    from search.runners.ray import run_ray

                    study = run_ray(spec, url, setup, show_progress=progress, **ray_only)
                else:
                    from search.runners.local import run_local

                    study = run_local(spec, url, setup, n_workers=run.workers, show_progress=progress)
            except KeyboardInterrupt:
                raise Interrupted(study.study_name, url) from None
    if not notes and stop_record(study) is None:  # held below its budget by a trial without a live worker
        from search.study.stale import blocking_error

        held = blocking_error(study, spec.trials)
        if held is not None:
            raise held
    after = len(study.get_trials(deepcopy=False, states=FINISHED))
    best = best_of(study)
    exported = None
    if flags is not None and best is not None:
        from search.flags.export import export_study

        exported = export_study(study, path_rule(flags, "--flags"))
    return result_type(study.study_name, url.safe, created, after - before, spec.trials,
                       trial_counts(study, interrupted=True), best,
                       notes, exported, stop_record(study), growth_history(study)[grown_before:], warm_start)

def launch(spec_file: str | os.PathLike | None = None, *, dataset: str | None = None, checkpoint: str | None = None,
           mode: str | None = None, trials: int | None = None, seed: int | None = None, sampler: str | None = None,
           pruner: str | None = None, weight_cap: float | None = None, soft_high: float | None = None,
           no_stop: bool = False, stop_min_trials: int | None = None, stop_tolerance: float | None = None,
           warm_start_from: list[str] | str | None = None, warm_start_k: int | None = None,
           storage: str | os.PathLike | None = None, workers: int | None = None,
           ray: bool = False, gpus_per_trial: float | None = None, cpus_per_trial: float | None = None,
           max_concurrent: int | None = None, address: str | None = None, flags: str | os.PathLike | None = None,
           fail_stale: bool = False, progress: bool = False, settings_per_pass: int | None = None,
           valid_pairs: int | None = None, budget_scale: float | None = None,
           from_flags: str | os.PathLike | None = None, options: LoadOptions | None = None,
           **inputs: Any) -> LaunchResult:
    """Start a study, or continue the study of the same (dataset, mode), until it has ``trials`` finished trials.

    spec_file: a study spec (YAML); the keyword arguments override it. Without one, ``dataset`` and
    ``checkpoint`` are required. settings_per_pass: fixed mode's trials a worker runs together, their
    settings ranked in shared entity passes (spec key, default 1; see :mod:`search.runners.step`). valid_pairs:
    a validation budget, the (anchor, relation) pairs of the validation split every trial ranks (spec key; a
    seeded sample stratified by relation, stored with the study; default: the whole split). budget_scale: S in
    (0, 1], a learnable mode's share of its dataset's official batches per epoch (spec key; default 1, the
    official fine-tuning budget; see :mod:`search.study.finetune`).
    weight_cap / soft_high: a fixed weight's hard cap and soft upper bound
    (see :mod:`search.study.bounds`); no_stop, stop_min_trials, stop_tolerance: the stopping rule (see
    :mod:`search.study.stopping`). warm_start_from, warm_start_k: a study created now first tries, after its
    known points, the best settings of the ``warm_start_k`` (default 3) studies among
    ``warm_start_from`` (names ``<dataset>/<mode>``, any spelling, in the same storage; StudyError
    naming one that is not there) whose graphs are nearest to its own (:mod:`search.study.warmstart`,
    :mod:`search.study.similarity`); a resumed study is never warm-started again. inputs: ``data_root``,
    ``text_root``, ``checkpoint_root``, ``cache_dir``, ``encoder``, ``offline``, ``device``,
    ``batch_size``, ``threads`` (see :class:`LoadOptions`), or a whole ``options``. progress: show
    progress bars on stderr. flags: export the best settings there when done. from_flags: a flags file (spec key
    ``from_flags``) whose fusion weights (``similarity_enhancer_weight``, ``prompt_enhancer_weight``) the study
    tries as a known point labelled ``your flags (<file>)``, read before anything is loaded
    (:mod:`search.flags.current`; FlagsError naming the file when it lacks them). fail_stale: fail and
    re-queue now the RUNNING trials that no live worker vouches for (see :mod:`search.study.stale`; without
    it only those older than its age bound). Raises StudyError / UsageError / CheckpointError /
    DatasetError (one line each); KeyboardInterrupt propagates after the interrupted trial is re-queued.
    """
    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"launch() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    overrides = dict(dataset=dataset, checkpoint=checkpoint, mode=mode, trials=trials, seed=seed, sampler=sampler,
                     pruner=pruner, weight_cap=weight_cap, soft_high=soft_high, stop=False if no_stop else None,
                     stop_min_trials=stop_min_trials, stop_tolerance=stop_tolerance,
                     warm_start_from=warm_start_from, warm_start_k=warm_start_k)
    overrides["settings_per_pass"] = settings_per_pass
    overrides["valid_pairs"] = valid_pairs
    overrides["budget_scale"] = budget_scale
    overrides["from_flags"] = from_flags
    if spec_file is not None:
        spec = merge_overrides(load_study_spec(spec_file), **overrides)
    else:
        missing = [f"--{key}" for key in ("dataset", "checkpoint") if overrides[key] is None]
        if missing:
            raise UsageError(f"launch needs {' and '.join(missing)} (or a study spec file)")
        spec = spec_from_values(overrides, OPTIONS)
    point = None
    if spec.from_flags is not None:  # read first: a file without the weights is one line before anything loads
        from search.flags.current import read_flags_point

        point = read_flags_point(spec.from_flags, "from_flags" if from_flags is None else "--from-flags")
    opts = load_options(options, inputs)
    url = resolve_storage(storage, spec.storage)
    run = RunOptions(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                     max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or "auto", run=run, flags=flags, progress=progress,
                result_type=LaunchResult, flags_point=point)

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
    from search.storage import load_study, recover_storage

    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"resume() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    url = recover_storage(resolve_storage(storage))  # a writer: a hot journal is rolled back before it reads
    found = load_study(_open_read_only(url), StudyName.parse(study), where=url.safe)
    spec = stored_spec(found)
    if trials is not None or no_stop or settings_per_pass is not None:
        spec = merge_overrides(spec, trials=trials, stop=False if no_stop else None,
                               settings_per_pass=settings_per_pass)
    stored_launch = found.user_attrs.get(LAUNCH_ATTR) or {}
    opts = load_options(options, inputs)
    run = RunOptions(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                     max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or stored_launch.get("encoder") or "auto", run=run,
                flags=flags, progress=progress, result_type=ResumeResult, recorded=stored_launch)

def _open_read_only(url: StorageURL) -> Any:
    from search.storage import open_storage

    return open_storage(url, read_only=True)

def status(*, storage: str | os.PathLike | None = None) -> StatusResult:
    """Every study of the storage with its trial counts and best trial; the storage is only read.

    A storage that does not exist or holds no schema gives an empty list and its state, not an error.
    """
    import optuna

    from search.study.budget import trial_counts
    from search.study.stale import running_trials
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
                                   trial_counts(study, interrupted=True), best_of(study),
                                   {name: bound.to_attr() for name, bound in read_bounds(study).items()},
                                   growth_history(study), None if stop is None else stop.get("reason"),
                                   stale=[t for t in running_trials(study) if not t.provably_alive],
                                   warm_start=list(study.user_attrs.get("warm_start") or []),
                                   valid_pairs=stored.get("valid_pairs")))
    return StatusResult(url.safe, "ready", entries)

def export(study: str | None = None, *, flags: str | os.PathLike | None = None,
           all: str | os.PathLike | None = None, storage: str | os.PathLike | None = None) -> ExportResult:  # noqa: A002
    """Write a study's best settings into ``flags`` (edited in place), or with ``all=DIR`` one
    ``DIR/<dataset>/flags.yaml`` per dataset (the better of its fixed and learnable studies).

    ``all`` is the CLI's ``--all``. The storage is only read. Raises UsageError for a wrong
    combination, StudyError / FlagsError (one line) otherwise; with ``all`` nothing is written unless
    every file can be.
    """
    from search.flags.export import export_all, export_study
    from search.storage import load_study

    url = resolve_storage(storage)
    if all is not None:
        if study is not None or flags is not None:
            raise UsageError("export --all DIR takes no STUDY and no --flags")
        folder = folder_to_write(all, "--all")  # a bad output path first: it needs no storage to be refused
        done = export_all(_open_read_only(url), folder)
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
           test_pairs: int | None = None, **inputs: Any) -> ReportResult:
    """Plots and summary of ``study``, and its best setting against the baselines on the test split.

    out: the report folder (default ``./studies/reports/<dataset>_<mode>``); n_boot, seed: the paired
    bootstrap's resamples and seed; test_pairs: rank the test split on a seeded, stratified sample of this
    many (anchor, relation) pairs where it has more (None: the whole split). The storage is only read.
    Raises UsageError for a test_pairs that is not a positive integer.
    """
    from search.storage import load_study
    from search.values import non_negative_int, positive_int

    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"report() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    n_boot = positive_int(n_boot, "--n-boot")
    seed = non_negative_int(seed, "--seed")
    test_pairs = None if test_pairs is None else positive_int(test_pairs, "--test-pairs")
    url = resolve_storage(storage)
    found = load_study(_open_read_only(url), StudyName.parse(study), where=url.safe)
    opts = load_options(options, inputs)
    name = StudyName.parse(found.study_name)
    folder = folder_to_write(out if out is not None else
                             DEFAULT_STUDIES_DIR / "reports" / f"{name.dataset.replace(':', '_')}_{name.mode}", "--out",
                             parents=out is None)
    written = report_study(found, folder, options=opts, n_boot=n_boot, seed=seed, progress=progress,
                           test_pairs=test_pairs)
    return ReportResult(found.study_name, url.safe, written.out_dir, list(written.files), written.summary)

def report_study(found: Any, out: str | os.PathLike, *, options: LoadOptions, n_boot: int = 2000, seed: int = 0,
                 progress: bool | str = False, test_pairs: int | None = None) -> Any:
    """Write the report of an opened study into ``out``: the one code path of :func:`report` and of a
    campaign's cross-dataset report (:mod:`search.reports.campaign`).

    found: an ``optuna.Study`` (opened read-only is enough); options: resolved :class:`LoadOptions`
    (the text encoder is the study's recorded one unless ``options.encoder`` is set); n_boot, seed: the
    paired bootstrap's resamples and seed; progress: True or ``"bar"`` shows a bar on stderr, ``"lines"`` a line
    per evaluated setting (stderr off a terminal), False/None nothing; test_pairs: rank the test split on a
    sample of this many pairs where it has more (None: the whole split). Every
    evaluation's ranks are kept in ``<options.cache_dir>/ranks`` (:class:`search.reports.rankcache.RankCache`),
    so a second report of the same settings runs no entity pass. Returns the
    :class:`search.reports.study.Report`; raises StudyError (e.g. no complete trial), CheckpointError,
    DatasetError (one line each).
    """
    from search.inputs.checkpoints import checkpoint_file
    from search.objectives.context import get_context
    from search.reports.rankcache import RankCache
    from search.reports.study import write_report

    spec = stored_spec(found)
    stored_launch = found.user_attrs.get(LAUNCH_ATTR) or {}
    path = checkpoint_file(spec.checkpoint, options, stored_launch)
    device = options.resolved_device()
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    encoder = options.encoder or stored_launch.get("encoder") or "auto"
    # the process's context: the fixed and learnable studies of one dataset share its model and relation sides
    context = get_context(spec.dataset, path, data_root=options.data_root, text=options.text(encoder), device=device,
                          batch_size=options.batch_size, cache_dir=options.cache_dir, download=options.download,
                          stage_seed=spec.seed)  # the trials' stage order, so a validation sample is theirs
    return write_report(found, context, Path(out), spec=spec, n_boot=n_boot, seed=seed,
                        show_progress="bar" if progress is True else (progress or None),
                        rank_cache=RankCache.under(options.cache_dir), test_pairs=test_pairs)
