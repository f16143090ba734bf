"""Ctrl-C at each phase of a real session, and of an ``--against`` session: one sentence, exit status 2,
whole files, no process left behind and no temporary folder left over.

Each inner session runs in its own process (SIGINT goes to it alone) with its own temporary
directory. The inner code writes a marker file when it reaches the phase and then waits; the test
sends SIGINT only once the marker exists, so the interrupt lands in that phase on any machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, RUN, STAND_IN, _write_dataset

SENTENCE = "modelperf: interrupted (Ctrl-C) {phase}; each file this session writes was written whole or left as "
TEST = STAND_IN + """
    @pytest.mark.accuracy
    def test_1(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
        if os.environ.get("MODELPERF_TEST_PHASE") == "test":
            _wait_here()
"""
# Shared by the inner conftest and test: write the marker, then wait for the interrupt (or the release
# file, where the interrupt is only noted and the code must go on).
WAIT = """
    import os
    import pathlib
    import time

    def _wait_here():
        pathlib.Path(os.environ["MODELPERF_TEST_MARKER"]).write_text("here")
        release = pathlib.Path(os.environ["MODELPERF_TEST_MARKER"] + ".release")
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""
CONFTEST = WAIT + """
    import modelperf.store.atomic as atomic
    import modelperf.store.hardware as hardware

    PHASE = os.environ.get("MODELPERF_TEST_PHASE")
    _machine_info, _open_new = hardware.machine_info, atomic.open_new

    def _slow_machine_info(*args, **kwargs):
        _wait_here()  # the session start reads the machine's description
        return _machine_info(*args, **kwargs)

    def _slow_open(path):
        if ".test_acc.json." in path.name:
            _wait_here()  # the records file is being replaced
        return _open_new(path)

    def pytest_configure(config):
        if PHASE == "start-up":
            hardware.machine_info = _slow_machine_info
        if PHASE == "save":
            atomic.open_new = _slow_open

    def pytest_terminal_summary():
        if PHASE == "summary":
            _wait_here()

    def pytest_unconfigure(config):
        if PHASE == "shutdown":
            _wait_here()
        hardware.machine_info, atomic.open_new = _machine_info, _open_new
"""


@dataclass(frozen=True)
class Ended:
    status: int
    output: str
    errors: str


def _leftover_processes(folder: Path) -> list[str]:
    """Command lines of live processes that name ``folder`` (workers, probe children, git)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command:
            found.append(command)
    return found


def _interrupted(pytester: pytest.Pytester, args: tuple[str, ...], phase: str, *,
                 ready: str = "", release: bool = False, timeout: float = 240) -> Ended:
    """Run pytest ``args`` in its own process; send SIGINT once ``phase`` is reached (its marker file exists,
    or the output has a line containing ``ready``); with ``release``, let the waiting code go on after it."""
    # Outside the project, as a real temporary directory is: a base worktree in it must not be collected.
    marker, temp = pytester.path / "reached", pytester.path.with_name(pytester.path.name + "-tmp")
    temp.mkdir(exist_ok=True)
    env = dict(os.environ, MODELPERF_TEST_PHASE=phase, MODELPERF_TEST_MARKER=str(marker), TMPDIR=str(temp),
               PYTHONUNBUFFERED="1")
    errors_path = pytester.path / "stderr.txt"
    with errors_path.open("w") as errors:
        session = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:randomly", *args], cwd=pytester.path,
                                   env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert session.stdout is not None
        lines: list[str] = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and session.poll() is None:
                if ready:
                    line = session.stdout.readline()
                    lines.append(line)
                    if ready in line:
                        break
                elif marker.exists():
                    break
                else:
                    time.sleep(0.05)
            assert session.poll() is None, "".join(lines) + session.stdout.read() + errors_path.read_text()
            session.send_signal(signal.SIGINT)
            if release:
                Path(f"{marker}.release").write_text("go on")
            rest, _ = session.communicate(timeout=timeout)
        finally:
            session.kill()
            session.wait()
    ended = Ended(session.returncode, "".join(lines) + rest, errors_path.read_text())
    for folder in (pytester.path, temp):
        assert not _leftover_processes(folder), _leftover_processes(folder)
    assert not list(temp.iterdir()), f"left in the temporary directory: {list(temp.iterdir())}"
    return ended


def _assert_one_sentence(ended: Ended, phase: str) -> None:
    assert ended.status == pytest.ExitCode.INTERRUPTED, ended.output + ended.errors
    assert "Traceback" not in ended.output + ended.errors, ended.output + ended.errors
    last = ended.errors.strip().splitlines()[-1]
    assert last.startswith(SENTENCE.format(phase=phase)), ended.errors
    assert last.endswith("the session ends with exit status 2."), last


def _whole_records(pytester: pytest.Pytester) -> dict[str, object]:
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    records: dict[str, object] = json.loads(path.read_text())["records"]
    assert not list(path.parent.glob(".*.tmp"))
    return records


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=WAIT + TEST)
    pytester.makeconftest(CONFTEST)
    pytester.runpytest(*RUN).assert_outcomes(passed=1)
    return _whole_records(pytester)


@pytest.mark.parametrize(("phase", "said", "release"), [
    ("start-up", "while the session started", False),
    ("test", "during the tests", False),
    ("summary", "while writing the summary and the session's files", False),
    ("save", "while writing the summary and the session's files", False),
    ("shutdown", "while pytest shut down, after the summary and the session's files", True),
])
def test_ctrl_c_at_each_phase_is_one_sentence_and_exit_2(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, project: dict[str, object], phase: str, said: str,
    release: bool
) -> None:
    monkeypatch.setenv(FLIPS, "20")  # a save would change the record: it must be whole, old or new
    ended = _interrupted(pytester, (*RUN, "--baseline-save"), phase, release=release)
    _assert_one_sentence(ended, said)
    records = _whole_records(pytester)
    assert set(records) == set(project)
    if phase in ("start-up", "test", "save"):
        assert records == project  # interrupted before or during the save: the old record, byte for byte


def test_ctrl_c_while_the_models_are_probed_stops_the_probe_processes(pytester: pytest.Pytester) -> None:
    pytest.importorskip("llama_cpp")
    pytester.makepyfile(test_llama="""
        def test_generates(llama):
            assert llama.generate("Hello", 1)
    """)
    ended = _interrupted(pytester, ("--benchmark", "--history", "off", "--baseline-dir", "baselines"), "probe",
                         ready="modelperf: probing llama in child processes")
    _assert_one_sentence(ended, "while probing the models in child processes, before any test ran")


AGAINST_TEST = WAIT + """
    import pytest

    @pytest.mark.latency(min_effect=0.5)
    def test_spin(benchmark):
        if os.environ.get("MODELPERF_TEST_PHASE") == "against":
            _wait_here()
        benchmark(sum, range(1000))
"""


@pytest.mark.parametrize(("phase", "ready"), [("workers", "worker processes per side (base in"), ("against", "")],
                         ids=["while workers start", "during a test"])
def test_ctrl_c_during_an_against_session_is_one_sentence_and_leaves_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, phase: str, ready: str
) -> None:
    from tests.ab.helpers import CLOCK_ADDOPTS, CLOCK_DIR, commit

    # On tests/ab's virtual clock, whose control workload does no work: the Ctrl-C is the point, and no
    # process of the session then imports torch for a control round.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(CLOCK_DIR), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(filter(None, [os.environ.get("PYTEST_ADDOPTS"), CLOCK_ADDOPTS])))
    pytester.makepyfile(test_spin=AGAINST_TEST)
    commit(pytester.path)
    ended = _interrupted(pytester, ("--benchmark", "--against-processes", "3", "--history", "off", "--against",
                                    "HEAD"), phase, ready=ready)
    _assert_one_sentence(ended, "during the tests")
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=pytester.path, capture_output=True, text=True,
                               check=True).stdout
    assert len(worktrees.splitlines()) == 1, worktrees
