"""The order of ``--against``'s runs: blocks of one base run and one change run, ABBA.

Block ``k`` runs base process ``k`` beside change process ``k``, the two taking turns on the
machine round by round (:meth:`modelperf.ab.runner.AgainstRunner._paced`); even blocks give the
base the first turn, odd blocks the change, so a drift over the minute of a test (a neighbour
starting, a CPU warming up) touches both sides alike. A test that needs more blocks than one pass
(:mod:`modelperf.decide.sequential`) goes on with the same processes, every other pass mirrored.
"""

from __future__ import annotations

__all__ = ["blocks"]


def blocks(processes: int, mirrored: bool = False) -> list[tuple[int, tuple[str, str]]]:
    """``(process index, (first side, second side))`` per block; ``mirrored`` swaps every block's order."""
    order = []
    for index in range(processes):
        base_first = (index % 2 == 0) != mirrored
        order.append((index, ("base", "change") if base_first else ("change", "base")))
    return order
