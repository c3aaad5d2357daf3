"""A campaign as one queue of trials: workers pull the next trial of the next unfinished study.

Every worker -- the driver itself, a spawned local process, or a Ray task (one per GPU, fraction of
one, or CPU slot) -- runs :func:`work`: it reads the campaign's state from the storage (each study's
finished and live running trials, stop record and budget from :mod:`search.campaign.allocation`),
picks a study (:func:`pick`) and takes one trial step of it exactly as a single study's worker does
(:func:`search.runners.step.run_step`: the study's own sampler, pruner and stopping rule, the same
re-queue on Ctrl-C), then picks again.

Picking: a worker stays on the dataset it holds while that dataset has a study with budget left (its
context, the model, graphs and cached relation side, stays warm); otherwise it moves to the largest
dataset (fact triples) that no worker is running, then the largest with budget left. Large datasets go
first so the campaign does not end with one large dataset running alone. A worker that moves frees its
old context (:func:`search.objectives.context.clear_contexts`) before building the next.

Nothing is held outside the storage: the budget is a function of the stored state, trials are owned
and budget-checked as in a single study, and a worker killed with ``kill -9`` leaves a RUNNING trial
that ``campaign resume`` fails and re-queues (:func:`search.study.budget.recover_dead_trials`,
:mod:`search.study.stale`), so a resumed campaign runs exactly each study's remaining budget.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.queues
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna

from search.campaign.allocation import StudyProgress, allocate
from search.campaign.timing import COST_ATTR, StudyClock, TimeShare, allocate_time, eta_seconds, study_clock
from search.campaign.spec import WARM_FROM_CAMPAIGN, CampaignSpec
from search.objectives.context import clear_contexts
from search.objectives.fusion import FusionObjective
from search.runners.processes import cpu_threads, run_workers, worker_body
from search.runners.progress import trial_line, trial_steps
from search.runners.setup import WorkerSetup, open_study
from search.runners.step import run_step
from search.storage import StorageURL
from search.study.budget import FINISHED, in_progress, recover_dead_trials
from search.study.prepare import chosen_valid_pairs
from search.study.spec import SPEC_ATTR, StudySpec
from search.study.stopping import StopRule, stop_record

__all__ = ["Job", "StudyState", "read_state", "pick", "open_studies", "work", "run_campaign_local", "CampaignProgress"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What every worker of a campaign needs (picklable: it travels to spawned processes and Ray tasks): the
    campaign spec, the parsed storage, the study specs (campaign order), the worker setup (checkpoint, load
    options, device, encoder), each dataset's size in fact triples (the order of work), and for a timed
    campaign (:mod:`search.campaign.timing`) the run's workers and its deadline (``time.time()`` seconds;
    None: no clock)."""

    campaign: CampaignSpec
    storage: StorageURL
    specs: tuple[StudySpec, ...]
    setup: WorkerSetup
    sizes: Mapping[str, int]
    workers: int = 1
    deadline: float | None = None


@dataclass(frozen=True)
class StudyState:
    """One study of the campaign now: its spec with the current budget, finished (COMPLETE + PRUNED) and
    live running trials, and whether it stopped early; in a timed campaign also its clock (time spent, cost
    per trial) and share (:mod:`search.campaign.timing`), else None."""

    spec: StudySpec
    order: int
    finished: int
    running: int
    stopped: bool
    clock: StudyClock | None = None
    share: TimeShare | None = None

    @property
    def name(self) -> str:
        return str(self.spec.name)

    @property
    def remaining(self) -> int:
        """Trials still to start (0 once stopped)."""
        return 0 if self.stopped else max(0, self.spec.trials - self.finished - self.running)


def read_state(job: Job, studies: Mapping[str, optuna.Study]) -> list[StudyState]:
    """The state of every study of ``job`` (campaign order), budgets allocated from the stored state."""
    counts, read = [], {}
    for spec in job.specs:
        trials = read[str(spec.name)] = studies[str(spec.name)].get_trials(deepcopy=False)
        finished = sum(1 for t in trials if t.state in FINISHED)
        running = sum(1 for t in trials if in_progress(t))
        counts.append((spec, finished, running, stop_record(studies[str(spec.name)]) is not None))
    budgets = allocate(job.campaign, [StudyProgress(str(s.name), f, stopped) for s, f, _, stopped in counts])
    if job.campaign.time_budget is None:
        return [StudyState(replace(spec, trials=budgets[str(spec.name)]), k, finished, running, stopped)
                for k, (spec, finished, running, stopped) in enumerate(counts)]
    clocks = []
    for spec, finished, running, stopped in counts:
        name = str(spec.name)
        clocks.append(study_clock(name, read[name], studies[name].user_attrs.get(COST_ATTR),
                                  finished=finished, running=running, stopped=stopped, cap=budgets[name]))
    total = job.campaign.time_budget * job.workers
    if job.deadline is not None:  # what the run spent outside any study (loading the datasets) is gone too
        total = min(total, sum(c.spent for c in clocks) + max(0.0, job.deadline - time.time()) * job.workers)
    shares = allocate_time(total, clocks)
    if sum(c.spent for c in clocks) >= total:  # the budget is spent: no more
        shares = {name: TimeShare(share.share, 0) for name, share in shares.items()}
    states = []
    for k, ((spec, finished, running, stopped), clock) in enumerate(zip(counts, clocks)):
        if (chosen := chosen_valid_pairs(studies[clock.name], spec)) is not None:  # the probe's, as prepare keeps it
            spec = replace(spec, valid_pairs=chosen)
        states.append(StudyState(replace(spec, trials=shares[clock.name].trials), k, finished, running, stopped,
                                 clock, shares[clock.name]))
    return states


#: A trial starts before a deadline only when this many times its expected cost still fits (trials on a
#: shared machine vary; a campaign should rather end a little early than late).
COST_MARGIN = 1.25


def fits(state: StudyState, deadline: float | None, now: float) -> bool:
    """Whether a trial of ``state`` may start at ``now`` (``time.time()``): no deadline, or its expected cost
    (times :data:`COST_MARGIN`) ends before it (an unmeasured study: while the deadline is ahead)."""
    if deadline is None:
        return True
    cost = state.clock.per_trial if state.clock is not None and state.clock.per_trial is not None else 0.0
    return now + COST_MARGIN * cost <= deadline


def pick(states: Sequence[StudyState], held: str | None, sizes: Mapping[str, int]) -> StudyState | None:
    """The study a worker holding dataset ``held`` runs next (see the module doc), or None when no study
    has budget left."""
    open_ = [s for s in states if s.remaining > 0]
    if not open_:
        return None
    same = [s for s in open_ if s.spec.dataset == held]
    if same:
        return min(same, key=lambda s: s.order)
    return min(open_, key=lambda s: (s.running > 0, -sizes.get(s.spec.dataset, 0), s.order))


def open_studies(job: Job, worker: int = 0) -> dict[str, optuna.Study]:
    """This worker's handle on every study of the campaign (its own sampler seed). Raises StorageError when the
    storage cannot be opened."""
    return {str(spec.name): open_study(spec, job.storage, job.setup.checkpoint_path, worker=worker)[0]
            for spec in job.specs}


def _store_budget(study: optuna.Study, spec: StudySpec) -> None:
    """Keep the study's stored spec budget equal to its campaign allocation (so per-study commands agree)."""
    stored = study.user_attrs.get(SPEC_ATTR)
    if isinstance(stored, dict) and stored.get("trials") != spec.trials:
        study.set_user_attr(SPEC_ATTR, {**stored, "trials": spec.trials})


def _finished_sources(job: Job, states: Sequence[StudyState], target: StudyState,
                      studies: Mapping[str, optuna.Study]) -> list[optuna.Study]:
    """The studies a new study of the campaign may warm-start from: named ones, or the campaign's own
    finished studies (no budget left, no trial running) of the same mode on other datasets."""
    if tuple(job.campaign.warm_start_from) != (WARM_FROM_CAMPAIGN,):
        from search.study.warmstart import load_sources

        return load_sources(job.storage, job.campaign.warm_start_from)
    return [studies[s.name] for s in states
            if s.spec.mode == target.spec.mode and s.spec.dataset != target.spec.dataset
            and (s.stopped or s.finished >= s.spec.trials) and s.running == 0 and s.finished > 0]


def _warm_start(job: Job, states: Sequence[StudyState], state: StudyState, study: optuna.Study,
                studies: Mapping[str, optuna.Study]) -> None:
    if not job.campaign.warm_start_from or "warm_start" in study.user_attrs:
        return
    sources = _finished_sources(job, states, state, studies)
    if not sources:
        return
    from search.study.warmstart import apply_warm_start

    points = apply_warm_start(study, state.spec, sources, job.setup.options, job.campaign.warm_start_k)
    _logger.info("study %s: warm start from %s", state.name, ", ".join(p.source for p in points) or "nothing")


def _objective(job: Job, state: StudyState, study: optuna.Study) -> FusionObjective:
    """The objective of ``state``'s study on this worker's warm context. In a timed campaign the set-up is timed
    and, for a study not measured yet, its cost probed first (which may set its validation budget)."""
    start = time.perf_counter()
    context = job.setup.context(state.spec.dataset, state.spec.seed)
    if state.clock is None or state.share is None:
        return FusionObjective(state.spec, context)
    from search.objectives.fusion import SPLIT
    from search.runners.cost import add_setup_seconds, probe_cost

    context.relation_side(SPLIT)
    setup = time.perf_counter() - start
    if not isinstance(study.user_attrs.get(COST_ATTR), Mapping):
        record = probe_cost(study, state.spec, context, share=state.share.share, floor=state.clock.floor,
                            setup_s=setup)
        return FusionObjective(replace(state.spec, valid_pairs=record["valid_pairs"]), context)
    add_setup_seconds(study, setup)
    return FusionObjective(state.spec, context)


def work(job: Job, worker: int = 0, *, on_trial: Callable[[], None] | None = None,
         on_start: Callable[[str], None] | None = None) -> int:
    """Take trial steps of the campaign in this process until no study has budget left; returns how many.

    on_start: called with the dataset before each step (and so before its data are loaded), on_trial after
    it (both: the in-process progress display). Raises what a step raises (see
    :func:`search.runners.step.run_step`: KeyboardInterrupt once the interrupted trial is re-queued).
    """
    studies = open_studies(job, worker)
    objectives: dict[str, FusionObjective] = {}
    held: str | None = None
    ran = 0
    while True:
        states = read_state(job, studies)
        if job.deadline is not None:  # a study whose next trial would end past the deadline starts none
            now = time.time()
            states = [s if fits(s, job.deadline, now) else replace(s, spec=replace(s.spec, trials=s.finished + s.running))
                      for s in states]
        state = pick(states, held, job.sizes)
        if state is None:
            return ran
        if state.spec.dataset != held:
            if held is not None:  # release the old dataset's model and graphs before loading the next
                objectives.clear()
                clear_contexts()
                gc.collect()
            held = state.spec.dataset
            _logger.info("worker %d: now on %s", worker, held)
        if on_start is not None:
            on_start(held)
        study = studies[state.name]
        _store_budget(study, state.spec)
        _warm_start(job, states, state, study, studies)
        if state.name not in objectives:
            objectives[state.name] = _objective(job, state, study)
            if job.deadline is not None:  # its set-up took time: look at the clock again
                continue
        per_pass = state.spec.settings_per_pass if state.spec.mode == "fixed" else 1
        run_step(study, objectives[state.name], state.spec.trials, size=max(1, min(per_pass, state.remaining)),
                 rule=StopRule.of(state.spec))
        ran += 1
        if on_trial is not None:
            on_trial()


# ---------------------------------------------------------------------------------------------
# progress


def eta_text(job: Job, states: Sequence[StudyState]) -> str:
    """``, ETA 4m10s`` for a timed campaign (:func:`search.campaign.timing.eta_seconds`: the remaining trials
    at their cost, never past the deadline), ``""`` otherwise or while no estimate exists."""
    clocks = [s.clock for s in states if s.clock is not None]
    if job.campaign.time_budget is None or len(clocks) != len(states):
        return ""
    left = None if job.deadline is None else max(0.0, job.deadline - time.time())
    eta = eta_seconds(clocks, {s.name: s.share for s in states if s.share is not None}, job.workers, left)
    if eta is None:
        return ""
    eta = int(round(eta))
    return f", ETA {eta // 60}m{eta % 60:02d}s" if eta >= 60 else f", ETA {eta}s"


class CampaignProgress:
    """One display for the whole campaign on stderr: ``bar`` (trials done / total, the datasets being
    run now, on a terminal), ``lines`` (one line per finished trial, prefixed with its study) or None.

    The bar is drawn once, with its total known (no empty bar first). "now:" names the datasets with a
    live RUNNING trial in the storage (other processes, Ray tasks) and the one this process works on
    (:meth:`now_on`), which it holds while loading its data too."""

    def __init__(self, job: Job, studies: Mapping[str, optuna.Study], mode: bool | str | None) -> None:
        self.job, self.studies = job, studies
        self.mode = "bar" if mode is True else (mode or None)
        self._seen = {name: {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
                      for name, study in studies.items()}
        self._bar = None
        self._here: str | None = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            total, done, now = self._figures(read_state(job, studies))
            self._bar = tqdm(total=total, initial=done, desc=f"campaign {job.campaign.name}", unit="trial",
                             leave=True, postfix=now)
        self.refresh()

    def _figures(self, states: Sequence[StudyState]) -> tuple[int, int, str]:
        """(trials in the budget, trials done, the ``now: A, B`` text) of the bar."""
        total = sum(s.spec.trials if not s.stopped else s.finished for s in states)
        done = sum(min(s.finished, s.spec.trials) for s in states)
        running = [s.spec.dataset for s in states if s.running] + ([self._here] if self._here else [])
        return total, done, "now: " + (", ".join(dict.fromkeys(running)) or "-") + eta_text(self.job, states)

    def now_on(self, dataset: str | None) -> None:
        """This process works on ``dataset`` now (None: on nothing); shown at once."""
        self._here = dataset
        self.refresh()

    def refresh(self) -> None:
        """Show what finished since the last call."""
        if self.mode is None:
            return
        states = read_state(self.job, self.studies)
        if self._bar is not None:
            self._bar.total, self._bar.n, now = self._figures(states)
            self._bar.set_postfix_str(now, refresh=False)
            self._bar.refresh()
            return
        for name, study in self.studies.items():
            for trial in sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number):
                if trial.number not in self._seen[name]:
                    self._seen[name].add(trial.number)
                    sys.stderr.write(f"{name} {trial_line(trial, steps=trial_steps(study))}\n")
        sys.stderr.flush()

    def close(self) -> None:
        """Show the last finished trials and close the bar (if any)."""
        if self._bar is not None:
            self._here = None
            self.refresh()
            self._bar.close()

    def __enter__(self) -> "CampaignProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# local workers


def run_campaign_local(job: Job, *, workers: int = 1, devices: Sequence[str] | None = None,
                       show_progress: bool | str | None = None) -> None:
    """Run the campaign with ``workers`` local processes (one: in this process), spread over ``devices``
    (default: the setup's device). Bad input met by a worker is raised here as :class:`search.errors.WorkerError`."""
    devices = [job.setup.device] if not devices else list(devices)
    studies = open_studies(job)
    if workers == 1:
        with CampaignProgress(job, studies, show_progress) as progress:
            work(replace(job, setup=job.setup.on(devices[0])), 0, on_trial=progress.refresh, on_start=progress.now_on)
        return
    threads = cpu_threads(devices, workers)
    level = logging.getLogger().getEffectiveLevel()
    with CampaignProgress(job, studies, show_progress) as progress:
        run_workers(_worker_main, [(replace(job, setup=job.setup.on(devices[k % len(devices)])), k, threads, level)
                                   for k in range(workers)],
                    name="are-campaign-worker", refresh=progress.refresh, what=f"campaign {job.campaign.name}",
                    after=lambda: _recover(studies))


def _recover(studies: Mapping[str, optuna.Study]) -> None:
    """Fail and re-queue the trials dead workers left RUNNING in any study of the campaign."""
    for study in studies.values():
        recover_dead_trials(study)


def _worker_main(job: Job, worker: int, threads: int, log_level: int,
                 errors: multiprocessing.queues.SimpleQueue) -> None:
    """Entry point of a spawned campaign worker (see search.runners.local._worker_main)."""
    worker_body(lambda: work(job, worker), device=job.setup.device, threads=threads, log_level=log_level,
                errors=errors)
