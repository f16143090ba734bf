"""Start the two models' servers, or point at a team's own: the caller's side of serving.

Nothing here imports llama-cpp-python, torch or the web stack: the servers run them in their own
processes (see :mod:`modelperf.serve.llama_launcher` and :mod:`modelperf.serve.classifier_service`),
and a missing package is reported before any process starts.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelperf.models.base import ModelUnavailable
from modelperf.models.distilbert import LOADING_MODULES
from modelperf.serve.process import ExternalServer, ServerFailed, ServerProcess, free_port, python_module

if TYPE_CHECKING:
    from modelperf.serve.endpoints import ClassifierEndpoint, CompletionEndpoint, Endpoint

__all__ = [
    "SERVER_PRELOAD",
    "ClassifierServerConfig",
    "LlamaServerConfig",
    "Served",
    "ServingUnavailable",
    "classifier_endpoint",
    "classifier_server",
    "completion_endpoint",
    "external_server",
    "llama_server",
    "served_model_id",
]

# What llama_cpp.server imports (its "server" extra), and what the classifier service needs.
LLAMA_SERVER_MODULES = ("llama_cpp", "httpx", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
CLASSIFIER_MODULES = ("torch", "transformers", "httpx", "uvicorn", "starlette")
# What a fork server of each model's servers imports once (third-party only: each server imports its
# caller's modelperf after the fork). A forked llama server was healthy in 0.32 s, a fresh interpreter
# in 0.92 s (benchmarks/server_start.py, 2-core AMD EPYC, 2026-12-06); an --against load test starts
# one a phase. A forked DistilBERT service: 2.24 s until its model's lazily imported modules were
# preloaded too (LOADING_MODULES), 0.24 s since.
SERVER_PRELOAD = {"llama": ("uvicorn", "fastapi", "llama_cpp", "llama_cpp.server.app", "llama_cpp.server.settings"),
                  "distilbert": ("uvicorn", "starlette.applications", "torch", *LOADING_MODULES)}
_INSTALL_HINT = "pip install 'pytest-modelperf[serve]'"


class ServingUnavailable(ModelUnavailable):
    """A package a server needs is not installed; the message says which and how to install it."""


def _require(modules: tuple[str, ...], what: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ServingUnavailable(f"{what} needs the Python package(s) {', '.join(missing)}, which are not installed: "
                                 f"run `{_INSTALL_HINT}`.")


@dataclass(frozen=True)
class LlamaServerConfig:
    """llama-cpp-python's server on a GGUF (None: the embedded SmolLM2), with the Llama tests' settings."""

    model: Path | None
    threads: int
    context: int = 2048
    repack: str = "auto"  # as --llama-repack: auto (off on Intel AMX CPUs), on or off
    alias: str = "llama"
    startup_timeout_s: float = 120.0


@dataclass(frozen=True)
class ClassifierServerConfig:
    """The DistilBERT classification service (model None: the embedded default), with dynamic batching."""

    model: str | None
    threads: int
    max_batch: int = 8
    max_wait_s: float = 0.005
    startup_timeout_s: float = 180.0  # the first start converts the embedded checkpoint and fits its head


def llama_server(config: LlamaServerConfig, log_dir: Path) -> ServerProcess:
    """A not yet started server process for ``config`` (use ``with``), its log in ``log_dir``. Its
    command is a :class:`PythonModule`, so it can be forked (set ``forks`` to a fork server that
    imported :data:`SERVER_PRELOAD`'s modules).

    Raises ModelUnavailable for a missing or malformed GGUF and ServingUnavailable for a missing
    package, before anything starts.
    """
    from modelperf.models.embedded import smollm_gguf_path
    from modelperf.models.gguf import check_gguf
    from modelperf.models.repack import cpu_has_amx, repack_choice

    _require(LLAMA_SERVER_MODULES, "llama-cpp-python's server")
    path = smollm_gguf_path() if config.model is None else config.model.expanduser()
    check_gguf(path)
    repack, _ = repack_choice(config.repack, cpu_has_amx())
    port = free_port()
    argv = python_module("modelperf.serve.llama_launcher", "--model", str(path), "--alias", config.alias,
                         "--threads", str(config.threads), "--context", str(config.context),
                         "--repack", "on" if repack else "off", "--port", str(port))
    label = f"the llama server ({path.name})"
    return ServerProcess(label, argv, log_dir / f"llama-server-{port}.log", port=port, health_path="/v1/models",
                         startup_timeout_s=config.startup_timeout_s)


def classifier_server(config: ClassifierServerConfig, log_dir: Path) -> ServerProcess:
    """A not yet started DistilBERT service for ``config`` (use ``with``), its log in ``log_dir``; it can
    be forked as :func:`llama_server`'s can."""
    _require(CLASSIFIER_MODULES, "the DistilBERT classification service")
    if config.model is not None:
        from modelperf.models.distilbert import resolve_checkpoint

        resolve_checkpoint(config.model)
    port = free_port()
    argv = python_module("modelperf.serve.classifier_service", "--threads", str(config.threads),
                         "--max-batch", str(config.max_batch), "--max-wait-ms", f"{config.max_wait_s * 1000:g}",
                         "--port", str(port), *(("--model", config.model) if config.model else ()))
    label = f"the distilbert classification service ({config.model or 'embedded default'})"
    return ServerProcess(label, argv, log_dir / f"distilbert-service-{port}.log", port=port, health_path="/health",
                         startup_timeout_s=config.startup_timeout_s)


def external_server(base_url: str, *, health_path: str = "/v1/models", label: str = "the server") -> ExternalServer:
    """A server someone else runs (``--serving-url``); ``wait_healthy()`` before the first request."""
    return ExternalServer(base_url, health_path, label)


def completion_endpoint(server: ServerProcess | ExternalServer, *, model: str = "llama", max_tokens: int = 32,
                        chat: bool = False) -> CompletionEndpoint:
    """The streaming completion endpoint of ``server``."""
    from modelperf.serve.endpoints import CompletionEndpoint

    return CompletionEndpoint(server.base_url, model=model, max_tokens=max_tokens, chat=chat)


def classifier_endpoint(server: ServerProcess) -> ClassifierEndpoint:
    """The classify route of a service started by :func:`classifier_server`."""
    from modelperf.serve.endpoints import ClassifierEndpoint

    return ClassifierEndpoint(server.base_url + "/v1/classify", '{"text": "{text}"}')


@dataclass(frozen=True)
class Served:
    """A model behind a running server, as the ``llama_server`` and ``distilbert_server`` fixtures hand
    it to a test: what the load client sends requests to, and the server to check when they fail."""

    name: str  # the model fixture it serves: llama or distilbert
    url: str  # the server's base URL (completions), or the classifier's POST URL
    server: ServerProcess | ExternalServer
    completion: bool = True  # OpenAI-compatible streaming completions; False: a classifier
    model: str = "llama"  # the model id completion requests name
    shape: str = '{"text": "{text}"}'  # a classifier's JSON body, "{text}" where the text goes

    @property
    def label(self) -> str:
        return f"the {self.name} server at {self.url}"

    @property
    def log_path(self) -> Path | None:
        return self.server.log_path if isinstance(self.server, ServerProcess) else None

    def endpoint(self, tokens: int) -> Endpoint:
        """The endpoint the load client sends to, ``tokens`` generated tokens per completion request."""
        from modelperf.serve.endpoints import ClassifierEndpoint, CompletionEndpoint

        if self.completion:
            return CompletionEndpoint(self.url, model=self.model, max_tokens=tokens)
        return ClassifierEndpoint(self.url, self.shape)

    def check(self) -> None:
        """ServerFailed, naming the model and the log, if a server this session started has exited."""
        if isinstance(self.server, ServerProcess):
            self.server.raise_if_exited()


def served_model_id(base_url: str, timeout_s: float = 10.0) -> str:
    """The first model id an OpenAI-compatible server lists at ``/v1/models`` (vLLM refuses any other)."""
    import httpx

    url = base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            listed = client.get(url).raise_for_status().json().get("data") or []
        return str(listed[0]["id"])
    except (httpx.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
        raise ServerFailed(f"the server at {base_url} did not list a model at {url} ({type(exc).__name__}): give "
                           "--serving-url the base URL of an OpenAI-compatible server, e.g. "
                           "http://127.0.0.1:8000.") from None
