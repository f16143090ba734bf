"""What ``--against``'s fork server (:mod:`modelperf.forking`) imports for the workers of a session.

Each worker used to be a fresh ``python -m pytest`` that imported pytest, numpy, scipy, torch,
transformers and llama_cpp on its own: a dozen such imports were about a third of an ``--against``
session on two cores. One fork server per session imports them once; every worker of *both* sides
is forked from it, then imports its own side's ``modelperf`` and test code and loads its models
itself (so each process still places its own weights: the process remains the unit of variation,
see :mod:`modelperf.decide.paired`). Both sides forking from one server also share one layout of the
libraries in memory, so no side gets a luckier one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

from modelperf.models.distilbert import LOADING_MODULES

__all__ = ["MODEL_MODULES", "PRELOAD", "preload_for", "preloadable"]

# What every worker imports, and what a worker that loads a model imports for it: a fork server imports
# them once for all (those installed, outside the project; see preload_for).
PRELOAD = ("pytest", "_pytest.runner", "pytest_benchmark.plugin", "numpy", "scipy.stats")
MODEL_MODULES = {"distilbert": LOADING_MODULES, "llama": ("llama_cpp",)}


def preload_for(models: Iterable[str], control: Iterable[str]) -> list[str]:
    """What the workers of a session will import, for its fork server to import once: what every worker
    imports, the libraries of the control workload where a selected latency test times it (``control``,
    as :func:`modelperf.measure.control.control_modules` names them; empty where no test does), and the
    libraries of each model the selected tests load (``models``, fixture names).

    Only what the tests will use: torch takes a second or two of CPU to import, and neither a session of
    Llama tests (llama.cpp times its own control) nor one without latency tests imports it. Preloading a
    library no worker imports costs that once; leaving out one every worker imports costs it per worker.
    """
    return list(dict.fromkeys([*PRELOAD, *control, *(name for model in models for name in MODEL_MODULES.get(model, ()))]))


def preloadable(roots: Iterable[Path], names: Iterable[str] = PRELOAD) -> list[str]:
    """The modules of ``names`` that are installed and not loaded from the project's code ``roots``
    (whose two sides differ): an installed package (in a ``site-packages``) always counts as installed."""
    roots = [root.resolve() for root in roots]
    kept = []
    for name in names:
        top = name.split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        origin = Path(spec.origin or next(iter(spec.submodule_search_locations or []), "")).resolve()
        if "site-packages" not in origin.parts and any(origin.is_relative_to(root) for root in roots):
            continue  # the project's own copy: each side must import its own
        kept.append(name)
    return kept
