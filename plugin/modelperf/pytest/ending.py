"""How a session ends when something goes wrong late: a write that failed, or a Ctrl-C after the tests.

A failure is never reported as success. A baseline save or an output file that could not be written
after the tests ran fails the session (exit status 1, :data:`WRITE_FAILED`) and the per-test lines
that promised a save say it did not happen. A Ctrl-C at any phase ends with one sentence naming the
phase and exit status 2, as one during the tests does: :class:`EndGuard` turns an interrupt while
the summary prints and the files are written into that sentence, and one while pytest shuts down
(too late to stop anything) into the same status, instead of a traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

__all__ = ["END_GUARD_NAME", "WRITE_FAILED", "EndGuard"]

END_GUARD_NAME = "modelperf-end-guard"
# The status of a session whose tests may all have passed but whose files were not written: 1, as for a
# failed test, so every CI system fails the step; the "modelperf: files" section names what failed.
WRITE_FAILED = pytest.ExitCode.TESTS_FAILED


class EndGuard:
    """Turns a Ctrl-C at any phase of the session into one sentence and exit status 2.

    pytest itself catches an interrupt during start-up, collection and the tests. From the end of
    the test loop on, this guard's SIGINT handler raises only while the summary prints and the
    files are written (caught here, outermost, as one sentence); later, while pytest unconfigures
    and cleans up, it only notes the interrupt, which sets the exit status once pytest is done.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.session: pytest.Session | None = None
        self.phase = "while the session started"
        self.interrupted: str | None = None  # the phase an interrupt stopped
        self._armed = False
        self._previous: Any = None
        # Added first, so it runs last: after every other plugin's clean-up, when nothing is left to stop.
        config.add_cleanup(self._restore)

    # ------------------------------------------------------------------ phases
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        self.phase = "while collecting the tests"

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self) -> None:
        self.phase = "while probing the models in child processes, before any test ran"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        self.phase = "during the tests"
        try:
            result = yield
        except KeyboardInterrupt:
            self.interrupted = self.interrupted or self.phase
            raise
        self.phase = "after the last test, before the summary"
        self._install()
        return result

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = self.interrupted or self.phase

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, Any]:
        self.session = session
        if session.exitstatus == pytest.ExitCode.INTERRUPTED and self.interrupted is None:
            self.interrupted = self.phase  # an interrupt pytest caught without calling pytest_keyboard_interrupt
        self.phase = "while writing the summary and the session's files"
        self._install()
        self._armed = True
        try:
            return (yield)
        except KeyboardInterrupt:
            self.interrupted = self.interrupted or self.phase
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            return None
        finally:
            self._armed = False
            self.phase = "while pytest shut down, after the summary and the session's files"

    # ------------------------------------------------------------------ the signal
    def _install(self) -> None:
        if self._previous is None and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = self.interrupted or self.phase
        if self._armed:
            self._armed = False  # a second Ctrl-C must not break the handling of the first
            raise KeyboardInterrupt

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.interrupted is None:
            return
        if self.session is not None:
            self.session.exitstatus = pytest.ExitCode.INTERRUPTED
        sys.stdout.flush()
        sys.stderr.write(f"modelperf: interrupted (Ctrl-C) {self.interrupted}; each file this session writes "
                         "was written whole or left as it was, and the session ends with exit status 2.\n")
        sys.stderr.flush()
