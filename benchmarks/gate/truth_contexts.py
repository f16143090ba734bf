"""How much the true size of an allocation-heavy change depends on the process that runs it.

``python -m benchmarks.gate --truth-contexts N`` measures the DistilBERT change of ``--truth`` (a batch
of 16 sentences against 16 + ``--truth-extra``) in fresh processes that hold DistilBERT only, two ways:

- *mixed*: both batch sizes alternated in one process, in random order (``--truth``'s procedure,
  without the Llama model that ``--truth``'s process also loads);
- *blocked*: both sizes in one process, but :data:`BLOCK` calls of one size at a time, in random order
  of the sizes, as a run of ``--against`` times one size for a while;
- *separate*: one batch size per fresh process, as each side of ``--against`` runs it; the pairs
  alternate which size starts.

Each way gives N ratios of lower deciles. glibc's dynamic mmap threshold rises to the largest buffer a
process has freed, so whether the larger batch pays page faults depends on that process's history;
these figures say by how much, and so how closely any one "truth" can be known.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time

from .truth import BASE_SENTENCES, decile, sentence_batch

__all__ = ["context_child", "run_contexts"]


BLOCK = 10  # calls of one size in a row, in the blocked way


def context_child(sizes: list[int], rounds: int, block: int = 1) -> dict[int, float]:
    """In this process, DistilBERT only: each size in ``sizes`` timed ``rounds`` times, ``block`` calls of
    one size at a time, the sizes in random order."""
    from modelperf.models import distilbert
    from modelperf.utils import parse_threads

    bert = distilbert.load_distilbert(None, parse_threads("auto"))
    batches = {size: sentence_batch(size) for size in sizes}
    times: dict[int, list[float]] = {size: [] for size in sizes}
    rng = random.Random(27)
    for _ in range(rounds // block + 2):  # two warm-up turns, dropped below
        for size in rng.sample(sizes, len(sizes)):
            for _ in range(block):
                start = time.perf_counter()
                bert.classify(batches[size])
                times[size].append(time.perf_counter() - start)
    return {size: decile(kept[2 * block:]) for size, kept in times.items()}


def _in_child(sizes: list[int], rounds: int, block: int = 1) -> dict[int, float]:
    done = subprocess.run([sys.executable, "-m", __name__, str(rounds), str(block), *map(str, sizes)], check=True,
                          capture_output=True, text=True)
    return {int(size): p10 for size, p10 in json.loads(done.stdout.splitlines()[-1]).items()}


def run_contexts(pairs: int, extra: int, rounds: int) -> int:
    """Print ``pairs`` mixed and separate ratios of the DistilBERT change, and their means."""
    base, change = BASE_SENTENCES, BASE_SENTENCES + extra
    mixed: list[float] = []
    blocked: list[float] = []
    separate: list[float] = []
    for index in range(pairs):
        both = _in_child([base, change], rounds)
        mixed.append(both[change] / both[base])
        both = _in_child([base, change], rounds, BLOCK)
        blocked.append(both[change] / both[base])
        order = [base, change] if index % 2 == 0 else [change, base]
        alone = {size: _in_child([size], rounds)[size] for size in order}
        separate.append(alone[change] / alone[base])
        print(f"pair {index + 1} of {pairs}: mixed x{mixed[-1]:.3f}, blocked x{blocked[-1]:.3f}, "
              f"separate x{separate[-1]:.3f}", flush=True)
    for label, ratios in (("both sizes in one process, call by call (DistilBERT only)", mixed),
                          (f"both sizes in one process, {BLOCK} calls at a time", blocked),
                          ("one size per process", separate)):
        print(f"test_distilbert_batch (+{extra}), {label}: mean x{statistics.fmean(ratios):.3f} over {len(ratios)} "
              f"(x{min(ratios):.3f}-{max(ratios):.3f})")
    return 0


if __name__ == "__main__":
    print(json.dumps(context_child([int(size) for size in sys.argv[3:]], int(sys.argv[1]), int(sys.argv[2]))))
