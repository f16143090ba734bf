"""parse_marker: the options of each measurement marker, checked before a test runs."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from modelperf.markers import (
    MARKERS,
    AccuracyOptions,
    LatencyOptions,
    MarkerError,
    MemoryOptions,
    marker_help,
    parse_marker,
)

WHERE = "tests/test_x.py::test_y"


@pytest.mark.parametrize(("name", "cls"), [("latency", LatencyOptions), ("peak_memory", MemoryOptions),
                                           ("accuracy", AccuracyOptions)])
def test_no_arguments_give_the_defaults(name: str, cls: type[Any]) -> None:
    assert parse_marker(name, (), {}, WHERE) == cls()


@pytest.mark.parametrize(
    ("name", "kwargs", "attribute", "value"),
    [
        ("latency", {"min_effect": 0.25}, "min_effect", 0.25),
        ("latency", {"statistic": "mean"}, "statistic", "mean"),
        ("latency", {"direction": "higher"}, "direction", "higher"),
        ("latency", {"alpha": 0.01}, "alpha", 0.01),
        ("peak_memory", {"limit": "600 MiB"}, "limit_bytes", 600 * 1024**2),
        ("peak_memory", {"limit": "0.5GB"}, "limit_bytes", 500_000_000),
        ("peak_memory", {"limit": "1.5 GiB"}, "limit_bytes", 3 * 1024**3 // 2),
        ("peak_memory", {"limit": "2048"}, "limit_bytes", 2048),
        ("peak_memory", {"rel": None}, "rel", None),
        ("peak_memory", {"rel": 0.5}, "rel", 0.5),
        ("peak_memory", {"figure": "rss"}, "figure", "rss"),
        ("accuracy", {"min_drop": 0.05}, "min_drop", 0.05),
        ("accuracy", {"min_fraction": 0.95}, "min_fraction", 0.95),
        ("accuracy", {"alpha": 0.01}, "alpha", 0.01),
        ("latency", {"role": "llama:decode"}, "role", "llama:decode"),
        ("peak_memory", {"role": "{name}:memory"}, "role", "{name}:memory"),
        ("accuracy", {"role": "distilbert:accuracy"}, "role", "distilbert:accuracy"),
    ],
)
def test_valid_arguments_are_kept(name: str, kwargs: dict[str, Any], attribute: str, value: Any) -> None:
    assert getattr(parse_marker(name, (), kwargs, WHERE), attribute) == value


def test_no_limit_means_no_limit_bytes() -> None:
    assert parse_marker("peak_memory", (), {}, WHERE).limit_bytes is None


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_unknown_argument_names_it_and_the_allowed_ones(name: str) -> None:
    with pytest.raises(MarkerError) as raised:
        parse_marker(name, (), {"bogus": 1, "also_bogus": 2}, WHERE)
    allowed = ", ".join(f.name for f in fields(MARKERS[name]))
    assert str(raised.value) == (
        f"{WHERE}: @pytest.mark.{name} got unknown argument(s) also_bogus, bogus; allowed: {allowed}."
    )


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_positional_arguments_are_refused(name: str) -> None:
    with pytest.raises(MarkerError, match=rf"^{WHERE}: @pytest.mark.{name} takes keyword arguments only \("):
        parse_marker(name, ("600 MB",), {}, WHERE)


@pytest.mark.parametrize(
    ("name", "kwargs", "problem"),
    [
        # Each range is exclusive, so both edges and one value beyond them are refused.
        ("latency", {"role": "batch1"}, "role='batch1' must read '<model>:<figure>'"),
        ("accuracy", {"role": ":accuracy"}, "role=':accuracy' must read"),
        ("peak_memory", {"role": 3}, "role=3 must read"),
        ("latency", {"min_effect": 0}, "min_effect=0 must be a number between 0 and 10"),
        ("latency", {"min_effect": 10}, "min_effect=10 must be"),
        ("latency", {"min_effect": -0.1}, "min_effect=-0.1 must be"),
        ("latency", {"min_effect": "10%"}, "min_effect='10%' must be a number"),
        ("latency", {"min_effect": True}, "min_effect=True must be a number"),
        ("latency", {"alpha": 0}, "alpha=0 must be a number between 0.0005 and 0.5"),
            ("latency", {"alpha": 0.0001}, "alpha=0.0001 must be a number between 0.0005 and 0.5"),
        ("latency", {"alpha": 0.5}, "alpha=0.5 must be"),
        ("latency", {"statistic": "p95"}, "statistic='p95' is not one of p10, median, mean, p90, p99"),
        ("latency", {"direction": "up"}, "direction='up' is not one of lower, higher"),
        ("peak_memory", {"rel": 0}, "rel=0 must be a number between 0 and 100"),
        ("peak_memory", {"rel": -1}, "rel=-1 must be"),
        ("peak_memory", {"figure": "vms"}, "figure='vms' is not one of memray, rss"),
        ("peak_memory", {"limit": "lots"}, "Cannot read the memory size 'lots'"),
        ("peak_memory", {"limit": "-3 MB"}, "Cannot read the memory size '-3 MB'"),
        ("peak_memory", {"limit": "3 MBs"}, "'MBs' is not a unit"),
        ("peak_memory", {"limit": ""}, "Cannot read the memory size ''"),
        ("accuracy", {"min_drop": 0}, "min_drop=0 must be a number between 0 and 1"),
        ("accuracy", {"min_drop": 1}, "min_drop=1 must be"),
        ("accuracy", {"min_fraction": 1.5}, "min_fraction=1.5 must be"),
        ("accuracy", {"alpha": 0.6}, "alpha=0.6 must be a number between 0 and 0.5"),
    ],
)
def test_out_of_range_or_unreadable_value_is_one_sentence(name: str, kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(MarkerError) as raised:
        parse_marker(name, (), kwargs, WHERE)
    message = str(raised.value)
    assert message.startswith(f"{WHERE}: @pytest.mark.{name}: ")
    assert problem in message
    assert "\n" not in message and message.endswith(".")


def test_limit_error_says_how_to_write_a_size() -> None:
    with pytest.raises(MarkerError, match=r"such as '600 MB' or '1.5 GiB'"):
        parse_marker("peak_memory", (), {"limit": "lots"}, WHERE)


def test_limit_error_says_a_size_cannot_be_negative() -> None:
    with pytest.raises(MarkerError, match=r"cannot be negative"):
        parse_marker("peak_memory", (), {"limit": "-3 MB"}, WHERE)


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_marker_help_shows_every_argument_with_its_default(name: str) -> None:
    line = marker_help(name)
    assert line.startswith(f"{name}(")
    for field in fields(MARKERS[name]):
        assert f"{field.name}={field.default!r}" in line
    assert "\n" not in line


def test_latency_marker_choices_match_what_decide_accepts() -> None:
    from modelperf import decide, markers

    assert markers._SMALLEST_LATENCY_ALPHA > decide.SMALLEST_ALPHA
    assert markers.LatencyOptions().statistic == decide.STATISTICS[0]
