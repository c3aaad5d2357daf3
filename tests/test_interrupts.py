"""Ctrl-C and SIGTERM held while a storage call runs, raised when it returns (:mod:`search.interrupts`).

The fault behind it: SIGTERM sent to a two-worker launch's process group reached the driver while its progress
display read the study; the KeyboardInterrupt raised inside SQLAlchemy's fetch left the SQLite statement
open, and the driver's own clean-up write (failing the interrupted trials) then waited on its own lock until
the test gave up (CI, ``test_interrupt.py::test_sigterm_to_the_process_group_...``; about 1 run in 7 under
load here). These tests send real signals at random moments of real reads of a real SQLite study.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
import traceback

import optuna
import pytest

from search.errors import Terminated, on_sigterm_raise
from search.interrupts import interrupts_held
from search.storage import open_storage


@pytest.fixture
def default_handlers():
    """Ctrl-C raising KeyboardInterrupt (as in a terminal) during the test, the handlers put back after."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_signal_inside_the_block_is_raised_at_its_end_and_the_handlers_are_put_back(default_handlers):
    on_sigterm_raise()
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    reached = []
    with pytest.raises(KeyboardInterrupt) as raised:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            with interrupts_held():  # nested: still held, delivered by the outermost block only
                time.sleep(0.05)
                reached.append("inner")
            time.sleep(0.05)
            reached.append("outer")
    assert reached == ["inner", "outer"] and type(raised.value) is KeyboardInterrupt
    assert {signum: signal.getsignal(signum) for signum in before} == before
    with pytest.raises(Terminated):  # SIGTERM goes to its own handler, the one in place before the block
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            reached.append("term")
    assert reached[-1] == "term"
    with interrupts_held():  # nothing arrived: nothing raised
        reached.append("quiet")
    assert reached[-1] == "quiet"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_during_reads_leaves_the_study_file_writable_for_the_clean_up(tmp_path, default_handlers,
                                                                                    signum):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    for k in range(150):  # reads long enough to be cut in their middle
        study.enqueue_trial({"x": float(k)}, user_attrs={"k": k})
    study_id = storage.get_study_id_from_name("s")
    first = storage.get_trial_id_from_study_id_trial_number(study_id, 0)
    rng = random.Random(0)
    for attempt in range(12):
        if signum == signal.SIGTERM:
            on_sigterm_raise()  # once per signal, as in a run
        sender = threading.Timer(rng.uniform(0.002, 0.05), os.kill, (os.getpid(), signum))
        try:
            sender.start()
            while True:
                storage.get_all_trials(study_id, deepcopy=False)
        except KeyboardInterrupt as interrupt:
            caught = interrupt
        sender.join()
        files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(caught.__traceback__)]
        assert not [name for name in files if "sqlalchemy" in name], files  # raised after the read, not in it
        started = time.monotonic()
        storage.set_trial_user_attr(first, "cleaned_up", attempt)  # what a clean-up writes next
        assert time.monotonic() - started < 5.0, attempt
    assert storage.get_trial(first).user_attrs["cleaned_up"] == 11
