"""Loads each configured model once per session and remembers why one could not be had.

An implicit default that cannot be had (its package is not installed) makes the tests that need it
skip with the reason; a model the user asked for explicitly is an error instead, and it is checked
at session start with cheap file checks, so a typo fails fast rather than after other tests ran.
A model whose probe crashed (see :mod:`modelperf.models.probe`) is never loaded in this process:
its tests fail with the probe's sentence, whichever way the model was configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelperf.config import Settings
from modelperf.models.base import Model, ModelUnavailable

if TYPE_CHECKING:
    from modelperf.models.probe import ProbeRequest, ProbeResult

__all__ = ["MODEL_NAMES", "ModelCrashed", "ModelRegistry", "load_model"]

MODEL_NAMES = ("distilbert", "llama")


class ModelCrashed(ModelUnavailable):
    """The model crashed or hung its probe process; loading it here would end the session."""


# The libraries each model needs, and the extra of pytest-modelperf that installs them.
EXTRAS = {"distilbert": ("torch", "transformers"), "llama": ("llama_cpp",)}


def missing_extra(name: str) -> ModelUnavailable | None:
    """One sentence naming the extra to install when a library model ``name`` needs is missing, else None."""
    import importlib.util

    missing = [module for module in EXTRAS[name] if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return ModelUnavailable(
        f"The {name} model needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
        f"install pytest-modelperf's {name} extra (pip install 'pytest-modelperf[{name}]'), or deselect its tests.")


def load_model(name: str, arguments: Mapping[str, Any]) -> Model:
    """Load model ``name`` with the loader's keyword ``arguments`` (the session's and the probe's one path)."""
    if name not in EXTRAS:
        raise KeyError(f"unknown model {name!r}: use 'distilbert' or 'llama'")
    problem = missing_extra(name)
    if problem is not None:
        raise problem
    if name == "distilbert":
        from modelperf.models.distilbert import load_distilbert

        return load_distilbert(**arguments)
    from modelperf.models.llama import load_llama

    return load_llama(**arguments)


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
        from modelperf.models.gguf import check_gguf

        if self.explicit("distilbert") and self._settings.distilbert_model:
            resolve_checkpoint(self._settings.distilbert_model)
        if self.explicit("llama") and self._settings.llama_model:
            check_gguf(Path(self._settings.llama_model).expanduser())

    def arguments(self, name: str, **overrides: Any) -> dict[str, Any]:
        """The loader's keyword arguments for ``name`` under this session's settings (JSON-safe)."""
        s = self._settings
        if name == "distilbert":
            return {"source": s.distilbert_model, "threads": s.distilbert_threads, **overrides}
        if name == "llama":
            return {"source": s.llama_model, "threads": s.llama_threads, "context": s.llama_context,
                    "repack": s.llama_repack, **overrides}
        raise KeyError(f"unknown model {name!r}: use 'distilbert' or 'llama'")

    def load(self, name: str) -> Model:
        """The session's instance of ``name`` ("distilbert" or "llama")."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._failed:
            raise self._failed[name]
        try:
            model = load_model(name, self.arguments(name))
        except ModelUnavailable as exc:
            self._failed[name] = exc
            raise
        self._loaded[name] = model
        return model

    def build(self, name: str, **overrides: Any) -> Model:
        """A new instance apart from the session's (for load-time and load-memory tests)."""
        crashed = self._failed.get(name)
        if isinstance(crashed, ModelCrashed):
            raise crashed
        return load_model(name, self.arguments(name, **overrides))

    def probe_requests(self, names: Iterable[str]) -> list[ProbeRequest]:
        """What each child process will try, built (and its modules imported) before the probes are announced:
        a Ctrl-C that lands inside an import gives pytest a traceback it cannot print."""
        from modelperf.models.probe import ProbeRequest

        return [ProbeRequest(name, self.arguments(name), self._describe(name), self._crash_hint(name))
                for name in names if name not in self._loaded and name not in self._failed]

    def probe(self, requests: list[ProbeRequest], timeout: float) -> list[ProbeResult]:
        """Try each model in a child process first; a crash or hang marks it so it is never loaded here."""
        from modelperf.models.probe import probe_models

        results = probe_models(requests, timeout)
        for result in results:
            if result.problem is not None:
                self._failed[result.model] = ModelCrashed(result.problem)
        return results

    def _describe(self, name: str) -> str:
        source = getattr(self._settings, f"{name}_model")
        label = {"distilbert": "the DistilBERT model", "llama": "the Llama model"}[name]
        return f"{label} {source}" if source else f"{label} (the embedded default)"

    def _crash_hint(self, name: str) -> str:
        if name == "distilbert":
            return "check the torch and transformers installation and the checkpoint (--distilbert-model)."
        from modelperf.models.repack import cpu_has_amx, repack_choice

        amx = cpu_has_amx()
        repack, _ = repack_choice(self._settings.llama_repack, amx)
        if amx and repack:
            return ("this CPU has Intel AMX and llama.cpp's weight repacking was on (--llama-repack "
                    f"{self._settings.llama_repack}); its AMX path crashes on the first evaluation (a known "
                    "llama.cpp bug): run with --llama-repack auto or off.")
        if repack:
            return ("check the GGUF file and the llama-cpp-python build, or run with --llama-repack off to rule out "
                    "llama.cpp's weight repacking.")
        return ("llama.cpp's weight repacking was already off (--llama-repack "
                f"{self._settings.llama_repack}): check the GGUF file and the llama-cpp-python build.")
