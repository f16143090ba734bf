"""A server in its own process: free port, log file, health check, and a stop that leaves nothing.

Each server runs in a new session (its own process group), so a Ctrl-C typed at the terminal
reaches only the caller, whose ``finally`` blocks and ``atexit`` hook then stop the whole group:
SIGTERM, a grace period, then SIGKILL. A caller killed outright cannot run either; for that, the
launchers in this package exit by themselves once their parent process is gone (see
:func:`exit_with_parent`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from modelperf.forking.server import ForkedProcess, ForkServer, ForkServerError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExternalServer", "PythonModule", "ServerFailed", "ServerProcess", "exit_with_parent", "free_port",
           "python_module", "wait_healthy"]

HOST = "127.0.0.1"
PARENT_ENV = "MODELPERF_SERVE_PARENT"  # the launcher's parent pid; it exits when that process is gone
_POLL_S = 0.2  # health-check and parent-watch period: short against a model's load time of seconds
_STOP_GRACE_S = 5.0  # uvicorn finishes in-flight requests on SIGTERM; a request hung longer is killed
_LOG_TAIL_BYTES = 4096


class ServerFailed(Exception):
    """A server crashed, or never answered its health check; the message names the model and the log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def exit_with_parent(poll_s: float = _POLL_S) -> None:
    """In a launcher: exit at once when the process named by $MODELPERF_SERVE_PARENT is gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while True:
            if os.getppid() != int(parent):  # re-parented: the caller died without stopping us
                if os.getpgrp() == os.getpid():  # our own group (started by ServerProcess): take it all down
                    os.killpg(os.getpid(), signal.SIGKILL)
                os._exit(1)
            time.sleep(poll_s)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _last_line(log: Path) -> str:
    """The log's last non-blank line, the usual place of a crash's reason."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def wait_healthy(url: str, timeout_s: float, *, alive: ServerProcess | None = None) -> None:
    """Poll ``url`` until it answers 200; raise TimeoutError after ``timeout_s`` (or ServerFailed as soon
    as ``alive``'s process exits)."""
    import httpx  # here, so that a caller without the serve extra gets ServingUnavailable, not an ImportError

    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=min(2.0, timeout_s), trust_env=False) as client:
        while True:
            if alive is not None:
                alive.raise_if_exited("before it became healthy")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == httpx.codes.OK:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(url)
            time.sleep(_POLL_S)


@dataclass(frozen=True)
class ExternalServer:
    """A server started by someone else: only its base URL is known, and stopping it is theirs to do."""

    base_url: str
    health_path: str = "/v1/models"
    label: str = "the server"

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        try:
            wait_healthy(self.base_url.rstrip("/") + self.health_path, timeout_s)
        except TimeoutError:
            raise ServerFailed(f"{self.label} at {self.base_url} did not answer {self.health_path} within "
                               f"{timeout_s:g} s: check that it runs and that the URL is right.") from None

    def stop(self) -> None:
        """Nothing to stop: the server belongs to whoever started it."""


@dataclass(frozen=True)
class PythonModule:
    """``python -m module args``: a server command that a fork server can also run (see ServerProcess)."""

    module: str
    args: tuple[str, ...]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args]


class ServerProcess:
    """One server process: ``with ServerProcess(...) as server:`` starts it and waits until it is healthy.

    A :class:`PythonModule` command with a fork server (``forks``) is forked from it: the server's
    libraries are imported once for all the servers a session starts (an ``--against`` load test starts
    one per phase). Anything else, or a fork server that fails, starts a fresh interpreter.
    """

    def __init__(self, label: str, command: Sequence[str] | PythonModule, log_path: Path, *, port: int,
                 health_path: str, startup_timeout_s: float = 120.0, env: Mapping[str, str] | None = None,
                 forks: ForkServer | None = None) -> None:
        self.label = label  # names the model in every error, e.g. "the llama server (SmolLM2 ...)"
        self.command = command
        self.argv = tuple(command.argv() if isinstance(command, PythonModule) else command)
        self.forks = forks
        self.log_path = log_path
        self.port = port
        self.health_path = health_path
        self.startup_timeout_s = startup_timeout_s
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | ForkedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the process and return once its health check answers; ServerFailed otherwise."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self._env, PARENT_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        self._process = self._forked(env)
        if self._process is None:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                                 stderr=subprocess.STDOUT, env=env, start_new_session=True)
        atexit.register(self.stop)
        try:
            wait_healthy(self.base_url + self.health_path, self.startup_timeout_s, alive=self)
        except TimeoutError:
            self.stop()
            raise ServerFailed(f"{self.label} did not become healthy within {self.startup_timeout_s:g} s "
                               f"({self.health_path} on port {self.port}): see its log {self.log_path}.") from None
        except BaseException:
            self.stop()
            raise

    def _forked(self, env: dict[str, str]) -> ForkedProcess | None:
        """The server forked from :attr:`forks` (None: there is none, or it failed and is dropped)."""
        if self.forks is None or not isinstance(self.command, PythonModule):
            return None
        # Its parent is the fork server: it exits when that one is gone (the fork server ends with its caller).
        env = {**env, PARENT_ENV: str(self.forks.process.pid)}
        path = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
        try:
            return self.forks.spawn(self.command.args, Path.cwd(), env, path, self.log_path,
                                    module=self.command.module, append=True)
        except ForkServerError:
            self.forks = None
            return None

    def raise_if_exited(self, when: str = "while serving") -> None:
        """ServerFailed, naming the model and the log, if the process has exited."""
        if self._process is None:
            return
        code = self._process.poll()
        if code is not None:
            self.stop()  # the group may hold children of the process that exited
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            last = _last_line(self.log_path)
            said = f" (its last log line: {last})" if last else ""
            raise ServerFailed(f"{self.label} {how} {when}{said}: see its log {self.log_path}.")

    def stop(self) -> None:
        """Stop the whole process group (SIGTERM, then SIGKILL after a grace period); safe to call twice."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # also any child the server started, even if it exited
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_GRACE_S)
        self._forget()

    def _forget(self) -> None:
        atexit.unregister(self.stop)
        self._process = None

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def python_module(module: str, *args: str) -> PythonModule:
    """The command running ``module`` with this interpreter."""
    return PythonModule(module, args)
