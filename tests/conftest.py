"""Shared set-up of the plugin's own tests."""

from __future__ import annotations

# Imported before any pytester run, for every test file: pytester drops the modules an inner session
# imported and the next inner session imports them again. Modules with C parts fail the second time:
# SQLAlchemy 2.1 ('InternalTraversal' object is not callable), numpy.fft (pulled in by scipy.stats,
# which the judge imports). Hypothesis's pytest plugin imports hypothesis in every session's summary,
# which costs about a second each time it is not already loaded. httpx maps httpcore's errors to its own
# by class: an httpcore imported again by an inner session raises errors the first httpx cannot map, so a
# refused connection during a server's health check escapes as httpcore.ConnectError.
import contextlib
import os
import signal
import sys
import threading

import hypothesis  # noqa: F401
import pytest
import scipy.stats  # noqa: F401

import modelperf.store.history  # noqa: F401

with contextlib.suppress(ImportError):  # the [serve] extra
    import httpcore  # noqa: F401  (httpx imports it only when its first client is made)
    import httpx  # noqa: F401

# A shell starts a background job (`pytest -n auto &` in a script) with SIGINT ignored, and every process
# inherits that: the sessions that the Ctrl-C tests interrupt would carry on. Tests start their processes
# with Python's usual handler, as a terminal's pytest has.
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# What pytest-xdist sets in each worker's environment. pytest-benchmark disables itself in any session
# that sees PYTEST_XDIST_WORKER, so an inner session (pytester, or a process a test starts) would time
# nothing when this suite runs with `-n`.
_XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")
# Bytecode of the Python processes the tests start (inner sessions, --against workers, servers): with
# PYTHONDONTWRITEBYTECODE set, as on some CI images, each one compiled pytest's rewrite of the plugin
# again, about half a second a process. They write it where Python and pytest always do, beside each
# source: the checkout's `__pycache__/` folders (git ignores them) and the test's own folders. Not under a
# PYTHONPYCACHEPREFIX: an interpreter with a prefix reads bytecode only there, so on an empty one (a fresh
# clone) every started process compiled torch, transformers and scipy from source again (about 7 s of
# CPU each) until the prefix held them; an installed package keeps the bytecode its installer wrote.
# The same in this process: pytester's in-process sessions drop the plugin's modules after each run, and
# the next run imports them again; without written bytecode each import is pytest's assertion rewrite of
# the module from source (every module of the plugin, in each of some 500 inner sessions).
sys.dont_write_bytecode = False
# Plugins that every pytest started here would load from their entry points and that no inner session
# uses: anyio's probes its event-loop backends at start-up, and Hypothesis's imports hypothesis for the
# summary. Together about 0.3 s of CPU per process, and the tests start some hundred pytest processes
# (--against workers and controllers, runpytest_subprocess, xdist workers).
_UNUSED_PLUGINS = "-p no:anyio -p no:hypothesispytest"


# The test files whose tests take seconds each: inner sessions with many processes, real models or
# servers. pytest-xdist hands tests out in collection order, so one of them near the end keeps a worker
# busy while the other has nothing left; collected first, they overlap with the many short tests instead.
# With xdist's default `load` scheduling that backfired: it gives each worker a consecutive chunk of a
# quarter of its share up front, so the first worker got every long file and ran 40 s after the other
# had finished (121 s in all). Work stealing (below) lets the idle worker take half of the busy one's
# queue, so the long files spread over both: 109-111 s.
_LONG_FIRST = ("tests/ab/", "tests/models/test_probe.py", "tests/plugin/test_plugin_load_marker.py",
               "tests/store/test_baselines_concurrency.py", "tests/faults/test_interrupts.py",
               "tests/models/test_distilbert_conversion.py", "tests/serve/test_serve_real.py",
               "tests/report/test_report_browser.py", "tests/store/test_history.py", "tests/plugin/test_plugin_latency.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # each worker collects alike, so they agree on the order
        items.sort(key=lambda item: not item.nodeid.startswith(_LONG_FIRST))  # stable: each file stays whole


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`-n N` alone means xdist's `load`; run it as `worksteal` (see _LONG_FIRST). An explicit other --dist stays."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import WorkStealingScheduling

    return WorkStealingScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    # An xdist worker shares the cores with the other workers (one per core): torch's default of one
    # thread per core then has its OpenMP threads spin, waiting for a peer another worker holds, and
    # with other jobs on the machine a test's CPU time tripled (tests/store/test_schema_steps.py: 17-22 s
    # of CPU, 7.5 s with one thread). Set before torch is first imported (at collection), and inherited
    # by every process the tests start; a benchmark run keeps the machine's own setting.
    if hasattr(config, "workerinput") and not config.getoption("benchmark", False):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _XDIST_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(filter(None, [os.environ.get("PYTEST_ADDOPTS"), _UNUSED_PLUGINS])))

