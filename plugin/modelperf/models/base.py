"""The one small interface both models sit behind.

Markers, the shipped suite and users' own tests talk to a model only through :class:`Model`:
classify, score choices, generate, perplexity and ``info``. An adapter that cannot do something
(an encoder cannot generate) raises :class:`UnsupportedOperation` with a sentence saying so,
rather than returning a made-up figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Classification",
    "Generation",
    "Model",
    "ModelInfo",
    "ModelUnavailable",
    "Perplexity",
    "TokenTimings",
    "UnsupportedOperation",
]


class ModelUnavailable(Exception):
    """A model cannot be had: missing, unreadable, truncated or of the wrong format.

    The message is one sentence naming the path and how to fix it; the pytest layer turns it into
    a skip reason (an implicit default) or an error (a model the user asked for).
    """


class UnsupportedOperation(Exception):
    """The model's architecture cannot do what was asked (e.g. an encoder asked to generate)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, so a figure can be tied to exactly these weights and settings."""

    name: str
    source: str
    architecture: str
    layers: int
    parameters: int
    file_bytes: int
    quantization: str
    context_length: int
    threads: int
    weights_sha256: str
    embedded: bool
    library_versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # a load setting that changes speed, e.g. "norepack"; empty for the default way

    @property
    def key(self) -> str:
        """Short identity stored with each measurement: name, the first 12 hex of the hash, any variant."""
        return f"{self.name}@{self.weights_sha256[:12]}" + (f"+{self.variant}" if self.variant else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "architecture": self.architecture,
            "layers": self.layers,
            "parameters": self.parameters,
            "file_bytes": self.file_bytes,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "threads": self.threads,
            "weights_sha256": self.weights_sha256,
            "embedded": self.embedded,
            "library_versions": dict(self.library_versions),
            "details": dict(self.details),
            "variant": self.variant,
        }


@dataclass(frozen=True)
class Classification:
    """Predicted label index per text and the probability of every label."""

    labels: tuple[int, ...]
    probabilities: tuple[tuple[float, ...], ...]
    label_names: tuple[str, ...]


@dataclass(frozen=True)
class Generation:
    """Greedy output: exactly ``len(tokens)`` new tokens, end-of-sequence never stops it early."""

    text: str
    tokens: tuple[int, ...]
    prompt_tokens: int


@dataclass(frozen=True)
class TokenTimings:
    """Per-token timing of one streamed generation: what a serving team sets its targets on."""

    time_to_first_token_s: float  # prefill plus choosing the first token
    inter_token_s: tuple[float, ...]  # one decode step per later token
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Perplexity:
    """Perplexity the way llama.cpp's ``llama-perplexity`` computes it, with what it covered."""

    value: float
    scored_tokens: int
    chunks: int
    context: int


@runtime_checkable
class Model(Protocol):
    """What every model adapter offers; ``info`` is filled once at load time.

    An adapter backed by torch may also offer ``control_weights() -> tuple[torch.Tensor, ...]``, the
    2-D weights of its linear layers: latency tests of that model then time a control that walks
    them (see :mod:`modelperf.measure.control`). It is optional, so it is not part of the protocol.
    """

    info: ModelInfo

    def classify(self, texts: Sequence[str]) -> Classification:
        """Sentiment label (0 negative, 1 positive) and probabilities for each text."""
        ...

    def score_choices(self, prompt: str, choices: Sequence[str]) -> tuple[float, ...]:
        """Total log-probability of each choice as a continuation of ``prompt``."""
        ...

    def generate(self, prompt: str, max_tokens: int) -> Generation:
        """Exactly ``max_tokens`` greedy tokens after ``prompt``."""
        ...

    def perplexity(self, text: str) -> Perplexity:
        """Perplexity of ``text`` over windows of the model's context."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model's tokenizer makes of ``text`` (without special tokens)."""
        ...
