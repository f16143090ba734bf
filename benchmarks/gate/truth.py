"""Does ``--against`` read a change at its true size? Its ratio beside the same two calls alternated in one process.

``python -m benchmarks.gate --truth N`` builds a user's project in a fresh git repository: one test file
with a DistilBERT test classifying a batch of sentences and a Llama test decoding tokens after a
48-token prompt, committed, then changed in the working tree to ``--truth-extra`` more sentences and
tokens (two by default: allocation-heavy for DistilBERT). It then prints, per test:

- the truth: the base and changed calls alternated in a fresh process, in random order, with
  nothing of the plugin (glibc's default malloc, or ``MALLOC_*`` as the environment sets), the
  ratio of their lower deciles and of their medians. One such process runs just before each
  ``--against`` session and the truth is their mean: where glibc's dynamic thresholds settle depends on
  a process's first large allocations, so one process's ratio of an allocation-heavy call is not the
  truth (two fresh processes once read x1.120 and x1.177 for the same DistilBERT change). Once, for
  contrast, the same with the thresholds fixed (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``);
- the ratio of each of N ``pytest --benchmark --against HEAD`` sessions, their mean, and its
  distance from the truth in percentage points (issue 27 asks for at most 1.5);
- with ``--truth-stored``, the ratio of N stored-baseline pairs (save at the base, compare the change).

Every session's results JSON goes to the results folder. A session takes a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BASE_SENTENCES", "ChildFigures", "decile", "run_truth", "sentence_batch", "user_project"]

_SENTENCE = "The second half drags a little, but the ending made the whole evening worth it."
_PROMPT = "Once upon a time in a quiet harbour town, there lived a baker who rose before the sun. " * 6
BASE_SENTENCES, BASE_TOKENS, PROMPT_TOKENS = 16, 20, 48
_FIXED = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}

_TEST_FILE = '''
import pytest

SENTENCES = {sentences}
TOKENS = {tokens}
BATCH = [f"{sentence} ({{i}})" for i in range(SENTENCES)]
PROMPT = {prompt!r}


@pytest.mark.latency(min_effect=0.05)
def test_distilbert_batch(distilbert, benchmark):
    benchmark(distilbert.classify, BATCH)


@pytest.mark.latency(min_effect=0.05)
def test_llama_decode(llama, benchmark):
    prompt = llama.tokenize(PROMPT)[:{prompt_tokens}]
    benchmark.pedantic(llama.decode, args=(TOKENS,), setup=lambda: llama.prefill(prompt), rounds=20,
                       warmup_rounds=1)
'''

ChildFigures = dict[str, dict[str, float]]


def _test_file(sentences: int, tokens: int) -> str:
    return _TEST_FILE.format(sentences=sentences, tokens=tokens, sentence=_SENTENCE, prompt=_PROMPT,
                             prompt_tokens=PROMPT_TOKENS)


def user_project(folder: Path, extra: int) -> Path:
    """A git repository whose HEAD holds the base test file and whose working tree holds the change."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_user.py").write_text(_test_file(BASE_SENTENCES, BASE_TOKENS))
    (folder / "pytest.ini").write_text("[pytest]\n")
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=gate", "-c", "user.email=gate@localhost",
                                                   "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *command], cwd=folder, check=True)
    (folder / "test_user.py").write_text(_test_file(BASE_SENTENCES + extra, BASE_TOKENS + extra))
    return folder


def sentence_batch(size: int) -> list[str]:
    """The DistilBERT batch of ``size`` sentences that the user's test classifies."""
    return [f"{_SENTENCE} ({i})" for i in range(size)]


def decile(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 10]


def child(extra: int, rounds: int) -> ChildFigures:
    """In this process: both calls of each workload alternated in random order; their ratios."""
    from modelperf.models import distilbert, llama
    from modelperf.utils import parse_threads

    threads = parse_threads("auto")
    rng = random.Random(27)
    bert = distilbert.load_distilbert(None, threads)
    model = llama.load_llama(None, threads, 2048)
    prompt = model.tokenize(_PROMPT)[:PROMPT_TOKENS]

    def decode(tokens: int) -> None:
        model.prefill(prompt)
        start = time.perf_counter()
        model.decode(tokens)
        times[tokens].append(time.perf_counter() - start)

    out: ChildFigures = {}
    for name, sizes, call in (
            ("test_distilbert_batch", (BASE_SENTENCES, BASE_SENTENCES + extra), None),
            ("test_llama_decode", (BASE_TOKENS, BASE_TOKENS + extra), decode)):
        times: dict[int, list[float]] = {size: [] for size in sizes}
        batches = {size: sentence_batch(size) for size in sizes}
        for _ in range(rounds + 2):  # two warm-up pairs, dropped below
            for size in rng.sample(sizes, 2):
                if call is not None:
                    call(size)
                    continue
                start = time.perf_counter()
                bert.classify(batches[size])
                times[size].append(time.perf_counter() - start)
        base, change = (times[size][2:] for size in sizes)
        out[name] = {"p10": decile(change) / decile(base),
                     "median": statistics.median(change) / statistics.median(base)}
    return out


def _truth(extra: int, rounds: int, env: dict[str, str]) -> ChildFigures:
    done = subprocess.run([sys.executable, "-m", __name__, str(extra), str(rounds)], env=env, check=True,
                          capture_output=True, text=True)
    figures: ChildFigures = json.loads(done.stdout.splitlines()[-1])
    return figures


def _ratios(results: Path) -> dict[str, float]:
    data = json.loads(results.read_text())
    return {r["measurement"]["test_id"].split("::")[-1]: r["judgement"]["ratio"] for r in data["results"]
            if r["measurement"]["kind"] == "latency" and r["judgement"].get("ratio") is not None}


def _pytest(project: Path, args: Sequence[str], env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--benchmark", *args], cwd=project,
                   env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_truth(sessions: int, extra: int, rounds: int, stored: bool, results: Path, dry_run: bool = False) -> int:
    """Build the project, measure the truth and ``sessions`` --against sessions, print the comparison."""
    project = user_project(Path(tempfile.mkdtemp(prefix="modelperf-truth-")) / "project", extra)
    env = dict(os.environ)
    if dry_run:
        print(f"project in {project}; {sessions} x `pytest --benchmark --against HEAD` there, results in {results}")
        return 0
    fixed = _truth(extra, rounds, {**env, **_FIXED})
    own: list[ChildFigures] = []
    against: dict[str, list[float]] = {}
    saved: dict[str, list[float]] = {}
    for index in range(sessions):
        # Each session's truth process runs just before it, so a drift of the machine reaches both alike.
        own.append(_truth(extra, rounds, env))
        out = results / f"truth-against-{index}.json"
        _pytest(project, ["--against", "HEAD", "--history", "off", "--results-json", str(out)], env)
        for test, ratio in _ratios(out).items():
            against.setdefault(test, []).append(ratio)
        if stored:
            saved_ratios = _stored_pair(project, results, index, env)
            for test, ratio in saved_ratios.items():
                saved.setdefault(test, []).append(ratio)
        print(f"session {index + 1} of {sessions}: " + ", ".join(
            f"{test} truth x{own[-1][test]['p10']:.3f}, --against x{ratios[-1]:.3f}" for test, ratios in against.items()),
            flush=True)
        (results / "truth.json").write_text(json.dumps({"truth": {"glibc's own": own, "thresholds fixed": fixed},
                                                        "against": against, "stored": saved}, indent=2))
    _print(own, fixed, against, saved, extra)
    return 0


def _stored_pair(project: Path, results: Path, index: int, env: dict[str, str]) -> dict[str, float]:
    """Save baselines at the base (the change stashed), then compare the change with them."""
    baselines = results / f"truth-baselines-{index}"
    subprocess.run(["git", "stash", "-q"], cwd=project, check=True)
    try:
        _pytest(project, ["--baseline-save", "--baseline-dir", str(baselines), "--history", "off"], env)
    finally:
        subprocess.run(["git", "stash", "pop", "-q"], cwd=project, check=True)
    out = results / f"truth-stored-{index}.json"
    _pytest(project, ["--baseline-dir", str(baselines), "--history", "off", "--session-spread", "0",
                      "--results-json", str(out)], env)
    return _ratios(out)


def _print(own: list[ChildFigures], fixed: ChildFigures, against: dict[str, list[float]],
           saved: dict[str, list[float]], extra: int) -> None:
    for test in ("test_distilbert_batch", "test_llama_decode"):
        print(f"{test} (+{extra}):")
        truths = [figures[test]["p10"] for figures in own]
        truth = statistics.fmean(truths)
        print(f"  in one process each, glibc's own: mean x{truth:.3f} (p10) over {len(truths)} processes "
              f"({', '.join(f'{t:.3f}' for t in truths)}); median x"
              f"{statistics.fmean(figures[test]['median'] for figures in own):.3f}")
        print(f"  in one process, thresholds fixed: x{fixed[test]['p10']:.3f} (p10), x{fixed[test]['median']:.3f} (median)")
        for label, ratios in (("--against", against.get(test, [])), ("stored pairs", saved.get(test, []))):
            if ratios:
                mean = statistics.fmean(ratios)
                print(f"  {label}: mean x{mean:.3f} over {len(ratios)} ({', '.join(f'{r:.3f}' for r in ratios)}); "
                      f"{(mean - truth) * 100:+.1f} points from the in-process truth")


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), int(sys.argv[2]))))
