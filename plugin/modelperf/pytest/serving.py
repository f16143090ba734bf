"""The served models of a session (``llama_server``, ``distilbert_server``) and the ``load`` fixture's value.

:class:`Servers` starts each model's server the first time a test asks for it, on the session's
model settings (``--llama-model``, threads, context, repack; ``--distilbert-model``, threads), with its
log under ``.modelperf/servers/``, and stops every one it started when the session ends: also after a
failure or Ctrl-C (pytest runs its cleanups then), and, as a last resort, at interpreter exit or
when this process dies (see :mod:`modelperf.serve.process`). ``--serving-url`` / ``--classifier-url``
hand the tests a team's own server instead; nothing is started or stopped for those.

The fixtures are session-scoped, but an ``--against`` worker tears every fixture down after each run
of a test; the servers live here instead, so a worker starts each of its servers once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelperf.config import Settings
from modelperf.forking.server import ForkServer, ForkServerError
from modelperf.models.base import ModelUnavailable
from modelperf.serve.process import PythonModule

__all__ = ["SERVED_FIXTURES", "LoadFixture", "Servers", "get_servers"]

SERVED_FIXTURES = ("llama_server", "distilbert_server")
_SERVERS = pytest.StashKey["Servers"]()


class Servers:
    """The session's served models by name, started lazily; :meth:`stop` ends every process started here."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self._served: dict[str, Any] = {}
        self._failed: dict[str, str] = {}  # a server that failed to start is not retried by every test
        self._processes: list[Any] = []
        self._forks: dict[str, ForkServer | None] = {}  # per model; None: its fork server failed, start afresh

    def get(self, name: str) -> Any:
        """The served model ``name`` (llama or distilbert); fails the test in one sentence if it cannot be had,
        and skips it, saying which extra to install, where the packages of a server the plugin starts are
        missing (as a default model that cannot be had skips: an install of one model's extra runs its other
        tests)."""
        from modelperf.serve.process import ServerFailed
        from modelperf.serve.servers import ServingUnavailable

        if name in self._failed:
            raise pytest.fail.Exception(self._failed[name], pytrace=False)
        served = self._served.get(name)
        try:
            if served is None:
                served = self._served[name] = self._start(name)
            served.check()
        except ServingUnavailable as exc:
            raise pytest.skip.Exception(str(exc), _use_item_location=True) from None
        except (ServerFailed, ModelUnavailable, ValueError) as exc:
            self._served.pop(name, None)
            self._failed[name] = str(exc)
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
        return served

    def _start(self, name: str) -> Any:
        from modelperf.serve import servers

        s = self.settings
        if name == "llama" and s.serving_url:
            server = servers.external_server(s.serving_url, label="the llama server given by --serving-url")
            server.wait_healthy()
            return servers.Served("llama", s.serving_url, server, model=servers.served_model_id(s.serving_url))
        if name == "distilbert" and s.classifier_url:
            server = servers.external_server(s.classifier_url, health_path="",
                                             label="the classifier given by --classifier-url")
            return servers.Served("distilbert", s.classifier_url, server, completion=False, shape=s.classifier_shape)
        if name == "llama":
            config = servers.LlamaServerConfig(None if s.llama_model is None else Path(s.llama_model), s.llama_threads,
                                               s.llama_context, s.llama_repack)
            process = servers.llama_server(config, self.log_dir)
        else:
            process = servers.classifier_server(servers.ClassifierServerConfig(s.distilbert_model, s.distilbert_threads),
                                                self.log_dir)
        self._processes.append(process)  # kept before it starts, so a Ctrl-C during the start still stops it
        if isinstance(process.command, PythonModule):  # any other command (a test's stand-in) starts as it is
            process.forks = self._fork_server(name)
        process.start()
        if name == "llama":
            return servers.Served("llama", process.base_url, process, model=config.alias)
        return servers.Served("distilbert", process.base_url + "/v1/classify", process, completion=False)

    def _fork_server(self, name: str) -> ForkServer | None:
        """The fork server of ``name``'s servers, started with the first of them; None if it cannot start
        (its servers then start as fresh interpreters, as before: slower, not wrong)."""
        from modelperf.serve.servers import SERVER_PRELOAD

        if name not in self._forks:
            forks = self._forks[name] = ForkServer(SERVER_PRELOAD[name], self.log_dir / f"{name}-fork-server.log",
                                                   name=f"the {name} servers' fork server")  # kept: stop() ends it
            try:
                forks.wait_ready()
            except ForkServerError:
                forks.close()
                self._forks[name] = None
        return self._forks[name]

    def fresh(self, served: Any) -> Any:
        """A new server process in place of ``served``'s, on the same settings (an ``--against`` load test's
        next phase); a team's own server (``--serving-url``), which this session did not start, comes back
        as it is."""
        process = served.server
        if process not in self._processes:
            return served
        process.stop()
        self._processes.remove(process)
        self._served.pop(served.name, None)
        return self.get(served.name)

    def stop(self) -> None:
        """Stop every server started here (each stop is safe to repeat)."""
        for process in self._processes:
            process.stop()
        self._processes.clear()
        self._served.clear()
        for forks in self._forks.values():
            if forks is not None:
                forks.close()
        self._forks.clear()


def get_servers(config: pytest.Config, settings: Settings, root: Path) -> Servers:
    """The session's :class:`Servers`, made with the first test that asks; stopped at the session's end."""
    servers = config.stash.get(_SERVERS, None)
    if servers is None:
        servers = config.stash[_SERVERS] = Servers(settings, root / ".modelperf" / "servers")
        config.add_cleanup(servers.stop)  # runs at the end of every session, interrupted or not
    return servers


class LoadFixture:
    """What the ``load`` fixture gives a test: ``load.run(server)`` sends its marker's load to a served model."""

    def __init__(self, runner: Any, item: pytest.Item, servers: Servers) -> None:
        self._runner = runner
        self._item = item
        self._servers = servers

    @property
    def ran(self) -> bool:
        return self._runner.summary is not None or self._runner.search is not None

    def run(self, server: Any) -> Any:
        """Run the marker's load (or max-rate search) against ``server``; returns its summary (or search)."""
        from modelperf.measure.load import LoadError
        from modelperf.serve.process import ServerFailed

        try:
            return self._runner.run(server, fresh=self._servers.fresh)
        except (LoadError, ServerFailed) as exc:
            raise pytest.fail.Exception(f"{self._item.nodeid}: {exc}", pytrace=False) from None
