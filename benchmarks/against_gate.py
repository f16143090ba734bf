"""Benchmark of the paired gate, `pytest --benchmark --against REF`, as users run it.

Every comparison comes from one independent `pytest --benchmark --against REF` session in a fresh
process, started from a "change" tree (a temporary `git worktree add --detach` of REV, HEAD by
default) with REF = REV, so base and change hold the same code except for what a mode injects:

- A/A (`--aa N`): nothing injected. False-alarm rate = (regressed + improved) / comparisons.
- Injected slowdowns (`--slowdown 0.05:N`, repeatable): the change tree's model adapters do real
  extra compute, FACTOR of each timed call's own cost (see INJECTION below). Detection rate =
  regressed / comparisons, over the tests whose min_effect is at most FACTOR only (a test
  that asks for 20 % is not expected to flag 5 %; the excluded count is reported).
- Busy neighbour (`--neighbour N`): A/A while a process keeps one core busy from halfway through the
  session (half the median wall time of the A/A sessions run so far, or `--neighbour-after S`) to
  its end, so the two sides see different machines in the middle of the session.
- Single side (`--single N`): plain `pytest --benchmark` sessions of the same selection, for the
  wall-time cost of --against (median A/A wall time / median single-side wall time).

Modes run interleaved, round-robin, so a slow phase of the machine touches every mode. Each session
writes `<results-dir>/<mode>-<i>.json` (its --results-json), `.log` (its output) and a line of
`sessions.jsonl` (wall time, exit status); `--analyze DIR` re-reads such a directory. Running again
into the same `--results-dir` adds sessions after those already there (numbering continues). Per mode it
prints verdict counts of the latency comparisons, the rates with Wilson 95 % intervals, a per-test
breakdown (regressed/improved/comparisons, median ratio, and the sd over sessions of the log of the
per-test pooled ratio computed from the per-run figures) and the median wall time per session.

The change tree's code is imported through PYTHONPATH=<tree>/plugin, as an installed (or editable
from another checkout) modelperf would otherwise shadow it; REV must contain --against.

Run the figures of the closing note (several hours on a 2-core machine; each session takes minutes):

    python benchmarks/against_gate.py --aa 20 --slowdown 0.05:10 --slowdown 0.10:10 --neighbour 10 \\
        --single 3 --out docs/against-gate.json

Quick looks: `--dry-run` prints the commands only; `--check-injection 0.10` times the injected
slowdown in one process (DistilBERT classify, Llama prefill) and prints the measured ratio;
`--analyze DIR --out FILE` analyses sessions already run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# 9 latency tests of the shipped suite, DistilBERT and Llama, short and long calls: DistilBERT batch 1
# short (~16 tokens) and long (~128 tokens) and batch 32, Llama classification, prefill of 128 tokens,
# a 32-token decode, the p90 inter-token latency, and both cold loads. Left out for time: prefill of
# 512 tokens (~3 s a call) and time to first token (a prefill again). The cold loads and the p90 test
# ask for min_effect 0.20, so they count for false alarms but not for detecting 5 or 10 %.
DEFAULT_SELECT = 'tests/suite/test_latency.py -k "not 512 and not time_to_first_token"'
COMPARED = ("pass", "regressed", "improved", "inconclusive")
INJECTED_FILES = {
    # file in the change tree -> (adapter class, the public methods the latency and serving tests time)
    "plugin/modelperf/models/distilbert.py": ("DistilBert", ("classify",)),
    "plugin/modelperf/models/llama.py": (
        "Llama", ("classify", "prefill", "decode", "next_token", "generate", "timed_generate")),
}

# INJECTION. Appended to the end of the change tree's model modules. Why this and not a sleep or a
# busy-wait of a fixed duration: a real regression is extra code that a faster machine runs faster,
# and the gate's control workload and pairing must see it as such. Each wrapped method, per
# (method, argument-shape key: lengths of sequence and string arguments, values of int ones), times
# its first 5 calls; the fastest, t0, fixes a count n = round(FACTOR * t0 / unit) of a fixed numpy
# kernel (a 48x48 float64 matmul; `unit` is its own time, the fastest of 31 batches of 100, measured
# when the count is fixed: at import, with all workers starting at once, it read up to 40 % slow, and
# the injected share with it). Every later call with that key runs the real method, then n kernels: the extra work per
# call is fixed, FACTOR of the call's undisturbed cost, and a slower machine runs it slower, as real
# code. The fastest rather than the median: the first calls after a load are warm-up-slow (the median
# of DistilBERT's first 3 classify calls was 25-35 % above its steady time), interference only adds
# time, and the gate compares lower deciles. The 5 calibration calls pay FACTOR of the fastest call so
# far, so no call escapes the slowdown (a p10 would pick exactly such calls). Calls made from inside
# another wrapped call (decode -> next_token) add nothing, so nothing is slowed twice. Each fixed
# count is logged to $MODELPERF_GATE_INJECT_LOG (one JSON line) when set, to see which processes ran it.
INJECTION = '''

# --- appended by benchmarks/against_gate.py: an injected slowdown for the gate benchmark, not project code ---
def _modelperf_gate_slowdown(cls, names, factor):
    import functools
    import json
    import os
    import threading
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((48, 48)), rng.standard_normal((48, 48))

    def kernel(count):
        for _ in range(count):
            a @ b

    def kernel_unit():
        kernel(200)
        batches = []
        for _ in range(31):
            start = time.perf_counter()
            kernel(100)
            batches.append((time.perf_counter() - start) / 100)
        return min(batches)

    # At import all of a session's workers start at once on a busy machine: this first unit only
    # serves the 5 calibration calls; the count is fixed with a unit re-measured then (see below).
    provisional_unit = kernel_unit()
    state = threading.local()

    def shape(value):
        if isinstance(value, (str, bytes)):
            return ("s", len(value))
        if isinstance(value, (bool, int)):
            return ("i", int(value))
        if isinstance(value, (list, tuple)):
            return ("l", len(value), sum(len(v) for v in value if isinstance(v, (str, bytes))))
        return (type(value).__name__,)

    def wrap(method):
        first = {}
        counts = {}

        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            if getattr(state, "inside", False):
                return method(self, *args, **kwargs)
            key = tuple(shape(v) for v in args) + tuple((k, shape(v)) for k, v in sorted(kwargs.items()))
            state.inside = True
            try:
                if key in counts:
                    result = method(self, *args, **kwargs)
                    count = counts[key]
                else:
                    start = time.perf_counter()
                    result = method(self, *args, **kwargs)
                    times = first.setdefault(key, [])
                    times.append(time.perf_counter() - start)
                    count = round(factor * min(times) / provisional_unit)  # until fixed: the fastest call so far
                    if len(times) == 5:
                        # Re-measured here, inside a run: --against runs one worker at a time, so the
                        # machine is as quiet as it gets for this process.
                        unit = kernel_unit()
                        count = counts[key] = round(factor * min(times) / unit)
                        log = os.environ.get("MODELPERF_GATE_INJECT_LOG")
                        if log:
                            line = {"pid": os.getpid(), "file": __file__, "method": method.__qualname__,
                                    "key": repr(key), "times_s": times, "unit_s": unit,
                                    "provisional_unit_s": provisional_unit, "n": count, "factor": factor}
                            with open(log, "a") as handle:
                                handle.write(json.dumps(line) + "\\n")
                kernel(count)
                return result
            finally:
                state.inside = False

        return wrapped

    for name in names:
        setattr(cls, name, wrap(getattr(cls, name)))
    return state


_modelperf_gate_state = _modelperf_gate_slowdown(__CLASS__, __METHODS__, __FACTOR__)
'''

# One process: load a model from the tree on PYTHONPATH, alternate wrapped and unwrapped calls (the
# wrapper's own pass-through, as inside another wrapped call), print the ratios of the medians.
CHECK = '''
import json, statistics, time
from modelperf.models import distilbert, llama

def ratio(call, state, rounds):
    for _ in range(6):  # the first 5 calls fix the count
        call()
    plain, patched = [], []
    for _ in range(rounds):
        for inside, samples in ((True, plain), (False, patched)):
            state.inside = inside
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
            state.inside = False
    return {"plain_median_s": statistics.median(plain), "patched_median_s": statistics.median(patched),
            "ratio_median": statistics.median(patched) / statistics.median(plain),
            "ratio_min": min(patched) / min(plain)}

bert = distilbert.load_distilbert(None, 1)
text = "The second half drags a little, but the ending made the whole evening worth it."
out = {"distilbert.classify": ratio(lambda: bert.classify([text]), distilbert._modelperf_gate_state, 40)}
model = llama.load_llama(None, 1, 512)
tokens = model.tokenize("Once upon a time in a quiet harbour town, there lived a baker. " * 12)[:128]
out["llama.prefill(128)"] = ratio(lambda: model.prefill(tokens), llama._modelperf_gate_state, 15)
print(json.dumps(out))
'''


@dataclass(frozen=True)
class Mode:
    name: str  # aa, slowdown-0.05, neighbour, single
    sessions: int
    factor: float = 0.0


def _parse_slowdown(text: str) -> Mode:
    try:
        factor, count = text.split(":")
        mode = Mode(f"slowdown-{float(factor):.2f}", int(count), float(factor))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--slowdown takes FACTOR:SESSIONS, e.g. 0.05:10, not {text!r}") from None
    if not 0 < mode.factor < 10 or mode.sessions < 0:
        raise argparse.ArgumentTypeError(f"--slowdown {text!r}: FACTOR must lie in (0, 10), SESSIONS >= 0")
    return mode


def _git(*args: str, dry_run: bool = False) -> str:
    cmd = ["git", "-C", str(REPO), *args]
    if dry_run:
        print("$ " + shlex.join(cmd))
        return ""
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def inject(tree: Path, factor: float) -> None:
    """Append INJECTION, for this factor, to the end of the tree's model modules."""
    for relative, (cls, methods) in INJECTED_FILES.items():
        snippet = (INJECTION.replace("__CLASS__", cls).replace("__METHODS__", repr(methods))
                   .replace("__FACTOR__", repr(factor)))
        with (tree / relative).open("a") as handle:
            handle.write(snippet)


class Trees:
    """Temporary worktrees of one commit, one per kind of change tree; all removed on close."""

    def __init__(self, rev: str, dry_run: bool) -> None:
        self.rev, self.dry_run = rev, dry_run
        self.root = Path(tempfile.gettempdir(), "modelperf-against-trees-DRYRUN") if dry_run else Path(
            tempfile.mkdtemp(prefix="modelperf-against-trees-"))
        self.trees: dict[str, Path] = {}

    def get(self, factor: float) -> Path:
        name = "head" if factor == 0 else f"slow-{factor:.2f}"
        if name not in self.trees:
            path = self.root / name
            _git("worktree", "add", "--detach", str(path), self.rev, dry_run=self.dry_run)
            self.trees[name] = path
            if factor:
                if self.dry_run:
                    print(f"# append INJECTION (factor {factor}) to {', '.join(str(path / f) for f in INJECTED_FILES)}")
                else:
                    inject(path, factor)
        return self.trees[name]

    def close(self) -> None:
        for path in self.trees.values():
            try:
                _git("worktree", "remove", "--force", str(path), dry_run=self.dry_run)
            except subprocess.CalledProcessError as exc:
                print(f"could not remove the worktree {path}: {exc.stderr.strip()}", file=sys.stderr)
        if not self.dry_run:
            _git("worktree", "prune")
            shutil.rmtree(self.root, ignore_errors=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a SIGTERM (tox, CI cancel) cleans up the worktrees as Ctrl-C does


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the process group this script started for ``process`` (the session and its workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def run_session(cmd: list[str], tree: Path, log: Path, env: dict[str, str], timeout: float,
                neighbour_after: float | None) -> tuple[float, int | None, float | None]:
    """Run one session; returns (wall seconds, exit status or None on timeout, neighbour start or None)."""
    start = time.perf_counter()
    neighbour: subprocess.Popen[bytes] | None = None
    started: float | None = None
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            try:
                if neighbour_after is not None:
                    try:
                        process.wait(timeout=neighbour_after)
                    except subprocess.TimeoutExpired:
                        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                                     start_new_session=True)
                        started = time.perf_counter() - start
                rc: int | None = process.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                rc = None
                _stop(process)
        except BaseException:
            _stop(process)
            raise
        finally:
            if neighbour is not None:
                _stop(neighbour)
    return time.perf_counter() - start, rc, started


def schedule(modes: Sequence[Mode], done: Mapping[str, int] | None = None) -> Iterator[tuple[Mode, int]]:
    """Round-robin over the modes, in the order given, until each has run its sessions.

    ``done[mode]`` sessions already in the results directory: numbering continues after them, so a
    directory can be resumed (or added to by a later run) without overwriting a session.
    """
    done = done or {}
    for index in range(max((m.sessions for m in modes), default=0)):
        for mode in modes:
            if index < mode.sessions:
                yield mode, done.get(mode.name, 0) + index


def _sessions_done(results: Path) -> dict[str, int]:
    """Per mode, one more than the highest session index already in ``results``."""
    done: dict[str, int] = {}
    for path in results.glob("*-*.json"):
        name, _, index = path.stem.rpartition("-")
        if index.isdigit():
            done[name] = max(done.get(name, 0), int(index) + 1)
    return done


def run_all(args: argparse.Namespace, modes: list[Mode], results: Path) -> None:
    dry = args.dry_run
    rev = _git("rev-parse", "--verify", f"{args.rev}^{{commit}}")  # a fixed sha, even if HEAD moves meanwhile
    selection = shlex.split("tests/suite" if args.suite else args.select)
    extra = shlex.split(args.pytest_args)
    if not dry:
        results.mkdir(parents=True, exist_ok=True)
    print(f"REV {rev}; results in {results}", flush=True)
    trees = Trees(rev, dry)
    aa_walls: list[float] = []
    failures = 0
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for mode, index in schedule(modes, {} if dry else _sessions_done(results)):
            tree = trees.get(mode.factor)
            out = results / f"{mode.name}-{index}.json"
            base = [sys.executable, "-m", "pytest", "--benchmark", "-p", "no:randomly", "--history", "off",
                    "--results-json", str(out)]
            # A single-side session compares with no stored baseline: a fresh, empty directory each time.
            baselines = results / f"{mode.name}-{index}.baselines"
            if mode.name == "single":
                cmd = [*base, "--baseline-dir", str(baselines), *selection, *extra]
            else:
                processes = [] if args.against_processes is None else [
                    "--against-processes", str(args.against_processes)]
                cmd = [*base, "--against", rev, *processes, *selection, *extra]
            after: float | None = None
            if mode.name == "neighbour":
                after = args.neighbour_after if args.neighbour_after is not None else (
                    statistics.median(aa_walls) / 2 if aa_walls else None)
                if after is None and not dry:
                    raise SystemExit("--neighbour needs an A/A session run before it, or --neighbour-after SECONDS")
            env_note = f"PYTHONPATH={tree / 'plugin'} MODELPERF_GATE_INJECT_LOG={out.with_suffix('.inject.jsonl')}"
            if dry:
                when = f" (neighbour busy loop from {after:.0f} s)" if after is not None else (
                    " (neighbour busy loop from half the median A/A wall time)" if mode.name == "neighbour" else "")
                print(f"# {mode.name} {index}{when}\n$ cd {tree} && {env_note} {shlex.join(cmd)}")
                continue
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                [str(tree / "plugin"), *filter(None, [os.environ.get("PYTHONPATH")])]),
                MODELPERF_GATE_INJECT_LOG=str(out.with_suffix(".inject.jsonl")))
            try:
                wall, rc, started = run_session(cmd, tree, out.with_suffix(".log"), env, args.timeout, after)
            finally:
                shutil.rmtree(baselines, ignore_errors=True)
            if mode.name == "aa" and rc in (0, 1):  # 1: a test failed (a regressed verdict fails it)
                aa_walls.append(wall)
            record = {"mode": mode.name, "index": index, "wall_s": wall, "rc": rc, "neighbour_started_s": started,
                      "factor": mode.factor, "rev": rev, "command": cmd, "tree": str(tree)}
            with (results / "sessions.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            counts = _verdict_counts(out)
            if counts is None:
                failures += 1
                tail = out.with_suffix(".log").read_text(errors="replace")[-2000:]
                print(f"{mode.name:>14} {index:>3}  {wall:7.0f} s  rc={rc}  NO RESULTS; log tail:\n{tail}", flush=True)
                if failures >= 3:
                    raise SystemExit(f"3 sessions gave no results; see the logs in {results}")
                continue
            failures = 0
            cells = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            busy = f"  neighbour from {started:.0f} s" if started is not None else ""
            print(f"{mode.name:>14} {index:>3}  {wall:7.0f} s  rc={rc}  {cells}{busy}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        trees.close()


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("results"), list) else None


def _verdict_counts(path: Path) -> Counter[str] | None:
    data = _load(path)
    if data is None:
        return None
    return Counter(str(r.get("verdict")) for r in data["results"]
                   if isinstance(r, dict) and (r.get("measurement") or {}).get("kind") == "latency")


def _short(test_id: str) -> str:
    return test_id.rsplit("::", 1)[-1]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _run_log(run: Any, control: bool) -> float | None:
    """log of one run's figure (divided by its control floor with ``control``); None when it has no usable one."""
    value = _number(run.get("value")) if isinstance(run, dict) else None
    floor = _number(run.get("control")) if isinstance(run, dict) else None
    if value is None or value <= 0 or (control and (floor is None or floor <= 0)):
        return None
    return math.log(value / floor) if control and floor else math.log(value)


def _pooled_log_ratio(against: dict[str, Any], control: bool) -> float | None:
    """log(change / base) pooled over the runs: the difference of the sides' mean log values.

    With ``control``, each run's value is divided by its control first; None when a run lacks one.
    """
    sides = []
    for side in ("base", "change"):
        runs = against.get(side)
        if not isinstance(runs, list) or not runs:
            return None
        logs = [_run_log(run, control) for run in runs]
        if None in logs:
            return None
        sides.append(statistics.fmean(log for log in logs if log is not None))
    return sides[1] - sides[0]


def _pair_sd(against: dict[str, Any], control: bool) -> float | None:
    """The sd, over one session's process pairs, of each pair's mean log(change / base): the spread
    the paired t-test sees (its interval is about t * sd / sqrt(pairs) wide)."""
    pairs: dict[tuple[Any, Any], list[float]] = {}
    for base, change in zip(against.get("base") or [], against.get("change") or []):
        base_log, change_log = _run_log(base, control), _run_log(change, control)
        if base_log is None or change_log is None:
            return None
        pairs.setdefault((base.get("process"), change.get("process")), []).append(change_log - base_log)
    return _sd([statistics.fmean(v) for v in pairs.values()])


def _passes(against: dict[str, Any]) -> int | None:
    """How many passes of blocks a test took: its base runs over its distinct worker processes."""
    runs = against.get("base")
    if not isinstance(runs, list) or not runs:
        return None
    processes = {run.get("process") for run in runs if isinstance(run, dict)}
    return len(runs) // len(processes) if processes else None


def _rate(k: int, n: int) -> dict[str, Any]:
    from modelperf.decide import wilson_interval

    low, high = wilson_interval(k, n)
    return {"count": k, "of": n, "rate": k / n if n else None, "wilson95": [low, high]}


def _sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def analyze(results: Path) -> dict[str, Any]:
    """Per-mode figures of every <mode>-<i>.json in ``results`` (and wall times from sessions.jsonl)."""
    walls: dict[str, list[float]] = {}
    manifest = results / "sessions.jsonl"
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            try:
                record = json.loads(line)
                walls.setdefault(str(record["mode"]), []).append(float(record["wall_s"]))
            except (ValueError, KeyError, TypeError):
                continue
    files: dict[str, list[Path]] = {}
    for path in sorted(results.glob("*.json")):
        mode, _, index = path.stem.rpartition("-")
        if mode and index.isdigit():
            files.setdefault(mode, []).append(path)
    report: dict[str, Any] = {"results_dir": str(results), "modes": {}}
    for mode, paths in sorted(files.items()):
        factor = float(mode.removeprefix("slowdown-")) if mode.startswith("slowdown-") else 0.0
        verdicts: Counter[str] = Counter()
        skipped = unreadable = excluded = unknown_effect = 0
        eligible = detected = 0
        tests: dict[str, dict[str, Any]] = {}
        injected_processes: list[int] = []
        for path in paths:
            data = _load(path)
            if data is None:
                unreadable += 1
                continue
            log = path.with_suffix(".inject.jsonl")
            if log.exists():
                injected_processes.append(len({json.loads(line).get("pid") for line in log.read_text().splitlines()
                                               if line.strip()}))
            for result in data["results"]:
                measurement = result.get("measurement") if isinstance(result, dict) else None
                if not isinstance(measurement, dict) or "verdict" not in result or "test_id" not in measurement \
                        or "kind" not in measurement:
                    skipped += 1
                    continue
                if measurement["kind"] != "latency":
                    continue
                verdict = str(result["verdict"])
                verdicts[verdict] += 1
                if verdict not in COMPARED:
                    continue
                extra = measurement.get("extra")
                against = extra.get("against") if isinstance(extra, dict) else None
                against = against if isinstance(against, dict) else {}
                test = tests.setdefault(_short(str(measurement["test_id"])), {
                    "regressed": 0, "improved": 0, "comparisons": 0, "ratios": [], "log_ratios": [],
                    "log_ratios_control": [], "pair_sds": [], "pair_sds_control": [], "min_effect": None,
                    "passes": []})
                test["comparisons"] += 1
                test["regressed"] += verdict == "regressed"
                test["improved"] += verdict == "improved"
                if (ratio := _number(result.get("ratio"))) is not None:
                    test["ratios"].append(ratio)
                for key, control in (("log_ratios", False), ("log_ratios_control", True)):
                    if (pooled := _pooled_log_ratio(against, control)) is not None:
                        test[key].append(pooled)
                for key, control in (("pair_sds", False), ("pair_sds_control", True)):
                    if (spread := _pair_sd(against, control)) is not None:
                        test[key].append(spread)
                if (passes := _passes(against)) is not None:
                    test["passes"].append(passes)
                effect = _number(against.get("min_effect"))
                test["min_effect"] = effect if effect is not None else test["min_effect"]
                if factor:
                    if effect is None:
                        unknown_effect += 1
                    elif effect > factor + 1e-9:  # a test that asks for more than the injected share
                        excluded += 1
                    else:
                        eligible += 1
                        detected += verdict == "regressed"
        comparisons = sum(verdicts[v] for v in COMPARED)
        figures: dict[str, Any] = {
            "sessions": len(paths), "unreadable_sessions": unreadable, "skipped_results": skipped,
            "latency_comparisons": comparisons,
            **{v: verdicts[v] for v in ("regressed", "improved", "inconclusive", "pass")},
            "not_compared": sum(n for v, n in verdicts.items() if v not in COMPARED),
            "not_compared_verdicts": {v: n for v, n in verdicts.items() if v not in COMPARED},
            "median_wall_s": statistics.median(walls[mode]) if walls.get(mode) else None,
            "injected_processes_per_session": injected_processes,
        }
        if mode in ("aa", "neighbour"):
            figures["false_alarms"] = _rate(verdicts["regressed"] + verdicts["improved"], comparisons)
        if factor:
            figures["detection"] = _rate(detected, eligible)
            figures["detection_excluded_min_effect_above_factor"] = excluded
            figures["detection_excluded_no_min_effect"] = unknown_effect
        figures["tests"] = {
            name: {"regressed": t["regressed"], "improved": t["improved"], "comparisons": t["comparisons"],
                   "min_effect": t["min_effect"],
                   "median_ratio": statistics.median(t["ratios"]) if t["ratios"] else None,
                   "pooled_log_ratio_mean": statistics.fmean(t["log_ratios"]) if t["log_ratios"] else None,
                   "pooled_log_ratio_sd": _sd(t["log_ratios"]),
                   "pooled_log_ratio_control_sd": _sd(t["log_ratios_control"]),
                   "median_pair_sd": statistics.median(t["pair_sds"]) if t["pair_sds"] else None,
                   "median_pair_sd_control": statistics.median(t["pair_sds_control"]) if t["pair_sds_control"] else None,
                   "sessions_with_runs": len(t["log_ratios"]),
                   "mean_passes": statistics.fmean(t["passes"]) if t["passes"] else None,
                   "max_passes": max(t["passes"], default=None)}
            for name, t in sorted(tests.items())}
        report["modes"][mode] = figures
    aa, single = report["modes"].get("aa", {}), report["modes"].get("single", {})
    if aa.get("median_wall_s") and single.get("median_wall_s"):
        report["wall_ratio_against_over_single"] = aa["median_wall_s"] / single["median_wall_s"]
    return report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict[str, Any]) -> None:
    for mode, f in report["modes"].items():
        print(f"\n== {mode}: {f['sessions']} sessions, median wall {_fmt(f['median_wall_s'], '.0f')} s")
        print(f"   latency comparisons {f['latency_comparisons']}: regressed {f['regressed']}, "
              f"improved {f['improved']}, inconclusive {f['inconclusive']}, pass {f['pass']}; "
              f"not compared {f['not_compared']} "
              f"{f['not_compared_verdicts'] or ''}")
        if f["skipped_results"] or f["unreadable_sessions"]:
            print(f"   skipped: {f['skipped_results']} results without measurement/test_id/kind/verdict, "
                  f"{f['unreadable_sessions']} unreadable session files")
        if f["injected_processes_per_session"]:
            print(f"   processes that ran injected code, per session: {f['injected_processes_per_session']}")
        rate = f.get("false_alarms") or f.get("detection")
        if rate:
            label = "false alarms (regressed + improved)" if "false_alarms" in f else "detected (regressed)"
            print(f"   {label}: {rate['count']}/{rate['of']} = {_fmt(rate['rate'], '.1%')}, "
                  f"Wilson 95 % [{rate['wilson95'][0]:.1%}, {rate['wilson95'][1]:.1%}]")
        if "detection" in f:
            print(f"   excluded from detection: {f['detection_excluded_min_effect_above_factor']} comparisons of "
                  f"tests with min_effect above the factor, {f['detection_excluded_no_min_effect']} without min_effect")
        print(f"   {'test':<36} {'reg/imp/n':>10} {'min_eff':>7} {'med ratio':>9} {'sd log pooled':>13} "
              f"{'(/control)':>10} {'pair sd':>8} {'(/control)':>10} {'passes':>11}")
        for name, t in f["tests"].items():
            print(f"   {name:<36} {t['regressed']:>3}/{t['improved']}/{t['comparisons']:<4} "
                  f"{_fmt(t['min_effect'], '.2f'):>7} {_fmt(t['median_ratio'], '.4f'):>9} "
                  f"{_fmt(t['pooled_log_ratio_sd'], '.4f'):>13} {_fmt(t['pooled_log_ratio_control_sd'], '.4f'):>10} "
                  f"{_fmt(t['median_pair_sd'], '.3f'):>8} {_fmt(t['median_pair_sd_control'], '.3f'):>10} "
                  f"{_fmt(t['mean_passes'], '.2f'):>5} max {_fmt(t['max_passes'], 'd')}")
    if "wall_ratio_against_over_single" in report:
        print(f"\nwall time, median --against A/A session / median single-side session: "
              f"{report['wall_ratio_against_over_single']:.2f}")


def check_injection(rev: str, factor: float) -> int:
    """Time the injected slowdown in one process, from a temporary tree of REV (about 30 s of CPU)."""
    trees = Trees(_git("rev-parse", "--verify", f"{rev}^{{commit}}"), dry_run=False)
    try:
        tree = trees.get(factor)
        log = trees.root / "inject.jsonl"
        env = dict(os.environ, PYTHONPATH=str(tree / "plugin"), MODELPERF_GATE_INJECT_LOG=str(log))
        done = subprocess.run([sys.executable, "-c", CHECK], check=False, cwd=tree, env=env, capture_output=True,
                              text=True)
        if done.returncode:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        for call, figures in json.loads(done.stdout.splitlines()[-1]).items():
            print(f"{call}: plain {figures['plain_median_s'] * 1e3:.2f} ms, injected "
                  f"{figures['patched_median_s'] * 1e3:.2f} ms; ratio of medians {figures['ratio_median']:.3f}, "
                  f"of minima {figures['ratio_min']:.3f} (target {1 + factor:.3f})")
        for line in log.read_text().splitlines():
            fixed = json.loads(line)
            first = ", ".join(f"{t * 1e3:.2f}" for t in fixed["times_s"])
            print(f"  {fixed['method']}{fixed['key']}: first 5 calls {first} ms, kernel {fixed['unit_s'] * 1e6:.2f} us,"
                  f" n = {fixed['n']}")
    finally:
        trees.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa", type=int, default=0, metavar="N", help="A/A sessions")
    parser.add_argument("--slowdown", type=_parse_slowdown, action="append", default=[], metavar="FACTOR:N",
                        help="N sessions with an injected slowdown of FACTOR (e.g. 0.05:10); repeatable")
    parser.add_argument("--neighbour", type=int, default=0, metavar="N", help="A/A sessions with a busy neighbour")
    parser.add_argument("--neighbour-after", type=float, metavar="SECONDS",
                        help="start the neighbour this long into the session (default: half the median A/A wall time)")
    parser.add_argument("--single", type=int, default=0, metavar="N", help="plain single-side sessions (wall time)")
    parser.add_argument("--select", default=DEFAULT_SELECT,
                        help=f"test selection, shell-quoted (default: {DEFAULT_SELECT})")
    parser.add_argument("--suite", action="store_true", help="select the whole tests/suite")
    parser.add_argument("--against-processes", type=int, metavar="P", help="passed through to pytest")
    parser.add_argument("--pytest-args", default="",
                        help="more pytest arguments, shell-quoted (e.g. '--llama-threads 1')")
    parser.add_argument("--rev", default="HEAD", help="the commit of both sides (default HEAD); it must have --against")
    parser.add_argument("--results-dir", type=Path, help="where the sessions' files go (default: a new temporary dir)")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds one session may take (default 3 h)")
    parser.add_argument("--analyze", type=Path, metavar="DIR", help="only analyse the sessions already in DIR")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--dry-run", action="store_true", help="print the commands it would run, run nothing")
    parser.add_argument("--check-injection", type=float, metavar="FACTOR",
                        help="only time the injected slowdown of FACTOR in one process and print the ratio")
    args = parser.parse_args()
    if args.check_injection is not None:
        return check_injection(args.rev, args.check_injection)
    if args.analyze is None:
        modes = [Mode("aa", args.aa), Mode("single", args.single), *args.slowdown, Mode("neighbour", args.neighbour)]
        modes = [m for m in modes if m.sessions > 0]
        if not modes:
            parser.error("nothing to run: give --aa, --slowdown, --neighbour or --single (or --analyze DIR)")
        if args.neighbour and not args.aa and args.neighbour_after is None:
            parser.error("--neighbour needs --aa sessions to time itself by, or --neighbour-after SECONDS")
        # Absolute: the sessions run inside temporary worktrees, where a relative path would land.
        results = args.results_dir.resolve() if args.results_dir else (Path(tempfile.gettempdir(), "modelperf-against-gate-DRYRUN") if args.dry_run
                                       else Path(tempfile.mkdtemp(prefix="modelperf-against-gate-")))
        try:
            run_all(args, modes, results)
        except KeyboardInterrupt:
            print(f"\ninterrupted; worktrees removed; sessions so far are in {results}", file=sys.stderr)
            return 130
        if args.dry_run:
            return 0
    else:
        results = args.analyze
    report = analyze(results)
    print_report(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
