"""The pytest hooks of a ``--benchmark`` session: pytest's events translated into pipeline calls.

:class:`SessionHooks` holds no figures and decides nothing: it finds each test's markers, has the
session's :class:`~modelperf.pipeline.SessionPipeline` make the instruments, start and stop them
around the test body and judge what they measured, then carries the results on the test's report
(as JSON, which pytest-xdist can send to its controller) and flips the report of a regressed test.
The process that reports collects them; only it writes baselines and history, at the session's end.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from modelperf.markers import MARKERS, MarkerError, MemoryOptions, parse_marker
from modelperf.measure.instrument import Instrument, Target
from modelperf.models.base import Model
from modelperf.pipeline import SessionPipeline
from modelperf.pytest.ending import WRITE_FAILED
from modelperf.records import TestResult

__all__ = ["REGRESSED_LETTER", "REGRESSED_WORD", "SKIP_WITHOUT_FLAG", "SessionHooks", "add_summary_line",
           "model_keys", "models_needed"]

SKIP_WITHOUT_FLAG = "model benchmark test: add --benchmark to run it (plain pytest skips model tests to stay fast)"
SKIP_ON_WORKER = ("latency is not measured in pytest-xdist workers, whose parallel timings are unreliable: "
                  "run latency tests without -n")
# pytest's progress letter and summary word for a test failed by a confirmed performance regression.
REGRESSED_LETTER, REGRESSED_WORD = "R", "REGRESSED"
MODEL_FIXTURES = ("distilbert", "llama")
# Fixtures that load or measure models: a test using any of them is a model test.
_NEEDS_FLAG = (*MODEL_FIXTURES, "load_model", "llama_server", "distilbert_server", "load")
_RESULTS = pytest.StashKey[list[TestResult]]()
_INSTRUMENTS = pytest.StashKey[dict[str, Instrument]]()
_LINES = pytest.StashKey[list[tuple[str, str]]]()


def add_summary_line(item: pytest.Item, section: str, line: str) -> None:
    """Queue a line for a summary section; it travels on the report like results do."""
    item.stash.setdefault(_LINES, []).append((section, line))


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def models_needed(items: list[pytest.Item]) -> list[str]:
    """The models that the tests about to run will load (``load_model`` may load either)."""
    needed: set[str] = set()
    for item in items:
        if item.get_closest_marker("skip") is not None:
            continue
        names = set(getattr(item, "fixturenames", ()))
        needed.update(MODEL_FIXTURES if "load_model" in names else names.intersection(MODEL_FIXTURES))
    return [name for name in MODEL_FIXTURES if name in needed]


def model_keys(item: pytest.Item) -> dict[str, Model]:
    funcargs = getattr(item, "funcargs", {})
    return {name: funcargs[name] for name in MODEL_FIXTURES if isinstance(funcargs.get(name), Model)}


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], check=False, cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _role(item: pytest.Item, options: Any) -> str | None:
    """The marker's ``role`` with the test's parameters filled in (``"{name}:load"``), or None."""
    role: str | None = getattr(options, "role", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    try:
        return None if role is None else role.format(**params)
    except (KeyError, IndexError, ValueError):
        raise MarkerError(f"{item.nodeid}: role={role!r} names a parameter the test does not have "
                          f"({', '.join(params) or 'it has none'}).") from None


class SessionHooks:
    """Registered once per session (see :mod:`modelperf.pytest.plugin`); ``pipeline`` does the work."""

    def __init__(self, config: pytest.Config, pipeline: SessionPipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.settings = pipeline.settings

    def _say(self, line: str, red: bool = False) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"modelperf: {line}", red=red)

    # ------------------------------------------------------------------ session start
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from modelperf.pipeline import SetupError

        if not self.settings.benchmark:
            return
        try:
            self.pipeline.begin()
        except SetupError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marked = [name for name in MARKERS if item.get_closest_marker(name)]
            uses_model = any(name in getattr(item, "fixturenames", ()) for name in _NEEDS_FLAG)
            if not self.settings.benchmark and (marked or uses_model):
                item.add_marker(pytest.mark.skip(reason=SKIP_WITHOUT_FLAG))
            elif "latency" in marked and is_xdist_worker(self.config):
                item.add_marker(pytest.mark.skip(reason=SKIP_ON_WORKER))
            elif "load" in marked and is_xdist_worker(self.config):
                item.add_marker(pytest.mark.skip(reason=SKIP_ON_WORKER.replace("latency", "load", 1)))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Try each model the selected tests need in a child process, before this process loads it."""
        if self.settings.benchmark and not self.pipeline.worker and not self.config.option.collectonly:
            _check_cache(session.items)  # before any model is probed, converted or scored
        timeout = self.settings.model_probe_timeout
        if not self.settings.benchmark or not timeout or self.config.option.collectonly:
            return  # --collect-only runs no test, so no model needs trying
        if self.pipeline.side_by_side:
            return  # --against's workers are separate processes already: the controller reports a crash
        needed = models_needed(session.items)
        if not needed:
            return
        requests = self.pipeline.plan_probes(needed)
        self._say(f"probing {', '.join(needed)} in child processes (load, evaluate once)")
        results = self.pipeline.probe_models(requests, timeout)
        for result in results:
            if result.problem is not None:
                self._say(result.line(), red=True)
        if results:
            self._say(f"probes done in {max(r.seconds for r in results):.1f} s")

    # ------------------------------------------------------------------ one test
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        for name in MARKERS:
            marker = item.get_closest_marker(name)
            if marker is not None:
                try:
                    _role(item, parse_marker(name, marker.args, marker.kwargs, item.nodeid))
                except (MarkerError, TypeError) as exc:
                    raise pytest.fail.Exception(str(exc), pytrace=False) from None
        if item.get_closest_marker("latency") and item.get_closest_marker("peak_memory"):
            pytest.fail(f"{item.nodeid}: latency and peak_memory cannot share a test, because memray's tracing "
                        "slows the timed calls; split it into two tests.", pytrace=False)
        for name in MARKERS:
            if item.get_closest_marker(name):
                self.instrument(item, name)  # before the fixtures: `benchmark` and `accuracy` hand theirs out

    def instrument(self, item: pytest.Item, marker: str) -> Instrument:
        """The test's instrument of ``marker``, made now when the test has none (an unmarked ``accuracy`` user)."""
        found = item.stash.setdefault(_INSTRUMENTS, {})
        if marker not in found:
            closest = item.get_closest_marker(marker)
            options = parse_marker(marker, (), closest.kwargs if closest else {}, item.nodeid)
            found[marker] = self.pipeline.instrument(marker, Target(item.nodeid, options))
        return found[marker]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        if item.get_closest_marker("latency") and "benchmark" not in getattr(item, "fixturenames", ()):
            pytest.fail(f"{item.nodeid}: @pytest.mark.latency needs the `benchmark` fixture; add it to the "
                        "test's arguments and time the call with benchmark(...).", pytrace=False)
        if item.get_closest_marker("load") and "load" not in getattr(item, "fixturenames", ()):
            pytest.fail(f"{item.nodeid}: @pytest.mark.load needs the `load` fixture; add it and a served model to "
                        "the test's arguments and call load.run(llama_server).", pytrace=False)
        results: list[TestResult] = []
        item.stash[_RESULTS] = results
        instruments = item.stash.get(_INSTRUMENTS, {})
        models = model_keys(item)
        memory = instruments.get("peak_memory")
        if memory is not None and isinstance(memory.target.options, MemoryOptions) and memory.target.options.warmup:
            # Untracked first run: lazy first-use allocations are paid here, whatever ran before.
            item.runtest()
        with contextlib.ExitStack() as stack:
            for instrument in instruments.values():
                instrument.start(models)
                stack.callback(instrument.close)  # after the verdicts: memory's capture waits for its own
            outcome = yield
            for instrument in instruments.values():
                measured = instrument.stop(failed=outcome.excinfo is not None)
                results.extend(self.pipeline.judged(instrument, measured, _role(item, instrument.target.options)))
                for section, line in instrument.notes:
                    add_summary_line(item, section, line)
        item.stash[_INSTRUMENTS] = {}  # items live the whole session; their instruments need not
        if results:
            self.pipeline.remember_models(models)

    # ------------------------------------------------------------------ reporting a test
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if call.when != "call":
            return
        lines: list[tuple[str, str]] = item.stash.get(_LINES, [])
        report.modelperf_lines = list(lines)  # type: ignore[attr-defined]
        results = item.stash.get(_RESULTS, [])
        if not results:
            return
        # JSON, not the records: pytest-xdist serialises reports to send them to the controller.
        report.modelperf = [r.to_json() for r in results]  # type: ignore[attr-defined]
        report.modelperf_models = dict(self.pipeline.model_info)  # type: ignore[attr-defined]
        failures = [r for r in results if r.regressed]
        if failures and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n".join(f"{r.measurement.metric}: {r.line}" for r in failures)
            for entry in failures:
                if entry.section:
                    report.sections.append(("modelperf " + entry.measurement.metric, entry.section))

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport,
                                 config: pytest.Config) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """A confirmed regression gets its own word; the "failed" category keeps the exit status non-zero."""
        if report.when != "call" or not report.failed:
            return None
        if any(TestResult.from_json(r).regressed for r in getattr(report, "modelperf", ())):
            return "failed", REGRESSED_LETTER, (REGRESSED_WORD, {"red": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.pipeline.collect([TestResult.from_json(r) for r in getattr(report, "modelperf", ())],
                              getattr(report, "modelperf_models", {}), getattr(report, "modelperf_lines", ()))

    # ------------------------------------------------------------------ session end
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.settings.benchmark or is_xdist_worker(self.config) or self.pipeline.worker:
            return
        root = Path(str(self.config.rootpath))
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain"))
        finished = self.pipeline.finish(commit, dirty)
        if finished.interrupted:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif finished.failed_writes and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = WRITE_FAILED
            self.pipeline.notes.append(
                f"the session fails (exit status {int(WRITE_FAILED)}) because {finished.failed_writes} of its files "
                "could not be written, as said above; fix that and run it again")


def _check_cache(items: list[pytest.Item]) -> None:
    from modelperf.config import SettingError
    from modelperf.pytest.preflight import check_cache_folder

    if models_needed(items):
        try:
            check_cache_folder()
        except SettingError as exc:
            raise pytest.UsageError(str(exc)) from None
