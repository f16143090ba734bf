"""Starting child processes so that a Ctrl-C can never leave one behind.

A SIGINT that lands inside ``subprocess.Popen`` after the fork, or between its return and the line
that keeps the new object, leaves a child that nobody knows to stop (workers and probe children
run in sessions of their own, so the terminal's Ctrl-C does not reach them). Inside
:func:`interrupt_deferred` the interrupt waits until the block is done, then is raised as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupt_deferred"]


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold back SIGINT for the duration of the block (short: starting processes and keeping them)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it receives the signal
        return
    caught: list[FrameType | None] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])  # the handler that was in place decides (by default: raise)
