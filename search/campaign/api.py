"""Campaigns as a Python API: ``search.campaign.launch``, ``resume``, ``status``, ``report``, ``export``.

A campaign is one study per (dataset, mode) in one storage, named as a single ``launch`` names it
(``<dataset>/<mode>``), run as one queue of trials (:mod:`search.runners.queue`) with one budget
(:mod:`search.campaign.allocation`). Keyword arguments carry the CLI's long option names with ``_``
(``search.campaign.launch(name="inductive", datasets="NELLInductive:v1,Metafam", checkpoint="fusion",
trials=8, storage="sqlite:///c.db")``). Like :mod:`search.api` these functions are an edge: unset
options fall back to the environment once (:class:`search.options.LoadOptions`, ``ARE_STORAGE``), and
errors are the project's one-line errors (:mod:`search.errors`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from search.campaign.spec import CampaignSpec, campaign_from_values, load_campaign_spec, merge_campaign_overrides
from search.errors import Interrupted, NoCompleteTrialError, import_extra
from search.api import status as study_status
from search.logs import quiet_dataset_reports
from search.options import INPUT_KEYS, LoadOptions, RunOptions, load_options, resolve_storage
from search.results import BestTrial, ExportResult, StudyStatus, best_of
from search.study.prepare import NewStudies, dataset_record, make_launch_record, prepare_study
from search.study.spec import OPTIONS
from search.values import folder_to_write

__all__ = ["CampaignStudy", "CampaignRunResult", "CampaignStatus", "launch", "resume", "status", "report", "export",
           "load_campaign"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignStudy:
    """One study of a campaign after a run: name, whether created now, its budget, trial counts by state,
    best trial and early-stop record (None when it ran its budget); in a timed campaign its time spent and
    time share in seconds (:mod:`search.campaign.timing`), else None."""

    study: str
    created: bool
    budget: int
    counts: dict[str, int]
    best: BestTrial | None
    stop: dict[str, Any] | None = None
    seconds: float | None = None
    share: float | None = None


@dataclass(frozen=True)
class CampaignRunResult:
    """A campaign run: its name, storage (password masked), the studies, the trials this run finished
    and the campaign's total budget now (after early stops gave theirs back)."""

    campaign: str
    storage: str
    studies: list[CampaignStudy]
    trials_added: int
    total_budget: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CampaignStatus:
    """A campaign in a storage: its spec, each study's status (:class:`search.results.StudyStatus`, with
    the campaign's current budget) and the trials done out of the total budget (``done`` counts each
    study's finished trials up to its budget; ``finished`` all of them: a study the campaign adopted
    may hold more than its budget). ``times``: study -> ``{"seconds": time spent, "share": its part of the
    time budget (None: no time budget), "per_trial": seconds a trial costs (None: not measured)}``, shares
    computed for one worker (see :mod:`search.campaign.timing`)."""

    campaign: str
    storage: str
    spec: CampaignSpec
    studies: list[StudyStatus]
    done: int
    total_budget: int
    finished: int = 0
    times: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# the edge


def _spec(spec_file: str | os.PathLike | None, overrides: Mapping[str, Any]) -> CampaignSpec:
    if spec_file is not None:
        return merge_campaign_overrides(load_campaign_spec(spec_file), **overrides)
    return campaign_from_values({k: v for k, v in overrides.items() if v is not None}, OPTIONS)


def load_campaign(campaign: str | os.PathLike | None, storage: str | os.PathLike | None = None, *,
                  writing: bool = False) -> tuple[CampaignSpec, Any, list[str]]:
    """``(spec, storage URL, study names)`` of the campaign ``campaign``: a name, a campaign spec file
    (its name, and its storage unless ``storage`` is given), or None: the only campaign in the storage
    (StudyError naming the campaigns there when it holds none or several). The storage is only read;
    ``writing`` (a command that writes next) first rolls back a hot journal
    (:func:`search.storage.recover_storage`)."""
    from search.campaign.members import find_campaign, only_campaign
    from search.storage import open_storage

    name, spec_storage = None if campaign is None else str(campaign), None
    if campaign is not None and (str(campaign).endswith((".yaml", ".yml")) or Path(campaign).is_file()):
        from_file = load_campaign_spec(campaign)
        name, spec_storage = from_file.name, from_file.storage
    url = resolve_storage(storage, spec_storage)
    from search.storage import recover_storage, storage_state

    if writing:
        recover_storage(url)
    state = storage_state(url)
    if state.state in ("missing", "empty"):
        from search.campaign.members import START_HINT
        from search.errors import StudyError

        raise StudyError(("no campaign" if name is None else f"no campaign {name!r}") + f": storage {state.describe()}"
                         f"; {START_HINT}")
    backend = open_storage(url, read_only=True)
    if name is None:
        name = only_campaign(backend, where=url.safe)
    stored, names = find_campaign(backend, name, where=url.safe)
    return stored, url, names


def _refuse_changed_relaunch(spec: CampaignSpec, url: Any) -> None:
    """StudyError when the storage holds campaign ``spec.name`` with other (dataset, mode) studies
    (:func:`search.campaign.members.refuse_changed_relaunch`); the storage is only read, a missing one passes."""
    from search.campaign.members import refuse_changed_relaunch
    from search.storage import open_storage, recover_storage, storage_state

    recover_storage(url)  # a launch writes next: a hot journal is rolled back before the storage is read
    if storage_state(url).state in ("missing", "empty"):
        return
    refuse_changed_relaunch(open_storage(url, read_only=True), spec, where=url.safe)


def _dataset_sizes(spec: CampaignSpec, options: LoadOptions, *, quiet: bool = True) -> dict[str, int]:
    """Each dataset's validation fact graph size in triples (loads, and so checks, every dataset up front)."""
    from are_model.data import load_dataset
    from search.inputs.roots import naming_unset_root, root_is_set

    sizes = {}
    data_root_set = root_is_set("data_root", options.data_root, options.cache_dir)
    with quiet_dataset_reports(quiet):  # local workers load them again and say what their files hold
        for name in spec.datasets:
            with naming_unset_root("data_root", data_root_set):
                data = load_dataset(name, options.data_root, cache_dir=options.cache_dir, download=options.download)
            sizes[name] = int(data.valid.edge_index.size(1)) * max(1, int(data.valid.target_edge_index.size(1)))
            del data
    return sizes


def _run(spec: CampaignSpec, url: Any, opts: LoadOptions, *, encoder: str, run: RunOptions,
         progress: bool | str | None) -> CampaignRunResult:
    started = time.time()  # a time budget's clock runs from here (loading the datasets counts)
    from search.storage.state import require_regular_files

    # first, before torch is imported (seconds on a loaded machine): a storage that cannot be written is one line
    require_regular_files(url, writing=True)
    from search.study.budget import FINISHED, recover_dead_trials, trial_counts
    from search.campaign.members import tag_member
    from search.runners.queue import Job, read_state
    from search.runners.setup import WorkerSetup, known_points_only_warning
    from search.study.stopping import stop_record

    run = run.checked(opts)
    if run.ray:  # before anything is made: a missing extra is bad input
        import_extra("ray.tune", feature="--ray", extra="ray")
    ray_only = run.ray_resources()
    made = NewStudies(url)  # a writer's first look at the storage: a hot journal is rolled back
    if spec.warm_start_from and tuple(spec.warm_start_from) != ("campaign",):
        from search.study.warmstart import load_sources

        load_sources(url, spec.warm_start_from)  # an unknown source: one line, before anything runs
    from search.inputs.checkpoints import fusion_checkpoint  # torch: only a run needs it

    path = fusion_checkpoint(spec.checkpoint, opts)
    sizes = _dataset_sizes(spec, opts, quiet=not run.ray)
    if opts.threads is not None:
        import torch

        torch.set_num_threads(opts.threads)
    record = make_launch_record(path, opts, encoder)
    studies, created, notes, before = {}, {}, [], 0
    with made.undo_on_bad_input():  # bad input while the studies are made (a full disk) removes them again
        for study_spec in spec.study_specs():
            study_record = {**record, **dataset_record(study_spec.dataset, opts)}  # each member's own raw files
            study, new, study_notes, _ = prepare_study(study_spec, url, path, study_record, fail_stale=run.fail_stale,
                                                       new=made)
            tag_member(study, spec)
            recover_dead_trials(study)
            warning = None if study_notes else known_points_only_warning(study, study_spec)
            if warning is not None:
                _logger.warning("%s", warning)
            studies[str(study_spec.name)], created[str(study_spec.name)] = study, new
            notes += study_notes
            before += len(study.get_trials(deepcopy=False, states=FINISHED))
    device = "cpu" if run.ray else opts.resolved_device()
    job = Job(spec, url, tuple(spec.study_specs()), WorkerSetup(str(path), opts, device=device, encoder=encoder),
              sizes, workers=_workers(run))
    if spec.time_budget is not None:  # what is left of the budget, in this run's wall time
        spent = sum(s.clock.spent for s in read_state(job, studies) if s.clock is not None)
        job = replace(job, deadline=started + max(0.0, spec.time_budget - spent / job.workers))
    try:
        with made.undo_on_bad_input():
            if run.ray:
                from search.runners.ray_queue import run_campaign_ray

                run_campaign_ray(job, show_progress=progress, **{("gpus_per_worker" if k == "gpus_per_trial" else
                                                                   "cpus_per_worker" if k == "cpus_per_trial" else k): v
                                                                  for k, v in ray_only.items()})
            else:
                from search.runners.queue import run_campaign_local

                run_campaign_local(job, workers=run.workers or 1, show_progress=progress)
    except KeyboardInterrupt:
        raise Interrupted(f"campaign {spec.name}", url) from None
    states = read_state(job, studies)
    from search.study.stale import blocking_error

    for state in states:  # a study held below its budget by a trial no live worker vouches for: say so
        held = None if stop_record(studies[state.name]) is not None else blocking_error(studies[state.name],
                                                                                          state.spec.trials)
        if held is not None:
            raise held
    rows, after = [], 0
    for state in states:
        study = studies[state.name]
        after += len(study.get_trials(deepcopy=False, states=FINISHED))
        rows.append(CampaignStudy(state.name, created[state.name], state.spec.trials,
                                  trial_counts(study, interrupted=True),
                                  best_of(study), stop_record(study),
                                  None if state.clock is None else state.clock.spent,
                                  None if state.share is None else state.share.share))
    return CampaignRunResult(spec.name, url.safe, rows, after - before, sum(s.spec.trials for s in states), notes)


# ---------------------------------------------------------------------------------------------
# launch / resume


def _workers(run: RunOptions) -> int:
    """How many workers a run has (its time budget counts their time): ``--workers``, or Ray's concurrency."""
    if run.ray:
        return int(run.max_concurrent or 2)
    return int(run.workers or 1)


def launch(spec_file: str | os.PathLike | None = None, *, name: str | None = None, datasets: Any = None,
           groups: Any = None, checkpoint: str | None = None, modes: Any = None, trials: int | None = None,
           total_trials: int | None = None, seed: int | None = None, sampler: str | None = None,
           pruner: str | None = None, weight_cap: float | None = None, soft_high: float | None = None,
           no_stop: bool = False, stop_min_trials: int | None = None, stop_tolerance: float | None = None,
           warm_start_from: Any = None, warm_start_k: int | None = None, valid_pairs: int | None = None,
           settings_per_pass: int | None = None, time_budget: str | None = None, budget_scale: float | None = None,
           storage: str | os.PathLike | None = None, workers: int | None = None, ray: bool = False,
           gpus_per_trial: float | None = None,
           cpus_per_trial: float | None = None, max_concurrent: int | None = None, address: str | None = None,
           fail_stale: bool = False, progress: bool | str | None = False, options: LoadOptions | None = None,
           **inputs: Any) -> CampaignRunResult:
    """Start a campaign, or continue the one of that name, until every study has its budget.

    spec_file: a campaign spec (``campaigns/<name>.yaml``, see :mod:`search.campaign.spec`); keyword
    arguments override it. datasets: names (a list or ``"A,B"``); groups: benchmark groups
    (``inductive_e``, ``inductive_er``, ``transductive``, ``pretraining``, ``all``); modes: any of ``fixed``,
    ``learnable``, ``learnable_free``; trials: per study, or total_trials: for the campaign (split, and given back by
    studies that stop early). valid_pairs: every study's validation budget; settings_per_pass: fixed-mode
    trials run together; time_budget: ``90s``, ``10m``, ``3h`` for the whole campaign, shared by cost
    (:mod:`search.campaign.timing`); budget_scale: S in (0, 1] on the learnable studies' official fine-tuning
    batches per epoch (:mod:`search.study.finetune`). workers: local worker processes; ray and its options: Ray workers instead
    (see :mod:`search.runners.ray_queue`). Other arguments as :func:`search.launch`. Raises
    StudyError / UsageError / CheckpointError / DatasetError (one line; StudyError too, before anything is
    loaded, when the storage holds a campaign of this name with other datasets or modes); Ctrl-C re-queues the running
    trials and raises :class:`search.errors.Interrupted`.
    """
    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"launch() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    overrides = dict(name=name, datasets=datasets, groups=groups, checkpoint=checkpoint, modes=modes, trials=trials,
                     total_trials=total_trials, seed=seed, sampler=sampler, pruner=pruner, weight_cap=weight_cap,
                     soft_high=soft_high, stop=False if no_stop else None, stop_min_trials=stop_min_trials,
                     stop_tolerance=stop_tolerance, warm_start_from=warm_start_from, warm_start_k=warm_start_k,
                     valid_pairs=valid_pairs, settings_per_pass=settings_per_pass, time_budget=time_budget,
                     budget_scale=budget_scale)
    spec = _spec(spec_file, overrides)
    opts = load_options(options, inputs)
    url = resolve_storage(storage, spec.storage)
    _refuse_changed_relaunch(spec, url)
    run = RunOptions(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                     max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or "auto", run=run, progress=progress)


def resume(campaign: str | os.PathLike | None = None, *, trials: int | None = None, total_trials: int | None = None,
           time_budget: str | None = None, no_stop: bool = False, storage: str | os.PathLike | None = None, workers: int | None = None,
           ray: bool = False, gpus_per_trial: float | None = None, cpus_per_trial: float | None = None,
           max_concurrent: int | None = None, address: str | None = None, fail_stale: bool = False,
           progress: bool | str | None = False, options: LoadOptions | None = None, **inputs: Any) -> CampaignRunResult:
    """Continue the campaign ``campaign`` (a name, its spec file, or None: the only campaign in the storage)
    from its stored spec: every study runs
    exactly its remaining budget (trials left RUNNING by a killed run are failed and re-queued first).

    trials / total_trials: a new budget (per study / for the campaign); time_budget: a new time budget for
    the whole campaign, the time it ran so far included (``2h`` after a ``1h`` campaign ran out: one more
    hour). Other arguments as :func:`launch`.
    """
    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"resume() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    spec, url, names = load_campaign(campaign, storage, writing=True)
    spec = merge_campaign_overrides(spec, trials=trials, total_trials=total_trials, stop=False if no_stop else None,
                                    time_budget=time_budget)
    from search.storage import load_study, open_storage

    first = load_study(open_storage(url, read_only=True), names[0], where=url.safe)
    stored_launch = first.user_attrs.get("launch") or {}
    opts = load_options(options, inputs)
    run = RunOptions(workers=workers, ray=ray, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                     max_concurrent=max_concurrent, address=address, fail_stale=fail_stale)
    return _run(spec, url, opts, encoder=opts.encoder or stored_launch.get("encoder") or "auto", run=run,
                progress=progress)


# ---------------------------------------------------------------------------------------------
# reading commands


def status(campaign: str | os.PathLike | None = None, *, storage: str | os.PathLike | None = None) -> CampaignStatus:
    """The campaign's studies with trial counts, best trial, search range and stop reason, and the trials
    done out of the campaign's total budget. ``campaign``: a name, its spec file, or None (the only campaign
    in the storage). The storage is only read."""
    from search.campaign.allocation import StudyProgress, allocate

    spec, url, names = load_campaign(campaign, storage)
    every = {s.study: s for s in study_status(storage=url).studies}
    entries = [every[name] for name in names if name in every]
    progress = [StudyProgress(e.study, e.counts.get("COMPLETE", 0) + e.counts.get("PRUNED", 0), e.stop_reason is not None)
                for e in entries]
    budgets = allocate(spec, progress)
    budgets, times = _times(spec, url, progress, budgets)
    entries = [replace(e, budget=budgets[e.study]) for e in entries]
    done = sum(min(p.finished, budgets[p.name]) for p in progress)
    return CampaignStatus(spec.name, url.safe, spec, entries, done, sum(budgets.values()),
                          sum(p.finished for p in progress), times)


def _times(spec: CampaignSpec, url: Any, progress: list[Any],
           budgets: dict[str, int]) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """(trial budgets, study -> time record) of ``status``: time spent per study; with a time budget also its
    share (one worker) and the trial budget the share affords."""
    from search.campaign.timing import COST_ATTR, allocate_time, study_clock
    from search.storage import load_study, open_storage
    from search.study.budget import in_progress

    backend = open_storage(url, read_only=True)
    clocks = []
    for p in progress:
        study = load_study(backend, p.name, where=url.safe)
        trials = study.get_trials(deepcopy=False)
        clocks.append(study_clock(p.name, trials, study.user_attrs.get(COST_ATTR), finished=p.finished,
                                  running=sum(1 for t in trials if in_progress(t)), stopped=p.stopped,
                                  cap=budgets[p.name]))
    shares = allocate_time(spec.time_budget, clocks) if spec.time_budget is not None else {}
    times = {c.name: {"seconds": c.spent, "share": shares[c.name].share if shares else None,
                      "per_trial": c.per_trial} for c in clocks}
    if shares:
        budgets = {name: shares[name].trials for name in budgets}
    return budgets, times


def export(campaign: str | os.PathLike | None = None, *, out: str | os.PathLike, storage: str | os.PathLike | None = None) -> ExportResult:
    """One ``OUT/<dataset>/flags.yaml`` per dataset of the campaign (the better of its fixed and learnable
    studies), all written or none (see :func:`search.flags.export.export_all`). ``campaign`` as for
    :func:`status`. The storage is only read."""
    from search.flags.export import export_all
    from search.storage import open_storage

    spec, url, names = load_campaign(campaign, storage)
    done = export_all(open_storage(url, read_only=True), folder_to_write(out, "--out"), only=set(names))
    if not done.written:
        reasons = "; ".join(f"{study}: {why}" for study, why in done.skipped) or "it has no studies"
        raise NoCompleteTrialError(f"nothing to export from campaign {spec.name} ({reasons})")
    return ExportResult(url.safe, list(done.written), list(done.skipped))


def report(campaign: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None, n_boot: int = 2000, seed: int = 0,
           storage: str | os.PathLike | None = None, progress: bool | str | None = False,
           options: LoadOptions | None = None, test_pairs: int | None = None, **inputs: Any) -> Any:
    """The cross-dataset report of the campaign in ``out`` (default ``./studies/reports/campaign_<name>``):
    ``campaign.md``, ``campaign.csv``, figures, and each study's own report under ``studies/``.
    ``campaign`` as for :func:`status`; test_pairs: each study's test split is ranked on a sample of this many
    pairs where it has more (None: whole splits; UsageError unless a positive integer). Returns
    :class:`search.reports.campaign.CampaignReport`. The storage is only read."""
    import optuna

    from search.reports.campaign import write_campaign_report
    from search.options import DEFAULT_STUDIES_DIR
    from search.storage import open_storage
    from search.values import non_negative_int, positive_int

    unknown = set(inputs) - set(INPUT_KEYS)
    if unknown:
        raise TypeError(f"report() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    n_boot = positive_int(n_boot, "--n-boot")
    seed = non_negative_int(seed, "--seed")
    test_pairs = None if test_pairs is None else positive_int(test_pairs, "--test-pairs")
    spec, url, names = load_campaign(campaign, storage)
    backend = open_storage(url, read_only=True)
    studies = [optuna.load_study(study_name=name, storage=backend) for name in names]
    folder = folder_to_write(out if out is not None else DEFAULT_STUDIES_DIR / "reports" / f"campaign_{spec.name}",
                             "--out", parents=out is None)
    from search.campaign.allocation import StudyProgress, allocate
    from search.study.budget import FINISHED
    from search.study.stopping import stop_record

    progress_ = [StudyProgress(study.study_name, len(study.get_trials(deepcopy=False, states=FINISHED)),
                               stop_record(study) is not None) for study in studies]
    _, times = _times(spec, url, progress_, allocate(spec, progress_))
    return write_campaign_report(studies, folder, options=load_options(options, inputs), n_boot=n_boot, seed=seed,
                                 progress=progress in (True, "bar"), name=spec.name, times=times,
                                 test_pairs=test_pairs)
