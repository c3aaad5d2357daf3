"""Ctrl-C and SIGTERM held off while a storage call or a lock is in progress, and delivered right after.

Python raises KeyboardInterrupt (and :class:`search.errors.Terminated`, see
:func:`search.errors.on_sigterm_raise`) at whatever bytecode the main thread runs when the signal arrives.
Raised in the middle of a database read, it leaves the SQLite statement open: the connection keeps its
SHARED lock, and every later write of the same process -- the clean-up that fails the interrupted trial and
queues it again -- waits out the busy timeout and fails ("database is locked"). A driver stopped by SIGTERM
during its progress refresh hung so for minutes; a file lock taken but not yet recorded stays taken.
:func:`interrupts_held` closes that window: a storage method, a file lock and the driver's clean-up run
whole, and the interrupt is raised as soon as they return, by the handler that was in place.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["interrupts_held"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_depth = 0
_pending: list[int] = []


def _hold(signum: int, frame: object) -> None:
    if signum not in _pending:
        _pending.append(signum)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held: one that arrives inside is delivered when the outermost
    held block exits, to the handler that was in place before (KeyboardInterrupt, Terminated...), so it is
    raised at the block's end and not in its middle; the block's own exception, if any, becomes its context.

    Only signals whose handler is Python code are held (a default SIGTERM still ends the process at once:
    no clean-up runs then, so none can be cut short). Outside the main thread, where Python runs no signal
    handler, and inside an outer held block it does nothing but run the block. A block that waits in C
    (a busy database) answers the interrupt when the wait ends, as it would anyway.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    held = [(signum, handler) for signum, handler in previous.items() if callable(handler)]
    try:
        _depth = 1
        for signum, _ in held:
            signal.signal(signum, _hold)
        yield
    finally:
        _depth = 0
        try:
            _restore(held)
        finally:  # what arrived until the handlers were back (one arriving later goes to them directly)
            pending = [signum for signum in _pending if signum in previous]
            _pending.clear()
            if pending:
                previous[pending[0]](pending[0], None)  # raises: KeyboardInterrupt, Terminated


def _restore(handlers: list[tuple[int, Any]]) -> None:
    """Put each ``(signum, handler)`` back, every one even when a signal arriving meanwhile raises."""
    if handlers:
        try:
            signal.signal(*handlers[0])
        finally:
            _restore(handlers[1:])

