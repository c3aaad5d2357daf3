"""From a study to ``flags.yaml``: the best complete trial's fusion settings as flag values.

:func:`export_study` writes one study into one flags file; :func:`export_all` writes one
``<out_dir>/<dataset>/flags.yaml`` per dataset (the better of its fixed and learnable studies), after
checking every study and every target file first, so a bad file means nothing is written. The file
edit itself (bytes preserved, atomic) is :mod:`search.flags.yaml_edit`.

Flags written (``FLAG_KEYS``): ``use_learnable_fusion`` (bool), one weight per fusion term under its
``flag_key`` (:mod:`search.study.fusion_terms`: ``similarity_enhancer_weight`` and
``prompt_enhancer_weight``; dimensionless fusion weights, the *initial* weights in learnable mode),
and in learnable mode ``fusion_lr`` (learning rate of the fusion logits per optimiser step). Numbers
are written exactly as the trial ran them (the shortest decimal that reads back as the same float), so
evaluating the exported weights reproduces the trial's validation MRR bit for bit.

A *learnable_free* study exports the weights its best trial **learned**, as fixed weights:
``use_learnable_fusion: False``, ``similarity_enhancer_weight`` and ``prompt_enhancer_weight`` = the trial's
``learned_weights``, and no ``fusion_lr``. That is what the ARE code needs to use them: its fixed mode (spec
§5.1) computes Z + u·Δsim + θ_p·Δprompt without normalising, exactly the free fusion's rule at inference,
while its learnable mode is a softmax that cannot hold weights off the simplex (nor re-learn them). With a
frozen body (the default) these flags reproduce the trial's model; a trial that also trained the body
changed weights these flags do not carry.
"""
from __future__ import annotations

import copy
import logging
import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import values
from search.errors import FlagsError, NoCompleteTrialError, StudyError, UsageError
from search.study.fusion_terms import FUSION_TERMS, WEIGHT_FLAG_KEYS
from search.study.names import MODES, StudyName
from search.study.settings import TrialSettings
from search.flags.yaml_edit import FlagsEdit, edit_flags

__all__ = [
    "FLAG_KEYS",
    "FlagsError",
    "ExportedFlags",
    "ExportAllResult",
    "best_trial",
    "flags_from_settings",
    "export_study",
    "export_all",
]

_logger = logging.getLogger(__name__)

#: The keys an export writes (``fusion_lr`` in learnable mode only).
FLAG_KEYS = ("use_learnable_fusion", *WEIGHT_FLAG_KEYS, "fusion_lr")


@dataclass(frozen=True)
class ExportedFlags:
    """One flags file written: ``flags`` (key -> bool or float) from trial ``trial`` of ``study``.

    ``value`` is that trial's validation MRR (in [0, 1]); ``path`` the flags file as given.
    """

    study: str
    path: Path
    trial: int
    value: float
    flags: dict[str, bool | float]


@dataclass(frozen=True)
class ExportAllResult:
    """What :func:`export_all` did: the files ``written`` (by dataset) and the studies ``skipped``.

    ``skipped`` holds (study name, reason) for every study that was not exported because it cannot
    be: no complete trial, not made by are-search, not named ``<dataset>/<mode>``. A study that lost
    to its dataset's other mode is neither (its value is named in the winner's comment).
    """

    written: list[ExportedFlags]
    skipped: list[tuple[str, str]]


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The COMPLETE trial with the highest validation MRR (pruned, failed or running trials never count).

    Ties go to the earliest trial. Raises StudyError when the study does not maximize one value and
    NoCompleteTrialError (a StudyError, exit status 3) naming the study when it has no complete trial.
    """
    if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        raise StudyError(f"study {study.study_name} does not maximize a single value")
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        raise NoCompleteTrialError(f"study {study.study_name} has no complete trial (pruned and failed ones have no "
                                   f"value to report or export): run more with resume --trials")
    return copy.deepcopy(max(complete, key=lambda t: (t.value, -t.number)))


def flags_from_settings(settings: TrialSettings, where: str = "trial settings") -> dict[str, bool | float]:
    """The flag values of a trial's settings, in ``FLAG_KEYS`` order.

    The mode follows ``settings.mode``: fixed gives ``use_learnable_fusion: False``
    and the fixed weights (one per fusion term); learnable gives ``True``, the *initial* weights and
    ``fusion_lr``; learnable_free gives ``False`` and the *learned* weights (the ARE code's fixed fusion
    applies them as learned; StudyError when the trial has none).
    Weights must be finite and >= 0, ``fusion_lr`` finite and > 0 (:mod:`search.values` rules);
    numbers are kept exactly. Raises StudyError naming ``where`` and the setting.
    """
    if not isinstance(settings, TrialSettings):
        raise StudyError(f"{where}: expected TrialSettings, got {type(settings).__name__}")
    learnable = settings.use_learnable_fusion
    if not isinstance(learnable, bool):
        raise StudyError(f"{where}: setting 'use_learnable_fusion' must be a bool, got {learnable!r}")
    if learnable and settings.free_fusion is True:
        learned = settings.learned_weights
        if not isinstance(learned, (list, tuple)) or len(learned) != len(FUSION_TERMS):
            raise StudyError(f"{where}: a learnable_free trial without {len(FUSION_TERMS)} 'learned_weights' "
                             f"(got {learned!r})")
        rules = [(term.flag_key, raw, values.weight) for term, raw in zip(FUSION_TERMS, learned)]
        free: dict[str, bool | float] = {"use_learnable_fusion": False}
        for key, raw, rule in rules:
            try:
                free[key] = float(rule(raw, f"{where}: setting 'learned_weights' {key!r}"))
            except UsageError as exc:
                raise StudyError(str(exc)) from None
        return free
    rules = [(term.flag_key, raw, values.weight) for term, raw in zip(FUSION_TERMS, settings.weights)]
    if learnable:
        if settings.fusion_lr is None:
            raise StudyError(f"{where}: a learnable-fusion trial without setting 'fusion_lr'")
        rules.append(("fusion_lr", settings.fusion_lr, values.positive_float))
    flags: dict[str, bool | float] = {"use_learnable_fusion": learnable}
    for key, raw, rule in rules:
        try:
            flags[key] = float(rule(raw, f"{where}: setting {key!r}"))
        except UsageError as exc:
            raise StudyError(str(exc)) from None
    return flags


def _now() -> str:
    """The UTC time of the export, as written in the comment (``2025-01-31T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _trial_flags(study: optuna.Study) -> tuple[FrozenTrial, dict[str, bool | float]]:
    """(best complete trial, its flags); StudyError / NoCompleteTrialError naming the study."""
    trial = best_trial(study)
    where = f"study {study.study_name}: trial {trial.number}"
    settings = TrialSettings.from_trial(trial, study.study_name)
    return trial, flags_from_settings(settings, where)


def export_study(study: optuna.Study, path: str | Path) -> ExportedFlags:
    """Write the best complete trial of ``study`` into the flags.yaml at ``path``.

    The file is created when missing (its folder must exist); otherwise only the flag keys and the
    ``# are-search:`` comment line change (:func:`search.flags.yaml_edit.write_flags`). Raises
    NoCompleteTrialError when the study has no complete trial, StudyError when its best trial has
    no usable settings (not run by are-search), FlagsError when the file cannot be edited; the file
    is untouched then.
    """
    trial, flags = _trial_flags(study)
    comment = f"study {study.study_name}, trial {trial.number}, validation MRR {trial.value:.4f}, {_now()}"
    edit_flags(path, flags, comment=comment).write()
    _logger.info("exported %s trial %d to %s", study.study_name, trial.number, path)
    return ExportedFlags(study.study_name, Path(path), trial.number, float(trial.value), flags)


@dataclass(frozen=True)
class _Candidate:
    name: StudyName
    trial: FrozenTrial
    flags: dict[str, bool | float]

    @property
    def value(self) -> float:
        return float(self.trial.value)


def _candidate(storage: Any, study_name: str) -> _Candidate | str:
    """The exportable best trial of one study, or the reason it cannot be exported."""
    try:
        name = StudyName.parse(study_name)
    except StudyError:
        return "not named <dataset>/<mode>, so not an are-search study"
    study = optuna.load_study(study_name=study_name, storage=storage)
    try:
        trial, flags = _trial_flags(study)
    except NoCompleteTrialError:
        return "no complete trial"
    except StudyError as exc:
        return str(exc).removeprefix(f"study {study_name}: ").removeprefix(f"study {study_name} ")
    return _Candidate(name, trial, flags)


def export_all(storage: str | optuna.storages.BaseStorage, out_dir: str | Path, *,
               only: Collection[str] | None = None) -> ExportAllResult:
    """One ``<out_dir>/<dataset>/flags.yaml`` per dataset in ``storage`` (``:`` in a dataset becomes ``_``).

    For each dataset the study (fixed or learnable) with the higher best validation MRR is exported
    (fixed on a tie); the comment names the other one too. All studies are checked first and every
    target file is read and edited in memory before the first one is written: a study that cannot
    be exported (no complete trial, not made by are-search, not named ``<dataset>/<mode>``) is
    reported in ``skipped`` with the reason, and a target file that is malformed or cannot be edited
    raises FlagsError naming it, with nothing written. Folders are created as needed. When writing
    itself fails (disk full), FlagsError names the file and the files already written. ``written``
    is empty when no study could be exported; the caller decides whether that is an error.
    only: export only the studies of these names (a campaign's); None: every study.
    """
    from search.storage import list_studies

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FlagsError(f"{out_dir}: is a file, not a folder for the flags files")
    by_dataset: dict[str, list[_Candidate]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    for summary in list_studies(storage):
        if only is not None and summary.study_name not in only:
            continue
        found = _candidate(storage, summary.study_name)
        if isinstance(found, str):
            _logger.info("not exporting %s: %s", summary.study_name, found)
            skipped.append((summary.study_name, found))
        else:
            by_dataset[found.name.dataset].append(found)

    planned: list[tuple[ExportedFlags, FlagsEdit]] = []
    folders: dict[Path, str] = {}
    stamp = _now()
    for dataset in sorted(by_dataset):
        ranked = sorted(by_dataset[dataset], key=lambda c: (-c.value, MODES.index(c.name.mode)))
        best = ranked[0]
        path = out_dir / dataset.replace(":", "_") / "flags.yaml"
        if path.parent in folders:
            raise FlagsError(f"{path}: datasets {folders[path.parent]} and {dataset} share this file; "
                             "export them one by one with export_study")
        folders[path.parent] = dataset
        others = "; ".join(f"{c.name} {c.value:.4f}" for c in ranked[1:])
        chosen = f"best of {dataset}: {best.name}" + (f" (over {others})" if others else "")
        comment = f"{chosen}, trial {best.trial.number}, validation MRR {best.value:.4f}, {stamp}"
        edit = edit_flags(path, best.flags, comment=comment, make_folder=True)
        planned.append((ExportedFlags(str(best.name), path, best.trial.number, best.value, best.flags), edit))

    written: list[ExportedFlags] = []
    for exported, edit in planned:
        try:
            edit.write()
        except FlagsError as exc:
            done = ", ".join(str(e.path) for e in written) or "none"
            raise FlagsError(f"{exc} (files already written: {done})") from None
        written.append(exported)
        _logger.info("exported %s trial %d to %s", exported.study, exported.trial, exported.path)
    return ExportAllResult(written=written, skipped=skipped)
