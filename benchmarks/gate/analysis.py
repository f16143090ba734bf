"""Figures of a gate benchmark's sessions, read back from their files.

A results directory holds, per session, ``<mode>-<i>.json`` (the session's ``--results-json``),
``<mode>-<i>.log`` and ``<mode>-<i>.inject.jsonl`` (the processes that ran injected work), and one
line of ``sessions.jsonl`` (wall time, exit status, command). Per mode this counts the verdicts of
the latency comparisons (of the load test's gated figure, for the ``load-`` modes) and gives the
false-alarm or detection rate with its Wilson interval, and per
test it recomputes the paired comparison from the runs stored in each result with the package's own
:func:`modelperf.decide.paired.compare_paired`: on the raw figures (what the gate judges) and on figures
divided by each run's control floor (to see whether the control would have helped).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelperf.decide.paired import block_spread, compare_paired
from modelperf.decide.sequential import MAX_ADVISED_PROCESSES, MAX_PASSES, BlockSpread, Design, processes_to_detect
from modelperf.records import RunFigure as Run

from ..studies import Machine
from .figures import COMPARED, GateFigures, ModeFigures, Rate, TestFigures

__all__ = ["analyze", "load_results", "verdict_of"]
FALSE_ALARM_MODES = ("aa", "neighbour", "load-aa")
_EFFECT_SLACK = 1e-9  # a min_effect of 0.05 read back from JSON still counts for a factor of 0.05
SMALL_EFFECT = 0.03  # issue 27's smaller minimum effect: the processes a side that would state it
_ALPHA = 0.01  # the latency marker's default; the paired runs do not record the marker's own


@dataclass
class _Tally:
    """One test's figures, gathered session by session."""

    regressed: int = 0
    improved: int = 0
    comparisons: int = 0
    min_effect: float | None = None
    ratios: list[float] = field(default_factory=list)
    log_ratios: list[float] = field(default_factory=list)
    log_ratios_control: list[float] = field(default_factory=list)
    half_widths: list[float] = field(default_factory=list)
    half_widths_control: list[float] = field(default_factory=list)
    passes: list[float] = field(default_factory=list)
    detectable: list[float] = field(default_factory=list)
    block_sds: list[float] = field(default_factory=list)
    pair_sds: list[float] = field(default_factory=list)
    # processes a side that would state the test's own minimum effect, and SMALL_EFFECT
    # (MAX_ADVISED_PROCESSES + 1: more than that)
    processes_needed: list[int] = field(default_factory=list)
    processes_needed_small: list[int] = field(default_factory=list)
    round_sds: list[float] = field(default_factory=list)

    def figures(self, name: str) -> TestFigures:
        return TestFigures(
            name, self.regressed, self.improved, self.comparisons, self.min_effect, _median(self.ratios),
            statistics.fmean(self.log_ratios) if self.log_ratios else None, _sd(self.log_ratios),
            _sd(self.log_ratios_control), _median(self.half_widths), _median(self.half_widths_control),
            len(self.log_ratios), statistics.fmean(self.passes) if self.passes else None, max(self.passes, default=None),
            _median(self.detectable), _median(self.block_sds), _median(self.pair_sds),
            _median_count(self.processes_needed), _median_count(self.processes_needed_small), _median(self.round_sds))


def load_results(path: Path) -> dict[str, Any] | None:
    """A session's ``--results-json``, or None when it is missing or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("results"), list) else None


def _judged(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """A result's verdict and ratio: beside its measurement (schema 1) or in its judgement (schema 2)."""
    judgement = result.get("judgement")
    return judgement if isinstance(judgement, dict) else result


def verdict_of(result: Mapping[str, Any]) -> str | None:
    """A result's verdict, in either layout of ``--results-json``; None where it has none."""
    verdict = _judged(result).get("verdict")
    return None if verdict is None else str(verdict)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _sd(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _paired_runs(measurement: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each side's runs of an --against latency figure: ``latency.paired`` in today's results files,
    ``extra.against`` in those of schema 1."""
    latency = measurement.get("latency")
    found = latency.get("paired") if isinstance(latency, dict) else None
    if not isinstance(found, dict):
        extra = measurement.get("extra")
        found = extra.get("against") if isinstance(extra, dict) else None
    return found if isinstance(found, dict) else {}


def _runs(against: Mapping[str, Any], side: str, control: bool) -> list[Run] | None:
    """A side's runs; with ``control``, each divided by its control floor. None when one is unusable."""
    raw = against.get(side)
    if not isinstance(raw, list) or not raw:
        return None
    try:
        runs = [Run.from_json(item) for item in raw]
    except (KeyError, TypeError, ValueError):
        return None
    if control:
        if any(not run.control or run.control <= 0 for run in runs):
            return None
        runs = [Run(run.process, run.value / run.control, None, run.rounds) for run in runs if run.control]
    return runs if all(run.value > 0 for run in runs) else None


def _paired(against: Mapping[str, Any], control: bool) -> tuple[float, float] | None:
    """(log of the paired ratio, half the width of its 95 % interval in log) of one session's runs."""
    base, change = _runs(against, "base", control), _runs(against, "change", control)
    if base is None or change is None or len(base) != len(change):
        return None
    effect = _number(against.get("min_effect"))
    comparison = compare_paired(base, change, min_effect=effect if effect is not None else 0.05)
    if not all(math.isfinite(x) and x > 0 for x in (comparison.ratio, comparison.ratio_low, comparison.ratio_high)):
        return None
    return math.log(comparison.ratio), (math.log(comparison.ratio_high) - math.log(comparison.ratio_low)) / 2


def _spread(against: Mapping[str, Any]) -> BlockSpread | None:
    """The spreads of one session's raw runs: a block's within its process pair, the pairs' between them."""
    base, change = _runs(against, "base", False), _runs(against, "change", False)
    if base is None or change is None or len(base) != len(change):
        return None
    return block_spread(base, change)


def _processes_needed(spread: BlockSpread, against: Mapping[str, Any], effect: float) -> int:
    """The processes a side at which this session's design, at its spreads, would state ``effect``
    (MAX_ADVISED_PROCESSES + 1 where none up to it would)."""
    processes = int(against.get("processes") or spread.pairs)
    design = Design(processes, _ALPHA, int(against.get("passes") or MAX_PASSES))
    found = processes_to_detect(spread, design, effect)
    return MAX_ADVISED_PROCESSES + 1 if found is None else found


def _round_sd(measurement: Mapping[str, Any], against: Mapping[str, Any]) -> float | None:
    """How far one timed round of the change side strays from the next of the same run (sd of the log,
    pooled over its runs): the machine's own noise from one second to the next, which no pairing of
    blocks can remove. The change's pooled samples are its runs' rounds in block order; None where they
    do not add up to the runs' rounds."""
    runs, samples = against.get("change"), measurement.get("samples")
    if not isinstance(runs, list) or not isinstance(samples, list) or not samples:
        return None
    try:
        sizes = [int(run["rounds"]) for run in runs]
        logs = [math.log(float(s)) for s in samples]
    except (KeyError, TypeError, ValueError):
        return None
    if sum(sizes) != len(logs):
        return None
    variances, start = [], 0
    for size in sizes:
        if size > 1:
            variances.append(statistics.variance(logs[start:start + size]))
        start += size
    return math.sqrt(statistics.fmean(variances)) if variances else None


def _median_count(counts: Sequence[int]) -> int | None:
    return int(statistics.median_low(counts)) if counts else None


def _interval(judged: Mapping[str, Any]) -> tuple[float, float] | None:
    """(log ratio, half the width of its 95 % interval in log) of a judgement that states them."""
    ratio, low, high = (_number(judged.get(key)) for key in ("ratio", "ratio_low", "ratio_high"))
    if ratio is None or low is None or high is None or not all(math.isfinite(x) and x > 0 for x in (ratio, low, high)):
        return None
    return math.log(ratio), (math.log(high) - math.log(low)) / 2


def _passes(against: Mapping[str, Any]) -> float | None:
    """How many passes of blocks a test took: its base runs over the worker processes a side (the
    sequential design stops where its verdict is sure, often within a pass; older files name no
    process count, so their distinct processes stand in)."""
    runs = against.get("base")
    if not isinstance(runs, list) or not runs:
        return None
    processes = against.get("processes") or len({run.get("process") for run in runs if isinstance(run, dict)})
    return len(runs) / int(processes) if processes else None


def _add(tally: _Tally, result: Mapping[str, Any], against: Mapping[str, Any], verdict: str) -> None:
    tally.comparisons += 1
    measurement = result.get("measurement")
    if isinstance(measurement, dict) and (round_sd := _round_sd(measurement, against)) is not None:
        tally.round_sds.append(round_sd)
    tally.regressed += verdict == "regressed"
    tally.improved += verdict == "improved"
    if (ratio := _number(_judged(result).get("ratio"))) is not None:
        tally.ratios.append(ratio)
    if (detectable := _number(_judged(result).get("detectable"))) is not None:
        tally.detectable.append(detectable)
    for control, logs, widths in ((False, tally.log_ratios, tally.half_widths),
                                  (True, tally.log_ratios_control, tally.half_widths_control)):
        if (paired := _paired(against, control)) is not None:
            logs.append(paired[0])
            widths.append(paired[1])
    if not against and (interval := _interval(_judged(result))) is not None:  # a load figure's phase pairs
        tally.log_ratios.append(interval[0])
        tally.half_widths.append(interval[1])
    if (passes := _passes(against)) is not None:
        tally.passes.append(passes)
    if (spread := _spread(against)) is not None:
        tally.block_sds.append(spread.within)
        tally.pair_sds.append(spread.between)
        if (effect := _number(against.get("min_effect"))) is not None:
            tally.processes_needed.append(_processes_needed(spread, against, effect))
        tally.processes_needed_small.append(_processes_needed(spread, against, SMALL_EFFECT))
    effect = _min_effect(result, against)
    tally.min_effect = effect if effect is not None else tally.min_effect


def _min_effect(result: Mapping[str, Any], against: Mapping[str, Any]) -> float | None:
    """The test's minimum effect: from its paired runs (latency), else from its judgement (load)."""
    effect = _number(against.get("min_effect"))
    return effect if effect is not None else _number(_judged(result).get("min_effect"))


def _mode(mode: str, paths: Sequence[Path], walls: Sequence[float]) -> ModeFigures:
    kind = "load" if mode.startswith("load-") else "latency"
    name = mode.removeprefix("load-")
    factor = float(name.removeprefix("slowdown-")) if name.startswith("slowdown-") else 0.0
    verdicts: Counter[str] = Counter()
    skipped = unreadable = excluded = unknown_effect = eligible = detected = 0
    tallies: dict[str, _Tally] = {}
    injected: list[int] = []
    for path in paths:
        data = load_results(path)
        if data is None:
            unreadable += 1
            continue
        log = path.with_suffix(".inject.jsonl")
        if log.exists():
            injected.append(len({json.loads(line).get("pid") for line in log.read_text().splitlines() if line.strip()}))
        for result in data["results"]:
            measurement = result.get("measurement") if isinstance(result, dict) else None
            verdict = verdict_of(result) if isinstance(result, dict) else None
            if not isinstance(measurement, dict) or verdict is None or not {"test_id", "kind"} <= measurement.keys():
                skipped += 1
                continue
            if measurement["kind"] != kind:
                continue
            verdicts[verdict] += 1
            if verdict not in COMPARED:
                continue
            against = _paired_runs(measurement)
            name = str(measurement["test_id"]).rsplit("::", 1)[-1]
            _add(tallies.setdefault(name, _Tally()), result, against, verdict)
            effect = _min_effect(result, against)
            if factor:
                if effect is None:
                    unknown_effect += 1
                elif effect > factor + _EFFECT_SLACK:  # a test that asks for more than the injected share
                    excluded += 1
                else:
                    eligible += 1
                    detected += verdict == "regressed"
    comparisons = sum(verdicts[v] for v in COMPARED)
    alarms = Rate.of_counts(verdicts["regressed"] + verdicts["improved"], comparisons) \
        if mode in FALSE_ALARM_MODES else None
    return ModeFigures(mode, factor, len(paths), unreadable, skipped, dict(verdicts), _median(walls), tuple(injected),
                       alarms, Rate.of_counts(detected, eligible) if factor else None, excluded, unknown_effect,
                       tuple(t.figures(name) for name, t in sorted(tallies.items())))


def _manifest(results: Path) -> list[dict[str, Any]]:
    """The lines of ``sessions.jsonl`` that parse; a line cut short by an interrupted run is skipped."""
    manifest = results / "sessions.jsonl"
    records = []
    for line in manifest.read_text().splitlines() if manifest.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def analyze(results: Path) -> GateFigures:
    """Per-mode figures of every ``<mode>-<i>.json`` in ``results``, wall times from ``sessions.jsonl``."""
    if not results.is_dir():
        raise FileNotFoundError(f"{results} is not a directory of gate sessions; give the --results-dir of a run.")
    walls: dict[str, list[float]] = {}
    records = _manifest(results)
    for record in records:
        wall = _number(record.get("wall_s"))
        if wall is not None and "mode" in record:
            walls.setdefault(str(record["mode"]), []).append(wall)
    files: dict[str, list[Path]] = {}
    for path in sorted(results.glob("*.json")):
        mode, _, index = path.stem.rpartition("-")
        if mode and index.isdigit():
            files.setdefault(mode, []).append(path)
    modes = tuple(_mode(mode, paths, walls.get(mode, [])) for mode, paths in sorted(files.items()))
    revisions: list[str] = []
    machine: Machine | None = None
    for path in (p for paths in files.values() for p in paths):
        data = load_results(path)
        if data is None:
            continue
        commit = data.get("commit")
        if isinstance(commit, str) and commit not in revisions:
            revisions.append(commit)
        if machine is None and isinstance(data.get("machine"), dict):
            machine = Machine.from_info(data["machine"])
    command = next((tuple(str(a) for a in r["command"]) for r in records if r.get("mode") == "aa"
                    and isinstance(r.get("command"), list)), ())
    return GateFigures(results, modes, tuple(revisions), machine, command)
