"""``--against`` never passes a gate it did not judge, and leaves nothing behind: a REF that does not
exist, no git repository, a base side that cannot even start, a cancelled session, too few processes.
Each is one short session of its own (see tests/ab/helpers.py); the faults inside a running session
(a worker that dies, a module that fails to import on the base side) are in test_against.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ab.helpers import RUN, commit, git, run_against, session_env, spin, write


def test_a_missing_ref_is_one_sentence_and_the_change_is_still_measured(tmp_path: Path) -> None:
    write(tmp_path, {"test_spin.py": spin(5000)})
    commit(tmp_path)
    # Each worker a fresh interpreter here: the one session of these tests that measures without the fork server.
    session = run_against(tmp_path, "--against-start", "spawn", ref="no-such-branch")
    assert session.ret == pytest.ExitCode.TESTS_FAILED  # a gate that compared nothing is not green
    session.lines.fnmatch_lines([("*--against no-such-branch: no such commit, branch or tag in *; check the name, or "
                                  "fetch it first (in CI: check out with fetch-depth: 0).*"),
                                 "test_spin*p10_s*not_compared"])


def test_outside_a_git_repository_is_one_sentence(tmp_path: Path) -> None:
    write(tmp_path, {"test_spin.py": spin(5000)})
    session = run_against(tmp_path)
    assert session.ret == pytest.ExitCode.TESTS_FAILED
    session.lines.fnmatch_lines(["*--against compares with another commit, but * is not inside a git repository*"])


def test_a_base_that_cannot_start_fails_the_session_in_one_sentence(tmp_path: Path) -> None:
    write(tmp_path, {"test_spin.py": spin(5000), "conftest.py": "raise RuntimeError('this commit cannot be collected')"})
    commit(tmp_path)
    (tmp_path / "conftest.py").unlink()  # the change mends it
    session = run_against(tmp_path, env={"TMPDIR": str(tmp_path.parent)})  # the kept logs go with tmp_path
    assert session.ret == pytest.ExitCode.TESTS_FAILED  # nothing was compared: the gate is not green
    session.lines.fnmatch_lines(["*the base side's worker process * while collecting the tests*",
                                 "test_spin*p10_s*not_compared"])


@pytest.mark.parametrize("count", ["0", "2"])
def test_too_few_against_processes_is_a_usage_error_that_says_3(pytester: pytest.Pytester, count: str) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    result = pytester.runpytest("--benchmark", "--against", "HEAD", "--against-processes", count)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{count} worker processes per side are too few to judge*give 3 or more.*"])
    assert "at least 1" not in result.stderr.str()


def test_an_unknown_way_to_start_workers_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    result = pytester.runpytest("--benchmark", "--against", "HEAD", "--against-start", "thread")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'thread' is not a way to start workers: give 'fork' or 'spawn'.*"])


def test_a_cancelled_session_stops_its_workers_and_removes_the_base_worktree(tmp_path: Path) -> None:
    # A CI job that is cancelled gets SIGTERM; nothing of the session may be left behind: no worktree,
    # no worker, no fork server.
    started, pids = tmp_path / "started", tmp_path / "pids"
    repo = tmp_path / "repo"
    write(repo, {"test_slow.py": f"""
        import os, pathlib, time
        import pytest

        @pytest.mark.latency
        def test_slow(benchmark):
            with open({str(pids)!r}, "a") as out:
                out.write(f"{{os.getpid()}} {{os.getppid()}}\\n")
            pathlib.Path({str(started)!r}).write_text("yes")
            time.sleep(120)  # never finishes: the session is cancelled first
            benchmark(sum, range(10))
    """})
    commit(repo)
    session = subprocess.Popen([sys.executable, "-m", "pytest", *RUN, "--against", "HEAD"], cwd=repo, env=session_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and session.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), "the inner test never started"
        session.send_signal(signal.SIGTERM)
        output, _ = session.communicate(timeout=120)
    finally:
        session.kill()
    assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # only the repository's own
    worker, parent = (int(pid) for pid in pids.read_text().split()[:2])
    for pid in (worker, parent):  # the worker, and the fork server it was forked from
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], pid
