"""A quick look at the injected slowdown: time it in one process, on REV's model adapters.

``python -m benchmarks.gate --check-injection 0.10`` checks REV out, then runs this module as a child
with REV's code on its path: it loads DistilBERT and Llama, slows them down, and alternates calls
with and without the injected work (the pass-through that a call from inside another wrapped call
takes): DistilBERT's classify, Llama's prefill and decode (after an untimed prefill, as the suite's
decode test). Then it prints the ratio of the medians and of the minima. About 40 s of CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .slowdown import CALIBRATION_CALLS, Settings, Slowdown, install
from .worktrees import open_change_tree

__all__ = ["main", "ratio", "run_check"]

_TEXT = "The second half drags a little, but the ending made the whole evening worth it."
_PROMPT = "Once upon a time in a quiet harbour town, there lived a baker. " * 12
_PREFILL_TOKENS = 128
_DECODE_TOKENS = 32  # tests/suite/test_latency.py's DECODE_TOKENS


def ratio(call: Callable[[], object], slowdown: Slowdown, rounds: int,
          setup: Callable[[], object] | None = None) -> dict[str, float]:
    """Alternate plain and slowed calls (after the calibration calls), each after ``setup`` if given, as
    a pedantic benchmark's rounds are; medians and minima of each."""
    def timed() -> float:
        if setup is not None:
            setup()
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    for _ in range(CALIBRATION_CALLS + 1):
        timed()
    plain: list[float] = []
    slowed: list[float] = []
    for _ in range(rounds):
        with slowdown.passthrough():
            plain.append(timed())
        slowed.append(timed())
    return {"plain_median_s": statistics.median(plain), "slowed_median_s": statistics.median(slowed),
            "ratio_median": statistics.median(slowed) / statistics.median(plain),
            "ratio_min": min(slowed) / min(plain)}


def main(argv: Sequence[str]) -> int:
    """The child: ``FACTOR LOG``."""
    from modelperf.models import distilbert, llama

    slowdown = install(Settings(float(argv[0]), Path(argv[1])))
    bert = distilbert.load_distilbert(None, 1)
    out = {"distilbert.classify": ratio(lambda: bert.classify([_TEXT]), slowdown, 40)}
    model = llama.load_llama(None, 1, 512)
    tokens = model.tokenize(_PROMPT)[:_PREFILL_TOKENS]
    out[f"llama.prefill({_PREFILL_TOKENS})"] = ratio(lambda: model.prefill(tokens), slowdown, 15)
    # As the suite's decode test: the tokens after a fresh prefill of the prompt, which is not timed.
    out[f"llama.decode({_DECODE_TOKENS})"] = ratio(lambda: model.decode(_DECODE_TOKENS), slowdown, 15,
                                                   setup=lambda: model.prefill(tokens[:64]))
    print(json.dumps(out))
    return 0


def run_check(rev: str, factor: float) -> int:
    """Check ``rev`` out and time the injected slowdown of ``factor`` there; print what it measured."""
    tree = open_change_tree(rev)
    try:
        log = tree.import_dir / "inject.jsonl"
        env = dict(os.environ, PYTHONPATH=tree.pythonpath(os.environ.get("PYTHONPATH")))
        done = subprocess.run([sys.executable, "-m", __name__, str(factor), str(log)], check=False, cwd=tree.path,
                              env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout, done.stderr, file=sys.stderr)
            print(f"the injection check at {tree.sha[:10]} failed (exit status {done.returncode}); its output is "
                  "above.", file=sys.stderr)
            return 1
        for call, figures in json.loads(done.stdout.splitlines()[-1]).items():
            print(f"{call}: plain {figures['plain_median_s'] * 1e3:.2f} ms, injected "
                  f"{figures['slowed_median_s'] * 1e3:.2f} ms; ratio of medians {figures['ratio_median']:.3f}, "
                  f"of minima {figures['ratio_min']:.3f} (target {1 + factor:.3f})")
        for line in log.read_text().splitlines():
            fixed = json.loads(line)
            first = ", ".join(f"{t * 1e3:.2f}" for t in fixed["times_s"])
            print(f"  {fixed['method']}{fixed['key']}: first calls {first} ms, kernel {fixed['unit_s'] * 1e6:.2f} us,"
                  f" n = {fixed['n']}")
    finally:
        tree.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
