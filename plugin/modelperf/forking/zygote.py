"""A fork server: one interpreter that imports the heavy libraries once and forks processes from there.

Run as a script by path (``python .../zygote.py FD MODULE...``), never imported: it must not load
``modelperf`` itself, because each ``--against`` side's workers import *their own* tree's copy after
the fork (and a model server's launcher its caller's).
It imports only the standard library and the MODULEs named (third-party libraries both sides share,
such as torch, transformers, llama_cpp), before any thread of theirs does work: a fork after an
OpenMP region or a llama.cpp thread pool had started would copy locks held by threads that do not
exist in the child.

Protocol on the Unix socket FD (SOCK_SEQPACKET, one JSON message per packet), see
:class:`modelperf.forking.server.ForkServer`: it answers ``{"op": "ready"}`` once the imports are done;
each ``{"op": "fork", ...}`` carries the process's descriptors (a worker's two pipe ends) as ancillary data and is
answered ``{"op": "forked", "pid": N}``; whenever a child ends, ``{"op": "exit", "pid": N, "status":
S}`` (S as :attr:`subprocess.Popen.returncode`: negative for a signal). End of file on FD ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any

__all__ = ["main"]

_PACKET = 1 << 20  # a request holds an environment: a few kilobytes, far below this


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    try:
        channel.send(json.dumps(message).encode())
    except OSError:
        pass  # the controller has gone; the loop sees end of file next


def _reap(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(channel, {"op": "exit", "pid": pid, "status": os.waitstatus_to_exitcode(status)})


def _child(request: dict[str, Any], fds: list[int], channel: socket.socket, wakeup: tuple[int, int],
           started: int) -> None:
    """In the forked child: become the process ``request`` describes, then run its module; never returns."""
    code = 1
    try:
        channel.close()
        for fd in wakeup:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own session and group, as a worker started by Popen(start_new_session=True)
        os.write(started, b"s")
        os.close(started)
        mode = os.O_APPEND if request.get("append") else os.O_TRUNC
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | mode, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        for fd in fds:
            os.set_inheritable(fd, True)  # as Popen's pass_fds leaves them in a worker it starts
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("fds_env"):
            os.environ[request["fds_env"]] = ",".join(str(fd) for fd in fds)
        # What `python -m MODULE` with PYTHONPATH would have put first: the working directory, then the code's path.
        sys.path[0:0] = [request["cwd"], *request["path"]]
        import importlib
        import runpy

        importlib.invalidate_caches()
        module = request.get("module", "pytest")
        sys.argv = [module, *request["argv"]]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was, the log says it; the controller reads the exit status
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed or broken log loses only its tail
                stream.flush()
        os._exit(code)


def _fork(request: dict[str, Any], fds: list[int], channel: socket.socket, wakeup: tuple[int, int]) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered here may be written twice
    ready, started = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready)
        _child(request, fds, channel, wakeup, started)
    os.close(started)
    for fd in fds:
        os.close(fd)
    # Answer once the child has its own process group, so that the controller can always kill it by group.
    os.read(ready, 1)
    os.close(ready)
    _send(channel, {"op": "forked", "pid": pid})


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[0]))
    for name in argv[1:]:
        try:
            __import__(name)
        except Exception as exc:  # noqa: BLE001 - the worker imports it again and reports the failure there
            print(f"fork server: {name} not preloaded: {exc!r}", flush=True)
    wakeup = os.pipe()
    os.set_blocking(wakeup[1], False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake the select below
    _send(channel, {"op": "ready"})
    while True:
        readable, _, _ = select.select([channel.fileno(), wakeup[0]], [], [])
        if wakeup[0] in readable:
            os.read(wakeup[0], 512)
        _reap(channel)
        if channel.fileno() not in readable:
            continue
        try:
            data, fds, _flags, _address = socket.recv_fds(channel, _PACKET, 2)
        except OSError:
            data, fds = b"", []
        if not data:
            return 0  # the controller closed the channel: its workers are its own to stop
        request = json.loads(data)
        if request.get("op") == "fork":
            _fork(request, list(fds), channel, wakeup)


if __name__ == "__main__":
    del sys.path[0]  # this script's folder (modelperf/forking) must not shadow a library (server.py)
    sys.exit(main(sys.argv[1:]))
