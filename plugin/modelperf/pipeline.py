"""One session's pipeline: measure -> judge -> store -> report, knowing nothing of pytest.

The pytest hooks (:mod:`modelperf.pytest.session`) translate pytest's events into calls on a
:class:`SessionPipeline`: :meth:`~SessionPipeline.begin` at the start, :meth:`~SessionPipeline.instrument`
and :meth:`~SessionPipeline.judged` around each test, :meth:`~SessionPipeline.collect` for each
test's report (in the process that reports), :meth:`~SessionPipeline.finish` at the end. An
``--against`` worker process runs the same pipeline with no store, under a :class:`RunPlan` it sets
for each run with :meth:`~SessionPipeline.planned`; the controller judges the two sides' figures
with the same judge (:mod:`modelperf.judge`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelperf.config import Settings, check_output_files
from modelperf.markers import LatencyOptions
from modelperf.measure.instrument import Instrument, MeasureContext, RunPlan, Target, create
from modelperf.models.base import Model
from modelperf.models.registry import ModelRegistry
from modelperf.records import Measurement, SessionResults, TestResult
from modelperf.store.baselines import BaselineError, BaselineStore
from modelperf.vocab import Kind, Verdict

if TYPE_CHECKING:
    from modelperf import decide
    from modelperf.judge import Reference, Rules

__all__ = ["Finished", "SessionPipeline", "SetupError", "unsaved"]


class SetupError(Exception):
    """The session cannot start as configured; the message is one sentence naming the fix."""


@dataclass(frozen=True)
class Finished:
    """What the end of a session did: how many files it owed could not be written, and whether a
    Ctrl-C stopped its save (the notes, for the summary, are the pipeline's ``notes``)."""

    failed_writes: int = 0
    interrupted: bool = False


# The per-test lines that announce a save at the session's end (store/baselines.py).
_PROMISES = ("saved as the new baseline", "recorded this run as its baseline")


def unsaved(results: Sequence[TestResult], why: str) -> list[TestResult]:
    """``results`` with each line that promised a save replaced by one that says it did not happen."""
    out = []
    for result in results:
        for promise in _PROMISES:
            if promise in result.line:
                line = result.line.split(promise, 1)[0] + f"NOT saved as a baseline: {why}"
                result = replace(result, judgement=replace(result.judgement, line=line))
        out.append(result)
    return out


class SessionPipeline:
    """The state of one ``--benchmark`` session: settings, models, baselines and the results so far."""

    def __init__(self, settings: Settings, root: Path, *, worker: bool = False) -> None:
        self.settings = settings
        self.root = root
        self.worker = worker  # an --against worker: measures for a controller, stores and writes nothing
        self.models = ModelRegistry(settings)
        self.results: list[TestResult] = []
        self.model_info: dict[str, dict[str, Any]] = {}
        self.machine: dict[str, Any] = {}
        self.hardware_id = ""
        self.environment: dict[str, Any] = {}  # library versions and threads, stored with each record
        self.notes: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.commit: str | None = None
        self.dirty = False
        self.against: str | None = None  # the base side's label, once an --against session has one
        self._store: BaselineStore | None = None
        self._spreads: decide.SpreadTable | None = None
        fixed = settings.malloc_thresholds == "fixed"
        # Under --against both sides run the same tests in the same order: no settling needed.
        self._context = MeasureContext(root / ".modelperf" / "captures", settings.keep_captures,
                                       RunPlan(remeasure_busy=not worker), fixed_malloc=fixed,
                                       settle_malloc=not fixed and not self.side_by_side)

    # ------------------------------------------------------------------ start
    def _rules(self, current: Measurement, reference: Measurement | None) -> Rules:
        # The judge (numpy, scipy) loads with the first figure, not with a plain `pytest` run's plugin.
        from modelperf.judge import Rules

        stored = current.kind in (Kind.LATENCY, Kind.LOAD) and reference is not None and self._store is not None
        return Rules(spreads=self._spread_table() if stored else None)

    def _spread_table(self) -> decide.SpreadTable:
        """Each stored latency or load comparison's between-session spread: the one set, or per test from
        the history (read once, with the session's first such comparison)."""
        if self._spreads is None:
            from modelperf import decide
            from modelperf.store.history import HistoryError
            from modelperf.store.spreads import read_spreads

            settings = self.settings
            if "session_spread" in settings.explicit:
                self._spreads = decide.SpreadTable(configured=settings.session_spread)
                return self._spreads
            try:
                history = read_spreads(settings.history, self.hardware_id)
            except HistoryError as exc:
                history = None
                self.notes.append(f"between-session spreads: {exc} Stored comparisons used the defaults.")
            self._spreads = decide.SpreadTable(default=settings.session_spread, history=history)
        return self._spreads

    @property
    def side_by_side(self) -> bool:
        """The two sides of --against are compared with each other, never with stored baselines."""
        return self.worker or bool(self.settings.against)

    def begin(self) -> None:
        """Read the machine, open this hardware's baselines and check the output paths; SetupError if unusable."""
        from modelperf.models.base import ModelUnavailable
        from modelperf.store.comparable import run_environment
        from modelperf.store.hardware import KEY_FIELDS, hardware_id, machine_info

        self.machine = machine_info()
        self.machine["allocator"] = self._allocator_line()
        self.environment = run_environment(self.machine, self.settings.distilbert_threads, self.settings.llama_threads)
        try:
            self.hardware_id = hardware_id(self.machine, self.settings.baseline_key or KEY_FIELDS)
            if not self.side_by_side:
                self._store = BaselineStore(self.settings.baseline_dir, self.hardware_id)
                self._store.check_folder(saving=self.settings.baseline_save)
                self._store.load()
                self.notes.extend(filter(None, [self._store.adopt_old_folders(self.machine)]))
            check_output_files(self.settings)
            if not self.side_by_side:
                self.models.check_explicit()
        except (BaselineError, ValueError, ModelUnavailable) as exc:
            raise SetupError(str(exc)) from None

    def _allocator_line(self) -> str:
        """What serves malloc while latency is measured, for the reports and each stored record."""
        from modelperf.measure.allocator import describe_allocator

        context = self._context
        return describe_allocator(self.settings.malloc_thresholds, settle=context.settle_malloc).line()

    def plan_probes(self, needed: Sequence[str]) -> list[Any]:
        """The probes ``probe_models`` will run: everything they import is imported here, before they start."""
        return self.models.probe_requests(needed)

    def probe_models(self, requests: list[Any], timeout: float) -> list[Any]:
        """Try each model in a child process before this process loads it; the probes' lines join the summary."""
        results = self.models.probe(requests, timeout)
        section = self.sections.setdefault("modelperf: model probes", [])
        for result in results:
            section.append(result.line())
            if result.system_info:
                self.machine["llama_cpp_system_info"] = result.system_info
        return list(results)

    # ------------------------------------------------------------------ one test
    @contextmanager
    def planned(self, plan: RunPlan) -> Iterator[None]:
        """Run the tests inside the block under ``plan`` (an --against worker's run of several)."""
        previous = self._context
        self._context = replace(previous, plan=plan)
        try:
            yield
        finally:
            self._context = previous

    def instrument(self, marker: str, target: Target) -> Instrument:
        """A new instrument of ``marker`` for one test, with this session's context."""
        return create(marker, target, self._context)

    def judged(self, instrument: Instrument, measurements: Sequence[Measurement], role: str | None) -> list[TestResult]:
        """Judge each figure ``instrument`` measured against this session's reference for it."""
        from modelperf.judge import judge

        results = []
        for current in measurements:
            current = replace(current, role=role) if role is not None else current
            reference = self._reference(current)
            comparison = None
            options = instrument.target.options
            if current.kind is Kind.LATENCY and reference.figure is not None:
                assert isinstance(options, LatencyOptions)
                current, comparison = self._confirmed_latency(instrument, current, reference.figure, options)
            result = judge(current, reference, options, self._rules(current, reference.figure), comparison)
            if current.kind is Kind.LOAD and result.regressed and reference.figure is not None:
                result = self._confirmed_load(instrument, result, reference)
            section = instrument.after_verdict(result)
            results.append(replace(result, section=section) if section else result)
        return results

    def _confirmed_latency(self, instrument: Instrument, current: Measurement, baseline: Measurement,
                           options: LatencyOptions) -> tuple[Measurement, decide.LatencyComparison]:
        """The comparison of a latency figure, re-measured first when it looks worse (decide.should_confirm)."""
        from modelperf import decide
        from modelperf.judge import latency_comparison

        rules = self._rules(current, baseline)
        comparison = latency_comparison(current, baseline, options, rules)
        if decide.should_confirm(comparison):
            pooled = instrument.remeasure(current)
            if pooled is not None:
                current = pooled
                comparison = decide.confirm(comparison, latency_comparison(pooled, baseline, options, rules))
        return current, comparison

    def _confirmed_load(self, instrument: Instrument, first: TestResult, reference: Reference) -> TestResult:
        """A load figure that looks worse is run once more and judged on both runs' requests together."""
        from modelperf.judge import judge

        pooled = instrument.remeasure(first.measurement)
        if pooled is None:
            return first
        again = judge(pooled, reference, instrument.target.options, self._rules(pooled, reference.figure))
        line = f"{again.line} [re-measured: a second run, judged on both runs' requests]"
        return replace(again, judgement=replace(again.judgement, line=line))

    def _reference(self, current: Measurement) -> Reference:
        from modelperf.judge import Reference

        if self._store is None:
            return Reference(None, "measured for --against")
        baseline, note = self._store.baseline_for(current, saving=self.settings.baseline_save,
                                                  environment=self.environment,
                                                  across=self.settings.compare_across or ())
        return Reference(baseline, note)

    def remember_models(self, models: Mapping[str, Model]) -> None:
        for name, model in models.items():
            self.model_info[name] = model.info.as_dict()

    def collect(self, results: Sequence[TestResult], models: Mapping[str, Any],
                lines: Sequence[tuple[str, str]]) -> None:
        """A test's report arrived (in the process that reports): keep its results and summary lines."""
        self.results.extend(results)
        self.model_info.update({k: dict(v) for k, v in models.items()})
        for section, line in lines:
            found = self.sections.setdefault(section, [])
            if line not in found:  # a set-up note comes with every test it applies to: keep it once
                found.append(line)

    def session_results(self) -> SessionResults:
        """What the reports and writers get: a frozen copy of the session's results so far."""
        return SessionResults(tuple(self.results), dict(self.model_info), dict(self.machine), self.hardware_id,
                              tuple(self.notes), {k: tuple(v) for k, v in self.sections.items()}, self.commit,
                              self.dirty, self.against)

    # ------------------------------------------------------------------ end
    def finish(self, commit: str | None, dirty: bool) -> Finished:
        """Save new or replaced baselines and write the session's outputs; say what was written."""
        self.commit, self.dirty = commit, dirty
        if self._store is None:  # --against: nothing stored; history only when asked for by name
            explicit = "history" in self.settings.explicit
            settings = self.settings if explicit else replace(self.settings, history=None)
            return Finished(self._write_outputs(settings))
        store = self._store
        self.results, compared_across = store.name_environments(
            self.results, environment=self.environment, across=self.settings.compare_across or ())
        self.notes.extend(compared_across)
        failed = 0
        to_save = [r.measurement for r in self.results
                   if self.settings.baseline_save or r.verdict is Verdict.RECORDED]
        if to_save:
            try:
                # Only --baseline-save replaces a stored record; a partial run never removes one.
                diff = store.save(to_save, machine=self.machine, commit=commit, dirty=dirty,
                                  overwrite=self.settings.baseline_save, environment=self.environment)
                self.notes.extend(diff.lines())
                self.notes.append(f"baselines written under {self.settings.baseline_dir / self.hardware_id}: "
                                  "review the JSON diff and commit it")
            except BaselineError as exc:
                failed = 1
                self.notes.append(f"baselines NOT written: {exc}")
                self.results = unsaved(self.results, "the save at the session's end failed (see 'files' below)")
            except KeyboardInterrupt:
                self.notes.append(f"baselines NOT fully written: interrupted while saving under {store.folder}; "
                                  "every file there is whole, either as it was or as this run saved it")
                return Finished(failed, interrupted=True)
        return Finished(failed + self._write_outputs(self.settings))

    def _write_outputs(self, settings: Settings) -> int:
        """Write the session's files; their lines join the notes; how many could not be written."""
        from modelperf.report.outputs import write_session_outputs

        written = write_session_outputs(self.session_results(), settings, self.root)
        self.notes.extend(note.line for note in written)
        return sum(note.failed for note in written)
