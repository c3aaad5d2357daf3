"""What each command of the Python API returns: one frozen dataclass per command, and the best trial.

``search.launch`` returns :class:`LaunchResult`, ``resume`` :class:`ResumeResult`, ``status``
:class:`StatusResult` (one :class:`StudyStatus` per study), ``export`` :class:`ExportResult`, ``report``
:class:`ReportResult`. The CLI formats them; ``--json`` prints their fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import StudyError
from search.flags.export import best_trial
from search.study.settings import TrialSettings

__all__ = ["BestTrial", "RunResult", "LaunchResult", "ResumeResult", "StudyStatus", "StatusResult", "ExportResult",
           "ReportResult", "best_of"]


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
    growths of its search range made during this run (``growth``, see :mod:`search.study.bounds`; ``status``
    lists them all)."""

    study: str
    storage: str
    created: bool
    trials_added: int
    budget: int
    #: Trials by state name, the FAIL trials of an interrupted run apart as ``INTERRUPTED``.
    counts: dict[str, int]
    best: BestTrial | None
    notes: list[str] = field(default_factory=list)
    exported: Any = None
    stop: dict[str, Any] | None = None
    growth: list[dict[str, Any]] = field(default_factory=list)
    #: What a study created by this run was warm-started with (its user attr ``warm_start``, see
    #: :mod:`search.study.warmstart`): ``{"from", "distance", "params", "trial", "value", "enqueued"}`` each.
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
    #: Trials by state name, the FAIL trials of an interrupted run (Ctrl-C, SIGTERM) apart as ``INTERRUPTED``.
    counts: dict[str, int]
    best: BestTrial | None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    growth: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    #: RUNNING trials that no live worker vouches for (``search.study.stale.RunningTrial``), by number.
    stale: list[Any] = field(default_factory=list)
    #: What the study was warm-started with (its user attr ``warm_start``, see :mod:`search.study.warmstart`).
    warm_start: list[dict[str, Any]] = field(default_factory=list)
    #: Its validation budget (spec key ``valid_pairs``): the validation pairs every trial ranks; None: all.
    valid_pairs: int | None = None

@dataclass(frozen=True)
class StatusResult:
    """A storage (password masked), the state it was found in (``missing``, ``empty``, ``ready``,
    ``unknown``) and its studies."""

    storage: str
    state: str
    studies: list[StudyStatus]

@dataclass(frozen=True)
class ExportResult:
    """Flags files written (``search.flags.export.ExportedFlags``) and studies skipped with why."""

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

def best_of(study: Any) -> BestTrial | None:
    """The best complete trial of ``study`` (ties: the earliest), or None."""
    try:
        trial = best_trial(study)
    except StudyError:
        return None
    return BestTrial(trial.number, float(trial.value), dict(trial.params), TrialSettings.maybe_from_trial(trial))
