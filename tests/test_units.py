from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.units import format_change, format_duration, format_size, format_value, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600 MB", 600_000_000),
        ("600MB", 600_000_000),
        ("600 mb", 600_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("0.5GB", 500_000_000),
        ("512 KiB", 524_288),
        ("512 kib", 524_288),
        ("1024", 1024),
        ("12 B", 12),
        ("12 bytes", 12),
        ("  3 MiB  ", 3 * 1024**2),
        (".5 KB", 500),
        ("2 TB", 2 * 1000**4),
        ("1 TiB", 1024**4),
        ("0", 0),
    ],
)
def test_parse_size_reads_decimal_and_binary_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "lots",
        "",
        "   ",
        "-3 MB",
        "nan",
        "inf",
        "inf MB",
        "3 XB",
        "3 M",
        "1.2.3 MB",
        "MB",
        "3 MB extra",
        "1e3 MB",
    ],
)
def test_parse_size_rejects_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match=r"^Cannot read the memory size .*'600 MB' or '1\.5 GiB'\.$"):
        parse_size(text)


def test_parse_size_error_is_one_sentence_naming_the_text() -> None:
    with pytest.raises(ValueError) as info:
        parse_size("lots")
    assert str(info.value) == (
        "Cannot read the memory size 'lots': write a number and a unit such as '600 MB' or '1.5 GiB'."
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("-3 MB", "cannot be negative"), ("3 XB", "'XB' is not a unit")],
)
def test_parse_size_error_says_why(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_size(text)


def test_parse_size_error_names_where_the_size_came_from() -> None:
    with pytest.raises(ValueError, match="given in --model-memory-limit"):
        parse_size("lots", where="--model-memory-limit")


@given(st.text())
def test_parse_size_raises_only_value_error(text: str) -> None:
    try:
        result = parse_size(text)
    except ValueError:
        return
    assert isinstance(result, int) and result >= 0


@given(st.integers(min_value=0, max_value=2**60))
def test_format_size_round_trips_through_parse_size(n: int) -> None:
    text = format_size(n)
    unit = 1024 ** ["B", "KiB", "MiB", "GiB", "TiB", "PiB"].index(text.split()[1])
    # One decimal in the printed unit: off by at most half of its last digit (plus half a byte).
    assert abs(parse_size(text) - n) <= 0.05 * unit + 0.5


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023.4, "1023 B"),
        (1023.6, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (378.2 * 1024**2, "378.2 MiB"),
        (1024**2 - 1, "1.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (-3 * 1024**2, "-3.0 MiB"),
        (2 * 1024**6, "2048.0 PiB"),
    ],
)
def test_format_size_uses_binary_units(n: float, expected: str) -> None:
    assert format_size(n) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (850e-9, "850 ns"),
        (12.34e-6, "12.3 µs"),
        (0.0123, "12.3 ms"),
        (1.254, "1.25 s"),
        (125, "2 min 5 s"),
        (3 * 3600 + 120, "3 h 2 min"),
        (-0.5, "-500.0 ms"),
        (math.inf, "inf s"),
    ],
)
def test_format_duration_picks_a_fitting_unit(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.01231, "s", "12.3 ms"),  # decide's lines and the tables print durations alike
        (1536, "B", "1.5 KiB"),
        (1536, "bytes", "1.5 KiB"),
        (0.91234, "fraction", "0.912"),
        (12.3456, "ppl", "12.35 ppl"),
        (3.0, "", "3"),
        (None, "s", "-"),
    ],
)
def test_format_value_picks_the_formatter_of_the_unit(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


@pytest.mark.parametrize(
    ("previous", "value", "expected"),
    [(None, 1.0, "-"), (0.0, 1.0, "n/a"), (10.0, 11.0, "+10.0 %"), (10.0, 9.5, "-5.0 %"), (math.inf, 1.0, "n/a")],
)
def test_format_change_is_relative_to_the_previous_value(previous: float | None, value: float, expected: str) -> None:
    assert format_change(previous, value) == expected
