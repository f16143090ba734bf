"""Inner ``--against`` sessions as users run them: a tiny git repository, a commit as the base, the
working tree as the change, and ``python -m pytest --benchmark --against HEAD`` in a subprocess.

The inner tests are timed on a virtual clock (tests/ab/clock/vclock.py): a timed call declares its
cost, a constant in the test file, so "making the change slower" is editing that constant, and the
verdicts do not depend on what else the machine runs. Tests about anything but the latency verdict
mark their call with a 50 % minimum effect. How often the gate is right on real timings is a rate
over many sessions, measured by ``python -m benchmarks.gate``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CLOCK_ADDOPTS", "CLOCK_DIR", "RUN", "STRUCTURAL", "Session", "commit", "git", "run_against", "session_env", "spin", "write"]

# Three processes a side, the fewest the t-test accepts: the first pass is then the first look.
RUN = ("--benchmark", "--against-processes", "3", "-p", "no:randomly", "-p", "no:cacheprovider", "--history", "off")
_SESSION_TIMEOUT_S = 600  # a whole inner session on a busy 2-core machine

# The virtual clock: its folder goes on the inner sessions' path, pytest-benchmark times with it, and as
# a plugin it times the control workload too.
CLOCK_DIR = Path(__file__).parent / "clock"
CLOCK_ADDOPTS = "--benchmark-timer vclock.now -p vclock"

# A call of LOOPS loop iterations at 40 ns each, on the virtual clock.
SPIN = """
    import pytest
    import vclock

    LOOPS = {loops}

    def work():
        vclock.spend(LOOPS * 4e-8)

    @pytest.mark.latency{mark}
    def test_spin(benchmark):
        benchmark(work)
"""
# The marker arguments of a loop whose verdict the test does not look at (see the module docstring).
STRUCTURAL = "(min_effect=0.5)"


def spin(loops: int, mark: str = STRUCTURAL) -> str:
    return SPIN.format(loops=loops, mark=mark)


def write(root: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` (path relative to ``root``: source, dedented) into ``root``."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root,
                          check=True, capture_output=True, text=True).stdout


def commit(root: Path) -> None:
    """Commit everything in ``root`` (a new repository if it is none yet): the base side."""
    if not (root / ".git").exists():
        git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")


@dataclass(frozen=True)
class Session:
    """What an inner session printed and how it ended."""

    ret: int
    output: str

    @property
    def lines(self) -> pytest.LineMatcher:
        return pytest.LineMatcher(self.output.splitlines())

    def row(self, test: str) -> str:
        """The summary table's row of ``test`` (the first line that starts with its name)."""
        return next((line for line in self.output.splitlines() if line.startswith(f"{test} ")), "")


def session_env() -> dict[str, str]:
    """This environment, less what would make an inner session an xdist worker's (whose latency the
    plugin does not measure) when this test runs in one, and with the virtual clock: on the path, and
    pytest-benchmark's timer in every process of the session (workers read PYTEST_ADDOPTS too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLOCK_DIR), env.get("PYTHONPATH")]))
    env["PYTEST_ADDOPTS"] = " ".join(filter(None, [env.get("PYTEST_ADDOPTS"), CLOCK_ADDOPTS]))
    return env


def run_against(cwd: Path, *args: str, ref: str = "HEAD", env: Mapping[str, str] | None = None) -> Session:
    """``python -m pytest RUN --against ref args`` in ``cwd``, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "pytest", *RUN, "--against", ref, *args], cwd=cwd,
                          env={**session_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=_SESSION_TIMEOUT_S, check=False)
    return Session(done.returncode, done.stdout + done.stderr)
