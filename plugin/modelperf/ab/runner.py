"""Runs ``--against``'s tests on both sides' worker processes and turns the replies into results.

:class:`AgainstRunner` owns the workers: ``processes`` long-lived ones per side for latency and
accuracy, and a fresh one per side for each peak-memory test. :meth:`AgainstRunner.measure` runs one
test and returns a :class:`~modelperf.ab.outcome.TestOutcome`: what the test's report says (passed,
failed or skipped, and why) and its results. A side that cannot start, a worker that dies, a test
that fails or exists on one side only: each becomes one sentence in the outcome, and the other
side's figures are kept. Reading the replies is :mod:`modelperf.ab.outcome`'s. A load test runs on
process 0 of each side (its servers live there), its phases taking turns ABBA, each phase after the
first on a fresh server process. Memory and accuracy tests run on both sides at once where the cores
hold both sides' threads (``concurrent_untimed``): their figures are no times.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from modelperf import decide
from modelperf.ab.forkserver import preload_for, preloadable
from modelperf.ab.outcome import (
    RULES,
    TestOutcome,
    first_line,
    measurements,
    not_compared,
    outcome_of,
    pooled_sides,
    seconds_per_call,
)
from modelperf.ab.plan import LOAD_SHARE, blocks, phase_turns
from modelperf.ab.workers import Reply, SideSpec, Worker, WorkerDied, run_at_once
from modelperf.forking.server import ForkServer, ForkServerError
from modelperf.judge import AGAINST_MIN_EFFECT, Reference, judge, latency_comparison
from modelperf.markers import MARKERS, LatencyOptions, MarkerOptions
from modelperf.processes import interrupt_deferred
from modelperf.vocab import Verdict

__all__ = ["UNTIMED", "AgainstRunner"]

# The markers whose figures are no time: a test with only these may run on both sides at once.
UNTIMED = frozenset({"accuracy", "peak_memory"})


class AgainstRunner:
    """Both sides' workers, and the measuring of one test on them."""

    def __init__(self, change: SideSpec, base: SideSpec | None, processes: int, ref: str,
                 progress: Callable[[str], None], fork: bool = True, models: Sequence[str] = (),
                 control: Sequence[str] = ("torch",), concurrent_untimed: bool = False,
                 budget: float = 0.0) -> None:
        self.specs = {"change": change, **({"base": base} if base is not None else {})}
        self.processes = processes
        self.ref = ref
        self.progress = progress
        self.workers: dict[str, list[Worker | None]] = {side: [None] * processes for side in self.specs}
        self.problems: dict[str, str] = {}  # side -> why it cannot be measured
        self.import_errors: dict[str, str] = {}  # side -> its collection errors, when some test file failed
        self.tests: dict[str, tuple[str, ...]] = {}
        self._fault: str | None = None  # the base side's fault in the test being measured
        self._fork = fork
        self._models = tuple(models)  # the models the selected tests load: their libraries are preloaded
        self._control = tuple(control)  # the control workload's libraries, where a selected test times it: preloaded
        self.server: ForkServer | None = None  # every worker of both sides is forked from it, when it runs
        self.concurrent_untimed = concurrent_untimed  # memory and accuracy: both sides at once (docstring)
        self.budget = budget  # seconds a latency test's blocks may take (--against-budget; 0: no limit)

    # ------------------------------------------------------------------ workers
    def _start_server(self) -> None:
        """The session's fork server, when asked for; a server that cannot start leaves each worker to start alone."""
        if not self._fork:
            return
        change = self.specs["change"]
        # A module of the project itself is imported by each side from its own tree, never preloaded.
        roots = [Path(root) for spec in self.specs.values() for root in spec.source_roots] or [change.root]
        with interrupt_deferred():  # a Ctrl-C waits until the started server is kept, so close() ends it
            modules = preload_for(self._models, self._control)
            self.server = ForkServer(preloadable(roots, modules), change.log_dir / "fork-server.log")
        try:
            self.server.wait_ready()
        except ForkServerError as exc:
            self.progress(f"{exc}; starting each worker as a fresh interpreter instead")
            self._close_server(urgent=True)

    def _close_server(self, urgent: bool = False) -> None:
        if self.server is not None:
            if urgent:
                self.server.process.kill()
            self.server.close()
            self.server = None

    def _new_worker(self, side: str, index: int, preload: bool = True) -> Worker:
        try:
            return Worker(self.specs[side], index, preload=preload, server=self.server)
        except ForkServerError as exc:
            self.progress(f"{exc}; starting each worker as a fresh interpreter from now on")
            self._close_server(urgent=True)
            return Worker(self.specs[side], index, preload=preload)

    def start(self) -> None:
        """Start every long-lived worker at once (their imports and loads overlap), then wait for all."""
        self._start_server()
        for side in self.specs:
            for index in range(self.processes):  # kept as soon as started, so close() reaches every one
                # Long-lived workers load their models while the others start: all at once, not one
                # after another inside the first test of each model (12 serial loads: about a minute).
                with interrupt_deferred():  # a Ctrl-C waits until the started process is kept
                    self.workers[side][index] = self._new_worker(side, index)
        for side in list(self.specs):
            for index, worker in enumerate(self.workers[side]):
                assert worker is not None
                try:
                    worker.wait_ready()
                except WorkerDied as exc:
                    self.problems.setdefault(side, str(exc))
                    worker.close()
                    self.workers[side][index] = None
                    continue
                self.tests.setdefault(side, worker.tests)
                if worker.errors and side not in self.problems:
                    self.import_errors[side] = "; ".join(worker.errors[:3])
                    self.problems[side] = (f"the {side} side's tests failed to import ({self.import_errors[side]}); "
                                           "its figures for those files are missing: see the worker logs")
            if side in self.problems and all(w is None for w in self.workers[side]):
                self.specs.pop(side)

    def _worker(self, side: str, index: int) -> Worker:
        worker = self.workers[side][index]
        if worker is None or worker.process.poll() is not None:
            if worker is not None:
                worker.close()  # its pipes
            with interrupt_deferred():
                worker = self.workers[side][index] = self._new_worker(side, index)  # a dead one's
            worker.wait_ready()
        return worker

    def _run(self, side: str, index: int, test_id: str, scale: float) -> Reply:
        try:
            return self._worker(side, index).run(test_id, scale)
        except WorkerDied as exc:
            self._forget(side, index)
            return Reply(test_id, "died", str(exc))

    def close(self, urgent: bool = False) -> None:
        """Stop every worker: asked to finish, or killed at once when ``urgent`` (an interrupted session).

        All are asked first and waited for after, so a dozen workers end together, not one by one.
        """
        alive = [worker for workers in self.workers.values() for worker in workers if worker is not None]
        for worker in alive:
            if urgent:
                worker.kill()
            worker.quit()
        for worker in alive:
            worker.close()
        self._close_server(urgent)

    # ------------------------------------------------------------------ one test
    def has(self, side: str, test_id: str) -> bool:
        return side in self.specs and test_id in self.tests.get(side, ())

    def measure(self, test_id: str, markers: Mapping[str, MarkerOptions], explicit_min_effect: bool) -> TestOutcome:
        """Run ``test_id`` on both sides as its ``markers`` need, and judge it."""
        self._fault = None
        outcome = self._measure(test_id, markers, explicit_min_effect)
        if self._fault is not None and any(r.verdict is Verdict.NOT_COMPARED for r in outcome.results):
            outcome.base_fault = self._fault
        return outcome

    def _measure(self, test_id: str, markers: Mapping[str, MarkerOptions], explicit_min_effect: bool) -> TestOutcome:
        if not markers:  # a plain test: the change must pass it; it has no figures to compare
            reply = self._run("change", 0, test_id, 1.0)
            outcome = outcome_of(reply)
            if outcome.outcome == "passed":  # a figure it measured anyway is listed, never dropped in silence
                outcome.results = [not_compared(m, "not compared: the test has no modelperf marker, so "
                                                    "--against ran it on this side only")
                                   for m in measurements(reply)]
            return outcome
        untimed = self.concurrent_untimed and set(markers) <= UNTIMED
        if "peak_memory" in markers:
            replies = self._fresh(test_id, at_once=untimed)
        elif "latency" in markers:
            return self._latency(test_id, markers["latency"], explicit_min_effect)
        elif "load" in markers and self.has("base", test_id):
            return self._load(test_id, markers)
        else:
            replies = self._on_both(test_id, at_once=untimed)
        return self._judged(test_id, replies, markers)

    def _sides(self, test_id: str) -> list[str]:
        return ["base", "change"] if self.has("base", test_id) else ["change"]

    def _on_both(self, test_id: str, at_once: bool) -> dict[str, Reply]:
        """Run a test once on each side's first long-lived worker, both at once when ``at_once``."""
        if not at_once:
            return {side: self._run(side, 0, test_id, 1.0) for side in self._sides(test_id)}
        workers: dict[str, Worker | Reply] = {}
        for side in self._sides(test_id):
            try:
                workers[side] = self._worker(side, 0)
            except WorkerDied as exc:
                self._forget(side, 0)
                workers[side] = Reply(test_id, "died", str(exc))
        return self._together(test_id, workers, fresh=False)

    def _fresh(self, test_id: str, at_once: bool) -> dict[str, Reply]:
        """Run a test in a new process of each side (memory: no earlier test's allocations in the figure)."""
        if not at_once:
            return {side: self._together(test_id, self._fresh_workers(test_id, [side]), fresh=True)[side]
                    for side in self._sides(test_id)}
        return self._together(test_id, self._fresh_workers(test_id, self._sides(test_id)), fresh=True)

    def _fresh_workers(self, test_id: str, sides: Sequence[str]) -> dict[str, Worker | Reply]:
        """A new worker per side, all started before any is waited for; a Reply for one that could not start."""
        started: dict[str, Worker] = {}
        workers: dict[str, Worker | Reply] = {}
        try:
            for side in sides:
                with interrupt_deferred():
                    started[side] = self._new_worker(side, self.processes, preload=False)  # log: the next fresh one's
            for side, worker in started.items():
                try:
                    worker.wait_ready()
                    workers[side] = worker
                except WorkerDied as exc:
                    worker.close()
                    workers[side] = Reply(test_id, "died", str(exc))
        except BaseException:  # a Ctrl-C while they start: none outlives the session
            for worker in started.values():
                worker.close()
            raise
        return workers

    def _together(self, test_id: str, workers: Mapping[str, Worker | Reply], fresh: bool) -> dict[str, Reply]:
        """:func:`run_at_once` on these workers; a fresh one is closed after its run, a long-lived one that
        died is forgotten (the next test starts another)."""
        try:
            replies = run_at_once(test_id, workers)
        finally:
            if fresh:
                for worker in workers.values():
                    if isinstance(worker, Worker):
                        worker.close()
        for side, reply in replies.items():
            if not fresh and reply.outcome == "died" and isinstance(workers[side], Worker):
                self._forget(side, 0)
        return replies

    def _missing_base(self, test_id: str) -> str:
        if "base" not in self.specs:
            self._fault = f"not compared: {self.problems.get('base', 'the base side could not start')}"
            return self._fault
        if "base" in self.import_errors:  # absent from the base's collection, perhaps only because of that
            self._fault = ("not compared: not collected on the base side, where tests failed to import "
                           f"({self.import_errors['base']})")
            return self._fault
        return f"new test: not in {self.ref}, so nothing to compare with"

    def _base_failed(self, reply: Reply) -> str:
        if reply.outcome == "died":
            self._fault = f"not compared: {reply.longrepr}"
        elif reply.outcome == "missing":
            self._fault = f"not compared: the base side ({self.ref}) did not collect this test"
        else:
            self._fault = (f"not compared: the test {reply.outcome} on the base side ({self.ref}): "
                           f"{first_line(reply.longrepr)}")
        return self._fault

    def _judged(self, test_id: str, replies: Mapping[str, Reply], markers: Mapping[str, MarkerOptions]) -> TestOutcome:
        outcome = outcome_of(replies["change"])
        if outcome.outcome != "passed":
            return outcome
        base = replies.get("base")
        base_problem = self._missing_base(test_id) if base is None else (
            None if base.outcome == "passed" else self._base_failed(base))
        base_figures = {} if base is None or base_problem else {(m.kind, m.metric): m for m in measurements(base)}
        for change in measurements(replies["change"]):
            found = base_figures.get((change.kind, change.metric))
            options = markers.get(change.kind.value) or MARKERS[change.kind.value]()
            why = "" if found is not None else (base_problem or f"not compared: the base side has no {change.metric}")
            outcome.results.append(judge(change, Reference(found, why), options, RULES))
        return outcome

    # ------------------------------------------------------------------ latency, in blocks
    def _latency(self, test_id: str, options: MarkerOptions, explicit: bool) -> TestOutcome:
        assert isinstance(options, LatencyOptions)
        if not explicit:
            options = replace(options, min_effect=AGAINST_MIN_EFFECT)
        scale = 1.0 / self.processes
        if not self.has("base", test_id):
            reply = self._run("change", 0, test_id, scale)
            outcome = outcome_of(reply)
            if outcome.outcome == "passed":
                outcome.results = [not_compared(m, self._missing_base(test_id)) for m in measurements(reply)]
            return outcome
        runs: dict[str, list[Reply]] = {"base": [], "change": []}
        design = decide.Design(self.processes, options.alpha)
        comparison, sides = None, None
        block, seconds = 0, []
        while block < design.max_blocks:
            # Block k runs process k % processes of each side; every other pass mirrors the ABBA order.
            index, order = blocks(self.processes, mirrored=(block // self.processes) % 2 == 1)[block % self.processes]
            started = time.monotonic()
            failed = self._block(test_id, scale, runs, index, order)
            if failed is not None:
                return failed
            block += 1
            seconds.append(time.monotonic() - started)
            if not all(measurements(runs[side][-1]) for side in runs):
                break  # a run measured nothing (benchmark() not called there): no verdict, however many follow
            if block < design.first_look:
                continue
            if block == design.first_look:
                # The cap is fixed here, before the first look (none can alarm before the first pass ends).
                # The first block does not price a pass: it alone warms up and chooses the rounds the
                # others reuse (Llama prefill 512: 35 s, then about 28 s a block).
                design = self._budgeted(test_id, design, statistics.median(seconds[1:]))
            sides = pooled_sides(runs, options, self.ref, self.processes, design.passes)
            if sides is None:
                break
            comparison = latency_comparison(sides[1], sides[0], options, RULES)
            if comparison.look is None or comparison.look.final:
                break
            if block % self.processes == 0:
                self.progress(f"{test_id}: x{comparison.ratio:.3f} after {block} of up to {design.max_blocks} "
                              "blocks, a close call; measuring more before the verdict")
        outcome = outcome_of(runs["change"][0])
        outcome.lines = [line for reply in runs["change"] for line in reply.lines]
        if comparison is None or sides is None:  # some run measured nothing (benchmark() not called there)
            measured = [m for reply in runs["change"] for m in measurements(reply)][:1]
            outcome.results = [not_compared(m, "not compared: a run of this test on one side measured no "
                                                "latency (was benchmark() called every time?)") for m in measured]
            return outcome
        base, change = sides
        outcome.results = [judge(change, Reference(base), options, RULES, comparison)]
        return outcome

    def _budgeted(self, test_id: str, design: decide.Design, block_seconds: float) -> decide.Design:
        """``design`` with the passes that fit ``--against-budget``, a pass priced at ``processes``
        blocks of ``block_seconds``; said once where that is fewer than the design's cap."""
        pass_seconds = block_seconds * self.processes
        passes = decide.passes_within(self.budget, pass_seconds)
        if passes < design.passes:
            self.progress(f"{test_id}: a pass over the {self.processes} processes takes about {pass_seconds:.0f} s, so "
                          f"a close call gets at most {passes} of {design.passes} passes (--against-budget "
                          f"{self.budget:g} s); its stated power says what that can see")
        return replace(design, passes=passes)

    def _block(self, test_id: str, scale: float, runs: dict[str, list[Reply]], index: int,
               order: tuple[str, str]) -> TestOutcome | None:
        """Run one block into ``runs``; an outcome (a failure, a skip) ends the test early."""
        replies = self._paced(test_id, scale, index, order, seconds_per_call(runs))
        for side in order:
            runs[side].append(replies[side])
        change, base = runs["change"][-1], runs["base"][-1]
        if change.outcome != "passed":
            return outcome_of(change)
        if base.outcome != "passed":
            outcome = outcome_of(change)
            outcome.results = [not_compared(m, self._base_failed(base)) for m in measurements(change)]
            return outcome
        return None

    def _paced(self, test_id: str, scale: float, index: int, order: Sequence[str],
               seconds_per_call: float | None = None, turns: Iterator[str] | None = None) -> dict[str, Reply]:
        """One block: process ``index`` of each side runs the test, the two taking turns on the machine.

        Only one of the pair runs at any moment: the controller hands the turn to the other side each
        time a run says it has had its turn (about one timed round, or one phase of a load test; see
        :mod:`modelperf.pytest.worker`), in ``order``'s order or as ``turns`` go, until both runs have
        replied. A side that dies leaves the other to finish alone.
        """
        replies: dict[str, Reply] = {}
        started: set[str] = set()
        turns = turns or itertools.cycle(order)
        while len(replies) < len(order):
            side = next(turns)
            if side in replies:
                continue
            try:
                if side in started:
                    worker = self.workers[side][index]
                    assert worker is not None
                    worker.proceed()
                else:
                    worker = self._worker(side, index)
                    worker.begin(test_id, scale, paced=True, seconds_per_call=seconds_per_call)
                    started.add(side)
                reply = worker.wait_turn()
            except WorkerDied as exc:
                self._forget(side, index)
                reply = Reply(test_id, "died", str(exc))
            if reply is not None:
                replies[side] = reply
        return replies

    # ------------------------------------------------------------------ load, in phases
    def _load(self, test_id: str, markers: Mapping[str, MarkerOptions]) -> TestOutcome:
        """Both sides' runs of a load test in one block, their phases alternating ABBA, never at once;
        each side's phases are pooled by its own worker, and the two figures judged as any others.
        The change's result keeps when the base's phases ran beside its own (``base_phase_times``) and
        their figures (``base_phase_figures``). Each side sends LOAD_SHARE of the marker's budget."""
        replies = self._paced(test_id, LOAD_SHARE, 0, ("base", "change"), turns=phase_turns())
        outcome = self._judged(test_id, replies, markers)
        base = replies["base"]
        measured = next(iter(measurements(base)), None) if base.outcome == "passed" else None
        if measured is not None:  # what the base's phases ran beside and measured, so a reader can redo the verdict
            kept = {"base_phase_times": measured.info.get("phase_times"),
                    "base_phase_figures": list(measured.load.phase_figures) if measured.load else []}
            outcome.results = [replace(r, measurement=replace(r.measurement, info={**r.measurement.info, **kept}))
                               for r in outcome.results]
        return outcome

    def _forget(self, side: str, index: int) -> None:
        """Drop a dead worker; the next run of this process index starts a new one."""
        dead = self.workers[side][index]
        if dead is not None:
            dead.close()
        self.workers[side][index] = None
