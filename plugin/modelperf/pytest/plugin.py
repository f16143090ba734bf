"""The pytest face of modelperf: options, markers, fixtures and the end-of-session summary.

This module stays thin: it registers what pytest needs and hands everything else to the
:class:`~modelperf.pytest.session.SessionHooks`, which it registers as a plugin under :data:`PLUGIN_NAME`.
Importing it imports neither torch nor llama_cpp; models load lazily in their fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from modelperf.config import OPTIONS, SettingError, Settings
from modelperf.markers import MARKERS, marker_help
from modelperf.models.base import Model, ModelUnavailable
from modelperf.pytest.ending import END_GUARD_NAME, EndGuard
from modelperf.pytest.session import SessionHooks

__all__ = ["BENCHMARK_PLUGIN_NAME", "PLUGIN_NAME", "BenchmarkOverride", "get_hooks"]

PLUGIN_NAME = "modelperf-session"
BENCHMARK_PLUGIN_NAME = "modelperf-benchmark"
# Whether a test's body ran to its end without an error; absent when it was interrupted (Ctrl-C).
_BODY_PASSED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelperf", "model latency, memory and accuracy (pytest-modelperf)")
    for option in OPTIONS:
        where = f"; ini {option.dest}" + (f", env {option.env}" if option.env else "")
        if option.parse is None:
            group.addoption(option.flag, action="store_true", default=False, dest=option.dest,
                            help=f"{option.help} (default: {option.default_text}{where})")
        else:
            group.addoption(option.flag, dest=option.dest, default=None, type=option.parse, metavar=option.metavar,
                            help=f"{option.help} (default: {option.default_text}{where})")
        parser.addini(option.dest, help=option.help, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Before any conftest is read: the rootdir pytest would choose if it knew this plugin's path options."""
    from modelperf.pytest.rootdir import correct_rootdir

    correct_rootdir(early_config, args)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(EndGuard(config), END_GUARD_NAME)
    for name in MARKERS:
        config.addinivalue_line("markers", marker_help(name))
    try:
        settings = Settings.from_pytest_config(config)
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None
    from pathlib import Path

    from modelperf.ab.workers import WORKER_ENV
    from modelperf.pipeline import SessionPipeline

    # An --against worker measures for a controller: no baselines, no probe, no files of its own.
    pipeline = SessionPipeline(settings, Path(str(config.rootpath)), worker=WORKER_ENV in os.environ)
    hooks = SessionHooks(config, pipeline)
    config.pluginmanager.register(hooks, PLUGIN_NAME)
    if pipeline.worker:
        from modelperf.pytest.worker import WorkerLoop

        config.pluginmanager.register(WorkerLoop(pipeline), "modelperf-worker")
    elif settings.against and not hasattr(config, "workerinput"):
        from modelperf.pytest.against import AgainstController

        config.pluginmanager.register(AgainstController(hooks), "modelperf-against")
    # Registered after every entry-point plugin, so this `benchmark` overrides pytest-benchmark's.
    config.pluginmanager.register(BenchmarkOverride(), BENCHMARK_PLUGIN_NAME)


def get_hooks(config: pytest.Config) -> SessionHooks:
    hooks = config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(hooks, SessionHooks), "pytest-modelperf is not configured in this session"
    return hooks


class BenchmarkOverride:
    """Holds the plugin's own ``benchmark`` fixture, built on pytest-benchmark's."""

    @pytest.fixture
    def benchmark(self, request: pytest.FixtureRequest, benchmark: Any) -> Any:
        """pytest-benchmark's ``benchmark``; in a ``@pytest.mark.latency`` test it runs the control workload
        between the timed rounds, however the test reaches it (as an argument or through another fixture).
        """
        if request.node.get_closest_marker("latency") is None:
            return benchmark  # requesting our own name gets the fixture we override: pytest-benchmark's
        return get_hooks(request.config).instrument(request.node, "latency").fixture_value(benchmark)


def _unavailable(exc: ModelUnavailable, explicit: bool) -> BaseException:
    """A model the user named, or one that crashed its probe, is an error; a default that cannot be had skips."""
    from modelperf.models.registry import ModelCrashed

    if explicit or isinstance(exc, ModelCrashed):
        return pytest.fail.Exception(str(exc), pytrace=False)
    return pytest.skip.Exception(str(exc), _use_item_location=True)


def _model_fixture(request: pytest.FixtureRequest, name: str) -> Model:
    registry = get_hooks(request.config).pipeline.models
    try:
        return registry.load(name)
    except ModelUnavailable as exc:
        raise _unavailable(exc, registry.explicit(name)) from None


@pytest.fixture(scope="session")
def distilbert(request: pytest.FixtureRequest) -> Model:
    """The session's DistilBERT (``--distilbert-model``, else the embedded MiniLM-based default)."""
    return _model_fixture(request, "distilbert")


@pytest.fixture(scope="session")
def llama(request: pytest.FixtureRequest) -> Model:
    """The session's Llama-family GGUF model (``--llama-model``, else the embedded SmolLM2-135M)."""
    return _model_fixture(request, "llama")


@pytest.fixture
def load_model(request: pytest.FixtureRequest) -> Any:
    """``load_model(name, **overrides)`` loads a *new* instance, e.g. to time or track a cold load."""
    registry = get_hooks(request.config).pipeline.models

    def load(name: str, **overrides: Any) -> Model:
        try:
            return registry.build(name, **overrides)
        except ModelUnavailable as exc:
            raise _unavailable(exc, registry.explicit(name)) from None

    return load


@pytest.fixture
def modelperf_summary(request: pytest.FixtureRequest) -> Any:
    """``modelperf_summary(section, line)`` adds a line to a named section of the end-of-session summary."""
    from modelperf.pytest.session import add_summary_line

    return lambda section, line: add_summary_line(request.node, section, line)


@pytest.fixture(scope="session")
def sentiment_data(request: pytest.FixtureRequest) -> Any:
    """The labelled sentiment set: ``--accuracy-dataset`` or the in-repo 800 sentences (600 train, 200 test)."""
    from modelperf.datasets import DatasetError, embedded_sentiment, load_sentiment

    path = get_hooks(request.config).settings.accuracy_dataset
    try:
        return embedded_sentiment() if path is None else load_sentiment(path)
    except DatasetError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture
def accuracy(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Recorder for ``@pytest.mark.accuracy``: ``accuracy.evaluate(model, data)`` or ``accuracy.record(result)``."""
    from modelperf.pytest.fixtures import AccuracyRecorder

    marker = request.node.get_closest_marker("accuracy")
    instrument = get_hooks(request.config).instrument(request.node, "accuracy")
    recorder = AccuracyRecorder(instrument, request.node)
    yield recorder
    # A body that failed or was interrupted has already said why; "recorded no result" would be a second,
    # misleading error (and outside a test, after Ctrl-C, an internal one).
    if marker is not None and not recorder.recorded and request.node.stash.get(_BODY_PASSED, False):
        pytest.fail(f"{request.node.nodeid}: @pytest.mark.accuracy test recorded no result; call "
                    "accuracy.evaluate(model, data) or accuracy.record(result).", pytrace=False)


def _served(request: pytest.FixtureRequest, name: str) -> Any:
    from modelperf.pytest.serving import get_servers

    hooks = get_hooks(request.config)
    return get_servers(request.config, hooks.settings, hooks.pipeline.root).get(name)


@pytest.fixture(scope="session")
def llama_server(request: pytest.FixtureRequest) -> Any:
    """The Llama model behind llama-cpp-python's OpenAI-compatible server (own process, the `llama` fixture's
    settings), or behind ``--serving-url``; hand it to ``load.run(...)``."""
    return _served(request, "llama")


@pytest.fixture(scope="session")
def distilbert_server(request: pytest.FixtureRequest) -> Any:
    """DistilBERT behind the dynamic-batching classification service (own process), or behind
    ``--classifier-url``; hand it to ``load.run(...)``."""
    return _served(request, "distilbert")


@pytest.fixture
def load(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Runner for ``@pytest.mark.load``: ``load.run(llama_server)`` sends the marker's load and records its figures."""
    from modelperf.pytest.serving import LoadFixture, get_servers

    if request.node.get_closest_marker("load") is None:
        pytest.fail(f"{request.node.nodeid}: the `load` fixture needs @pytest.mark.load(...) on the test, e.g. "
                    "@pytest.mark.load(rate=1.0, duration='20 s').", pytrace=False)
    hooks = get_hooks(request.config)
    instrument = hooks.instrument(request.node, "load")
    runner = LoadFixture(instrument.fixture_value(None), request.node,
                         get_servers(request.config, hooks.settings, hooks.pipeline.root))
    yield runner
    if not runner.ran and request.node.stash.get(_BODY_PASSED, False):
        pytest.fail(f"{request.node.nodeid}: @pytest.mark.load test sent no load; call load.run(llama_server) "
                    "(or another served model).", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call":
        item.stash[_BODY_PASSED] = report.passed
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    from modelperf.report.terminal import terminal_summary

    hooks = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(hooks, SessionHooks) and hooks.settings.benchmark:
        terminal_summary(hooks.pipeline.session_results(), terminalreporter)
