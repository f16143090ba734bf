"""A virtual clock for the inner ``--against`` sessions of tests/ab: pytest-benchmark's timer there
(``--benchmark-timer vclock.now``), so that a timed call takes the time it declares with
:func:`spend`, not the time the machine happens to give it.

Why: those sessions check what the gate does with two sides' figures (a same-code pass at its first
look, a slower change past the alarm line), and under pytest-xdist the other worker's tests share the
two cores, so real timings of a sub-millisecond loop swing by tens of percent and the verdicts would
depend on what ran beside them. Each process draws a little jitter (1 % per call) so the statistics
see a spread, as they would from a real machine. How often the gate is right on real timings is
measured by ``python -m benchmarks.gate``, not here.

A plain module on the inner session's ``PYTHONPATH`` (tests/ab/helpers.py puts it there), imported by
each process by name: it must not import the tests package.
"""

from __future__ import annotations

import os
import random

__all__ = ["now", "spend"]

_TICK_S = 1e-9  # what a read of the clock itself costs: the clock always moves forward
_JITTER = 0.01

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
    _now += seconds * max(0.5, 1.0 + _JITTER * _rng.gauss(0.0, 1.0))
