"""Benchmark of the paired gate, ``pytest --benchmark --against REF``, as users run it.

Every comparison comes from one independent ``pytest --benchmark --against REV`` session in a fresh
process, started in a change tree (a temporary worktree of REV, HEAD by default), so base and change
hold the same code except for what a mode injects:

- A/A (``--aa N``): nothing injected. False-alarm rate = (regressed + improved) / comparisons.
- Injected slowdowns (``--slowdown 0.05:N``, repeatable): the change side's model adapters do real extra
  work, FACTOR of each timed call's own cost (:mod:`benchmarks.gate.slowdown`). Detection rate =
  regressed / comparisons, over the tests whose min_effect is at most FACTOR.
- Busy neighbour (``--neighbour N``): A/A while a process keeps one core busy from halfway through the
  session (half the median A/A wall time so far, or ``--neighbour-after S``) to its end.
- Single side (``--single N``): plain ``pytest --benchmark`` sessions of the same selection, for the
  wall-time cost of ``--against``.
- Load (``--load-aa N``, ``--load-slowdown 0.10:N``): sessions of one load test (``--load-select``, by
  default Llama near capacity), A/A or with the change side's served requests asking for FACTOR more
  generated tokens each (:mod:`benchmarks.gate.more_tokens`); counted on the load test's gated figure.

Modes run round-robin. The raw files go to ``--results-dir`` (default: a new folder under
``~/.cache/modelperf/studies/``), never into the repository; running again into the same folder adds
sessions. ``--analyze DIR`` re-reads such a folder; ``--summary NAME`` writes the compact summary
``docs/studies/NAME.md`` (and ``.json``) that the repository keeps. REV must have ``--against``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from modelperf.ab.git import AgainstError

from ..studies import add_summary_arguments, provenance, raw_dir, record_start, write_summary
from .analysis import analyze
from .check import run_check
from .plan import DEFAULT_LOAD_SELECT, DEFAULT_SELECT, Mode, parse_load_slowdown, parse_slowdown
from .sessions import RunOptions, run_all
from .summary import gate_summary, print_report
from .truth import run_truth
from .truth_contexts import run_contexts

__all__ = ["main", "parser"]

STUDY = "against-gate"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=(__doc__ or "").splitlines()[0])
    runs = p.add_argument_group("sessions to run")
    runs.add_argument("--aa", type=int, default=0, metavar="N", help="A/A sessions (default 0)")
    runs.add_argument("--slowdown", type=parse_slowdown, action="append", default=[], metavar="FACTOR:N",
                      help="N sessions with an injected slowdown of FACTOR (e.g. 0.05:10); repeatable")
    runs.add_argument("--neighbour", type=int, default=0, metavar="N",
                      help="A/A sessions with a busy neighbour (default 0)")
    runs.add_argument("--neighbour-after", type=float, metavar="SECONDS",
                      help="start the neighbour this long into a session (default: half the median A/A wall time)")
    runs.add_argument("--single", type=int, default=0, metavar="N", help="plain single-side sessions (default 0)")
    runs.add_argument("--load-aa", type=int, default=0, metavar="N", help="A/A sessions of the load test (default 0)")
    runs.add_argument("--load-slowdown", type=parse_load_slowdown, action="append", default=[], metavar="FACTOR:N",
                      help="N sessions of the load test whose change side asks FACTOR more generated tokens per "
                           "request (e.g. 0.10:10); repeatable")
    runs.add_argument("--load-select", default=DEFAULT_LOAD_SELECT,
                      help=f"the load modes' test selection, shell-quoted (default: {DEFAULT_LOAD_SELECT})")
    runs.add_argument("--select", default=DEFAULT_SELECT, help=f"test selection, shell-quoted (default: {DEFAULT_SELECT})")
    runs.add_argument("--suite", action="store_true", help="select the whole tests/suite instead")
    runs.add_argument("--against-processes", type=int, metavar="P", help="passed through to pytest")
    runs.add_argument("--pytest-args", default="", help="more pytest arguments, shell-quoted (e.g. '--llama-threads 1')")
    runs.add_argument("--rev", default="HEAD", help="the commit of both sides (default HEAD); it must have --against")
    runs.add_argument("--results-dir", type=Path,
                      help="where the sessions' raw files go (default: a new folder under ~/.cache/modelperf/studies/)")
    runs.add_argument("--timeout", type=float, default=3 * 3600, help="seconds one session may take (default 10800)")
    runs.add_argument("--dry-run", action="store_true", help="print the commands it would run, run nothing")
    runs.add_argument("--check-injection", type=float, metavar="FACTOR",
                      help="only time the injected slowdown of FACTOR in one process at REV and print the ratio")
    truth = p.add_argument_group("true size (benchmarks/gate/truth.py)")
    truth.add_argument("--truth", type=int, metavar="N",
                       help="only compare N --against sessions of a user's project with its calls alternated in one "
                            "process (DistilBERT: more sentences in a batch; Llama: more tokens), and print both")
    truth.add_argument("--truth-extra", type=int, default=2, metavar="K",
                       help="sentences and tokens the change adds (default 2; 1 is about +5 %%)")
    truth.add_argument("--truth-rounds", type=int, default=60, metavar="R",
                       help="rounds of each call in the one-process alternation (default 60)")
    truth.add_argument("--truth-contexts", type=int, metavar="N",
                       help="only time the DistilBERT change of --truth, and count its page faults per call, in N processes holding both batch sizes "
                            "and in N pairs holding one each (fresh, and forked as --against's workers): how much the process matters")
    truth.add_argument("--truth-stored", action="store_true",
                       help="also run a stored-baseline pair (save at the base, compare the change) per session")
    out = p.add_argument_group("analysis")
    out.add_argument("--analyze", type=Path, metavar="DIR", help="only analyse the sessions already in DIR")
    out.add_argument("--out", type=Path, help="also write all the figures as JSON to this file")
    add_summary_arguments(p)
    return p


def _modes(args: argparse.Namespace) -> list[Mode]:
    modes = [Mode("aa", args.aa), Mode("single", args.single), *args.slowdown, Mode("neighbour", args.neighbour),
             Mode("load-aa", args.load_aa), *args.load_slowdown]
    return [m for m in modes if m.sessions > 0]


def _summarize(args: argparse.Namespace, results: Path) -> None:
    figures = analyze(results)
    print_report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures.to_json(), indent=2) + "\n")
    if args.summary:
        analysis = shlex.join(["python", "-m", "benchmarks.gate", "--analyze", str(results), "--summary",
                               args.summary]) if args.analyze else ""
        made = provenance(args, results, revisions=figures.revisions, machine=figures.machine,
                          analysis_command=analysis)
        summary = gate_summary(figures, name=args.summary, title=args.title or f"Paired gate (--against): "
                               f"{results.name}", made=made, notes=args.note)
        for path in write_summary(summary, args.studies_dir):
            print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.check_injection is not None:
            return run_check(args.rev, args.check_injection)
        if args.truth_contexts is not None:
            return run_contexts(args.truth_contexts, args.truth_extra, args.truth_rounds)
        if args.truth is not None:
            results = raw_dir("truth", args.results_dir)
            return run_truth(args.truth, args.truth_extra, args.truth_rounds, args.truth_stored, results, args.dry_run)
        if args.analyze is not None:
            _summarize(args, args.analyze)
            return 0
        modes = _modes(args)
        if not modes:
            p.error("nothing to run: give --aa, --slowdown, --neighbour, --single, --load-aa or --load-slowdown "
                    "(or --analyze DIR)")
        if args.neighbour and not args.aa and args.neighbour_after is None:
            p.error("--neighbour needs --aa sessions to time itself by, or --neighbour-after SECONDS")
        options = RunOptions(args.rev, tuple(shlex.split("tests/suite" if args.suite else args.select)),
                             tuple(shlex.split(args.pytest_args)), args.against_processes, args.timeout,
                             args.neighbour_after, args.dry_run, tuple(shlex.split(args.load_select)))
        if args.dry_run:
            run_all(options, modes, args.results_dir or Path("<results dir>"))
            return 0
        # Absolute: the sessions run inside a temporary worktree, where a relative path would land.
        results = raw_dir(STUDY, args.results_dir)
        record_start(results, shlex.join(["python", "-m", "benchmarks.gate", *argv]))
        try:
            run_all(options, modes, results)
        except KeyboardInterrupt:
            print(f"\ninterrupted; worktree removed; the sessions so far are in {results}", file=sys.stderr)
            return 130
        _summarize(args, results)
    except (AgainstError, OSError, ValueError) as exc:
        print(f"gate benchmark: {exc}", file=sys.stderr)
        return 2
    return 0
