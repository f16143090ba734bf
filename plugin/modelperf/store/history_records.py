"""The history store's records, and how a measurement row's JSON columns hold them.

A run is a :class:`RunInfo`; a measurement row comes back as a :class:`HistoryRow` (flattened for
trend tables and plots) or as its :class:`~modelperf.records.Measurement`. Since schema 2 the details
column holds the measurement's typed records (latency, memory, accuracy), its role and info, and the
session's judgement of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from modelperf.records import Judgement, Kind, Measurement, TestResult

__all__ = ["HistoryRow", "RunInfo", "details_json", "dumps", "history_row", "measurement_of", "measurement_row"]


@dataclass(frozen=True)
class RunInfo:
    """One ``--benchmark`` session: where and on what code it ran."""

    run_id: str
    started_at: str
    hardware_id: str
    machine: dict[str, Any] = field(default_factory=dict)
    commit: str | None = None
    dirty: bool = False
    versions: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @classmethod
    def new(
        cls,
        hardware_id: str,
        machine: dict[str, Any] | None = None,
        commit: str | None = None,
        dirty: bool = False,
        versions: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> RunInfo:
        """A run that starts now, with a fresh random id."""
        return cls(
            run_id=uuid.uuid4().hex,
            started_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            hardware_id=hardware_id,
            machine=dict(machine or {}),
            commit=commit,
            dirty=dirty,
            versions=dict(versions or {}),
            label=label,
        )


@dataclass(frozen=True)
class HistoryRow:
    """One measurement of one run, flattened for trend tables and plots."""

    run_id: str
    started_at: str
    hardware_id: str
    commit: str | None
    dirty: bool
    test_id: str
    kind: Kind
    metric: str
    unit: str
    value: float
    samples: tuple[float, ...] = ()  # the run's raw observations, for the spread a plot draws around value
    model: str | None = None  # "<name>@<weights-sha12>", as Measurement.model
    judgement: Judgement | None = None  # what the session's comparison said of it
    statistic: str = "p10"
    role: str | None = None


def measurement_of(row: Mapping[Any, Any]) -> tuple[Measurement, Judgement | None]:
    """A stored measurement row (schema 2) as its Measurement and judgement."""
    details = json.loads(row["extra"])
    judgement = details.pop("judgement", None)
    data = {**details, **{k: row[k] for k in ("test_id", "kind", "metric", "unit", "value") if k in row},
            "samples": json.loads(row["samples"]), "control": json.loads(row.get("control") or "[]"),
            "model": row.get("model")}
    return Measurement.from_json(data), None if judgement is None else Judgement.from_json(judgement)


def history_row(row: Mapping[Any, Any]) -> HistoryRow:
    measurement, judgement = measurement_of(row)
    return HistoryRow(row["run_id"], row["started_at"], row["hardware_id"], row["commit"], bool(row["dirty"]),
                      measurement.test_id, measurement.kind, measurement.metric, measurement.unit,
                      measurement.value, measurement.samples, measurement.model, judgement, measurement.statistic,
                      measurement.role)


def details_json(measurement: Measurement, judgement: Judgement | None) -> str:
    """The details column: the measurement's typed records and info, and its judgement."""
    data = measurement.to_json()
    details: dict[str, Any] = {k: data[k] for k in ("role", "latency", "memory", "accuracy", "load", "info") if k in data}
    if judgement is not None:
        details["judgement"] = judgement.to_json()
    return dumps(details)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def measurement_row(run_id: str, result: TestResult | Measurement) -> dict[str, Any]:
    m, judgement = (result.measurement, result.judgement) if isinstance(result, TestResult) else (result, None)
    return {
        "run_id": run_id,
        "test_id": m.test_id,
        "kind": m.kind.value,
        "metric": m.metric,
        "unit": m.unit,
        "value": float(m.value),
        "samples": dumps(list(m.samples)),
        "control": dumps(list(m.control)),
        "model": m.model,
        "extra": details_json(m, judgement),
    }
