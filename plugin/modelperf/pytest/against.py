"""The controller of ``pytest --benchmark --against REF``.

It collects as usual, then, instead of running the tests here, checks REF out into a temporary
worktree, starts the worker processes of both sides (:class:`~modelperf.ab.runner.AgainstRunner`)
and hands each test to them. Every test still gets its pytest reports (set-up, call, teardown), made
here from the workers' replies the way pytest-xdist's controller does, so the terminal, the exit
status, ``-x``, JUnit XML and the plugin's own summary behave as in a plain session.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import pytest
from _pytest.reports import TestReport

from modelperf.ab.git import AgainstError, BaseTree, changed_dependency_files, check_out, repo_root, source_roots
from modelperf.ab.outcome import TestOutcome
from modelperf.ab.plan import untimed_at_once
from modelperf.ab.runner import AgainstRunner
from modelperf.ab.workers import SideSpec
from modelperf.config import OPTIONS, Settings
from modelperf.markers import MARKERS, MarkerError, MarkerOptions, parse_marker
from modelperf.measure import control
from modelperf.pytest.session import models_needed
from modelperf.utils import physical_cores

__all__ = ["SECTION", "AgainstController"]

SECTION = "modelperf: --against"
# Settings a worker must not inherit: the controller alone compares, stores and writes files.
_NOT_FORWARDED = {"against", "against_budget", "against_processes", "against_start", "benchmark", "baseline_dir", "baseline_save", "baseline_key",
                  "compare_across", "history", "results_json", "summary_markdown", "accuracy_output",
                  "model_probe_timeout"}
_PATH_SETTINGS = {"llama_model", "accuracy_dataset"}  # relative to this directory; workers run elsewhere
# (--distilbert-model is a path when one exists by that name, else a model id of the local cache.)


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _untimed_at_once(settings: Settings) -> bool:
    """Whether memory and accuracy tests run on both sides at once (:func:`modelperf.ab.plan.untimed_at_once`)."""
    return untimed_at_once(max(settings.distilbert_threads, settings.llama_threads), physical_cores())


def _control_needed(items: list[pytest.Item]) -> tuple[str, ...]:
    """The control workload's libraries where a selected latency test times it, for the fork server to
    preload: a test whose one model is Llama times llama.cpp's own control (``choose_control``), a test
    without a latency marker none. Read from the module when asked, as ``choose_control`` reads it: a plugin
    may replace the control workload."""
    for item in items:
        if item.get_closest_marker("latency") is None or item.get_closest_marker("skip") is not None:
            continue
        if models_needed([item]) != ["llama"]:
            return control.control_modules()
    return ()


def _on_side(path: Path, repo: Path | None, side_repo: Path) -> Path:
    """``path`` as it is named in a side's tree: an absolute path inside this repository moves into
    ``side_repo`` (the same file in that side's checkout); relative paths and paths outside stay."""
    if repo is None or not path.is_absolute():
        return path
    try:
        return side_repo / path.resolve().relative_to(repo)
    except ValueError:
        return path


class AgainstController:
    """Registered when ``--against`` is set; ``hooks`` are the session's (its config and pipeline)."""

    def __init__(self, hooks: Any) -> None:
        self.config: pytest.Config = hooks.config
        self.pipeline = hooks.pipeline
        self.settings = hooks.settings
        self.base: BaseTree | None = None
        self.runner: AgainstRunner | None = None
        self.base_problem: str | None = None  # why the base side could not be measured at all
        self.base_faults: list[str] = []  # tests left not compared by a fault on the base side

    def _say(self, line: str, red: bool = False) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if reporter.currentfspath is not None or self.config.option.verbose < 0:
                reporter.write("\n")  # after a file's progress letters (or -q's dots), on a line of its own
                reporter.currentfspath = None
            reporter.write_line(f"modelperf: {line}", red=red, flush=True)

    def _note(self, line: str, red: bool = False) -> None:
        self.pipeline.sections.setdefault(SECTION, []).append(line)
        self._say(line, red)

    # ------------------------------------------------------------------ the two sides
    def _no_base(self, why: AgainstError) -> None:
        self.base_problem = str(why)
        self._note(f"{why} The change's figures are reported alone.", red=True)

    def _worker_args(self, config: pytest.Config, root: Path, repo: Path | None, side_repo: Path) -> tuple[str, ...]:
        """A side's pytest arguments; it runs in ``root``, the invocation directory's place in ``side_repo``."""
        args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--continue-on-collection-errors",
                "--benchmark", "--model-probe-timeout", "0", "--history", "off"]
        for option in OPTIONS:
            given = config.getoption(option.dest)
            if option.dest in _NOT_FORWARDED or given in (None, False):
                continue
            if option.parse is None:
                args.append(option.flag)
                continue
            local = Path(str(config.invocation_params.dir), str(given))
            if option.dest in _PATH_SETTINGS or local.exists():  # a path here means the same file on both sides
                given = local.resolve()
            args += [option.flag, str(given)]
        if config.option.keyword:
            args += ["-k", config.option.keyword]
        if config.option.markexpr:
            args += ["-m", config.option.markexpr]
        # The same rootdir and paths, each in its side's tree, give the same test ids on both sides.
        args.append(f"--rootdir={_on_side(Path(str(config.rootpath)), repo, side_repo)}")
        paths = []
        for arg in config.args:
            path, separator, node = arg.partition("::")
            on_side = _on_side(Path(path), repo, side_repo)
            # A path that does not exist on a side would end its session before it starts: pass those that do.
            if (root / on_side).exists():
                paths.append(on_side.as_posix() + separator + node)
        return (*args, *paths)

    def _sides(self, config: pytest.Config) -> tuple[SideSpec, SideSpec | None, str]:
        here = Path(str(config.invocation_params.dir)).resolve()
        logs = Path(tempfile.mkdtemp(prefix="modelperf-against-logs-"))
        try:
            repo = repo_root(here)
        except AgainstError as exc:
            self._no_base(exc)
            change = SideSpec("change", "working tree", here, (), self._worker_args(config, here, None, here), logs)
            return change, None, str(self.settings.against)
        roots = tuple(source_roots(repo))
        offset = here.relative_to(repo)
        change = SideSpec("change", "working tree", here, tuple(str(repo / r) for r in roots),
                          self._worker_args(config, here, repo, repo), logs)
        try:
            self.base = check_out(repo, str(self.settings.against))
        except AgainstError as exc:
            self._no_base(exc)
            return change, None, str(self.settings.against)
        base_here = self.base.path / offset
        base = SideSpec("base", self.base.label, base_here, tuple(str(self.base.path / r) for r in roots),
                        self._worker_args(config, base_here, repo, self.base.path), logs)
        changed = changed_dependency_files(repo, self.base.sha)
        if changed:
            self._note(f"dependency files differ from {self.base.label} ({', '.join(changed)}); both sides run in "
                       "this environment, so a version change there is not measured")
        return change, base, self.base.label

    # ------------------------------------------------------------------ the session
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly or not session.items:
            return True
        # A cancelled CI job gets SIGTERM: end like Ctrl-C, so the workers stop and the worktree goes.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm) if main else None
        change: SideSpec | None = None
        finished = False
        try:
            change, base, label = self._sides(session.config)
            processes = self.settings.against_processes
            self.pipeline.against = label
            self._say(f"--against {label}: starting {processes} worker processes per side "
                      f"(base in {base.root if base else '-'}; logs in {change.log_dir})")
            self.runner = AgainstRunner(change, base, processes, label, self._say,
                                        fork=self.settings.against_start == "fork",
                                        models=models_needed(session.items), control=_control_needed(session.items),
                                        concurrent_untimed=_untimed_at_once(self.settings),
                                        budget=self.settings.against_budget)
            started = time.monotonic()
            self.runner.start()
            self._say(f"workers ready in {time.monotonic() - started:.0f} s")
            for problem in self.runner.problems.values():
                self._note(problem, red=True)
            if base is not None and "base" not in self.runner.specs:  # every base worker failed to start
                self.base_problem = self.runner.problems.get("base", "the base side could not start")
            if "change" not in self.runner.specs:
                raise session.Failed(self.runner.problems.get("change", "the change side could not start"))
            self._removed(session)
            for index, item in enumerate(session.items):
                self._say(f"[{index + 1}/{len(session.items)}] {item.nodeid} "
                          f"(at {time.monotonic() - started:.0f} s)")
                self._report(item, self._measure(item))
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
            finished = True
        finally:
            try:
                if self.runner is not None:
                    self.runner.close(urgent=not finished)
            finally:
                if self.base is not None:
                    self.base.remove()
                if main:
                    signal.signal(signal.SIGTERM, previous)
            # The workers' logs are kept when something went wrong (the messages point at them).
            troubled = session.testsfailed or self.base_problem or (self.runner is not None and self.runner.problems)
            if change is not None and not troubled:
                shutil.rmtree(change.log_dir, ignore_errors=True)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """A gate that could measure no base compared nothing: the session must not pass. Nor does one
        that left a test not compared because the base side failed it (an import error there, a crash)."""
        if self.base_faults and self.base_problem is None:
            self._note(f"{len(self.base_faults)} test(s) not compared because of the base side "
                       f"({', '.join(self.base_faults[:5])}): the gate did not judge them, so the session fails; "
                       f"fix what fails on {self.runner.ref if self.runner else 'the base side'} or choose another "
                       "--against REF", red=True)
        if (self.base_problem is not None or self.base_faults) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _removed(self, session: pytest.Session) -> None:
        assert self.runner is not None
        here = {item.nodeid for item in session.items}
        gone = [t for t in self.runner.tests.get("base", ()) if t not in here]
        if gone:
            self._note(f"removed since {self.runner.ref} (on the base side only, not compared): {', '.join(gone)}")

    def _measure(self, item: pytest.Item) -> TestOutcome:
        assert self.runner is not None
        markers: dict[str, MarkerOptions] = {}
        explicit_min_effect = False
        for name in MARKERS:
            marker = item.get_closest_marker(name)
            if marker is None:
                continue
            try:
                markers[name] = parse_marker(name, marker.args, marker.kwargs, item.nodeid)
            except (MarkerError, TypeError) as exc:
                return TestOutcome("failed", str(exc))
            explicit_min_effect = explicit_min_effect or (name == "latency" and "min_effect" in marker.kwargs)
        if "accuracy" not in markers and "accuracy" in getattr(item, "fixturenames", ()):
            # An unmarked user of the `accuracy` fixture (a perplexity test) records figures, as in stored mode.
            markers["accuracy"] = parse_marker("accuracy", (), {}, item.nodeid)
        skip = item.get_closest_marker("skip")
        if skip is not None:
            return TestOutcome("skipped", str(skip.kwargs.get("reason", skip.args[0] if skip.args else "skipped")))
        return self.runner.measure(item.nodeid, markers, explicit_min_effect)

    def _report(self, item: pytest.Item, outcome: TestOutcome) -> None:
        if outcome.base_fault is not None:
            self.base_faults.append(item.nodeid)
        hook = item.ihook
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        keywords: dict[str, Literal[1]] = {name: 1 for name in item.keywords}
        if outcome.outcome == "skipped":
            _path, line, _ = item.location
            longrepr: Any = (str(item.path), (line or 0) + 1, f"Skipped: {outcome.longrepr}")
            setup = TestReport(item.nodeid, item.location, keywords, "skipped", longrepr, "setup")
            hook.pytest_runtest_logreport(report=setup)
        else:
            hook.pytest_runtest_logreport(report=TestReport(item.nodeid, item.location, keywords, "passed", None,
                                                            "setup"))
            call = TestReport(item.nodeid, item.location, keywords, "passed", None, "call")
            call.modelperf = [r.to_json() for r in outcome.results]  # type: ignore[attr-defined]
            call.modelperf_models = outcome.models  # type: ignore[attr-defined]
            call.modelperf_lines = outcome.lines  # type: ignore[attr-defined]
            failures = [r for r in outcome.results if r.regressed]
            if outcome.outcome == "failed":
                call.outcome, call.longrepr = "failed", outcome.longrepr
            elif failures:
                call.outcome = "failed"
                call.longrepr = "\n".join(f"{r.measurement.metric}: {r.line}" for r in failures)
            hook.pytest_runtest_logreport(report=call)
            hook.pytest_runtest_logreport(report=TestReport(item.nodeid, item.location, keywords, "passed", None,
                                                            "teardown"))
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
