"""The run state of one pytest session and the hooks that act on it.

The :class:`Manager` measures around marked tests, asks ``decide`` for verdicts against the
baselines, flips the report of a test whose regression is confirmed, and at the end writes
baselines, history and summaries. Results travel on the test reports as JSON-safe dicts
(``report.modelperf``), so the same collection path serves a plain run and the controller of a
pytest-xdist run; only the controller writes baselines and history.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelperf import decide
from modelperf.config import Settings, check_output_files
from modelperf.markers import MARKERS, MarkerError, parse_marker
from modelperf.measure import latency as latency_measure
from modelperf.models.base import Model, ModelUnavailable
from modelperf.records import Kind, Measurement
from modelperf.store.baselines import BaselineError, BaselineStore
from modelperf.units import format_size

__all__ = ["SKIP_WITHOUT_FLAG", "Manager", "model_keys"]

SKIP_WITHOUT_FLAG = "model benchmark test: add --benchmark to run it (plain pytest skips model tests to stay fast)"
SKIP_ON_WORKER = ("latency is not measured in pytest-xdist workers, whose parallel timings are unreliable: "
                  "run latency tests without -n")
MODEL_FIXTURES = ("distilbert", "llama")
# Fixtures that load or measure models: a test using any of them is a model test.
_NEEDS_FLAG = (*MODEL_FIXTURES, "load_model")
_RESULTS = pytest.StashKey[list[dict[str, Any]]]()
_LINES = pytest.StashKey[list[tuple[str, str]]]()
_CAPTURE_DIR = ".modelperf/captures"


def add_summary_line(item: pytest.Item, section: str, line: str) -> None:
    """Queue a line for a summary section; it travels on the report like results do."""
    item.stash.setdefault(_LINES, []).append((section, line))


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


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
        self.results: list[dict[str, Any]] = []
        self.model_info: dict[str, dict[str, Any]] = {}
        self._store: BaselineStore | None = None
        self.machine: dict[str, Any] = {}
        self.hardware_id = ""
        self.notes: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.quietest_control = latency_measure.QuietestControl()

    # ------------------------------------------------------------------ session start
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.settings.benchmark:
            return
        from modelperf.store.comparable import run_environment
        from modelperf.store.hardware import KEY_FIELDS, hardware_id, machine_info
        self.machine = machine_info()
        # Versions and threads travel with each record, not in the folder name: an upgrade is compared.
        self.environment = run_environment(self.machine, self.settings.distilbert_threads, self.settings.llama_threads)
        try:
            self.hardware_id = hardware_id(self.machine, self.settings.baseline_key or KEY_FIELDS)
            self._store = BaselineStore(self.settings.baseline_dir, self.hardware_id)
            self._store.check_folder(saving=self.settings.baseline_save)
            self._store.load()
            self.notes.extend(filter(None, [self._store.adopt_old_folders(self.machine)]))
            check_output_files(self.settings)
        except (BaselineError, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None
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

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        for name in MARKERS:
            marker = item.get_closest_marker(name)
            if marker is not None:
                try:
                    parse_marker(name, marker.args, marker.kwargs, item.nodeid)
                except (MarkerError, TypeError) as exc:
                    raise pytest.fail.Exception(str(exc), pytrace=False) from None
        if item.get_closest_marker("latency") and item.get_closest_marker("peak_memory"):
            pytest.fail(f"{item.nodeid}: latency and peak_memory cannot share a test, because memray's tracing "
                        "slows the timed calls; split it into two tests.", pytrace=False)

    # ------------------------------------------------------------------ measuring
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        results: list[dict[str, Any]] = []
        item.stash[_RESULTS] = results
        if item.get_closest_marker("latency"):
            from modelperf.measure.allocator import steady_malloc

            with steady_malloc() as fixed:
                if fixed:
                    add_summary_line(item, "modelperf: measurement set-up", fixed)
                yield from self._latency(item, results)
        elif item.get_closest_marker("peak_memory"):
            yield from self._memory(item, results)
        else:
            yield

    def _latency(self, item: pytest.Item, results: list[dict[str, Any]]) -> Generator[None, Any, None]:
        from modelperf.measure.control import control_identity, control_threads, control_timer

        marker = item.get_closest_marker("latency")
        assert marker is not None
        options = parse_marker("latency", marker.args, marker.kwargs, item.nodeid)
        funcargs = getattr(item, "funcargs", {})
        if "benchmark" not in funcargs:
            pytest.fail(f"{item.nodeid}: @pytest.mark.latency needs the `benchmark` fixture; add it to the "
                        "test's arguments and time the call with benchmark(...).", pytrace=False)
        models = model_keys(item)
        weights = _control_weights(models)
        timer = control_timer(model_weights=weights)
        timer()  # warm-up: first-call allocations are not the machine's speed
        identity = control_identity(weights)
        floor_key = (control_threads(), identity)
        self.quietest_control.calibrate(floor_key, timer)
        proxy = latency_measure.CapturingBenchmark(funcargs["benchmark"], timer)
        funcargs["benchmark"] = proxy
        try:
            outcome = yield
        finally:
            # pytest-benchmark's own hooks read the fixture later: always hand back the real one.
            funcargs["benchmark"] = proxy.fixture
        if outcome.excinfo is not None:
            return
        current = latency_measure.measurement_from_benchmark(
            proxy.fixture, item.nodeid, tuple(proxy.controls), _model_key(models), options.statistic, identity)
        if current is None:
            return
        self._remember_models(models)
        busy = self.quietest_control.busy_factor(floor_key, current.control)
        if busy > latency_measure.BUSY_LIMIT and proxy.capture.target is not None:
            # Re-measure before comparing or saving; the pooled lower decile keeps the quieter rounds.
            current = latency_measure.pooled(current, latency_measure.remeasure(proxy.capture, timer, current))
            current = replace(current, extra=dict(current.extra, busy_factor=round(busy, 4)))
            add_summary_line(item, "modelperf: re-measured because the machine was busy", (
                f"{item.nodeid}: its control ran x{busy:.2f} slower than this session's quietest"))
        results.append(self._judge_latency(current, options, proxy.capture, timer))

    def _judge_latency(self, current: Measurement, options: Any, capture: Any, timer: Any) -> dict[str, Any]:
        baseline, note = self._baseline_for(current)
        if baseline is None:
            return _result(current, note)
        kwargs = {"min_effect": options.min_effect, "statistic": options.statistic,
                  "direction": options.direction, "alpha": options.alpha}
        comparison = decide.compare_latency(baseline, current, **kwargs)
        if decide.should_confirm(comparison) and capture.target is not None:
            current = latency_measure.pooled(current, latency_measure.remeasure(capture, timer, current))
            comparison = decide.confirm(comparison, decide.compare_latency(baseline, current, **kwargs))
        return _result(current, comparison.line(), comparison.verdict.value, baseline.value,
                       ratio=comparison.ratio, drift=comparison.drift, p_value=comparison.p_value)

    def _memory(self, item: pytest.Item, results: list[dict[str, Any]]) -> Generator[None, Any, None]:
        from modelperf.measure.memory import MemoryTracker

        marker = item.get_closest_marker("peak_memory")
        assert marker is not None
        options = parse_marker("peak_memory", marker.args, marker.kwargs, item.nodeid)
        capture_dir = Path(str(self.config.rootpath)) / _CAPTURE_DIR
        tracker = MemoryTracker(capture_dir, keep_capture=None, label=item.nodeid)
        with tracker:
            outcome = yield
        if outcome.excinfo is not None or tracker.result is None:
            tracker.discard()
            return
        self._remember_models(model_keys(item))
        results.append(self._judge_memory(item, options, tracker))

    def _judge_memory(self, item: pytest.Item, options: Any, tracker: Any) -> dict[str, Any]:
        found = tracker.result
        use_rss = options.figure == "rss"
        value = found.rss_delta_bytes if use_rss else found.memray_peak_bytes
        metric = "rss_delta_bytes" if use_rss else "memray_peak_bytes"
        extra = {"figure": "RSS growth" if use_rss else "memray peak", "memray_peak_bytes": found.memray_peak_bytes,
                 "rss_peak_bytes": found.rss_peak_bytes, "rss_delta_bytes": found.rss_delta_bytes}
        current = Measurement(item.nodeid, Kind.MEMORY, metric, "B", float(value), (float(value),), (),
                              _model_key(model_keys(item)), extra)
        baseline, note = self._baseline_for(current)
        comparison = decide.compare_memory(
            None if baseline is None else baseline.value, float(value),
            rel=options.rel if baseline is not None else None, limit_bytes=options.limit_bytes,
            figure=str(extra["figure"]))
        failed = comparison.verdict is decide.Verdict.REGRESSED
        if failed or self.settings.keep_captures:
            tracker.keep()
        else:
            tracker.discard()
        figures = (f"memray peak {format_size(found.memray_peak_bytes)} (allocated, mapped files whole), "
                   f"RSS peak {format_size(found.rss_peak_bytes)} (+{format_size(found.rss_delta_bytes)} resident "
                   "over the test body)")
        line = f"{comparison.line()} [{figures}]" + ("" if baseline is not None or failed else f"; {note}")
        status = comparison.verdict.value if baseline is not None or failed else "recorded"
        return _result(current, line, status, None if baseline is None else baseline.value,
                       section=tracker.result.section() if failed else None)

    def record_accuracy(self, item: pytest.Item, current: Measurement, options: Any) -> None:
        """Called by the ``accuracy`` fixture when a test hands in its per-example results."""
        baseline, note = self._baseline_for(current)
        n = len(current.samples)
        low, high = decide.wilson_interval(int(sum(current.samples)), n)
        figure = (f"accuracy {current.value:.3f} (95% Wilson {low:.3f}-{high:.3f}, n={n}, "
                  f"{current.extra.get('seconds_per_example', 0.0) * 1e3:.1f} ms/example)")
        if baseline is None:
            entry = _result(current, f"{figure}; {note}")
        else:
            comparison = decide.compare_accuracy(baseline, current, min_drop=options.min_drop,
                                                 min_fraction=options.min_fraction, alpha=options.alpha)
            entry = _result(current, f"{comparison.line()} [{figure}]", comparison.verdict.value, baseline.value,
                            p_value=comparison.p_value)
        self._remember_models(model_keys(item))
        item.stash.setdefault(_RESULTS, []).append(entry)

    def record_perplexity(self, item: pytest.Item, current: Measurement) -> None:
        """Perplexity is deterministic for fixed weights and build, so a plain tolerance decides."""
        baseline, note = self._baseline_for(current)
        if baseline is None:
            entry = _result(current, f"perplexity {current.value:.3f}; {note}")
        else:
            comparison = decide.compare_perplexity(baseline.value, current.value)
            entry = _result(current, comparison.line(), comparison.verdict.value, baseline.value)
        self._remember_models(model_keys(item))
        item.stash.setdefault(_RESULTS, []).append(entry)

    def _baseline_for(self, current: Measurement) -> tuple[Measurement | None, str]:
        """The comparable baseline, or None with the sentence saying why nothing is compared."""
        return self.store.baseline_for(current, saving=self.settings.baseline_save, environment=self.environment,
                                       across=self.settings.compare_across or ())

    def _remember_models(self, models: dict[str, Model]) -> None:
        for name, model in models.items():
            self.model_info[name] = model.info.as_dict()

    # ------------------------------------------------------------------ reporting a test
    @pytest.hookimpl(hookwrapper=True)
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
        report.modelperf = results  # type: ignore[attr-defined]
        report.modelperf_models = dict(self.model_info)  # type: ignore[attr-defined]
        failures = [r for r in results if r["verdict"] == decide.Verdict.REGRESSED.value]
        if failures and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n".join(f"{r['measurement']['metric']}: {r['line']}" for r in failures)
            for entry in failures:
                if entry.get("section"):
                    report.sections.append(("modelperf " + entry["measurement"]["metric"], entry["section"]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.extend(getattr(report, "modelperf", ()))
        self.model_info.update(getattr(report, "modelperf_models", {}))
        for section, line in getattr(report, "modelperf_lines", ()):
            lines = self.sections.setdefault(section, [])
            if line not in lines:  # a set-up note comes with every test it applies to: print it once
                lines.append(line)

    # ------------------------------------------------------------------ session end
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.settings.benchmark or is_worker(self.config) or self._store is None:
            return
        from modelperf.report.outputs import write_session_outputs

        root = Path(str(self.config.rootpath))
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain"))
        self.notes.extend(self.store.name_environments(self.results, environment=self.environment,
                                                       across=self.settings.compare_across or ()))
        to_save = [Measurement.from_json(r["measurement"]) for r in self.results
                   if self.settings.baseline_save or r["verdict"] == "recorded"]
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
            except KeyboardInterrupt:
                session.exitstatus = pytest.ExitCode.INTERRUPTED
                self.notes.append(f"baselines NOT fully written: interrupted while saving under {self.store.folder}; "
                                  "every file there is whole, either as it was or as this run saved it")
                return
        self.notes.extend(write_session_outputs(self, commit, dirty))


def _control_weights(models: dict[str, Model]) -> tuple[Any, ...]:
    """The weights the control walks: those of the test's one torch model, or none (the generic control).

    A test that uses both models keeps the generic control: which model's weights would track it is unclear.
    """
    if len(models) != 1:
        return ()
    offered = getattr(next(iter(models.values())), "control_weights", None)
    return tuple(offered()) if callable(offered) else ()


def _model_key(models: dict[str, Model]) -> str | None:
    return ",".join(model.info.key for model in models.values()) or None


def _result(measurement: Measurement, line: str, verdict: str = "recorded", baseline: float | None = None,
            **figures: Any) -> dict[str, Any]:
    return {"measurement": measurement.to_json(), "line": line, "verdict": verdict, "baseline": baseline,
            **{k: v for k, v in figures.items() if v is not None}, "pid": os.getpid()}
