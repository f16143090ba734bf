"""Whether a stored baseline may be compared with a new measurement of the same test, and with what.

Pure: a stored record and a current measurement with its environment (library versions and thread
counts) in; ``None`` (compare them) or the one sentence saying why not out, and the words a
comparison line carries about what changed between the two. A library upgrade is compared and
named; other weights or thread counts are compared only when the user asks (``--compare-across``),
because they change what is measured rather than how fast the same work runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from modelperf.records import Measurement
from modelperf.store.baseline_file import StoredRecord
from modelperf.store.hardware import VERSION_FIELDS

__all__ = ["ACROSS", "environment_changes", "environment_note", "parse_across", "run_environment",
           "why_not_compared"]

ACROSS = ("weights", "threads")  # what --compare-across may name
_THREADS = {"torch_threads": "torch threads", "llama_threads": "llama threads"}


def parse_across(text: str) -> frozenset[str]:
    """``"weights, threads"`` -> ``{"weights", "threads"}``; an unknown name is a ValueError."""
    names = frozenset(part for part in re.split(r"[\s,]+", text) if part)
    unknown = sorted(names - set(ACROSS))
    if unknown or not names:
        raise ValueError(f"--compare-across takes {' and/or '.join(ACROSS)}, comma-separated, not {text!r}")
    return names


def run_environment(machine: Mapping[str, Any], torch_threads: int, llama_threads: int) -> dict[str, Any]:
    """What a session's figures depend on besides the hardware: library versions and thread counts."""
    return {**{name: machine.get(name) for name in VERSION_FIELDS},
            "torch_threads": torch_threads, "llama_threads": llama_threads, "allocator": machine.get("allocator")}


def _threads_of(model: str | None) -> tuple[str, ...]:
    # torch threads always count: the latency control runs torch; llama's only for a llama model.
    return ("torch_threads", "llama_threads") if "llama" in (model or "") else ("torch_threads",)


def why_not_compared(stored: StoredRecord, current: Measurement, environment: Mapping[str, Any],
                     across: Collection[str] = ()) -> str | None:
    """None when ``current`` may be judged against ``stored``; else the reason, as the end of a line."""
    then_model = stored.measurement.model
    if then_model != current.model and "weights" not in across:
        return (f"the baseline was measured with other weights ({then_model}, now {current.model}): not "
                "compared; run with --baseline-save to replace it, or with --compare-across weights to compare anyway")
    then, now = (None if m.latency is None else m.latency.control_version for m in (stored.measurement, current))
    if then != now:
        return (f"the baseline was measured against another control workload ({then}, now {now}; the control "
                "changed, or the model's weight dtypes or shapes did): not compared; run with --baseline-save "
                "to re-record it")
    moved = _changes(stored.environment, environment, _threads_of(current.model), _THREADS)
    if moved and "threads" not in across:
        return (f"the baseline ran with other thread counts ({', '.join(moved)}): not compared; run with "
                "--baseline-save to replace it, or with --compare-across threads to compare anyway")
    return None


def environment_changes(stored: StoredRecord, current: Measurement,
                        environment: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """What changed between a compared pair ("torch 2.12.0 -> 2.13.0"), and what stayed ("python 3.11")."""
    names = {name: name for name in VERSION_FIELDS} | {k: _THREADS[k] for k in _threads_of(current.model)}
    changed = _changes(stored.environment, environment, (*names, "allocator"), {**names, "allocator": "allocator"})
    same = [f"{label} {environment.get(name)}" for name, label in names.items()
            if environment.get(name) is not None and stored.environment.get(name) == environment.get(name)]
    if stored.measurement.model != current.model:
        changed.append(f"weights {stored.measurement.model} -> {current.model}")
    elif current.model:
        same.append(f"weights {current.model}")
    return changed, same


def environment_note(stored: StoredRecord, current: Measurement, environment: Mapping[str, Any]) -> str:
    """The words a comparison line carries about what the two figures ran on, changes first."""
    changed, same = environment_changes(stored, current, environment)
    parts = ([f"changed since the baseline: {', '.join(changed)}"] if changed else []) + (
        [f"same {', '.join(same)}"] if same else [])
    return "; ".join(parts)


def _changes(then: Mapping[str, Any], now: Mapping[str, Any], names: tuple[str, ...],
             labels: Mapping[str, str]) -> list[str]:
    """``label old -> new`` for each name whose value differs; a record that never stored it differs in nothing."""
    return [f"{labels[name]} {then[name]} -> {now.get(name)}" for name in names
            if then.get(name) is not None and then[name] != now.get(name)]
