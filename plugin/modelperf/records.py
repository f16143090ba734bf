"""The record types that flow from measuring to judging, storing and reporting.

A :class:`Measurement` is plain data: a headline figure, the samples behind it, and one typed
detail record for its kind (:class:`LatencyDetail`, :class:`MemoryDetail`, :class:`AccuracyDetail`,
:class:`LoadDetail`) holding everything another module reads. ``info`` holds what a test attached for people to read
(``benchmark.extra_info``); nothing decides on it. A :class:`TestResult` is one measurement with
its :class:`Judgement`, and :class:`SessionResults` is everything a finished session hands to the
reports and writers. All of them round-trip through JSON unchanged, which is how a worker process
hands its results to the process that reports them; :func:`measurement_from_json` also reads the
schema-1 layout of stored baselines and history rows, written before the details were typed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modelperf.load_records import LoadDetail, LoadObjective, LoadPercentiles
from modelperf.vocab import Kind, Verdict

__all__ = ["SCHEMA_VERSION", "AccuracyDetail", "Judgement", "Kind", "LatencyDetail", "LoadDetail", "LoadObjective",
           "LoadPercentiles", "Measurement", "MemoryDetail", "PairedRuns", "RunFigure", "SessionResults", "TestResult",
           "Verdict", "measurement_from_json"]

# Bump when the JSON layout of a stored Measurement changes; readers refuse newer versions and
# read every older one (1: details as free-form "extra" keys; 2: typed detail records). A detail added
# later (``load``) is one more optional key: a schema-2 reader of the other kinds never sees it.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class RunFigure:
    """One run of a test in one ``--against`` worker process: its statistic, control floor and rounds."""

    process: int
    value: float
    control: float | None
    rounds: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunFigure:
        control = data.get("control")
        return cls(int(data["process"]), float(data["value"]), None if control is None else float(control),
                   int(data["rounds"]))


@dataclass(frozen=True)
class PairedRuns:
    """The runs an ``--against`` latency verdict was made on, per side, so a reader can redo it."""

    ref: str
    min_effect: float
    statistic: str
    base: tuple[RunFigure, ...]
    change: tuple[RunFigure, ...]
    # Worker processes a side: the sequential design the blocks were looked at under (0: none, as
    # written before it existed; the runs are then judged as one test).
    processes: int = 0
    # The passes over the processes the design allowed this test (--against-budget; 0: the design's
    # full cap, as written before a budget existed).
    passes: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PairedRuns:
        return cls(str(data["ref"]), float(data["min_effect"]), str(data["statistic"]),
                   tuple(RunFigure.from_json(r) for r in data.get("base", ())),
                   tuple(RunFigure.from_json(r) for r in data.get("change", ())), int(data.get("processes", 0)),
                   int(data.get("passes", 0)))


@dataclass(frozen=True)
class LatencyDetail:
    """How a latency figure was measured: its statistic, rounds, control workload and re-measurements."""

    statistic: str = "p10"
    rounds: int = 0
    iterations: int = 1
    control_version: str | None = None  # the control workload's identity: figures of another are not compared
    remeasured_rounds: int = 0  # rounds a re-measurement added to the first run's
    remeasured_alone: bool = False  # the rounds of a re-measurement only
    busy_factor: float | None = None  # how much slower than the session's quietest the first run's control ran
    paired: PairedRuns | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyDetail:
        paired = data.get("paired")
        busy = data.get("busy_factor")
        version = data.get("control_version")
        return cls(str(data.get("statistic", "p10")), int(data.get("rounds", 0)), int(data.get("iterations", 1)),
                   None if version is None else str(version), int(data.get("remeasured_rounds", 0)),
                   bool(data.get("remeasured_alone", False)), None if busy is None else float(busy),
                   None if paired is None else PairedRuns.from_json(paired))


@dataclass(frozen=True)
class MemoryDetail:
    """Both peak-memory figures of a test body; ``figure`` names the one asserted (memray or rss)."""

    figure: str
    memray_peak_bytes: int
    rss_peak_bytes: int
    rss_delta_bytes: int

    @property
    def label(self) -> str:
        return "RSS growth" if self.figure == "rss" else "memray peak"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemoryDetail:
        return cls(str(data["figure"]), int(data["memray_peak_bytes"]), int(data["rss_peak_bytes"]),
                   int(data["rss_delta_bytes"]))


@dataclass(frozen=True)
class AccuracyDetail:
    """Every example's label, prediction and score, so two runs can be compared example by example."""

    dataset: str
    dataset_sha256: str
    example_ids: tuple[int, ...]
    labels: tuple[int, ...]
    predictions: tuple[int, ...]
    scores: tuple[float, ...]
    seconds_per_example: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccuracyDetail:
        return cls(str(data["dataset"]), str(data.get("dataset_sha256", "")),
                   tuple(int(x) for x in data["example_ids"]), tuple(int(x) for x in data["labels"]),
                   tuple(int(x) for x in data["predictions"]), tuple(float(x) for x in data["scores"]),
                   float(data.get("seconds_per_example", 0.0)))


@dataclass(frozen=True)
class Measurement:
    """One figure for one test, with the raw data behind it.

    ``value`` is the headline (a statistic in seconds, a peak in bytes, an accuracy in [0, 1]).
    ``samples`` keeps the raw observations: per-round seconds for latency, per-example correctness
    (0/1) for accuracy, a single peak for memory. ``control`` holds the seconds of the control
    workload timed beside a latency test. ``model`` is ``"<name>@<weights-sha12>"`` or None.
    ``role`` is the marker's ``'<model>:<figure>'`` for the trade-off table.
    """

    test_id: str
    kind: Kind
    metric: str
    unit: str
    value: float
    samples: tuple[float, ...] = ()
    control: tuple[float, ...] = ()
    model: str | None = None
    role: str | None = None
    latency: LatencyDetail | None = None
    memory: MemoryDetail | None = None
    accuracy: AccuracyDetail | None = None
    load: LoadDetail | None = None
    info: Mapping[str, Any] = field(default_factory=dict)  # for display only: nothing decides on it

    @property
    def key(self) -> str:
        """The identity under which baselines and history file this figure."""
        return f"{self.test_id}::{self.metric}"

    @property
    def statistic(self) -> str:
        """The latency statistic of the figure (p10 for any other kind, which has none)."""
        return self.latency.statistic if self.latency is not None else "p10"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["samples"] = list(self.samples)
        data["control"] = list(self.control)
        data["info"] = dict(self.info)
        for name in ("role", "latency", "memory", "accuracy", "load"):
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        """A Measurement of the current layout (see :func:`measurement_from_json` for older ones)."""
        latency, memory, accuracy, load = (data.get(name) for name in ("latency", "memory", "accuracy", "load"))
        return cls(
            test_id=str(data["test_id"]), kind=Kind(data["kind"]), metric=str(data["metric"]),
            unit=str(data["unit"]), value=float(data["value"]),
            samples=tuple(float(x) for x in data.get("samples", ())),
            control=tuple(float(x) for x in data.get("control", ())),
            model=data.get("model"), role=data.get("role"),
            latency=None if latency is None else LatencyDetail.from_json(latency),
            memory=None if memory is None else MemoryDetail.from_json(memory),
            accuracy=None if accuracy is None else AccuracyDetail.from_json(accuracy),
            load=None if load is None else LoadDetail.from_json(load),
            info=dict(data.get("info", {})),
        )

    def summary(self) -> dict[str, float]:
        """Summary statistics of the samples (empty when there are fewer than two)."""
        if len(self.samples) < 2:
            return {}
        ordered = sorted(self.samples)
        quartiles = statistics.quantiles(ordered, n=20)
        return {"min": ordered[0], "median": statistics.median(ordered), "mean": statistics.fmean(ordered),
                "stddev": statistics.stdev(ordered), "p95": quartiles[-1], "max": ordered[-1],
                "n": float(len(ordered))}


# Schema 1 kept every detail in one free-form "extra" mapping; these keys moved into typed records.
_V1_LATENCY = {"statistic", "rounds", "iterations", "control_version", "remeasured", "remeasured_alone",
               "busy_factor", "against"}
_V1_MEMORY = {"figure", "memray_peak_bytes", "rss_peak_bytes", "rss_delta_bytes"}
_V1_ACCURACY = {"dataset", "dataset_sha256", "example_ids", "labels", "predictions", "scores",
                "seconds_per_example", "n"}
_V1_VERDICT = {"verdict", "verdict_baseline", "verdict_ratio", "verdict_ratio_low", "verdict_ratio_high"}


def _v1_details(kind: Kind, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The typed fields of a schema-1 record, from its ``extra`` mapping."""
    if kind is Kind.LATENCY and "statistic" in extra:
        against = extra.get("against")
        return {"latency": {**{k: extra[k] for k in ("statistic", "rounds", "iterations", "control_version",
                                                        "remeasured_alone", "busy_factor") if k in extra},
                            "remeasured_rounds": extra.get("remeasured", 0),
                            "paired": against}}
    if kind is Kind.MEMORY and "memray_peak_bytes" in extra:
        figure = "rss" if str(extra.get("figure", "")).lower().startswith("rss") else "memray"
        return {"memory": {**{k: extra[k] for k in _V1_MEMORY if k in extra}, "figure": figure}}
    if kind is Kind.ACCURACY and "example_ids" in extra:
        return {"accuracy": {k: extra[k] for k in _V1_ACCURACY if k in extra}}
    return {}


def measurement_from_json(data: Mapping[str, Any], schema: int = SCHEMA_VERSION) -> Measurement:
    """A Measurement written by any schema up to :data:`SCHEMA_VERSION`."""
    if schema >= 2:
        return Measurement.from_json(data)
    extra = dict(data.get("extra") or {})
    kind = Kind(data["kind"])
    moved = _V1_VERDICT | {"role"} | {
        Kind.LATENCY: _V1_LATENCY, Kind.MEMORY: _V1_MEMORY, Kind.ACCURACY: _V1_ACCURACY}[kind]
    current = {k: v for k, v in data.items() if k != "extra"}
    current.update(_v1_details(kind, extra))
    current["role"] = extra.get("role")
    current["info"] = {k: v for k, v in extra.items() if k not in moved}
    return Measurement.from_json(current)


@dataclass(frozen=True)
class Judgement:
    """What a comparison said of one figure: the verdict, its sentence, and the figures it was made on.

    ``reference`` is the compared figure (a stored baseline's, or the base side's), None when nothing
    was compared; ``ratio`` (current/reference, with its 95 % interval ``ratio_low``-``ratio_high``),
    ``drift`` (the control's ratio) and ``p_value`` are set where the comparison has them.
    """

    verdict: Verdict
    line: str
    reference: float | None = None
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None
    drift: float | None = None
    p_value: float | None = None
    detectable: float | None = None
    min_effect: float | None = None
    session_spread: float | None = None  # the between-session spread a stored latency or load comparison used

    @property
    def underpowered(self) -> bool:
        """The verdict could not have seen a change of the size its marker asks to catch."""
        return self.detectable is not None and self.min_effect is not None and self.detectable > 1 + self.min_effect

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Judgement:
        def number(name: str) -> float | None:
            return None if data.get(name) is None else float(data[name])

        return cls(Verdict(data["verdict"]), str(data.get("line", "")), number("reference"), number("ratio"),
                   number("ratio_low"), number("ratio_high"), number("drift"), number("p_value"),
                   number("detectable"), number("min_effect"), number("session_spread"))


@dataclass(frozen=True)
class TestResult:
    """One measured figure of one test and its judgement.

    ``section`` is a report section to attach to a failed test (memory's largest allocations);
    ``pid`` the process that measured it.
    """

    __test__ = False  # not a pytest test class, whatever its name

    measurement: Measurement
    judgement: Judgement
    section: str | None = None
    pid: int = 0

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def line(self) -> str:
        return self.judgement.line

    @property
    def regressed(self) -> bool:
        return self.judgement.verdict is Verdict.REGRESSED

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"measurement": self.measurement.to_json(), "judgement": self.judgement.to_json(),
                                "pid": self.pid}
        if self.section is not None:
            data["section"] = self.section
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestResult:
        """A result of the current layout, or of schema 1 (--results-json files: figures beside the verdict)."""
        section = data.get("section")
        if "judgement" in data:
            measurement, judgement = Measurement.from_json(data["measurement"]), data["judgement"]
        else:
            measurement = measurement_from_json(data["measurement"], schema=1)
            judgement = {**data, "reference": data.get("baseline")}
        return cls(measurement, Judgement.from_json(judgement), None if section is None else str(section),
                   int(data.get("pid", 0)))


@dataclass(frozen=True)
class SessionResults:
    """Everything a finished ``--benchmark`` session reports: results, models, machine and notes.

    ``models`` maps a model fixture name to its info (``ModelInfo.as_dict()``); ``sections`` maps a
    summary section's title to its lines, in the order they were added.
    """

    results: tuple[TestResult, ...] = ()
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    hardware_id: str = ""
    notes: tuple[str, ...] = ()
    sections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    commit: str | None = None
    dirty: bool = False
    against: str | None = None  # the base side of an --against session ("main (1a2b3c4d5e)"), else None

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "results": [r.to_json() for r in self.results],
                "models": {k: dict(v) for k, v in self.models.items()}, "machine": dict(self.machine),
                "hardware_id": self.hardware_id, "notes": list(self.notes),
                "sections": {k: list(v) for k, v in self.sections.items()}, "commit": self.commit,
                "dirty": self.dirty, "against": self.against}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionResults:
        return cls(tuple(TestResult.from_json(r) for r in data.get("results", ())),
                   {str(k): dict(v) for k, v in data.get("models", {}).items()}, dict(data.get("machine", {})),
                   str(data.get("hardware_id", "")), tuple(str(n) for n in data.get("notes", ())),
                   {str(k): tuple(str(x) for x in v) for k, v in data.get("sections", {}).items()},
                   data.get("commit"), bool(data.get("dirty", False)), data.get("against"))

