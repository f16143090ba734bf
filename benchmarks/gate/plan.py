"""The gate benchmark's modes, the order of their sessions, and each session's command and environment."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import slowdown

__all__ = ["DEFAULT_LOAD_SELECT", "DEFAULT_SELECT", "Mode", "Session", "parse_load_slowdown", "parse_slowdown",
           "plan_session", "schedule", "sessions_done"]

# 9 latency tests of the shipped suite, DistilBERT and Llama, short and long calls: DistilBERT batch 1
# short and long and batch 32, Llama classification, prefill of 128 tokens, a 32-token decode, the p90
# inter-token latency, and both cold loads. Left out for time: prefill of 512 tokens (seconds a call)
# and time to first token (a prefill again). The cold loads and the p90 test ask for a 20 % minimum
# effect, so they count for false alarms but not for detecting 5 or 10 %.
DEFAULT_SELECT = 'tests/suite/test_latency.py -k "not 512 and not time_to_first_token"'
# The load modes' one test: the suite's load test made to gate, Llama's requests back to back from one
# client (the server always busy, never queueing), its phases each on a fresh server, paired phase by phase.
DEFAULT_LOAD_SELECT = "tests/suite/test_load.py -k test_llama_back_to_back"
_MAX_FACTOR = 10.0


@dataclass(frozen=True)
class Mode:
    """A kind of session: ``aa``, ``single``, ``neighbour`` or ``slowdown-<factor>`` (latency tests), or
    ``load-aa`` or ``load-slowdown-<factor>`` (a load test; the factor is the share more generated tokens
    per request), and how many to run."""

    name: str
    sessions: int
    factor: float = 0.0

    @property
    def kind(self) -> str:
        """The kind of result the mode's sessions are judged by: ``latency`` or ``load``."""
        return "load" if self.name.startswith("load-") else "latency"


def parse_slowdown(text: str, option: str = "--slowdown", prefix: str = "") -> Mode:
    """``FACTOR:SESSIONS`` of ``--slowdown``, e.g. ``0.05:10``."""
    try:
        factor, count = text.split(":")
        mode = Mode(f"{prefix}slowdown-{float(factor):.2f}", int(count), float(factor))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{option} takes FACTOR:SESSIONS, e.g. 0.05:10, not {text!r}") from None
    if not 0 < mode.factor <= _MAX_FACTOR or mode.sessions < 0:
        raise argparse.ArgumentTypeError(f"{option} {text!r}: FACTOR must lie in (0, {_MAX_FACTOR:g}] and "
                                         "SESSIONS be 0 or more, e.g. 0.05:10")
    return mode


def parse_load_slowdown(text: str) -> Mode:
    """``FACTOR:SESSIONS`` of ``--load-slowdown``, e.g. ``0.10:10``: a ``load-slowdown-<factor>`` mode."""
    return parse_slowdown(text, "--load-slowdown", "load-")


def schedule(modes: Sequence[Mode], done: Mapping[str, int] | None = None) -> Iterator[tuple[Mode, int]]:
    """Round-robin over the modes, in the order given, until each has run its sessions.

    Round-robin, so that a slow phase of the machine touches every mode. ``done[mode]`` sessions are
    already in the results folder: numbering continues after them, so a folder can be added to later.
    """
    done = done or {}
    for index in range(max((m.sessions for m in modes), default=0)):
        for mode in modes:
            if index < mode.sessions:
                yield mode, done.get(mode.name, 0) + index


def sessions_done(results: Path) -> dict[str, int]:
    """Per mode, one more than the highest session index already in ``results``."""
    done: dict[str, int] = {}
    for path in results.glob("*-*.json"):
        name, _, index = path.stem.rpartition("-")
        if index.isdigit():
            done[name] = max(done.get(name, 0), int(index) + 1)
    return done


@dataclass(frozen=True)
class Session:
    """One pytest session of the benchmark: its command, its files, what it adds to the environment."""

    mode: Mode
    index: int
    command: tuple[str, ...]
    results: Path  # its --results-json; the log, injection log and baselines sit beside it
    env: Mapping[str, str]

    @property
    def log(self) -> Path:
        return self.results.with_suffix(".log")

    @property
    def inject_log(self) -> Path:
        return self.results.with_suffix(".inject.jsonl")

    @property
    def baselines(self) -> Path:
        return self.results.with_suffix(".baselines")


def plan_session(mode: Mode, index: int, *, python: str, rev: str, tree: Path, results_dir: Path,
                 selection: Sequence[str], extra: Sequence[str], against_processes: int | None) -> Session:
    """The command and environment of session ``index`` of ``mode``, run in the change ``tree``."""
    results = results_dir / f"{mode.name}-{index}.json"
    command = [python, "-m", "pytest", "--benchmark", "-p", "no:randomly", "--history", "off",
               "--results-json", str(results)]
    if mode.name == "single":
        # A single-side session compares with no stored baseline: a fresh, empty folder each time.
        command += ["--baseline-dir", str(results.with_suffix(".baselines"))]
    else:
        command += ["--against", rev]
        if against_processes is not None:
            command += ["--against-processes", str(against_processes)]
    env = {slowdown.LOG_ENV: str(results.with_suffix(".inject.jsonl"))}
    if mode.factor:
        # Latency: kernel work after each adapter call; load: more tokens asked of the served model.
        share = slowdown.TOKENS_ENV if mode.kind == "load" else slowdown.FACTOR_ENV
        env |= {"PYTEST_PLUGINS": slowdown.__name__, share: repr(mode.factor), slowdown.TREE_ENV: str(tree)}
    return Session(mode, index, (*command, *selection, *extra), results, env)
