"""search.compat, the fence around Optuna's internals: each function on a real SQLite study (and a journal).

Checked against Optuna 4.5.0 and 5.0.0 (search.compat.CHECKED_OPTUNA): run this file against each Optuna
version the project allows (``pyproject.toml``: ``optuna>=4.5,<6``) when upgrading, and add the version to
CHECKED_OPTUNA once it passes. The two sides of the 4.9 renaming (``RetryFailedTrialCallback`` /
``failed_trial_callback`` before, ``RetryHeartbeatStaleTrialCallback`` / ``heartbeat_stale_trial_callback``
from 4.9) are each covered by one checked version.
"""
from __future__ import annotations

import time
import warnings

import optuna
import pytest
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState
from packaging.version import Version

from search import compat
from search.storage import LockedSQLiteStorage, open_storage

optuna.logging.set_verbosity(optuna.logging.ERROR)

X = optuna.distributions.FloatDistribution(0.0, 1.0)


def _minor(version: str) -> tuple[int, ...]:
    return Version(version).release[:2]


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    """A study on a writable SQLite file (heartbeats on), with one COMPLETE and one PRUNED trial."""
    study = optuna.create_study(storage=open_storage(tmp_path / "s.db"), study_name="s", direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5, params={"x": 0.5}, distributions={"x": X}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions={"x": X}))
    return study


def test_the_installed_optuna_is_a_checked_one():
    assert _minor(optuna.__version__) in {_minor(v) for v in compat.CHECKED_OPTUNA}, (
        f"Optuna {optuna.__version__} is not among the versions search/compat.py was checked against "
        f"({', '.join(compat.CHECKED_OPTUNA)}): run tests/test_compat.py on it and add it to CHECKED_OPTUNA")
    assert Version("4.5") <= Version(optuna.__version__) < Version("6")  # pyproject's range


def test_storage_of_and_backend_of_reach_the_storage_that_was_opened(study, tmp_path):
    opened = open_storage(tmp_path / "s.db")
    wrapped = compat.storage_of(study)
    assert isinstance(wrapped, optuna.storages.BaseStorage) and wrapped is not opened  # Optuna's cache
    assert compat.backend_of(wrapped) is opened and isinstance(opened, LockedSQLiteStorage)
    assert compat.backend_of(opened) is opened  # not wrapped: as it is
    journal = optuna.create_study(storage=open_storage(tmp_path / "j.log"), study_name="j")
    assert compat.storage_of(journal) is open_storage(tmp_path / "j.log")  # journals are not wrapped
    assert compat.backend_of(compat.storage_of(journal)) is compat.storage_of(journal)


def test_study_id_and_trial_id_are_the_storages_ids(study, tmp_path):
    storage = open_storage(tmp_path / "s.db")
    assert compat.study_id(study) == storage.get_study_id_from_name("s")
    trial = study.ask()
    frozen = study.trials[trial.number]
    assert compat.trial_id(trial) == compat.trial_id(frozen)
    assert storage.get_trial(compat.trial_id(frozen)).number == trial.number == 2
    compat.storage_of(study).set_trial_user_attr(compat.trial_id(frozen), "k", 1)
    assert study.trials[trial.number].user_attrs == {"k": 1}


def test_get_trials_is_the_trial_list_gpsampler_reads(study):
    assert compat.get_trials(study) == study.get_trials()
    pruned = compat.get_trials(study, deepcopy=False, states=(TrialState.PRUNED,))
    assert [t.number for t in pruned] == [1]
    cached = compat.get_trials(study, states=(TrialState.COMPLETE,), use_cache=True)
    assert [t.value for t in cached] == [0.5]


def test_heartbeats_of_a_writable_rdb_storage_only(study, tmp_path):
    assert compat.heartbeat_enabled(compat.storage_of(study))
    assert compat.heartbeat_enabled(open_storage(tmp_path / "s.db"))
    assert not compat.heartbeat_enabled(open_storage(tmp_path / "s.db", read_only=True))
    assert not compat.heartbeat_enabled(open_storage(tmp_path / "j.log"))

    trial = study.ask()
    assert compat.heartbeat_ages(study) == {}  # RUNNING, but no heartbeat yet
    with compat.heartbeat_thread(trial, compat.storage_of(study)):
        time.sleep(0.2)  # the first beat is written when the thread starts
    ages = compat.heartbeat_ages(study)
    assert list(ages) == [compat.trial_id(trial)] and 0.0 <= ages[compat.trial_id(trial)] < 30.0
    reader = optuna.load_study(study_name="s", storage=open_storage(tmp_path / "s.db", read_only=True))
    assert compat.heartbeat_ages(reader) == ages  # read-only: the same rows
    study.tell(trial, 0.7)
    assert compat.heartbeat_ages(study) == {}  # only RUNNING trials

    journal = optuna.create_study(storage=open_storage(tmp_path / "j.log"), study_name="j")
    beating = journal.ask()
    with compat.heartbeat_thread(beating, compat.storage_of(journal)):  # no heartbeats: does nothing
        pass
    assert compat.heartbeat_ages(journal) == {}


def test_rdb_models_name_the_heartbeat_table():
    models = compat.rdb_models()
    assert {"trial_id", "heartbeat"} <= set(models.TrialHeartbeatModel.__table__.columns.keys())
    assert {"trial_id", "study_id", "state"} <= set(models.TrialModel.__table__.columns.keys())


def test_retry_callback_and_heartbeat_options_fail_and_requeue_a_silent_trial(tmp_path):
    name = "RetryHeartbeatStaleTrialCallback" if Version(optuna.__version__) >= Version("4.9") else "RetryFailedTrialCallback"
    assert type(compat.retry_callback(2)).__name__ == name
    options = compat.heartbeat_options(1, 1, 2)
    assert (options["heartbeat_interval"], options["grace_period"]) == (1, 1)
    callback = "heartbeat_stale_trial_callback" if Version(optuna.__version__) >= Version("4.9") else "failed_trial_callback"
    assert set(options) == {"heartbeat_interval", "grace_period", callback}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("error", FutureWarning)  # the argument's name of this Optuna version: no deprecation
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'r.db'}", **options)
    study = optuna.create_study(storage=storage, study_name="r", direction="maximize")
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storage.record_heartbeat(compat.trial_id(trial))
    time.sleep(2.2)  # silent for longer than the grace period
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    first, retry = study.get_trials()
    assert first.state == TrialState.FAIL
    assert retry.state == TrialState.WAITING and retry.params == first.params  # re-queued with its setting
    assert retry.system_attrs["failed_trial"] == first.number
