"""Unit tests for modelperf.store.comparable: when a stored baseline is compared, and what the line says."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.records import Kind, LatencyDetail, Measurement
from modelperf.store.baseline_file import StoredRecord
from modelperf.store.comparable import ACROSS, environment_note, parse_across, run_environment, why_not_compared

ENV: dict[str, Any] = {"python": "3.11", "torch": "2.13.0", "transformers": "5.24.0", "llama_cpp_python": "0.3.16",
                       "numpy": "2.4.6", "torch_threads": 3, "llama_threads": 3,
                       "allocator": "glibc 2.36 malloc; its own dynamic thresholds"}


def _measurement(model: str = "distilbert@aaaa", control: str = "v1") -> Measurement:
    return Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", 0.01, (0.01,) * 5, (0.5,), model,
                       latency=LatencyDetail(control_version=control))


def _stored(environment: dict[str, Any] | None = None, **kwargs: str) -> StoredRecord:
    return StoredRecord(_measurement(**kwargs), "c0ffee", False, "2026-01-01T00:00:00+00:00", dict(environment or ENV))


def test_run_environment_takes_versions_from_the_machine_and_the_threads_given() -> None:
    machine = {**{k: v for k, v in ENV.items() if "threads" not in k}, "cpu_model": "x"}  # allocator: the session's
    assert run_environment(machine, 3, 3) == ENV


@pytest.mark.parametrize(
    ("stored", "current", "across", "reason"),
    [
        (_stored(), _measurement(), (), None),
        (_stored({**ENV, "torch": "2.12.0"}), _measurement(), (), None),  # an upgrade is compared
        (_stored(model="distilbert@bbbb"), _measurement(), (), "other weights"),
        (_stored(model="distilbert@bbbb"), _measurement(), ("weights",), None),
        (_stored({**ENV, "torch_threads": 8}), _measurement(), (), "other thread counts (torch threads 8 -> 3)"),
        (_stored({**ENV, "torch_threads": 8}), _measurement(), ("threads",), None),
        # llama's threads only matter to a test of the llama model
        (_stored({**ENV, "llama_threads": 8}), _measurement(), (), None),
        (_stored({**ENV, "llama_threads": 8}, model="llama@cccc"), _measurement("llama@cccc"), (), "llama threads 8 -> 3"),
        (_stored({}), _measurement(), (), None),  # a record from before environments were stored
        (_stored(control="v0"), _measurement(), ("weights", "threads"), "another control workload"),
    ],
)
def test_why_not_compared(stored: StoredRecord, current: Measurement, across: tuple[str, ...], reason: str | None) -> None:
    found = why_not_compared(stored, current, ENV, across)
    assert found is None if reason is None else reason in (found or "")


def test_the_note_names_changes_first_then_what_stayed() -> None:
    note = environment_note(_stored({**ENV, "torch": "2.12.0"}), _measurement(), ENV)
    assert note == ("changed since the baseline: torch 2.12.0 -> 2.13.0; same python 3.11, transformers 5.24.0, "
                    "llama_cpp_python 0.3.16, numpy 2.4.6, torch threads 3, weights distilbert@aaaa")
    across = environment_note(_stored(model="distilbert@bbbb"), _measurement(), ENV)
    assert across.startswith("changed since the baseline: weights distilbert@bbbb -> distilbert@aaaa; same python")


@given(st.sets(st.sampled_from(ACROSS), min_size=1), st.sampled_from([",", ", ", " ", " , ", "\n", "\t,"]))
def test_parse_across_round_trips(names: set[str], separator: str) -> None:
    assert parse_across(separator.join(sorted(names))) == names


@given(st.text(min_size=1).filter(lambda t: t.strip(" ,") and any(w not in ACROSS for w in t.replace(",", " ").split())))
def test_parse_across_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="--compare-across takes weights and/or threads"):
        parse_across(text)


def test_a_change_of_allocator_is_compared_and_named() -> None:
    then = {**ENV, "allocator": "glibc 2.36 malloc; thresholds fixed during latency tests"}
    assert why_not_compared(_stored(then), _measurement(), ENV) is None
    note = environment_note(_stored(then), _measurement(), ENV)
    assert note.startswith("changed since the baseline: allocator glibc 2.36 malloc; thresholds fixed during latency "
                           "tests -> glibc 2.36 malloc; its own dynamic thresholds; same python 3.11")
