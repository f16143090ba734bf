"""Reading and writing sizes and durations for people (and the commits and times every table shows).

Sizes are *read* in either family, because users write both: decimal ``KB`` to ``PB`` mean
powers of 1000 and binary ``KiB`` to ``PiB`` mean powers of 1024. Sizes are *written* in binary
units only (``378.2 MiB``), everywhere in the plugin, so a figure in a failure
report, a summary table and a stored baseline always reads the same way; ``memray``'s own reports
use 1024-based units too, so our numbers line up with its flame graphs.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["format_change", "format_commit", "format_duration", "format_size", "format_time", "format_value",
           "parse_size"]

_DECIMAL_UNITS = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "pb": 1000**5}
_BINARY_UNITS = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "pib": 1024**5}
_UNIT_FACTORS: dict[str, int] = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    **_DECIMAL_UNITS,
    **_BINARY_UNITS,
}
_SECONDS = {"s", "sec", "second", "seconds"}
_BYTES = {"b", "byte", "bytes"}
# Written from small to large; format_size walks up this list.
_OUTPUT_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")

# ASCII only: str.isdigit() and \d accept digits of other scripts, which no one means in a size.
_SIZE_RE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*", re.ASCII)
_HINT = "write a number and a unit such as '600 MB' or '1.5 GiB'"


def parse_size(text: str, *, where: str | None = None) -> int:
    """Read a memory size such as ``"600 MB"`` or ``"1.5 GiB"`` and return whole bytes.

    A bare number means bytes. Units are case-insensitive and may be separated by spaces.
    ``where`` (say ``"marker peak_memory(limit=...) in tests/test_x.py"``) is named in the error.
    Any text that is not a size raises :class:`ValueError` with one sentence saying how to fix it.
    """
    origin = f" given in {where}" if where else ""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        reason = "a size cannot be negative" if text.strip().startswith("-") else None
        raise ValueError(_size_error(text, origin, reason))
    unit = match["unit"]
    factor = _UNIT_FACTORS.get(unit.lower())
    if factor is None:
        raise ValueError(_size_error(text, origin, f"'{unit}' is not a unit this plugin knows"))
    exact = Decimal(match["number"]) * factor
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def _size_error(text: str, origin: str, reason: str | None) -> str:
    because = f" ({reason})" if reason else ""
    return f"Cannot read the memory size {text!r}{origin}{because}: {_HINT}."


def format_size(n: float) -> str:
    """Write a byte count in binary units with one decimal (``"378.2 MiB"``, ``"512 B"``).

    Negative values keep their sign, so a shrinking resident set reads ``"-3.0 MiB"``.
    """
    if not math.isfinite(n):
        return f"{n} B"
    sign = "-" if n < 0 else ""
    size = abs(n)
    if round(size) < 1024:
        return f"{sign}{round(size)} B"
    for power, unit in enumerate(_OUTPUT_UNITS[1:], start=1):
        value = size / 1024**power
        # Move up a unit when rounding would print "1024.0 KiB" instead of "1.0 MiB".
        if round(value, 1) < 1024 or unit == _OUTPUT_UNITS[-1]:
            return f"{sign}{value:.1f} {unit}"
    raise AssertionError("unreachable: the last unit always returns")


def format_duration(seconds: float) -> str:
    """Write a duration with a unit that suits its size (``"850 ns"``, ``"12.3 ms"``, ``"2 min 5 s"``)."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    sign = "-" if seconds < 0 else ""
    value = abs(seconds)
    if value < 1e-6:
        text = f"{value * 1e9:.0f} ns"
    elif value < 1e-3:
        text = f"{value * 1e6:.1f} µs"
    elif value < 1:
        text = f"{value * 1e3:.1f} ms"
    elif value < 60:
        text = f"{value:.2f} s"
    elif value < 3600:
        minutes, rest = divmod(round(value), 60)
        text = f"{minutes} min {rest} s"
    else:
        hours, rest = divmod(round(value / 60), 60)
        text = f"{hours} h {rest} min"
    return sign + text


def format_value(value: float | None, unit: str) -> str:
    """A figure in the unit people read best: durations and sizes scaled, fractions to 3 decimals, others
    to 4 significant digits; ``-`` when there is none.
    """
    if value is None:
        return "-"
    if unit.lower() in _SECONDS:
        return format_duration(value)
    if unit.lower() in _BYTES:
        return format_size(value)
    if unit == "fraction":
        return f"{value:.3f}"
    return f"{value:.4g} {unit}".strip()


def format_change(previous: float | None, value: float) -> str:
    """Relative change from ``previous`` to ``value`` (``+5.2 %``); ``-`` when there is none."""
    if previous is None:
        return "-"
    if previous == 0 or not (math.isfinite(previous) and math.isfinite(value)):
        return "n/a"
    return f"{(value - previous) / abs(previous) * 100:+.1f} %"


def format_commit(commit: str | None, dirty: bool) -> str:
    """A short commit hash, marked when the working tree had uncommitted changes (``1a2b3c4d5e+dirty``)."""
    return (commit[:10] if commit else "unknown") + ("+dirty" if dirty else "")


def format_time(started_at: str) -> str:
    """An ISO time to the second, as people read it in a table (``2026-01-05 14:03:12``)."""
    return started_at.replace("T", " ")[:19]
