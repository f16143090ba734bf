"""Loads each configured model once per session and remembers why one could not be had.

An implicit default that cannot be had (its package is not installed) makes the tests that need it
skip with the reason; a model the user asked for explicitly is an error instead, and it is checked
at session start with cheap file checks, so a typo fails fast rather than after other tests ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelperf.config import Settings
from modelperf.models.base import Model, ModelUnavailable

__all__ = ["ModelRegistry"]


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loaded: dict[str, Model] = {}
        self._failed: dict[str, ModelUnavailable] = {}

    def explicit(self, name: str) -> bool:
        return f"{name}_model" in self._settings.explicit

    def check_explicit(self) -> None:
        """Fail fast on an explicitly configured model whose files are plainly unusable."""
        from modelperf.models.distilbert import resolve_checkpoint
        from modelperf.models.llama import check_gguf

        if self.explicit("distilbert") and self._settings.distilbert_model:
            resolve_checkpoint(self._settings.distilbert_model)
        if self.explicit("llama") and self._settings.llama_model:
            check_gguf(Path(self._settings.llama_model).expanduser())

    def load(self, name: str) -> Model:
        """The session's instance of ``name`` ("distilbert" or "llama"), loaded on first use."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._failed:
            raise self._failed[name]
        try:
            model: Model = self._build(name)
        except ModelUnavailable as exc:
            self._failed[name] = exc
            raise
        self._loaded[name] = model
        return model

    def _build(self, name: str, **overrides: Any) -> Any:
        s = self._settings
        if name == "distilbert":
            from modelperf.models.distilbert import load_distilbert

            return load_distilbert(s.distilbert_model, s.distilbert_threads)
        if name == "llama":
            from modelperf.models.llama import load_llama

            return load_llama(s.llama_model, s.llama_threads, overrides.pop("context", s.llama_context), **overrides)
        raise KeyError(f"unknown model {name!r}: use 'distilbert' or 'llama'")

    def build(self, name: str, **overrides: Any) -> Model:
        """A new instance apart from the session's (for load-time and load-memory tests)."""
        model: Model = self._build(name, **overrides)
        return model
