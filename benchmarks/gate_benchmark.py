"""Benchmark of the latency gate itself, on this machine, through the real plugin.

What it measures (each number comes from real `pytest --benchmark` sessions in subprocesses):

1. Baseline: one session saves the baselines of TESTS identical latency tests (DistilBERT batch 1)
   with `--baseline-save`; every later comparison runs in a *later* process.
2. A/A: sessions with nothing changed; each test's verdict is one comparison. False-alarm rate =
   regressed / comparisons.
3. Injected slowdowns: the same tests with a busy-wait of a known share of the baseline median added
   to every call. Detection rate per size; the smallest size detected >= 95 % is reported.
4. Drift: A/A sessions while a neighbour process keeps one core busy (started after the baseline was
   saved); false alarms and the machine drift the gate measured.
5. Harness overhead: in one session, the plugin's median for DistilBERT batch 1 against a bare
   `time.perf_counter` loop around the same call (ratio), and the suite's Llama decode tokens/s
   against a bare llama-cpp-python loop generating the same tokens with the same threads.

Run:  python -m benchmarks.gate_benchmark [--aa-sessions 4] [--tests 25] [--summary NAME]
It takes about 15-25 minutes on a 2-core machine and prints the figures at the end. The sessions' files
and ``report.json`` go to ``--results-dir`` (default: a new folder under ``~/.cache/modelperf/studies/``);
``--summary NAME`` writes the compact summary ``docs/studies/NAME.md`` (and ``.json``), also from an
earlier run's report: ``python -m benchmarks.gate_benchmark --from-report DIR/report.json --summary NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .studies import Provenance, Summary, add_summary_arguments, provenance, raw_dir, record_start, write_summary

__all__ = ["main", "run", "summary"]

STUDY = "gate-benchmark"

INNER = '''
import os, statistics, time, json
import pytest
from modelperf.models.llama import load_llama

SENTENCE = "The second half drags a little, but the ending made the whole evening worth it."
INJECT = float(os.environ.get("GATE_INJECT_S", "0"))


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.latency
@pytest.mark.parametrize("copy", range(int(os.environ.get("GATE_TESTS", "0"))))
def test_gate(distilbert, benchmark, copy):
    def call():
        distilbert.classify([SENTENCE])
        if INJECT:
            _spin(INJECT)
    benchmark(call)


PROMPT = "Once upon a time in a quiet harbour town, there lived"
DECODE = 32
OVERHEAD_COPIES = int(os.environ.get("GATE_OVERHEAD_COPIES", "0"))


def _bare_median(call, rounds=100):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@pytest.mark.latency
@pytest.mark.parametrize("copy", range(OVERHEAD_COPIES))
def test_overhead_distilbert(distilbert, benchmark, copy):
    """The plugin's measurement of a call between two bare perf_counter loops around the same call.

    Bare loops before and after, averaged: a machine that drifts during the test then biases neither side.
    """
    before = _bare_median(lambda: distilbert.classify([SENTENCE]))
    benchmark(distilbert.classify, [SENTENCE])
    after = _bare_median(lambda: distilbert.classify([SENTENCE]))
    benchmark.extra_info["bare_median_s"] = (before + after) / 2


@pytest.mark.latency
@pytest.mark.parametrize("copy", range(OVERHEAD_COPIES))
def test_overhead_llama_decode(llama, benchmark, copy):
    """A bare llama-cpp-python greedy loop (same model file, threads, context), then the suite's decode."""
    llm = load_llama(None, llama.info.threads, llama.info.context_length, logits_all=False).llm
    rates = []
    for _ in range(10):
        llm.reset()
        tokens = llm.generate(llama.tokenize(PROMPT), temp=0.0)
        next(tokens)  # prefill and the first token, which the decode figure leaves out too
        start = time.perf_counter()
        for _ in range(DECODE):
            next(tokens)
        rates.append(DECODE / (time.perf_counter() - start))
    del llm
    prompt = llama.tokenize(PROMPT)
    benchmark.pedantic(llama.decode, args=(DECODE,), setup=lambda: llama.prefill(prompt), rounds=20, warmup_rounds=1)
    benchmark.extra_info["decode_tokens_per_s"] = DECODE / benchmark.stats.stats.median
    benchmark.extra_info["bare_decode_tokens_per_s"] = statistics.median(rates)
'''


def _session(workdir: Path, tests: int, inject_s: float, *extra: str, env_extra: dict[str, str] | None = None
             ) -> dict[str, Any]:
    out = workdir / f"results-{time.time_ns()}.json"
    env = dict(os.environ, GATE_TESTS=str(tests), GATE_INJECT_S=str(inject_s), **(env_extra or {}))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark", "test_gate_inner.py",
           "--baseline-dir", str(workdir / "baselines"), "--history", "off", "--results-json", str(out), *extra]
    done = subprocess.run(cmd, check=False, cwd=workdir, env=env, capture_output=True, text=True)
    if not out.exists():
        raise SystemExit(f"session failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _gate_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["results"] if "::test_gate[" in r["measurement"]["test_id"]]


def _rate(sessions: list[dict[str, Any]]) -> tuple[int, int, list[float]]:
    verdicts = [r for s in sessions for r in _gate_verdicts(s)]
    return sum(r["verdict"] == "regressed" for r in verdicts), len(verdicts), [r.get("drift", 1.0) for r in verdicts]


def _breakdown(sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Verdict counts, and how many tests were re-measured because the machine was busy."""
    verdicts = [r for s in sessions for r in _gate_verdicts(s)]
    counts: dict[str, int] = {}
    for r in verdicts:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    counts["remeasured_busy"] = sum("busy_factor" in r["measurement"]["extra"] for r in verdicts)
    return counts


def _overhead(session: dict[str, Any]) -> dict[str, Any]:
    """Median over adjacent pairs: plugin figure / bare loop figure, for DistilBERT and Llama decode."""
    def extras(name: str) -> list[dict[str, Any]]:
        return [r["measurement"] for r in session["results"] if f"::{name}[" in r["measurement"]["test_id"]]

    bert = extras("test_overhead_distilbert")
    decode = extras("test_overhead_llama_decode")
    return {
        "distilbert_plugin_over_bare": statistics.median(m["value"] / m["extra"]["bare_median_s"] for m in bert),
        "distilbert_plugin_median_s": statistics.median(m["value"] for m in bert),
        "distilbert_bare_median_s": statistics.median(m["extra"]["bare_median_s"] for m in bert),
        "llama_decode_plugin_over_bare": statistics.median(
            m["extra"]["decode_tokens_per_s"] / m["extra"]["bare_decode_tokens_per_s"] for m in decode),
        "llama_decode_plugin_tps": statistics.median(m["extra"]["decode_tokens_per_s"] for m in decode),
        "llama_decode_bare_tps": statistics.median(m["extra"]["bare_decode_tokens_per_s"] for m in decode),
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every session of the benchmark, in ``workdir``; the figures as one JSON-safe report."""
    (workdir / "test_gate_inner.py").write_text(INNER)
    print(f"working in {workdir}", flush=True)

    base = _session(workdir, args.tests, 0.0, "--baseline-save")
    report_base = _breakdown([base])
    base_median = statistics.median(r["measurement"]["value"] for r in _gate_verdicts(base))
    print(f"baseline saved: DistilBERT batch-1 median {base_median * 1e3:.2f} ms over {args.tests} tests", flush=True)

    report: dict[str, Any] = {"baseline_median_s": base_median, "tests_per_session": args.tests,
                              "baseline_remeasured_busy": report_base["remeasured_busy"]}
    aa = [_session(workdir, args.tests, 0.0) for _ in range(args.aa_sessions)]
    alarms, total, drifts = _rate(aa)
    report["aa"] = {"false_alarms": alarms, "comparisons": total, "rate": alarms / total,
                    "median_drift": statistics.median(drifts), "verdicts": _breakdown(aa)}
    print(f"A/A: {alarms}/{total} false alarms", flush=True)

    report["injected"] = {}
    for size in (float(s) for s in args.sizes.split(",")):
        sessions = [_session(workdir, args.tests, base_median * size) for _ in range(args.inject_sessions)]
        hits, total, _ = _rate(sessions)
        report["injected"][f"{size:.2f}"] = {"detected": hits, "comparisons": total, "rate": hits / total,
                                             "verdicts": _breakdown(sessions)}
        print(f"injected +{size:.0%}: detected {hits}/{total}", flush=True)
    detected = [float(s) for s, v in report["injected"].items() if v["rate"] >= 0.95]
    report["smallest_reliable_slowdown"] = min(detected) if detected else None

    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        drift_sessions = [_session(workdir, args.tests, 0.0) for _ in range(args.drift_sessions)]
    finally:
        neighbour.kill()
    alarms, total, drifts = _rate(drift_sessions)
    report["drift"] = {"false_alarms": alarms, "comparisons": total, "rate": alarms / total,
                       "median_drift": statistics.median(drifts), "verdicts": _breakdown(drift_sessions)}
    print(f"A/A with a busy neighbour: {alarms}/{total} false alarms, measured drift x{statistics.median(drifts):.2f}",
          flush=True)

    session = _session(workdir, 0, 0.0, env_extra={"GATE_OVERHEAD_COPIES": str(args.overhead_copies)})
    report["overhead"] = _overhead(session)
    return report


def summary(report: dict[str, Any], *, name: str, title: str, made: Provenance, notes: Sequence[str] = ()) -> Summary:
    """The study summary of one report: the rates, then the harness overhead."""
    aa, drift = report["aa"], report["drift"]
    rows = [("A/A false alarms", f"{aa['false_alarms']} / {aa['comparisons']}", f"machine drift x{aa['median_drift']:.2f}")]
    for size, figures in report["injected"].items():
        rows.append((f"injected +{float(size):.0%} detected", f"{figures['detected']} / {figures['comparisons']}", ""))
    rows.append(("A/A with a busy neighbour: false alarms", f"{drift['false_alarms']} / {drift['comparisons']}",
                 f"machine drift x{drift['median_drift']:.2f}"))
    overhead = report["overhead"]
    rows.append(("DistilBERT batch 1: plugin median / bare loops", f"{overhead['distilbert_plugin_over_bare']:.3f}",
                 f"{overhead['distilbert_plugin_median_s'] * 1e3:.2f} ms / {overhead['distilbert_bare_median_s'] * 1e3:.2f} ms"))
    rows.append(("Llama decode: plugin tokens/s / bare loop", f"{overhead['llama_decode_plugin_over_bare']:.3f}",
                 f"{overhead['llama_decode_plugin_tps']:.1f} / {overhead['llama_decode_bare_tps']:.1f}"))
    smallest = report.get("smallest_reliable_slowdown")
    reliable = f"+{100 * smallest:.0f} %." if smallest is not None else "none of those tried."
    headline = (f"{aa['false_alarms']} false alarms in {aa['comparisons']} A/A comparisons of "
                f"{report['tests_per_session']} identical DistilBERT batch-1 tests; the smallest slowdown detected "
                f"95 % of the time: {reliable}")
    return Summary(name=name, title=title, headline=headline, provenance=made, columns=("figure", "value", "detail"),
                   rows=tuple(rows), notes=tuple(notes), figures=report)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate_benchmark",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=25, help="comparisons per session (default 25)")
    parser.add_argument("--aa-sessions", type=int, default=4, help="A/A sessions (default 4: 100 comparisons)")
    parser.add_argument("--inject-sessions", type=int, default=2, help="sessions per injected size (default 2)")
    parser.add_argument("--sizes", default="0.05,0.10,0.20", help="injected slowdowns (default 0.05,0.10,0.20)")
    parser.add_argument("--drift-sessions", type=int, default=2, help="A/A sessions with a busy neighbour (default 2)")
    parser.add_argument("--overhead-copies", type=int, default=5, help="adjacent plugin/bare pairs (default 5)")
    parser.add_argument("--results-dir", type=Path,
                        help="where the sessions' files and report.json go (default: a new folder under "
                             "~/.cache/modelperf/studies/)")
    parser.add_argument("--from-report", type=Path, metavar="FILE",
                        help="run nothing: summarise the report.json of an earlier run (with --summary)")
    add_summary_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.from_report is not None:
            raw: Path = args.from_report.parent
            report = json.loads(args.from_report.read_text())
            analysis = shlex.join(["python", "-m", "benchmarks.gate_benchmark", "--from-report", str(args.from_report),
                                   "--summary", str(args.summary)])
        else:
            raw = raw_dir(STUDY, args.results_dir)
            record_start(raw, shlex.join(["python", "-m", "benchmarks.gate_benchmark", *argv]))
            report = run(args, raw)
            (raw / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            analysis = ""
        print(json.dumps(report, indent=2))
        if args.summary:
            made = provenance(args, raw, analysis_command=analysis)
            title = args.title or f"Stored-baseline gate: {raw.name}"
            written = write_summary(summary(report, name=args.summary, title=title, made=made, notes=args.note),
                                    args.studies_dir)
            print("wrote " + ", ".join(str(p) for p in written))
    except (OSError, ValueError, KeyError) as exc:
        print(f"gate benchmark (stored baselines): {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
