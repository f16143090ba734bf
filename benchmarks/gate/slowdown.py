"""An injected slowdown for the gate benchmark: real extra work in the change side's model methods.

Why work and not a sleep or a busy-wait of fixed length: a real regression is extra code that a faster
machine runs faster, and the gate's pairing must see it as such. Each wrapped method, per argument shape
(lengths of sequence and string arguments, values of int ones), times its first
:data:`CALIBRATION_CALLS` calls; the fastest, ``t0``, fixes a count ``n = round(factor * t0 / unit)`` of
a fixed numpy kernel (a 48x48 float64 matmul), ``unit`` being the kernel's own time, re-measured when
the count is fixed. Every later call with that shape runs the real method, then ``n`` kernels: the
extra work is ``factor`` of the call's undisturbed cost, and a slower machine runs it slower.

- The fastest call, not the median: the first calls after a model load are warm-up-slow, interference
  only adds time, and the gate compares lower deciles.
- The unit is measured twice: once at install, when all of a session's workers start at once and the
  machine is at its busiest (that figure only serves the calibration calls), and again when a count is
  fixed, inside a run, when ``--against`` runs one worker at a time.
- The calibration calls pay ``factor`` of the fastest call so far, so no call escapes the slowdown (a
  lower decile would pick exactly such calls).
- A call made from inside another wrapped call (``decode`` -> ``next_token``) adds nothing, so nothing
  is slowed twice.

How it reaches the change side only: ``python -m benchmarks.gate`` starts each session with
``PYTEST_PLUGINS`` naming this module and :data:`FACTOR_ENV` / :data:`TREE_ENV` set. Every pytest
process of the session inherits that environment (the controller and both sides' workers), and this
plugin installs the slowdown only in ``--against`` workers whose working directory lies in the change
tree; the base side runs in the worktree that ``--against`` checks out elsewhere. Each fixed count is
logged as one JSON line to :data:`LOG_ENV` when set, to see which processes ran the injected work.

The load modes set :data:`TOKENS_ENV` instead: the same processes then ask their served model for a
share more generated tokens per request (:mod:`benchmarks.gate.more_tokens`); the model's server runs
in a process of its own, where a wrapped adapter method would never be called.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from modelperf.ab.workers import WORKER_ENV

__all__ = ["CALIBRATION_CALLS", "FACTOR_ENV", "LOG_ENV", "TARGETS", "TOKENS_ENV", "TREE_ENV", "Kernel", "Settings",
           "Slowdown",
           "argument_shape", "install", "kernel_unit", "matmul_kernel", "pytest_configure", "settings_from"]

FACTOR_ENV = "MODELPERF_GATE_SLOWDOWN"  # the injected share, e.g. "0.05"
TOKENS_ENV = "MODELPERF_GATE_MORE_TOKENS"  # the share more tokens each served request asks for, e.g. "0.10"
TREE_ENV = "MODELPERF_GATE_SLOWDOWN_TREE"  # the change tree: only processes working in it are slowed
LOG_ENV = "MODELPERF_GATE_INJECT_LOG"  # a JSONL file that gets one line per fixed count
CALIBRATION_CALLS = 5
# Model module -> (adapter class, the public methods that the latency and serving tests time).
TARGETS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "modelperf.models.distilbert": ("DistilBert", ("classify",)),
    "modelperf.models.llama": ("Llama", ("classify", "prefill", "decode", "next_token", "generate",
                                         "timed_generate")),
}
_KERNEL_SIZE = 48  # small enough that one kernel is microseconds, so n is fine-grained
_UNIT_WARMUP = 200
_UNIT_BATCHES, _UNIT_BATCH = 31, 100  # the fastest of 31 batches of 100 kernels
_MAX_FACTOR = 10.0

_F = TypeVar("_F", bound=Callable[..., Any])


class Kernel(Protocol):
    """Runs a fixed piece of work ``count`` times."""

    def __call__(self, count: int) -> None: ...


def matmul_kernel() -> Kernel:
    """The injected work: a fixed 48x48 float64 matrix product, ``count`` times."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((_KERNEL_SIZE, _KERNEL_SIZE)), rng.standard_normal((_KERNEL_SIZE, _KERNEL_SIZE))

    def kernel(count: int) -> None:
        for _ in range(count):
            a @ b

    return kernel


def kernel_unit(kernel: Kernel, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds one kernel takes: the fastest of several batches, after a warm-up."""
    kernel(_UNIT_WARMUP)
    batches = []
    for _ in range(_UNIT_BATCHES):
        start = clock()
        kernel(_UNIT_BATCH)
        batches.append((clock() - start) / _UNIT_BATCH)
    return min(batches)


def argument_shape(value: object) -> tuple[Any, ...]:
    """What of an argument sets a call's cost: a string's length, an int's value, a list's lengths."""
    if isinstance(value, (str, bytes)):
        return ("s", len(value))
    if isinstance(value, (bool, int)):
        return ("i", int(value))
    if isinstance(value, (list, tuple)):
        return ("l", len(value), sum(len(v) for v in value if isinstance(v, (str, bytes))))
    return (type(value).__name__,)


@dataclass
class _Method:
    """Per wrapped method: the first calls' times and the fixed counts, per argument shape."""

    name: str
    file: str
    first: dict[tuple[Any, ...], list[float]] = field(default_factory=dict)
    counts: dict[tuple[Any, ...], int] = field(default_factory=dict)


class Slowdown:
    """Wraps methods so that each call is followed by ``factor`` of its own cost in kernel work."""

    def __init__(self, factor: float, kernel: Kernel, *, clock: Callable[[], float] = time.perf_counter,
                 log: Path | None = None) -> None:
        if not 0 < factor <= _MAX_FACTOR or math.isnan(factor):
            raise ValueError(f"the injected slowdown factor must lie in (0, {_MAX_FACTOR:g}], not {factor!r}.")
        self.factor, self.kernel, self.clock, self.log = factor, kernel, clock, log
        self.provisional_unit = kernel_unit(kernel, clock)
        self._state = threading.local()

    @property
    def _inside(self) -> bool:
        return bool(getattr(self._state, "inside", False))

    @contextmanager
    def passthrough(self) -> Iterator[None]:
        """Calls made in this block run unwrapped, as calls from inside another wrapped call do."""
        previous, self._state.inside = self._inside, True
        try:
            yield
        finally:
            self._state.inside = previous

    def wrap(self, method: _F, file: str = "") -> _F:
        record = _Method(method.__qualname__, file)

        @functools.wraps(method)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return method(*args, **kwargs)
            key = tuple(argument_shape(v) for v in args[1:]) + tuple(
                (k, argument_shape(v)) for k, v in sorted(kwargs.items()))
            with self.passthrough():
                fixed = record.counts.get(key)
                if fixed is not None:
                    result = method(*args, **kwargs)
                else:
                    start = self.clock()
                    result = method(*args, **kwargs)
                    fixed = self._calibrate(record, key, self.clock() - start)
                self.kernel(fixed)
            return result

        return wrapped  # type: ignore[return-value]

    def _calibrate(self, record: _Method, key: tuple[Any, ...], seconds: float) -> int:
        """The count this call pays: from the fastest call so far, fixed after the calibration calls."""
        times = record.first.setdefault(key, [])
        times.append(seconds)
        if len(times) < CALIBRATION_CALLS:
            return round(self.factor * min(times) / self.provisional_unit)
        unit = kernel_unit(self.kernel, self.clock)
        count = record.counts[key] = round(self.factor * min(times) / unit)
        if self.log is not None:
            line = {"pid": os.getpid(), "file": record.file, "method": record.name, "key": repr(key),
                    "times_s": times, "unit_s": unit, "provisional_unit_s": self.provisional_unit, "n": count,
                    "factor": self.factor}
            with self.log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        return count

    def install(self, cls: type, names: tuple[str, ...]) -> None:
        """Replace ``cls``'s methods ``names`` by wrapped ones."""
        file = str(getattr(sys.modules.get(cls.__module__), "__file__", "") or "")
        for name in names:
            method = getattr(cls, name, None)
            if method is None:
                raise AttributeError(f"{cls.__module__}.{cls.__qualname__} has no method {name!r} to slow down; "
                                     "update benchmarks.gate.slowdown.TARGETS for this revision's model adapters.")
            setattr(cls, name, self.wrap(method, file))


@dataclass(frozen=True)
class Settings:
    """What the environment asks of this process."""

    factor: float  # 0: no kernel work (a load mode)
    log: Path | None
    tokens: float = 0.0  # the share more tokens each served request asks for; 0: as many as the test says


def _share(name: str, text: str) -> float:
    if not text:
        return 0.0
    try:
        share = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number; give the injected share, e.g. 0.05.") from None
    if not 0 < share <= _MAX_FACTOR:
        raise ValueError(f"{name}={text!r} must lie in (0, {_MAX_FACTOR:g}], e.g. 0.05 for +5 %.")
    return share


def settings_from(environ: Mapping[str, str], cwd: Path) -> Settings | None:
    """The slowdown this process must install, or None: not asked for, a base-side or controller process."""
    asked = {name: environ.get(name, "").strip() for name in (FACTOR_ENV, TOKENS_ENV)}
    # Only --against workers measure; the controller need not import the models.
    if not any(asked.values()) or WORKER_ENV not in environ:
        return None
    tree = environ.get(TREE_ENV)
    if not tree:
        named = next(name for name, text in asked.items() if text)
        raise ValueError(f"{named} is set but {TREE_ENV} is not; set it to the change side's tree, as "
                         "python -m benchmarks.gate does.")
    if not cwd.resolve().is_relative_to(Path(tree).resolve()):
        return None
    factor, tokens = (_share(name, text) for name, text in asked.items())
    log = environ.get(LOG_ENV)
    return Settings(factor, Path(log) if log else None, tokens)


def install(settings: Settings, targets: Mapping[str, tuple[str, tuple[str, ...]]] = TARGETS) -> Slowdown:
    """Import the model modules and slow their adapters' methods down."""
    slowdown = Slowdown(settings.factor, matmul_kernel(), log=settings.log)
    for module_name, (class_name, methods) in targets.items():
        slowdown.install(getattr(importlib.import_module(module_name), class_name), methods)
    return slowdown


def pytest_configure(config: pytest.Config) -> None:
    """Pytest hook (this module is a plugin through ``PYTEST_PLUGINS``): install when the environment asks."""
    try:
        settings = settings_from(os.environ, Path.cwd())
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if settings is not None and settings.tokens:
        from .more_tokens import ask_more_tokens

        ask_more_tokens(settings.tokens, settings.log)
    if settings is not None and settings.factor:
        install(settings)
