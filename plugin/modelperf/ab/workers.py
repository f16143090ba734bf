"""Worker processes of ``--against``: one pytest session per process, told which test to run next.

A worker is ``python -m pytest`` started in one side's tree with that side's code first on the path.
It collects the same selection, says which tests it found, then runs the test named in each command
and replies with its outcome and figures (:data:`~modelperf.records.TestResult` JSON), as pyperf's
workers send their runs back. Commands and replies are JSON lines on two pipes whose descriptors
the worker finds in :data:`WORKER_ENV`; its own stdout and stderr go to a log file, whose tail
explains a worker that died.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelperf.forking.server import ForkedProcess, ForkServer

__all__ = ["PRELOAD_ENV", "READY_TIMEOUT_S", "RUN_TIMEOUT_S", "TURN_S", "WORKER_ENV", "Reply", "SideSpec", "Worker",
           "WorkerDied", "describe_exit", "read_command", "run_at_once", "send_reply"]

PRELOAD_ENV = "MODELPERF_WORKER_PRELOAD"  # "1": load the selected tests' models before saying "ready"
WORKER_ENV = "MODELPERF_WORKER_FDS"  # "<commands fd>,<replies fd>": set only in worker processes
_LOG_TAIL_LINES = 12
# How long a worker may stay silent before it is killed and reported as hung: its start (imports,
# collection, its models' loads, all workers at once) and one run of one test (its rounds, scaled).
READY_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 1800.0
# A paced run's turn: the rounds it starts within this many seconds, at least one. Long enough that
# a 10 ms call is not handed over every round (each hand-over is two pipe messages and a switch of
# process), short enough that Llama's 0.1-1 s rounds alternate one by one.
TURN_S = 0.05


class WorkerDied(Exception):
    """The worker process ended without replying; the message is one sentence with the cause."""


@dataclass(frozen=True)
class SideSpec:
    """How to start a worker of one side: its tree, its code's directories, the pytest arguments."""

    name: str  # "base" or "change"
    label: str  # what the reports call it: "main (1a2b3c4d5e)", "working tree"
    root: Path
    source_roots: tuple[str, ...]  # absolute paths of the side's code directories (put first on PYTHONPATH)
    pytest_args: tuple[str, ...]
    log_dir: Path


@dataclass(frozen=True)
class Reply:
    """What a worker sent back for one test."""

    test_id: str
    outcome: str  # passed, failed, skipped; "missing" (not collected there) or "died" (the process ended)
    longrepr: str = ""
    results: tuple[dict[str, Any], ...] = ()
    models: Mapping[str, Any] = field(default_factory=dict)
    lines: tuple[tuple[str, str], ...] = ()
    duration: float = 0.0


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"died with {name} (signal {-returncode})"
    return f"exited with status {returncode}"


class Worker:
    """One worker process of one side."""

    def __init__(self, spec: SideSpec, index: int, environ: Mapping[str, str] | None = None, *,
                 preload: bool = False, server: ForkServer | None = None) -> None:
        """Start the worker: forked from ``server`` when one is given, else a fresh ``python -m pytest``."""
        self.spec, self.index = spec, index
        self.log_path = spec.log_dir / f"{spec.name}-{index}.log"
        self.tests: tuple[str, ...] = ()
        self.errors: tuple[str, ...] = ()
        self._running = ""  # the test of the run under way
        self._quit_sent = False
        commands_read, commands_write = os.pipe()
        replies_read, replies_write = os.pipe()
        env = dict(os.environ if environ is None else environ)
        env[WORKER_ENV] = f"{commands_read},{replies_write}"
        if preload:
            env[PRELOAD_ENV] = "1"
        paths = [str(spec.root / root) for root in spec.source_roots]
        env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
        env.pop("GITHUB_STEP_SUMMARY", None)  # only the controller writes the job's summary
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | ForkedProcess
        try:
            if server is not None:
                del env[WORKER_ENV]  # the fork server names the descriptors as the child has them
                self.process = server.spawn(spec.pytest_args, spec.root, env, paths, self.log_path,
                                            (commands_read, replies_write), WORKER_ENV)
            else:
                with open(self.log_path, "wb") as log:
                    self.process = subprocess.Popen(
                        [sys.executable, "-m", "pytest", *spec.pytest_args], cwd=spec.root, env=env,
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        pass_fds=(commands_read, replies_write), start_new_session=True)
        except BaseException:
            os.close(commands_write)
            os.close(replies_read)
            raise
        finally:
            os.close(commands_read)
            os.close(replies_write)
        self._commands: IO[str] = os.fdopen(commands_write, "w", encoding="utf-8")
        self._replies: IO[str] = os.fdopen(replies_read, "r", encoding="utf-8")

    @property
    def name(self) -> str:
        return f"{self.spec.name} worker {self.index}"

    def wait_ready(self) -> None:
        """Wait for the worker's collection; fills :attr:`tests` and :attr:`errors`."""
        message = self._receive("collecting the tests and loading their models", READY_TIMEOUT_S)
        self.tests = tuple(message.get("tests", ()))
        self.errors = tuple(message.get("errors", ()))

    def run(self, test_id: str, scale: float) -> Reply:
        """Run one test with ``scale`` times its usual rounds; raises WorkerDied when the process ends."""
        self.begin(test_id, scale, paced=False)
        reply = self.wait_turn()
        assert reply is not None  # an unpaced run never hands its turn over
        return reply

    def begin(self, test_id: str, scale: float, paced: bool, seconds_per_call: float | None = None) -> None:
        """Start a run; a ``paced`` one runs until its turn is over (see :meth:`wait_turn`).

        ``seconds_per_call``: the test's time per call from an earlier run, if one has told it.
        """
        self._running = test_id
        self._send({"op": "run", "test": test_id, "scale": scale, "paced": paced, "seconds_per_call": seconds_per_call})

    def wait_turn(self) -> Reply | None:
        """Wait until the run hands its turn over (None: it waits for :meth:`proceed`) or ends (its Reply)."""
        test_id = self._running
        message = self._receive(f"running {test_id}", RUN_TIMEOUT_S)
        if message.get("op") == "turn":
            return None
        return Reply(test_id, str(message["outcome"]), str(message.get("longrepr", "")),
                     tuple(message.get("results", ())), dict(message.get("models", {})),
                     tuple((str(s), str(t)) for s, t in message.get("lines", ())), float(message.get("duration", 0.0)))

    def proceed(self) -> None:
        """Give a paced run its next turn."""
        self._send({"op": "go"})

    def quit(self) -> None:
        """Ask the worker to end, without waiting: many workers then end at once (see :meth:`close`)."""
        if self.process.poll() is None and not self._quit_sent:
            self._quit_sent = True
            try:
                self._send({"op": "quit"})
            except WorkerDied:
                self.kill()

    def close(self, timeout: float = 30.0) -> None:
        """Ask the worker to end (unless :meth:`quit` did); kill it when it does not within ``timeout`` seconds."""
        self.quit()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        for pipe in (self._commands, self._replies):
            try:
                pipe.close()
            except OSError:
                pass

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._commands.write(json.dumps(message) + "\n")
            self._commands.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise WorkerDied(self._death("taking a command")) from None

    def _receive(self, doing: str, timeout: float) -> dict[str, Any]:
        # One request, one reply line: nothing is left buffered between replies, so waiting on the
        # descriptor is waiting for the next line.
        ready, _, _ = select.select([self._replies], [], [], timeout)
        if not ready:
            self.kill()
            raise WorkerDied(self._death(doing, silent_s=timeout))
        line = self._replies.readline()
        if not line:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            raise WorkerDied(self._death(doing))
        message: dict[str, Any] = json.loads(line)
        return message

    def _death(self, doing: str, silent_s: float | None = None) -> str:
        tail = self.log_tail()
        how = (f"was killed after {silent_s:.0f} s without an answer" if silent_s is not None
               else describe_exit(self.process.poll()))
        return (f"the {self.spec.name} side's worker process {self.index} ({self.spec.label}) {how} while {doing}"
                + (f"; its last output: {tail}" if tail else "") + f"; full log: {self.log_path}")

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        interesting = [line.strip() for line in lines if line.strip()][-_LOG_TAIL_LINES:]
        errors = [line for line in interesting if "Error" in line or line.startswith("E ")]
        return " | ".join((errors or interesting)[-3:])[:600]


def run_at_once(test_id: str, workers: Mapping[str, Worker | Reply]) -> dict[str, Reply]:
    """Start ``test_id`` on every side's worker, then collect the replies: the runs overlap in time.

    A Reply among ``workers`` (a worker that could not start) is kept as that side's reply; a worker
    that dies gives a "died" Reply saying why. For untimed figures only: the runs share the machine.
    """
    replies: dict[str, Reply] = {side: w for side, w in workers.items() if isinstance(w, Reply)}
    running: dict[str, Worker] = {}
    for side, worker in workers.items():
        if isinstance(worker, Worker):
            try:
                worker.begin(test_id, 1.0, paced=False)
                running[side] = worker
            except WorkerDied as exc:
                replies[side] = Reply(test_id, "died", str(exc))
    for side, worker in running.items():
        try:
            reply = worker.wait_turn()
            assert reply is not None  # an unpaced run never hands its turn over
            replies[side] = reply
        except WorkerDied as exc:
            replies[side] = Reply(test_id, "died", str(exc))
    return {side: replies[side] for side in workers}


def _worker_fds() -> tuple[int, int]:
    commands, replies = os.environ[WORKER_ENV].split(",")
    return int(commands), int(replies)


_streams: dict[str, IO[str]] = {}


def read_command() -> dict[str, Any] | None:
    """In a worker: the controller's next command, or None when the controller has gone."""
    if "in" not in _streams:
        _streams["in"] = os.fdopen(_worker_fds()[0], "r", encoding="utf-8")
    line = _streams["in"].readline()
    if not line:
        return None
    command: dict[str, Any] = json.loads(line)
    return command


def send_reply(message: Mapping[str, Any] | Sequence[Any]) -> None:
    """In a worker: one JSON line to the controller."""
    if "out" not in _streams:
        _streams["out"] = os.fdopen(_worker_fds()[1], "w", encoding="utf-8")
    _streams["out"].write(json.dumps(message) + "\n")
    _streams["out"].flush()
