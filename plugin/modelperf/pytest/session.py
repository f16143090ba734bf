"""The run state of one pytest session and the hooks that act on it.

The :class:`Manager` measures around marked tests with the instruments of :mod:`modelperf.measure`
(one per marker, made from its registry), asks ``decide`` for verdicts against the baselines, flips the report of a test whose regression is confirmed, and at the end writes
baselines, history and summaries. Results are :class:`~modelperf.records.TestResult` records; they
travel on the test reports as their JSON (``report.modelperf``) and are rebuilt on the other side, so
the same collection path serves a plain run and the controller of a pytest-xdist run; only the
controller writes baselines and history.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelperf import decide
from modelperf.ab.workers import WORKER_ENV
from modelperf.config import Settings, check_output_files
from modelperf.markers import MARKERS, AccuracyOptions, MarkerError, MemoryOptions, parse_marker
from modelperf.measure.instrument import Instrument, Target, create
from modelperf.measure.latency import CapturingBenchmark, LatencyInstrument
from modelperf.models.base import Model, ModelUnavailable
from modelperf.pytest.ending import fail_on_unwritten, unsaved
from modelperf.records import RECORDED, Measurement, SessionResults, TestResult
from modelperf.store.baselines import BaselineError, BaselineStore
from modelperf.units import format_size

__all__ = ["REGRESSED_LETTER", "REGRESSED_WORD", "SKIP_WITHOUT_FLAG", "Manager", "model_keys"]

SKIP_WITHOUT_FLAG = "model benchmark test: add --benchmark to run it (plain pytest skips model tests to stay fast)"
SKIP_ON_WORKER = ("latency is not measured in pytest-xdist workers, whose parallel timings are unreliable: "
                  "run latency tests without -n")
# pytest's progress letter and summary word for a test failed by a confirmed performance regression.
REGRESSED_LETTER, REGRESSED_WORD = "R", "REGRESSED"
MODEL_FIXTURES = ("distilbert", "llama")
# Fixtures that load or measure models: a test using any of them is a model test.
_NEEDS_FLAG = (*MODEL_FIXTURES, "load_model")
_RESULTS = pytest.StashKey[list[TestResult]]()
_INSTRUMENTS = pytest.StashKey[dict[str, Instrument]]()
_LINES = pytest.StashKey[list[tuple[str, str]]]()
_CAPTURE_DIR = ".modelperf/captures"


def add_summary_line(item: pytest.Item, section: str, line: str) -> None:
    """Queue a line for a summary section; it travels on the report like results do."""
    item.stash.setdefault(_LINES, []).append((section, line))


def is_worker(config: pytest.Config) -> bool:
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


class Manager:
    """Holds the session's settings, models, baselines and collected results."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from modelperf.models.registry import ModelRegistry

        self.config = config
        self.settings = settings
        self.models = ModelRegistry(settings)
        self.results: list[TestResult] = []
        self.model_info: dict[str, dict[str, Any]] = {}
        self._store: BaselineStore | None = None
        self.machine: dict[str, Any] = {}
        self.hardware_id = ""
        self.environment: dict[str, Any] = {}  # library versions and threads, stored with each record
        self.notes: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.commit: str | None = None
        self.dirty = False
        self._shared: dict[str, Any] = {}  # instruments' state across tests (latency's quietest control floors)
        # An --against worker measures for a controller: no baselines, no probe, no files of its own.
        self.worker = WORKER_ENV in os.environ
        self.run_scale = 1.0  # the share of a latency test's rounds a worker's run takes
        self.pace: Callable[[], None] | None = None  # a worker's wait for its turn before each timed round
        self.seconds_per_call: float | None = None  # a worker's run after the first: the test's known time per call
        self.against: str | None = None  # the base side's label, once an --against session has one
        self._judges: dict[str, Callable[[Instrument, Measurement], TestResult]] = {
            "latency": self._judge_latency, "peak_memory": self._judge_memory, "accuracy": self._judge_accuracy}

    def session_results(self) -> SessionResults:
        """What the reports and writers get: a frozen copy of the session's results so far."""
        return SessionResults(tuple(self.results), dict(self.model_info), dict(self.machine), self.hardware_id,
                              tuple(self.notes), {k: tuple(v) for k, v in self.sections.items()}, self.commit,
                              self.dirty, self.against)

    # ------------------------------------------------------------------ session start
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.settings.benchmark:
            return
        from modelperf.store.comparable import run_environment
        from modelperf.store.hardware import KEY_FIELDS, hardware_id, machine_info
        self.machine = machine_info()
        # Versions and threads travel with each record, not in the folder name: an upgrade is compared.
        self.environment = run_environment(self.machine, self.settings.distilbert_threads, self.settings.llama_threads)
        # The two sides of --against are compared with each other, never with stored baselines.
        compares_sides = self.worker or bool(self.settings.against)
        try:
            self.hardware_id = hardware_id(self.machine, self.settings.baseline_key or KEY_FIELDS)
            if not compares_sides:
                self._store = BaselineStore(self.settings.baseline_dir, self.hardware_id)
                self._store.check_folder(saving=self.settings.baseline_save)
                self._store.load()
                self.notes.extend(filter(None, [self._store.adopt_old_folders(self.machine)]))
            check_output_files(self.settings)
        except (BaselineError, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None
        if compares_sides:
            return
        try:
            self.models.check_explicit()
        except ModelUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None

    @property
    def store(self) -> BaselineStore:
        assert self._store is not None, "the baseline store exists only in --benchmark sessions"
        return self._store

    # ------------------------------------------------------------------ collection
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marked = [name for name in MARKERS if item.get_closest_marker(name)]
            uses_model = any(name in getattr(item, "fixturenames", ()) for name in _NEEDS_FLAG)
            if not self.settings.benchmark and (marked or uses_model):
                item.add_marker(pytest.mark.skip(reason=SKIP_WITHOUT_FLAG))
            elif "latency" in marked and is_worker(self.config):
                item.add_marker(pytest.mark.skip(reason=SKIP_ON_WORKER))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Try each model the selected tests need in a child process, before this process loads it."""
        if self.settings.benchmark and not self.worker and not self.config.option.collectonly:
            _check_cache(session.items)  # before any model is probed, converted or scored
        timeout = self.settings.model_probe_timeout
        if not self.settings.benchmark or not timeout or self.config.option.collectonly:
            return  # --collect-only runs no test, so no model needs trying
        if self.worker or self.settings.against:
            return  # --against's workers are separate processes already: the controller reports a crash
        needed = models_needed(session.items)
        if not needed:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"modelperf: probing {', '.join(needed)} in child processes (load, evaluate once)")
        results = self.models.probe(needed, timeout)
        section = self.sections.setdefault("modelperf: model probes", [])
        for result in results:
            section.append(result.line())
            if reporter is not None and result.problem is not None:
                reporter.write_line(f"modelperf: {result.line()}", red=True)
            if result.system_info:
                self.machine["llama_cpp_system_info"] = result.system_info
        if reporter is not None and results:
            reporter.write_line(f"modelperf: probes done in {max(r.seconds for r in results):.1f} s")

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

    # ------------------------------------------------------------------ measuring
    def instruments(self, item: pytest.Item) -> dict[str, Instrument]:
        """The test's instruments by marker name; the ``benchmark`` and ``accuracy`` fixtures reach theirs here."""
        return item.stash.setdefault(_INSTRUMENTS, {})

    def instrument(self, item: pytest.Item, marker: str) -> Instrument:
        """The test's instrument of ``marker``, made now when the test has none (an unmarked ``accuracy`` user)."""
        found = self.instruments(item)
        if marker not in found:
            closest = item.get_closest_marker(marker)
            options = parse_marker(marker, (), closest.kwargs if closest else {}, item.nodeid)
            found[marker] = create(marker, Target(item.nodeid, options, Path(str(self.config.rootpath)) / _CAPTURE_DIR,
                                                  self.settings.keep_captures, self._shared, self.run_scale,
                                                  remeasure_busy=not self.worker, pace=self.pace,
                                                  seconds_per_call=self.seconds_per_call))
        return found[marker]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        if item.get_closest_marker("latency") and "benchmark" not in getattr(item, "fixturenames", ()):
            pytest.fail(f"{item.nodeid}: @pytest.mark.latency needs the `benchmark` fixture; add it to the "
                        "test's arguments and time the call with benchmark(...).", pytrace=False)
        results: list[TestResult] = []
        item.stash[_RESULTS] = results
        instruments = self.instruments(item)
        models = model_keys(item)
        memory = instruments.get("peak_memory")
        if memory is not None and isinstance(memory.target.options, MemoryOptions) and memory.target.options.warmup:
            # Untracked first run: lazy first-use allocations are paid here, whatever ran before.
            item.runtest()
        with contextlib.ExitStack() as stack:
            for instrument in instruments.values():
                instrument.start(models)
                stack.callback(instrument.close)  # after the judges: memory's capture waits for its verdict
            outcome = yield
            for name, instrument in instruments.items():
                role = _role(item, instrument.target.options)
                for current in instrument.stop(failed=outcome.excinfo is not None):
                    if role is not None:
                        current = replace(current, extra=dict(current.extra, role=role))
                    results.append(self._judges[name](instrument, current))
                for section, line in instrument.notes:
                    add_summary_line(item, section, line)
        del item.stash[_INSTRUMENTS]  # items live the whole session; their instruments need not
        if results:
            self._remember_models(models)

    def _judge_latency(self, instrument: Instrument, current: Measurement) -> TestResult:
        assert isinstance(instrument, LatencyInstrument)
        options = instrument.options
        baseline, note = self._baseline_for(current)
        if baseline is None:
            return _result(current, note)
        kwargs: dict[str, Any] = {"min_effect": options.min_effect, "statistic": options.statistic,
                                  "direction": options.direction, "alpha": options.alpha,
                                  "session_spread": self.settings.session_spread}
        comparison = decide.compare_latency(baseline, current, **kwargs)
        if decide.should_confirm(comparison):
            pooled = instrument.remeasure(current)
            if pooled is not None:
                current = pooled
                comparison = decide.confirm(comparison, decide.compare_latency(baseline, current, **kwargs))
        return replace(_result(current, comparison.line(), comparison.verdict.value, baseline.value,
                               ratio=comparison.ratio, drift=comparison.drift, p_value=comparison.p_value),
                       ratio_low=comparison.ratio_low, ratio_high=comparison.ratio_high)

    def _judge_memory(self, instrument: Instrument, current: Measurement) -> TestResult:
        from modelperf.measure.memory_instrument import MemoryInstrument

        assert isinstance(instrument, MemoryInstrument) and instrument.result is not None
        found, options = instrument.result, instrument.options
        baseline, note = self._baseline_for(current)
        comparison = decide.compare_memory(
            None if baseline is None else baseline.value, current.value,
            rel=options.rel if baseline is not None else None, limit_bytes=options.limit_bytes,
            figure=str(current.extra["figure"]))
        failed = comparison.verdict is decide.Verdict.REGRESSED
        if failed:
            instrument.keep_capture()
        figures = (f"memray peak {format_size(found.memray_peak_bytes)} (allocated, mapped files whole), "
                   f"RSS peak {format_size(found.rss_peak_bytes)} (+{format_size(found.rss_delta_bytes)} resident "
                   "over the test body)")
        line = f"{comparison.line()} [{figures}]" + ("" if baseline is not None or failed else f"; {note}")
        status = comparison.verdict.value if baseline is not None or failed else RECORDED
        return _result(current, line, status, None if baseline is None else baseline.value,
                       section=found.section() if failed else None)

    def _judge_accuracy(self, instrument: Instrument, current: Measurement) -> TestResult:
        """Accuracy is compared example by example; perplexity, deterministic for fixed weights, by a tolerance."""
        options = instrument.target.options
        assert isinstance(options, AccuracyOptions)
        baseline, note = self._baseline_for(current)
        if current.metric == "perplexity":
            if baseline is None:
                return _result(current, f"perplexity {current.value:.3f}; {note}")
            plain = decide.compare_perplexity(baseline.value, current.value)
            return _result(current, plain.line(), plain.verdict.value, baseline.value)
        n = len(current.samples)
        low, high = decide.wilson_interval(int(sum(current.samples)), n)
        figure = (f"accuracy {current.value:.3f} (95% Wilson {low:.3f}-{high:.3f}, n={n}, "
                  f"{current.extra.get('seconds_per_example', 0.0) * 1e3:.1f} ms/example)")
        if baseline is None:
            return _result(current, f"{figure}; {note}")
        comparison = decide.compare_accuracy(baseline, current, min_drop=options.min_drop,
                                             min_fraction=options.min_fraction, alpha=options.alpha)
        return _result(current, f"{comparison.line()} [{figure}]", comparison.verdict.value, baseline.value,
                       p_value=comparison.p_value)

    def _baseline_for(self, current: Measurement) -> tuple[Measurement | None, str]:
        """The comparable baseline, or None with the sentence saying why nothing is compared."""
        if self._store is None:
            return None, "measured for --against"
        return self.store.baseline_for(current, saving=self.settings.baseline_save, environment=self.environment,
                                       across=self.settings.compare_across or ())

    def _remember_models(self, models: dict[str, Model]) -> None:
        for name, model in models.items():
            self.model_info[name] = model.info.as_dict()

    # ------------------------------------------------------------------ reporting a test
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        funcargs = getattr(item, "funcargs", {})
        ours = funcargs.get("benchmark")
        if isinstance(ours, CapturingBenchmark):
            funcargs["benchmark"] = ours.fixture  # pytest-benchmark's own makereport insists on its fixture object
        try:
            outcome = yield
        finally:
            if isinstance(ours, CapturingBenchmark):
                funcargs["benchmark"] = ours  # after set-up, the test body is called with what funcargs holds
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
        report.modelperf_models = dict(self.model_info)  # type: ignore[attr-defined]
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
        self.results.extend(TestResult.from_json(r) for r in getattr(report, "modelperf", ()))
        self.model_info.update(getattr(report, "modelperf_models", {}))
        for section, line in getattr(report, "modelperf_lines", ()):
            lines = self.sections.setdefault(section, [])
            if line not in lines:  # a set-up note comes with every test it applies to: print it once
                lines.append(line)

    # ------------------------------------------------------------------ session end
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.settings.benchmark or is_worker(self.config) or self.worker:
            return
        from modelperf.report.outputs import write_session_outputs

        root = Path(str(self.config.rootpath))
        self.commit = commit = _git(root, "rev-parse", "HEAD")
        self.dirty = dirty = bool(_git(root, "status", "--porcelain"))
        if self._store is None:  # --against: nothing stored; history only when asked for by name
            settings = self.settings if "history" in self.settings.explicit else replace(self.settings, history=None)
            self.notes.extend(write_session_outputs(self.session_results(), settings, root))
            fail_on_unwritten(session, self.notes)
            return
        self.results, compared_across = self.store.name_environments(
            self.results, environment=self.environment, across=self.settings.compare_across or ())
        self.notes.extend(compared_across)
        to_save = [r.measurement for r in self.results if self.settings.baseline_save or r.verdict == RECORDED]
        if to_save:
            try:
                # Only --baseline-save replaces a stored record; a partial run never removes one.
                diff = self.store.save(to_save, machine=self.machine, commit=commit, dirty=dirty,
                                       overwrite=self.settings.baseline_save, environment=self.environment)
                self.notes.extend(diff.lines())
                self.notes.append(f"baselines written under {self.settings.baseline_dir / self.hardware_id}: "
                                  "review the JSON diff and commit it")
            except BaselineError as exc:
                self.notes.append(f"baselines NOT written: {exc}")
                self.results = unsaved(self.results, "the save at the session's end failed (see 'files' below)")
            except KeyboardInterrupt:
                session.exitstatus = pytest.ExitCode.INTERRUPTED
                self.notes.append(f"baselines NOT fully written: interrupted while saving under {self.store.folder}; "
                                  "every file there is whole, either as it was or as this run saved it")
                return
        self.notes.extend(write_session_outputs(self.session_results(), self.settings, root))
        fail_on_unwritten(session, self.notes)


def _check_cache(items: list[pytest.Item]) -> None:
    from modelperf.config import SettingError
    from modelperf.pytest.preflight import check_cache_folder

    if models_needed(items):
        try:
            check_cache_folder()
        except SettingError as exc:
            raise pytest.UsageError(str(exc)) from None


def _role(item: pytest.Item, options: Any) -> str | None:
    """The marker's ``role`` with the test's parameters filled in (``"{name}:load"``), or None."""
    role: str | None = getattr(options, "role", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    try:
        return None if role is None else role.format(**params)
    except (KeyError, IndexError, ValueError):
        raise MarkerError(f"{item.nodeid}: role={role!r} names a parameter the test does not have "
                          f"({', '.join(params) or 'it has none'}).") from None


def _result(measurement: Measurement, line: str, verdict: str = RECORDED, baseline: float | None = None, *,
            ratio: float | None = None, drift: float | None = None, p_value: float | None = None,
            section: str | None = None) -> TestResult:
    return TestResult(measurement, line, verdict, baseline, ratio, drift, p_value, section, os.getpid())
