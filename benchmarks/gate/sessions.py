"""Running the gate benchmark's sessions: one process group each, a busy neighbour when asked, a record.

Each session is a ``pytest`` process started in its own process group in the change tree, so that a
timeout or an interrupt ends it and every worker it started. A ``neighbour`` session starts a process
that keeps one core busy from ``neighbour_after`` seconds into the session to its end, so that the two
sides see different machines in the middle of it. Each finished session appends one line to
``sessions.jsonl``: mode, index, wall time, exit status, when the neighbour started, the command.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .analysis import load_results, verdict_of
from .plan import Mode, Session, plan_session, schedule, sessions_done
from .worktrees import ChangeTree, open_change_tree

__all__ = ["Outcome", "RunOptions", "run_all", "run_session", "stop", "verdict_counts"]

_STOP_WAIT_S = 20  # how long a stopped session may take to end before it is killed
_NO_RESULTS_LIMIT = 3  # sessions in a row without results: something is broken, not noisy
_LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Outcome:
    wall_s: float
    returncode: int | None  # None: stopped at the timeout
    neighbour_started_s: float | None


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked of a run of sessions."""

    rev: str
    selection: tuple[str, ...]
    extra: tuple[str, ...]
    against_processes: int | None
    timeout_s: float
    neighbour_after_s: float | None
    dry_run: bool
    load_selection: tuple[str, ...] = ()  # the load modes' tests

    def selection_of(self, mode: Mode) -> tuple[str, ...]:
        return self.load_selection if mode.kind == "load" else self.selection


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM (tox, a cancelled CI job) cleans up the worktree as Ctrl-C does


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the process group started for ``process`` (the session and its workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=_STOP_WAIT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def run_session(command: Sequence[str], cwd: Path, log: Path, env: Mapping[str, str], timeout_s: float,
                neighbour_after_s: float | None) -> Outcome:
    """Run one session to its end, or until ``timeout_s``; a busy neighbour from ``neighbour_after_s``."""
    start = time.perf_counter()
    neighbour: subprocess.Popen[bytes] | None = None
    started: float | None = None
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            try:
                if neighbour_after_s is not None:
                    try:
                        process.wait(timeout=neighbour_after_s)
                    except subprocess.TimeoutExpired:
                        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                                     start_new_session=True)
                        started = time.perf_counter() - start
                returncode: int | None = process.wait(timeout=max(1.0, timeout_s - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                returncode = None
                stop(process)
        except BaseException:
            stop(process)
            raise
        finally:
            if neighbour is not None:
                stop(neighbour)
    return Outcome(time.perf_counter() - start, returncode, started)


def verdict_counts(path: Path, kind: str = "latency") -> Counter[str] | None:
    """The verdicts of a session's results of ``kind`` (latency or load), or None when it wrote none."""
    data = load_results(path)
    if data is None:
        return None
    return Counter(str(verdict_of(r)) for r in data["results"]
                   if isinstance(r, dict) and (r.get("measurement") or {}).get("kind") == kind)


def _environment(session: Session, tree: ChangeTree) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=tree.pythonpath(os.environ.get("PYTHONPATH")))
    for key, value in session.env.items():
        # A user's own PYTEST_PLUGINS stay; the slowdown plugin joins them.
        env[key] = f"{env[key]},{value}" if key == "PYTEST_PLUGINS" and env.get(key) else value
    return env


def _neighbour_after(options: RunOptions, mode: Mode, aa_walls: Sequence[float]) -> float | None:
    if mode.name != "neighbour":
        return None
    if options.neighbour_after_s is not None:
        return options.neighbour_after_s
    if not aa_walls:
        raise SystemExit("--neighbour needs an A/A session run before it, or --neighbour-after SECONDS.")
    return statistics.median(aa_walls) / 2  # halfway through a typical session


def _record(results: Path, session: Session, outcome: Outcome, tree: ChangeTree) -> None:
    record = {"mode": session.mode.name, "index": session.index, "wall_s": outcome.wall_s,
              "rc": outcome.returncode, "neighbour_started_s": outcome.neighbour_started_s,
              "factor": session.mode.factor, "rev": tree.sha, "command": list(session.command),
              "tree": str(tree.path), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with (results / "sessions.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _dry_run(options: RunOptions, modes: Sequence[Mode], results: Path) -> None:
    tree = Path("<change tree>")
    print(f"# git worktree add --detach {tree} {options.rev}  (modelperf.ab.git.check_out)")
    for mode, index in schedule(modes):
        session = plan_session(mode, index, python=sys.executable, rev=options.rev, tree=tree, results_dir=results,
                               selection=options.selection_of(mode), extra=options.extra,
                               against_processes=options.against_processes)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in session.env.items())
        neighbour = " (a busy neighbour from halfway through)" if mode.name == "neighbour" else ""
        print(f"# {mode.name} {index}{neighbour}\n$ cd {tree} && {env} {shlex.join(session.command)}")


def run_all(options: RunOptions, modes: Sequence[Mode], results: Path) -> None:
    """Run every mode's sessions, round-robin, into ``results``; the worktree is removed at the end."""
    if options.dry_run:
        _dry_run(options, modes, results)
        return
    tree = open_change_tree(options.rev)
    print(f"REV {tree.sha}; change tree {tree.path}; results in {results}", flush=True)
    aa_walls: list[float] = []
    failures = 0
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for mode, index in schedule(modes, sessions_done(results)):
            # tree.sha, not the name given: both sides hold the same commit even if the branch moves.
            session = plan_session(mode, index, python=sys.executable, rev=tree.sha, tree=tree.path,
                                   results_dir=results, selection=options.selection_of(mode), extra=options.extra,
                                   against_processes=options.against_processes)
            after = _neighbour_after(options, mode, aa_walls)
            try:
                outcome = run_session(session.command, tree.path, session.log, _environment(session, tree),
                                      options.timeout_s, after)
            finally:
                shutil.rmtree(session.baselines, ignore_errors=True)
            if mode.name == "aa" and outcome.returncode in (0, 1):  # 1: a test failed (a regressed verdict)
                aa_walls.append(outcome.wall_s)
            _record(results, session, outcome, tree)
            counts = verdict_counts(session.results, mode.kind)
            head = f"{mode.name:>14} {index:>3}  {outcome.wall_s:7.0f} s  rc={outcome.returncode}"
            if counts is None:
                failures += 1
                tail = session.log.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
                print(f"{head}  NO RESULTS; log tail:\n{tail}", flush=True)
                if failures >= _NO_RESULTS_LIMIT:
                    raise SystemExit(f"{failures} sessions in a row gave no results; see their logs in {results}.")
                continue
            failures = 0
            cells = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            busy = f"  neighbour from {outcome.neighbour_started_s:.0f} s" if outcome.neighbour_started_s else ""
            print(f"{head}  {cells}{busy}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        tree.remove()
