"""pytest-modelperf: latency, peak-memory and accuracy tests for DistilBERT and Llama models."""

from __future__ import annotations

from modelperf.models.base import (
    Classification,
    Generation,
    Model,
    ModelInfo,
    ModelUnavailable,
    Perplexity,
    UnsupportedOperation,
)
from modelperf.records import Kind, Measurement

__all__ = [
    "Classification",
    "Generation",
    "Kind",
    "Measurement",
    "Model",
    "ModelInfo",
    "ModelUnavailable",
    "Perplexity",
    "UnsupportedOperation",
]
__version__ = "0.1.0"
