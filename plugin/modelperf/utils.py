"""Parsers for option and ini values, each usable as an argparse ``type=``.

They raise ``argparse.ArgumentTypeError`` with one sentence, which pytest prints as a usage error
for options; ini values pass through the same functions, so both read alike.
"""

from __future__ import annotations

import argparse
import os

from modelperf.vocab import MIN_PROCESS_PAIRS

__all__ = ["REPACK_CHOICES", "parse_bool", "parse_positive_int", "parse_repack", "parse_seconds", "parse_spread",
           "parse_threads", "physical_cores"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_positive_int(text: str) -> int:
    """A whole number >= 1, e.g. a context size."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give a positive integer such as 4.") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive: give an integer of at least 1.")
    return value




def parse_process_count(text: str) -> int:
    """Worker processes per side for --against: at least MIN_PROCESS_PAIRS, which the paired verdict needs."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number: give {MIN_PROCESS_PAIRS} or more worker processes per side.") from None
    if value < MIN_PROCESS_PAIRS:
        raise argparse.ArgumentTypeError(
            f"{value} worker processes per side are too few to judge (the verdict needs at least "
            f"{MIN_PROCESS_PAIRS} process pairs): give {MIN_PROCESS_PAIRS} or more.")
    return value


def parse_threads(text: str) -> int:
    """A thread count: a positive integer, or 'auto': physical cores less one (at least one).

    One core is left to the OS, the harness and the control workload: when anything else needs a
    core that OpenMP's threads occupy, every thread waits at the next barrier and a 10 ms call can
    take 300 ms (measured on a 2-core machine; see measure/control.py).
    """
    if str(text).strip().lower() == "auto":
        return max(1, physical_cores() - 1)
    return parse_positive_int(text)


def physical_cores() -> int:
    """The machine's physical cores (its logical ones where that is unknown; at least one)."""
    import psutil

    return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)


REPACK_CHOICES = ("auto", "on", "off")


def parse_repack(text: str) -> str:
    """llama.cpp weight repacking: auto (off on CPUs with Intel AMX), on or off."""
    value = str(text).strip().lower()
    if value not in REPACK_CHOICES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(REPACK_CHOICES)}: write auto, on or off.")
    return value


def parse_seconds(text: str) -> float:
    """A time limit in seconds, >= 0 (0 turns the limited step off)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: give e.g. 300, or 0 for none.") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds of at least 0: give e.g. 300.")
    return value


def parse_spread(text: str) -> float:
    """A between-session spread as a fraction in [0, 1), e.g. 0.03 for 3 %."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a fraction such as 0.03 for 3 %.") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in [0, 1): give e.g. 0.03 for 3 %, or 0.")
    return value


def parse_bool(text: str) -> bool:
    """An ini or environment flag: 1/true/yes/on or 0/false/no/off (case-insensitive)."""
    lowered = str(text).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a yes/no value: write true or false.")
