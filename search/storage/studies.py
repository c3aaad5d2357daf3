"""Studies in an opened storage: list them, find one under any spelling of its dataset, load or create it.

A study is named ``<dataset>/<mode>`` with the dataset's canonical spelling (:mod:`search.study.names`);
studies made by older versions under another spelling are found too. Creating one is safe when several
processes do it at once on a fresh storage.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning

from search.errors import StudyError
from search.storage.locks import file_lock, lock_path_of
from search.study.names import StudyName

__all__ = ["list_studies", "find_study", "load_study", "create_or_load_study"]

_logger = logging.getLogger(__name__)


def list_studies(storage: optuna.storages.BaseStorage) -> list[optuna.study.StudySummary]:
    """Summaries (with best trial) of every study in ``storage``, sorted by name."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    return sorted(summaries, key=lambda s: s.study_name)


def find_study(storage: optuna.storages.BaseStorage, name: StudyName | str) -> str | None:
    """The stored name of the study ``name`` in ``storage``, whatever spelling of its dataset is used.

    The exact name wins; then the canonical name (``Metafam:Metafam/fixed`` for ``metafam/fixed``);
    then a study stored under another spelling of the same dataset (made by an older version).
    Returns None when there is none; StudyError when several spellings of one study exist.
    """
    name = StudyName.parse(name) if isinstance(name, str) else name
    stored = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if str(name) in stored:
        return str(name)
    canonical = name.canonical()
    if str(canonical) in stored:
        return str(canonical)
    matches = []
    for other in stored:
        try:
            if StudyName.parse(other).canonical() == canonical:
                matches.append(other)
        except Exception:  # foreign studies: not named <dataset>/<mode> or an unknown dataset
            continue
    if len(matches) > 1:
        raise StudyError(f"several studies are {canonical}: {', '.join(matches)}; name one exactly")
    return matches[0] if matches else None


def load_study(storage: optuna.storages.BaseStorage, name: StudyName | str, *, where: str,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Load the study ``name`` (any spelling of its dataset); StudyError naming ``where`` when absent."""
    found = find_study(storage, name)
    if found is None:
        known = ", ".join(s.study_name for s in list_studies(storage)) or "none"
        raise StudyError(f"no study {name} in {where} (studies there: {known})")
    return optuna.load_study(study_name=found, storage=storage, sampler=sampler, pruner=pruner)


def create_or_load_study(storage: optuna.storages.BaseStorage, name: StudyName, *,
                         sampler: optuna.samplers.BaseSampler | None = None,
                         pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, bool]:
    """Load the study ``name`` (any spelling) or create it under its canonical name (maximize).

    Returns ``(study, created_now)``. Safe when several processes call it at once on a fresh store:
    creation of an SQLite study runs under ``<db>.lock``, and a duplicate-name race is answered by
    loading the study the other process created.
    """
    found = find_study(storage, name)
    if found is not None:
        study = optuna.load_study(study_name=found, storage=storage, sampler=sampler, pruner=pruner)
        if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
            raise StudyError(f"study {found} exists but does not maximize a single value")
        return study, False
    canonical = name.canonical()
    lock = lock_path_of(storage)
    with file_lock(lock) if lock is not None else contextlib.nullcontext():
        try:
            study = optuna.create_study(storage=storage, study_name=str(canonical), direction="maximize",
                                        sampler=sampler, pruner=pruner)
        except DuplicatedStudyError:
            return optuna.load_study(study_name=str(canonical), storage=storage, sampler=sampler, pruner=pruner), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # set_metric_names: optuna-dashboard's axis title
        study.set_metric_names(["validation MRR"])
    _logger.info("created study %s", canonical)
    return study, True
