"""The pytest side of an ``--against`` worker: instead of running its tests in order, it waits for
commands and runs the test each one names, as often as asked, with its models loaded once.

Each run goes through pytest's own protocol (set-up, call, teardown), so markers, fixtures and the
plugin's instruments behave exactly as in a plain session; the call report's figures go back to the
controller (see :mod:`modelperf.ab.workers`) instead of to this process's terminal.

A *paced* run shares the machine with its partner on the other side, turn by turn: before a timed
round, once its turn has lasted :data:`~modelperf.ab.workers.TURN_S`, the worker tells the
controller ("turn") and waits for its "go", while the partner runs its own rounds. The two sides'
rounds then alternate within a second of each other, so a burst of load from elsewhere on the
machine falls on both alike.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from modelperf.ab.workers import PRELOAD_ENV, TURN_S, read_command, send_reply
from modelperf.measure.instrument import RunPlan
from modelperf.models.base import ModelUnavailable
from modelperf.pipeline import SessionPipeline

__all__ = ["WorkerLoop"]


class WorkerLoop:
    """Registered in a worker process; ``pipeline`` is that process's session pipeline."""

    def __init__(self, pipeline: SessionPipeline) -> None:
        self._pipeline = pipeline
        self._errors: list[str] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            detail = getattr(crash, "message", None) or str(report.longrepr).strip().splitlines()[-1:]
            self._errors.append(f"{report.nodeid}: {detail if isinstance(detail, str) else ' '.join(detail)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        items = {item.nodeid: item for item in session.items}
        if os.environ.get(PRELOAD_ENV) == "1":
            # Before "ready": every worker loads at once while the controller waits for all of them,
            # and no load runs beside a timed round later. A model that cannot load is left to its
            # tests, which report it as in a plain session.
            from modelperf.pytest.session import models_needed

            for name in models_needed(session.items):
                try:
                    self._pipeline.models.load(name)
                except ModelUnavailable:
                    pass
        send_reply({"op": "ready", "tests": list(items), "errors": self._errors})
        while (command := read_command()) is not None and command.get("op") == "run":
            item = items.get(str(command["test"]))
            if item is None:
                send_reply({"outcome": "missing", "longrepr": f"{command['test']} is not among this side's tests"})
                continue
            seconds = command.get("seconds_per_call")
            send_reply(self._run(item, float(command.get("scale", 1.0)), bool(command.get("paced", False)),
                                 None if seconds is None else float(seconds)))
        if command is not None:  # "quit": every reply is sent, and a worker writes nothing at its end
            # Skipping pytest's session end and the interpreter's teardown (torch, llama.cpp) saves
            # a second or two a worker: a dozen workers ending took 25 s of a 5-minute session.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return True

    def _run(self, item: pytest.Item, scale: float, paced: bool, seconds_per_call: float | None) -> dict[str, Any]:
        plan = RunPlan(scale, remeasure_busy=False, pace=_Turns() if paced else None,
                       seconds_per_call=seconds_per_call)
        start = time.perf_counter()
        with self._pipeline.planned(plan):
            # nextitem=None tears down every fixture after the run; the models stay loaded in the registry.
            reports = runtestprotocol(item, log=False, nextitem=None)
        reply: dict[str, Any] = {"outcome": "passed", "duration": time.perf_counter() - start}
        for report in reports:
            # The first failure is the one to show (a teardown failing after a failed call is its echo).
            if (report.failed and reply["outcome"] != "failed") or (report.skipped and reply["outcome"] == "passed"):
                reply["outcome"] = "failed" if report.failed else "skipped"
                reply["longrepr"] = _longrepr(report)
            if report.when == "call":
                reply["results"] = list(getattr(report, "modelperf", ()))
                reply["models"] = dict(getattr(report, "modelperf_models", {}))
                reply["lines"] = [list(line) for line in getattr(report, "modelperf_lines", ())]
        return reply


class _Turns:
    """The pace of a paced run: hand the machine over once this turn has lasted TURN_S (or at once when
    asked ``now``: a load test's phase has ended), then wait."""

    def __init__(self) -> None:
        self._began = time.perf_counter()

    def __call__(self, now: bool = False) -> None:
        if not now and time.perf_counter() - self._began < TURN_S:
            return
        send_reply({"op": "turn"})
        command = read_command()
        if command is None or command.get("op") != "go":
            # The controller has gone (or lost the thread): nobody is left to report this run to.
            os._exit(3)
        self._began = time.perf_counter()


def _longrepr(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return str(report.longrepr)
