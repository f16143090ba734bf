"""Records and the writer processes of the concurrency tests, in a module of their own.

A spawned writer imports the module its target lives in: this one needs only modelperf, where the
test modules would bring pytest, hypothesis and the PostgreSQL fixtures into every writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelperf.records import Kind, Measurement
from modelperf.store.baselines import BaselineStore

if TYPE_CHECKING:
    from modelperf.store.history import RunInfo

__all__ = [
    "HW",
    "MEASUREMENTS_PER_RUN",
    "ROUNDS",
    "RUNS_PER_WRITER",
    "latency_measurement",
    "run_info",
    "save",
    "write_runs",
]

HW = "x86_64-test-2c2t-8g-12345678"
ROUNDS = 3  # each baseline writer saves three times, so the saves interleave rather than run one after another
RUNS_PER_WRITER = 3
MEASUREMENTS_PER_RUN = 20


def latency_measurement(test_id: str, metric: str = "median", value: float = 0.5, **extra: Any) -> Measurement:
    return Measurement(
        test_id=test_id,
        kind=Kind.LATENCY,
        metric=metric,
        unit="s",
        value=value,
        samples=(value, value * 1.1, value * 0.9),
        control=(0.01, 0.011),
        model="distilbert@0123456789ab",
        info=dict(extra),
    )


def run_info(hardware_id: str = "x86_64-linux-abc", started_at: str | None = None) -> RunInfo:
    from modelperf.store.history import RunInfo  # here: the baseline writers need no SQLAlchemy

    run = RunInfo.new(
        hardware_id,
        machine={"cpu": "test", "cores": 2},
        commit="deadbeef",
        dirty=True,
        versions={"torch": "2.13.0"},
        label="nightly",
    )
    if started_at is None:
        return run
    return RunInfo(**{**run.__dict__, "started_at": started_at})


def write_runs(url: str, writer: int, barrier: Any) -> None:
    """One history writer process: opens its own store and appends its runs as fast as it can."""
    from modelperf.store.history import HistoryStore

    barrier.wait()
    with HistoryStore(url) as store:
        for round_ in range(RUNS_PER_WRITER):
            measurements = [
                latency_measurement(f"w{writer}::r{round_}::t{i}", value=float(i)) for i in range(MEASUREMENTS_PER_RUN)
            ]
            store.append(run_info(f"hw-{writer}"), measurements)


def _baseline_measurement(test: str, value: float) -> Measurement:
    return Measurement(f"tests/test_a.py::{test}", Kind.LATENCY, "p10_s", "s", value, (value,) * 5, (0.5,) * 5)


def save(root: str, test: str, value: float, barrier: Any) -> None:
    """One baseline writer process: loads the store first and saves after the barrier, as a session does."""
    store = BaselineStore(Path(root), HW)
    store.load()  # what a session reads at its start
    barrier.wait()
    for round_ in range(ROUNDS):
        store.save([_baseline_measurement(test, value + round_)], machine={"arch": "x86_64"}, commit=None, dirty=False)
