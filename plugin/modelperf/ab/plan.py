"""The order of ``--against``'s runs: blocks of one base run and one change run, ABBA.

Block ``k`` runs base process ``k`` beside change process ``k``, the two taking turns on the
machine round by round (:meth:`modelperf.ab.runner.AgainstRunner._paced`); even blocks give the
base the first turn, odd blocks the change, so a drift over the minute of a test (a neighbour
starting, a CPU warming up) touches both sides alike. A test that needs more blocks than one pass
(:mod:`modelperf.decide.sequential`) goes on with the same processes, every other pass mirrored.

A load test is one block of process 0 on each side (each side's server lives in that worker), whose
phases take the turns ABBA (:func:`phase_turns`): base, change, change, base, and so on. Its marker's
``duration`` and ``max_requests`` are the whole test's budget: each side gets :data:`LOAD_SHARE` of
them, in as many phases as the marker gives (a max-rate search: each trial holds its rate for half the
duration). Each side's figure then rests on half the requests; its stated power says what that still
sees, and a team that needs more gives the marker a bigger budget.

Memory and accuracy tests measure no time: both sides run them at once where the cores allow
(:func:`untimed_at_once`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

__all__ = ["LOAD_SHARE", "blocks", "phase_turns", "untimed_at_once"]

# Of the load section's 410 s in an --against run of the suite at dbc5e59 (a single run's: about 160 s),
# 290 s was the two sides each sending the whole budget, the rest fresh servers between phases. The
# phase pairs, not the requests, carry a split run's precision (one server process is offset from the
# next), and halving keeps their number; two searches compared with each other hold their rates
# equally long.
LOAD_SHARE = 0.5


def blocks(processes: int, mirrored: bool = False) -> list[tuple[int, tuple[str, str]]]:
    """``(process index, (first side, second side))`` per block; ``mirrored`` swaps every block's order."""
    order = []
    for index in range(processes):
        base_first = (index % 2 == 0) != mirrored
        order.append((index, ("base", "change") if base_first else ("change", "base")))
    return order


def phase_turns() -> Iterator[str]:
    """The sides whose turn it is, phase after phase of a load test: base, change, change, base, again."""
    return itertools.cycle(("base", "change", "change", "base"))


def untimed_at_once(model_threads: int, physical_cores: int) -> bool:
    """Whether both sides may run an untimed test at the same time: only where the physical cores hold
    both sides' model threads. Oversubscribed, llama.cpp's and torch's threads wait at barriers for a
    core another process holds (a 10 ms call can take 300 ms; see modelperf.utils.parse_threads), so
    two runs at once could take longer than two in turn."""
    return physical_cores >= 2 * model_threads
