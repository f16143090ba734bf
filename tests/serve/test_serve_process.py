"""Server processes: health check first, one sentence naming the model and log on failure, nothing left behind.

The server here is ``fake_server.py`` (a plain HTTP server that starts a child of its own), so
these tests show process supervision without a model; test_serve_real.py does it with both models.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

SERVE_EXTRA = "the serving tests need the serve extra: pip install 'pytest-modelperf[serve]'"
pytest.importorskip("httpx", reason=SERVE_EXTRA)

from modelperf.forking.server import ForkServer
from modelperf.serve.process import PythonModule, ServerFailed, ServerProcess, free_port

FAKE = Path(__file__).with_name("fake_server.py")
REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 15.0  # how long a stopped or orphaned group may take to go: a bound, not a measurement


@pytest.fixture(scope="module", params=["fresh", "forked"])
def forks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer | None]:
    """Each test twice: its server a fresh interpreter, then forked from a fork server (as the load tests' are)."""
    if request.param == "fresh":
        yield None
        return
    server = ForkServer(["http.server"], tmp_path_factory.mktemp("forks") / "fork-server.log", name="the fork server")
    server.wait_ready()
    yield server
    server.close()


def fake(tmp_path: Path, mode: str, *, startup_timeout_s: float = 20.0, forks: ForkServer | None = None) -> ServerProcess:
    port = free_port()
    command: list[str] | PythonModule = [sys.executable, str(FAKE), str(port), mode]
    if forks is not None:
        command = PythonModule("tests.serve.fake_server", (str(port), mode))
    return ServerProcess("the fake model server", command, tmp_path / "logs" / "fake.log", port=port,
                         health_path="/health", startup_timeout_s=startup_timeout_s, env={"PYTHONPATH": str(REPO)},
                         forks=forks)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(*pids: int) -> list[int]:
    """The pids still alive after GONE_WITHIN_S."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


def child_of(log: Path) -> int:
    deadline = time.monotonic() + GONE_WITHIN_S
    while not (match := re.search(r"child (\d+)", log.read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert match, f"the fake server did not report its child in {log}"
    return int(match[1])


def test_a_started_server_is_healthy_and_stopping_it_ends_its_whole_process_group(
        tmp_path: Path, forks: ForkServer | None) -> None:
    server = fake(tmp_path, "healthy", forks=forks)
    with server:
        pid = server.pid
        assert pid is not None and alive(pid) and server.base_url.startswith("http://127.0.0.1:")
        parent = psutil.Process(pid).ppid()
        assert parent == (os.getpid() if forks is None else forks.process.pid)
        child = child_of(server.log_path)
        assert alive(child)
    assert server.pid is None and wait_gone(pid, child) == []


def test_a_forked_server_exits_by_itself_when_its_fork_server_is_killed(tmp_path: Path) -> None:
    forks = ForkServer(["http.server"], tmp_path / "fork-server.log")
    forks.wait_ready()
    server = fake(tmp_path, "healthy", forks=forks)
    with server:
        pid = server.pid
        assert pid is not None
        child = child_of(server.log_path)
        forks.process.kill()  # as when the session that started both dies outright
        assert wait_gone(pid, child) == []
    forks.close()


def test_a_fork_server_that_is_gone_leaves_the_server_to_start_as_a_fresh_interpreter(tmp_path: Path) -> None:
    forks = ForkServer(["http.server"], tmp_path / "fork-server.log")
    forks.wait_ready()
    forks.close()
    with fake(tmp_path, "healthy", forks=forks) as server:
        assert server.forks is None and server.pid is not None
        assert psutil.Process(server.pid).ppid() == os.getpid()


def test_a_server_that_crashes_at_start_is_one_sentence_naming_the_model_and_the_log(
        tmp_path: Path, forks: ForkServer | None) -> None:
    server = fake(tmp_path, "crash", forks=forks)
    with pytest.raises(ServerFailed) as failure:
        server.start()
    message = str(failure.value)
    assert message == ("the fake model server exited with status 3 before it became healthy (its last log line: "
                       f"fatal: the weights are corrupt): see its log {server.log_path}.")
    assert server.pid is None


def test_a_server_that_never_becomes_healthy_is_stopped_and_reported(tmp_path: Path, forks: ForkServer | None) -> None:
    server = fake(tmp_path, "unhealthy", startup_timeout_s=1.0, forks=forks)
    with pytest.raises(ServerFailed, match=r"^the fake model server did not become healthy within 1 s \(/health on "
                                           rf"port {server.port}\): see its log .*fake\.log\.$"):
        server.start()
    assert wait_gone(child_of(server.log_path)) == []


def test_a_server_that_dies_while_serving_is_reported_with_the_signal(tmp_path: Path, forks: ForkServer | None) -> None:
    with fake(tmp_path, "healthy", forks=forks) as server:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + GONE_WITHIN_S
        with pytest.raises(ServerFailed, match="was killed by signal 9 while serving"):
            while time.monotonic() < deadline:
                server.raise_if_exited()
                time.sleep(0.05)


SESSION = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from modelperf.serve.process import ServerProcess
    port, fake, log = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    with ServerProcess("the fake model server", [sys.executable, fake, str(port), "healthy"], log, port=port,
                       health_path="/health") as server:
        print("ready", server.pid, flush=True)
        time.sleep(120)
""")


def start_session(tmp_path: Path) -> tuple[subprocess.Popen[str], int, Path]:
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    log = tmp_path / "session-server.log"
    session = subprocess.Popen([sys.executable, str(script), str(free_port()), str(FAKE), str(log)],
                               stdout=subprocess.PIPE, stderr=(tmp_path / "session.err").open("w"), text=True)
    assert session.stdout is not None
    line = session.stdout.readline()
    assert line.startswith("ready"), f"the session did not start its server: {line!r}"
    return session, int(line.split()[1]), log


def test_ctrl_c_in_a_session_leaves_no_server_process(tmp_path: Path) -> None:
    session, server, log = start_session(tmp_path)
    child = child_of(log)
    session.send_signal(signal.SIGINT)
    code = session.wait(timeout=GONE_WITHIN_S)
    said = (tmp_path / "session.err").read_text()
    assert code != 0 and "KeyboardInterrupt" in said, said  # ended by the Ctrl-C, through the with block
    assert wait_gone(server, child) == [], (said, log.read_text())


def test_a_session_killed_outright_still_leaves_no_server_process(tmp_path: Path) -> None:
    session, server, log = start_session(tmp_path)
    child = child_of(log)
    session.kill()  # no finally, no atexit: the server notices its parent is gone
    session.wait(timeout=GONE_WITHIN_S)
    assert wait_gone(server, child) == []


def test_a_missing_package_is_named_with_the_install_command_before_anything_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelperf.serve import servers

    monkeypatch.setattr(servers, "LLAMA_SERVER_MODULES", ("json", "no_such_package_for_serving"))
    with pytest.raises(servers.ServingUnavailable, match=r"^llama-cpp-python's server needs the Python package\(s\) "
                                                          r"no_such_package_for_serving, which are not installed: run "
                                                          r"`pip install 'pytest-modelperf\[serve\]'`\.$"):
        servers.llama_server(servers.LlamaServerConfig(None, threads=1), tmp_path)
    assert not list(tmp_path.iterdir())  # no log: nothing started


def test_a_model_path_that_is_not_a_gguf_is_refused_before_anything_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelperf.models.base import ModelUnavailable
    from modelperf.serve import servers

    monkeypatch.setattr(servers, "LLAMA_SERVER_MODULES", ())
    with pytest.raises(ModelUnavailable, match="does not exist: give the path of a .gguf file"):
        servers.llama_server(servers.LlamaServerConfig(tmp_path / "missing.gguf", threads=1), tmp_path / "logs")
    assert not (tmp_path / "logs").exists()
