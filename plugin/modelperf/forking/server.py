"""A fork server: one interpreter that imports heavy libraries once and forks processes from there.

:class:`ForkServer` starts the server (:mod:`modelperf.forking.zygote`, run as a script) and asks it
for processes: each runs a module as ``python -m MODULE ARGV`` would (``pytest`` for ``--against``'s
workers, a model server's launcher for the load tests' servers) with its own environment, working
directory, ``sys.path`` and log, in its own session. :class:`ForkedProcess` answers what
:class:`subprocess.Popen` answers (``pid``, ``poll``, ``wait``) from the exit statuses the server
reports, so a process is handled alike however it was started.

Why not :mod:`multiprocessing`'s forkserver: its children re-run the parent's preparation (its
``sys.path``, working directory and ``__main__``) and unpickle a target importable from the caller's
``modelperf``, which on an ``--against`` base side is the wrong tree.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["START_TIMEOUT_S", "ForkServer", "ForkServerError", "ForkedProcess"]

START_TIMEOUT_S = 300.0  # its imports, on a busy machine
_PACKET = 1 << 20


class ForkServerError(Exception):
    """The fork server could not start or fork; the message is one sentence."""


class ForkServer:
    """One fork server; :meth:`spawn` forks a process from it. ``name`` is how its errors call it."""

    def __init__(self, preload: Sequence[str], log_path: Path, environ: Mapping[str, str] | None = None,
                 name: str = "--against's fork server") -> None:
        self.log_path = log_path
        self.name = name
        self._exits: dict[int, int] = {}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        script = Path(__file__).with_name("zygote.py")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(script), str(theirs.fileno()), *preload], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ if environ is None else environ))
        theirs.close()
        self._channel = ours

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        self._expect("ready", timeout, "importing the libraries its workers share")

    def spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], path: Sequence[str], log_path: Path,
              fds: tuple[int, ...] = (), fds_env: str = "", module: str = "pytest", append: bool = False) -> ForkedProcess:
        """Fork a process that runs ``python -m module argv`` in ``cwd`` with ``env``, ``path`` first on
        ``sys.path``, its output in ``log_path`` (appended to when ``append``) and the descriptors ``fds``
        named in ``fds_env``."""
        request = {"op": "fork", "module": module, "argv": list(argv), "cwd": str(cwd), "env": dict(env),
                   "path": list(path), "log": str(log_path), "append": append, "fds_env": fds_env}
        try:
            if fds:
                socket.send_fds(self._channel, [json.dumps(request).encode()], list(fds))
            else:
                self._channel.send(json.dumps(request).encode())
        except OSError:
            raise ForkServerError(self._gone("taking a request")) from None
        message = self._expect("forked", START_TIMEOUT_S, f"forking {module}")
        return ForkedProcess(self, int(message["pid"]))

    def returncode(self, pid: int, timeout: float | None = 0.0) -> int | None:
        """The exit status of the server's child ``pid``, waiting up to ``timeout`` (None: as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self._exits:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._receive(left) is None:
                if self.process.poll() is not None:  # the server is gone, and with it the status: ask the system
                    return None if _alive(pid) else self._exits.setdefault(pid, 255)
                if left is not None and left <= 0:
                    return None
        return self._exits[pid]

    def close(self) -> None:
        """End the server (its end of file); the workers it forked are the caller's to end."""
        self._channel.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _expect(self, op: str, timeout: float, doing: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is not None and message.get("op") == op:
                return message
            if message is None and (self.process.poll() is not None or time.monotonic() >= deadline):
                raise ForkServerError(self._gone(doing))

    def _receive(self, timeout: float | None) -> dict[str, Any] | None:
        """One message (exit reports are recorded on the way), or None after ``timeout`` or at end of file."""
        try:
            ready, _, _ = select.select([self._channel], [], [], timeout)
            data = self._channel.recv(_PACKET) if ready else b""
        except (OSError, ValueError):
            return None
        if not data:
            if ready and self.process.poll() is None:
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            return None
        message: dict[str, Any] = json.loads(data)
        if message.get("op") == "exit":
            self._exits[int(message["pid"])] = int(message["status"])
        return message

    def _gone(self, doing: str) -> str:
        try:
            tail = " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-3:])[:400]
        except OSError:
            tail = ""
        how = "stopped answering" if self.process.poll() is None else f"ended with status {self.process.poll()}"
        return (f"{self.name} {how} while {doing}" + (f" (its last output: {tail})" if tail else "")
                + f"; full log: {self.log_path}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ForkedProcess:
    """A process forked by a :class:`ForkServer`, answering as :class:`subprocess.Popen` does."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.server.returncode(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"forked process {self.pid}", timeout or 0.0)
        return self.returncode
