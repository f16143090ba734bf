"""What the load client talks to: an OpenAI-compatible completion endpoint, or a classifier.

Both work against the servers this package starts and against a team's own: any server that
speaks OpenAI's streaming completions (llama-cpp-python's, llama.cpp's ``llama-server``, vLLM,
TGI), and any classifier reached by a POST of one JSON document per text (the body's shape is a
template with ``"{text}"`` where the text goes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from modelperf.serve.prompts import CLASSIFIER_TEXTS, COMPLETION_PROMPTS

__all__ = ["ClassifierEndpoint", "CompletionEndpoint", "Endpoint", "Exchange", "RequestFailed"]

TEXT_PLACEHOLDER = "{text}"
_ERROR_BODY_CHARS = 200  # enough of a server's error page to say what it was, not a whole HTML page


class RequestFailed(Exception):
    """A request came back with an HTTP error or a body the client cannot read."""


@dataclass(frozen=True)
class Exchange:
    """The client-side times of one response (seconds on the run's clock)."""

    first_token_s: float | None
    end_s: float
    token_times_s: tuple[float, ...]
    output_tokens: int


class Endpoint(Protocol):
    """One kind of request, sent by the load client."""

    @property
    def label(self) -> str: ...

    @property
    def prompts(self) -> tuple[str, ...]: ...

    async def exchange(self, client: httpx.AsyncClient, prompt: str, clock: Callable[[], float]) -> Exchange:
        """Send one request for ``prompt`` and time its response with ``clock``."""
        ...


def _base(url: str) -> str:
    """``http://host:port`` from a base URL given with or without a trailing ``/v1``."""
    trimmed = url.rstrip("/")
    return trimmed.removesuffix("/v1")


@dataclass(frozen=True)
class CompletionEndpoint:
    """Streaming greedy completions (``/v1/completions``, or ``/v1/chat/completions`` with ``chat``).

    ``exact_tokens`` asks for exactly ``max_tokens`` tokens (``min_tokens`` and ``ignore_eos``, which
    llama-cpp-python, llama.cpp and vLLM honour), so every request does the same work and a model
    cannot look faster by stopping early.
    """

    base_url: str
    model: str = ""
    max_tokens: int = 32
    chat: bool = False
    exact_tokens: bool = True
    prompts: tuple[str, ...] = field(default=COMPLETION_PROMPTS)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"The serving URL {self.base_url!r} is not an http(s) URL: give e.g. "
                             "http://127.0.0.1:8000.")
        if self.max_tokens < 1 or not self.prompts:
            raise ValueError("A completion endpoint needs max_tokens >= 1 and at least one prompt.")

    @property
    def url(self) -> str:
        return _base(self.base_url) + ("/v1/chat/completions" if self.chat else "/v1/completions")

    @property
    def label(self) -> str:
        return f"{self.url} ({self.max_tokens} tokens per request)"

    def body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "temperature": 0.0,
                                "stream": True, "stream_options": {"include_usage": True}}
        if self.chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self.exact_tokens:
            body.update(min_tokens=self.max_tokens, ignore_eos=True)
        return body

    async def exchange(self, client: httpx.AsyncClient, prompt: str, clock: Callable[[], float]) -> Exchange:
        stamps: list[float] = []
        usage: int | None = None
        async with client.stream("POST", self.url, json=self.body(prompt)) as response:
            if response.status_code != httpx.codes.OK:
                text = (await response.aread()).decode(errors="replace")[:_ERROR_BODY_CHARS]
                raise RequestFailed(f"HTTP {response.status_code} from {self.url}: {text.strip()}")
            async for line in response.aiter_lines():
                now = clock()
                if not line.startswith("data:"):
                    continue  # SSE comments (pings), event names and blank separators
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    break
                piece, tokens = _chunk(data, self.chat)
                if piece:
                    stamps.append(now)
                usage = tokens if tokens is not None else usage
        end = clock()
        return Exchange(stamps[0] if stamps else None, end, tuple(stamps), usage if usage is not None else len(stamps))


def _chunk(data: str, chat: bool) -> tuple[str, int | None]:
    """(text of this chunk, completion tokens reported in it) from one streamed JSON chunk."""
    try:
        chunk = json.loads(data)
        choices = chunk.get("choices") or []
        usage = chunk.get("usage") or {}
        tokens = usage.get("completion_tokens")
        if not choices:
            return "", int(tokens) if tokens is not None else None
        choice = choices[0]
        text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
        return str(text or ""), int(tokens) if tokens is not None else None
    except (ValueError, AttributeError, TypeError) as exc:
        raise RequestFailed(f"a streamed chunk is not an OpenAI completion chunk ({exc}): {data[:80]!r}") from None


@dataclass(frozen=True)
class ClassifierEndpoint:
    """A POST of one JSON body per text; ``shape`` is the body with ``"{text}"`` where the text goes."""

    url: str
    shape: str = '{"text": "{text}"}'
    prompts: tuple[str, ...] = field(default=CLASSIFIER_TEXTS)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"The classifier URL {self.url!r} is not an http(s) URL: give e.g. "
                             "http://127.0.0.1:8000/v1/classify.")
        try:
            template = json.loads(self.shape)
        except ValueError:
            raise ValueError(f"The classifier body shape {self.shape!r} is not JSON: write e.g. "
                             '\'{"text": "{text}"}\' or \'{"inputs": ["{text}"]}\'.') from None
        if _count_placeholders(template) != 1:
            raise ValueError(f'The classifier body shape {self.shape!r} must hold the string "{TEXT_PLACEHOLDER}" '
                             'exactly once, where each text goes: e.g. \'{"text": "{text}"}\'.')
        if not self.prompts:
            raise ValueError("A classifier endpoint needs at least one text to send.")

    @property
    def label(self) -> str:
        return self.url

    def body(self, text: str) -> Any:
        return _fill(json.loads(self.shape), text)

    async def exchange(self, client: httpx.AsyncClient, prompt: str, clock: Callable[[], float]) -> Exchange:
        response = await client.post(self.url, json=self.body(prompt))
        end = clock()
        if response.status_code != httpx.codes.OK:
            raise RequestFailed(f"HTTP {response.status_code} from {self.url}: "
                                f"{response.text[:_ERROR_BODY_CHARS].strip()}")
        return Exchange(None, end, (), 0)


def _count_placeholders(node: Any) -> int:
    if isinstance(node, dict):
        return sum(_count_placeholders(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_placeholders(v) for v in node)
    return int(node == TEXT_PLACEHOLDER)


def _fill(node: Any, text: str) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, text) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, text) for v in node]
    return text if node == TEXT_PLACEHOLDER else node
