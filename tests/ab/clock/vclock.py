"""A virtual clock for the inner ``--against`` sessions of tests/ab: pytest-benchmark's timer there
(``--benchmark-timer vclock.now``), so that a timed call takes the time it declares with
:func:`spend`, not the time the machine happens to give it.

Why: those sessions check what the gate does with two sides' figures (a same-code pass at its first
look, a slower change past the alarm line), and under pytest-xdist the other worker's tests share the
two cores, so real timings of a sub-millisecond loop swing by tens of percent and the verdicts would
depend on what ran beside them. Each process draws a little jitter (1 % per call) so the statistics
see a spread, as they would from a real machine. How often the gate is right on real timings is
measured by ``python -m benchmarks.gate``, not here.

Loaded as a plugin too (``-p vclock``), it puts the control workload (modelperf.measure.control) on
the same clock: a control round declares CONTROL_S and does no work. A real control round beside a
virtual call would only divide a declared time by the machine's noise, and its torch passes were
about half of what each worker of these sessions spent. A virtual round imports nothing and runs at
one thread, so no process of these sessions imports torch, nor does their fork server preload it.

A plain module on the inner session's ``PYTHONPATH`` (tests/ab/helpers.py puts it there), imported by
each process by name: it must not import the tests package.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CONTROL_S", "now", "pytest_configure", "spend"]

_TICK_S = 1e-9  # what a read of the clock itself costs: the clock always moves forward
_JITTER = 0.01
CONTROL_S = 0.005  # a control round's declared time: about the real torch block's on a 2-core VM

_rng = random.Random(os.getpid())
_now = 0.0


def now() -> float:
    """The virtual time in seconds."""
    global _now
    _now += _TICK_S * (1.0 + _rng.random())
    return _now


def spend(seconds: float) -> None:
    """A call's work: move the clock on by ``seconds``, give or take 1 %."""
    global _now
    _now += _jittered(seconds)


def _jittered(seconds: float) -> float:
    return seconds * max(0.5, 1.0 + _JITTER * _rng.gauss(0.0, 1.0))


def _control_timer(threads: int | None = None, model_weights: Sequence[Any] = ()) -> Callable[[], float]:
    """What ``modelperf.measure.control.control_timer`` returns, on this clock."""
    del threads, model_weights  # the virtual round does no work, at whatever thread count
    return lambda: _jittered(CONTROL_S)


def pytest_configure(config: object) -> None:
    """Swap the control workload's timer for the virtual one (``-p vclock``)."""
    from modelperf.measure import control

    control.control_timer = _control_timer
    control.control_threads = lambda: 1
    control.control_modules = lambda: ()
