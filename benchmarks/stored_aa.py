"""A/A pairs of stored-baseline sessions: how often an unchanged tree fails a comparison with its own baseline.

Each pair is two fresh ``pytest --benchmark`` processes of the same tree: the first records into an
empty baseline folder, the second compares with it. Nothing changed between them, so every verdict
other than ``pass`` is a false alarm. All pairs of a folder share one history (``history.sqlite``
there), as a dedicated machine's sessions do: the first comparisons judge with the default
between-session spreads, the later ones with each test's own, estimated from the sessions before them
(:mod:`modelperf.decide.spread`). Per kind of figure and model it counts the verdicts; per
latency and load test it gives the ratios the pairs reported (for latency, the machine drift their
controls measured) and the verdicts this checkout's judge gives the same sessions.

    python -m benchmarks.stored_aa --pairs 6                      # raw files: ~/.cache/modelperf/studies/
    python -m benchmarks.stored_aa --analyze DIR --summary NAME   # docs/studies/NAME.md and .json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelperf.decide import SpreadTable, wilson_interval
from modelperf.judge import Reference, Rules, judge
from modelperf.markers import LatencyOptions, LoadOptions, MarkerOptions
from modelperf.records import Kind, Measurement, TestResult, measurement_from_json
from modelperf.store.history_records import RunInfo
from modelperf.store.spreads import group_figures, pooled_spreads

from . import studies
from .studies import Machine, Provenance, Summary

__all__ = ["StoredFigures", "analyze", "main", "summary"]

STUDY = "stored-aa"
_COMMAND = ("-m", "pytest", "--benchmark", "-p", "no:randomly", "-q")
HISTORY = "history.sqlite"  # in the results folder: every pair's sessions record into it and read from it


@dataclass(frozen=True)
class TestRatios:
    """One latency or load test over the pairs: its verdicts, and the ratios, drifts (latency) and
    between-session spreads the comparisons reported (the spread: the test's own from the history, or the
    default until then)."""

    name: str
    verdicts: Mapping[str, int]
    ratios: tuple[float, ...]
    drifts: tuple[float, ...]
    spreads: tuple[float, ...] = ()
    # The same comparisons judged again by this checkout's judge (modelperf.judge.judge), each with the
    # spread it would have read from the study's earlier sessions, and without a re-measurement of a
    # latency figure (a load figure that looked worse was recorded with its second run already pooled in):
    # a rule change is measured on the sessions already run.
    rejudged: Mapping[str, int] = field(default_factory=dict)
    kind: str = "latency"
    detectable: tuple[float, ...] = ()  # what each comparison judged again could have seen (could detect >= x)


@dataclass(frozen=True)
class StoredFigures:
    pairs: int
    verdicts: Mapping[tuple[str, str], Mapping[str, int]]  # (kind, model family) -> verdict counts
    tests: tuple[TestRatios, ...]
    revisions: tuple[str, ...]
    machine: Machine | None

    def to_json(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "revisions": list(self.revisions),
                "verdicts": {f"{kind}/{family}": dict(counts) for (kind, family), counts in self.verdicts.items()},
                "latency_tests": {t.name: self._test(t) for t in self.tests if t.kind == "latency"},
                "load_tests": {t.name: self._test(t) for t in self.tests if t.kind == "load"}}

    @staticmethod
    def _test(t: TestRatios) -> dict[str, Any]:
        return {"verdicts": dict(t.verdicts), "ratios": list(t.ratios), "drifts": list(t.drifts),
                "spreads": list(t.spreads), "rejudged": dict(t.rejudged), "detectable": list(t.detectable)}


def _family(measurement: Mapping[str, Any]) -> str:
    """``distilbert`` or ``llama``: from the model's name, else from the test's declared role, else from
    the test's name (a load test's figure names no model: its server is another process)."""
    extra = measurement.get("extra")
    role = measurement.get("role") or (extra.get("role") if isinstance(extra, dict) else None)
    name = measurement.get("model") or role
    if name is None:
        test = str(measurement.get("test_id", "")).rsplit("::", 1)[-1]
        name = next((family for family in ("distilbert", "llama") if family in test), "other")
    return str(name).split("@")[0].split(":")[0]


def _pair_files(raw: Path) -> list[Path]:
    files = sorted(raw.glob("pair-*-compare.json"), key=lambda p: int(p.stem.split("-")[1]))
    if not files:
        raise FileNotFoundError(f"{raw} holds no pair-N-compare.json; give the --results-dir of a stored_aa run.")
    return files


Session = tuple[RunInfo, dict[tuple[str, str], Measurement]]  # (the run, its figures by test and metric)
_JUDGED_AGAIN = ("latency", "load")  # the kinds whose stored comparison widens by a between-session spread


def _session(data: Mapping[str, Any], name: str) -> Session:
    """A session's run (its code: commit, dirty flag) and its latency and load measurements, from its results."""
    found = {}
    for result in data["results"]:
        if result["measurement"]["kind"] not in _JUDGED_AGAIN:
            continue
        try:
            measurement = measurement_from_json(result["measurement"])
        except (KeyError, TypeError, ValueError):
            continue  # a record this checkout cannot read: no figure to judge again or to pool
        found[(measurement.test_id, measurement.metric)] = measurement
    run = RunInfo(name, "", STUDY, commit=data.get("commit"), dirty=bool(data.get("dirty")))
    return run, found


def _spreads(before: Sequence[Session], default: float) -> SpreadTable:
    """The spreads this checkout's rule would read from a history holding the sessions ``before``,
    grouped and pooled as :func:`modelperf.store.spreads.read_spreads` does from the history store."""
    groups = group_figures((run, list(measured.values())) for run, measured in before)
    return SpreadTable(default=default, history=pooled_spreads(groups))


def _options(measurement: Measurement, min_effect: float) -> MarkerOptions:
    """The marker options the judge needs of a figure, from what its results record: the minimum effect,
    the statistic or gated figure, and the direction its unit implies."""
    higher = measurement.unit.endswith("/s")
    if measurement.kind is Kind.LOAD:
        return LoadOptions(rate=1.0, figure=measurement.metric, min_effect=min_effect,
                           direction="higher" if higher else None)
    return LatencyOptions(min_effect=min_effect, statistic=measurement.statistic,
                          direction="higher" if higher else "lower")


def _rejudged(saved: Mapping[tuple[str, str], Measurement], spreads: SpreadTable,
              current: Mapping[str, Any], judged: Mapping[str, Any]) -> TestResult | None:
    """The verdict this checkout's judge gives the pair's comparison, with the spread it would have read
    from the study's earlier sessions; None where the pair's save session or the figures are missing."""
    if not saved:
        return None
    measurement = measurement_from_json(current)
    reference = saved.get((measurement.test_id, measurement.metric))
    effect = judged.get("min_effect")
    if reference is None or not isinstance(effect, (int, float)):
        return None
    return judge(measurement, Reference(reference), _options(measurement, float(effect)), Rules(spreads=spreads))


def analyze(raw: Path, default_spread: float = 0.03) -> StoredFigures:
    """Verdict counts, and latency and load ratios, of every ``pair-N-compare.json`` in ``raw``; each such
    comparison also judged again by this checkout's judge, with the spreads it would have read from a
    history of the pairs before it (``default_spread``: the sessions' ``--session-spread``)."""
    verdicts: dict[tuple[str, str], Counter[str]] = {}
    tests: dict[tuple[str, str], tuple[Counter[str], list[float], list[float], list[float], Counter[str],
                                      list[float]]] = {}
    revisions: list[str] = []
    machine: Machine | None = None
    history: list[Session] = []  # the sessions before the one being read, as its history held them
    files = _pair_files(raw)
    for path in files:
        data = json.loads(path.read_text())
        if isinstance(data.get("commit"), str) and data["commit"] not in revisions:
            revisions.append(data["commit"])
        if machine is None and isinstance(data.get("machine"), dict):
            machine = Machine.from_info(data["machine"])
        save_path = path.with_name(path.name.replace("-compare.json", "-save.json"))
        save = _session(json.loads(save_path.read_text()), save_path.stem) if save_path.exists() else None
        history += [save] if save is not None else []
        spreads, saved = _spreads(history, default_spread), save[1] if save is not None else {}
        for result in data["results"]:
            measurement = result["measurement"]
            # Today's results keep the verdict and its figures in a "judgement"; the first schema beside them.
            judged = result["judgement"] if isinstance(result.get("judgement"), dict) else result
            verdict = str(judged["verdict"])
            verdicts.setdefault((str(measurement["kind"]), _family(measurement)), Counter())[verdict] += 1
            if measurement["kind"] in _JUDGED_AGAIN:
                counts, ratios, drifts, spreads_used, rejudged, detectable = tests.setdefault(
                    (str(measurement["kind"]), str(measurement["test_id"]).rsplit("::", 1)[-1]),
                    (Counter(), [], [], [], Counter(), []))
                counts[verdict] += 1
                if (again := _rejudged(saved, spreads, measurement, judged)) is not None:
                    rejudged[again.verdict.value] += 1
                    detectable += [again.judgement.detectable] if again.judgement.detectable is not None else []
                for key, values in (("ratio", ratios), ("drift", drifts), ("session_spread", spreads_used)):
                    if isinstance(judged.get(key), (int, float)):
                        values.append(float(judged[key]))
        history.append(_session(data, path.stem))
    return StoredFigures(
        len(files), {key: dict(counts) for key, counts in sorted(verdicts.items())},
        tuple(TestRatios(name, dict(c), tuple(r), tuple(d), tuple(s), dict(j), kind, tuple(x))
              for (kind, name), (c, r, d, s, j, x) in sorted(tests.items())),
        tuple(revisions), machine)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}".removesuffix(".0")


def _row(label: str, counts: Mapping[str, int]) -> tuple[str, ...]:
    total = sum(counts.values())
    alarms = counts.get("regressed", 0) + counts.get("improved", 0)
    low, high = wilson_interval(alarms, total)
    shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda item: -item[1]))
    return label, str(total), shown, f"{alarms} ({_pct(alarms / total if total else 0)} %, {_pct(low)}-{_pct(high)} %)"


def summary(figures: StoredFigures, *, name: str, title: str, made: Provenance, notes: Sequence[str] = ()) -> Summary:
    """The study summary: verdicts per kind and model, then per latency and load test its ratios over the pairs."""
    rows = [_row(f"{kind}, {family}", counts) for (kind, family), counts in figures.verdicts.items()]
    everything: Counter[str] = Counter()
    for counts in figures.verdicts.values():
        everything.update(counts)
    rows.append(_row("all", everything))
    for kind in _JUDGED_AGAIN:
        again: Counter[str] = Counter()
        for test in figures.tests:
            if test.kind == kind:
                again.update(test.rejudged)
        if again:
            rows.append(_row(f"{kind}, judged again by this checkout's judge", again))
    alarms = everything.get("regressed", 0) + everything.get("improved", 0)

    def per_test(kind: str) -> tuple[tuple[str, ...], ...]:
        return tuple(
            (t.name, ", ".join(f"{n} {v}" for v, n in sorted(t.verdicts.items())),
             f"x{statistics.median(t.ratios):.3f}" if t.ratios else "-",
             f"x{min(t.ratios):.3f}-x{max(t.ratios):.3f}" if t.ratios else "-",
             f"x{min(t.drifts):.2f}-x{max(t.drifts):.2f}" if t.drifts else "-",
             f"{_pct(min(t.spreads))}-{_pct(max(t.spreads))} %" if t.spreads else "-",
             ", ".join(f"{n} {v}" for v, n in sorted(t.rejudged.items())) or "-",
             f"x{min(t.detectable):.2f}-x{max(t.detectable):.2f}" if t.detectable else "-")
            for t in figures.tests if t.kind == kind)

    columns = ("test", "verdicts", "median ratio", "ratio range", "machine drift range", "between-session spread used",
               "verdicts by this checkout's judge", "could detect, by this checkout's judge")
    return Summary(
        name=name, title=title, provenance=made,
        headline=f"{figures.pairs} save-then-compare pairs of an unchanged tree: {alarms} false alarm{'' if alarms == 1 else 's'} in "
                 f"{sum(everything.values())} verdicts ({everything.get('inconclusive', 0)} inconclusive).",
        columns=("figures", "verdicts", "counts", "false alarms (Wilson 95 %)"),
        rows=tuple(rows), notes=tuple(notes), figures=figures.to_json(),
        tables=(("Latency tests over the pairs", columns, per_test("latency")),
                ("Load tests over the pairs", columns, per_test("load"))))


def run_pairs(pairs: int, raw: Path, selection: Sequence[str], extra: Sequence[str]) -> None:
    """Run ``pairs`` save-then-compare pairs of the current checkout into ``raw``."""
    done = len(list(raw.glob("pair-*-compare.json")))
    for number in range(done + 1, done + pairs + 1):
        baselines = raw / f"pair-{number}.baselines"  # empty at first: the save session records into it
        for role in ("save", "compare"):
            out = raw / f"pair-{number}-{role}.json"
            command = [sys.executable, *_COMMAND, *selection, "--baseline-dir", str(baselines), "--history",
                       str(raw / HISTORY), "--results-json", str(out), *extra]
            start = time.perf_counter()
            with (raw / f"pair-{number}-{role}.log").open("wb") as log:
                returncode = subprocess.run(command, cwd=studies.REPO, stdout=log, stderr=subprocess.STDOUT,
                                            check=False).returncode
            wall = time.perf_counter() - start
            with (raw / "sessions.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"pair": number, "role": role, "wall_s": wall, "rc": returncode,
                                         "command": command}) + "\n")
            print(f"pair {number} {role}: {wall:.0f} s, exit status {returncode}", flush=True)
            if not out.exists():
                raise SystemExit(f"pair {number}'s {role} session wrote no results; see {out.with_suffix('.log')}.")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stored_aa", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=0, help="save-then-compare pairs to run (default 0)")
    parser.add_argument("--select", default="tests/suite", help="test selection, shell-quoted (default: tests/suite)")
    parser.add_argument("--pytest-args", default="", help="more pytest arguments, shell-quoted")
    parser.add_argument("--results-dir", type=Path,
                        help="where the raw files go (default: a new folder under ~/.cache/modelperf/studies/)")
    parser.add_argument("--analyze", type=Path, metavar="DIR", help="only analyse the pairs already in DIR")
    studies.add_summary_arguments(parser)
    args = parser.parse_args(argv)
    if args.analyze is None and args.pairs <= 0:
        parser.error("nothing to do: give --pairs N to run, or --analyze DIR")
    try:
        raw = args.analyze
        if raw is None:
            raw = studies.raw_dir(STUDY, args.results_dir)
            studies.record_start(raw, shlex.join(["python", "-m", "benchmarks.stored_aa", *argv]))
            run_pairs(args.pairs, raw, shlex.split(args.select), shlex.split(args.pytest_args))
        figures = analyze(raw)
        print(json.dumps(figures.to_json()["verdicts"], indent=1))
        if args.summary:
            analysis = shlex.join(["python", "-m", "benchmarks.stored_aa", "--analyze", str(raw), "--summary",
                                   args.summary]) if args.analyze else ""
            made = studies.provenance(args, raw, revisions=figures.revisions, machine=figures.machine,
                              analysis_command=analysis)
            written = studies.write_summary(summary(figures, name=args.summary, made=made, notes=args.note,
                                            title=args.title or f"Stored baselines, A/A pairs: {raw.name}"),
                                    args.studies_dir)
            print("wrote " + ", ".join(str(p) for p in written))
    except (OSError, ValueError, KeyError) as exc:
        print(f"stored A/A study: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
