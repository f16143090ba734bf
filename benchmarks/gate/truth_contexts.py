"""How much the true size of an allocation-heavy change depends on the process that runs it, and why.

``python -m benchmarks.gate --truth-contexts N`` measures the DistilBERT change of ``--truth`` (a batch
of 16 sentences against 16 + ``--truth-extra``) in processes that hold DistilBERT only, four ways:

- *mixed*: both batch sizes alternated in one fresh process, in random order (``--truth``'s procedure,
  without the Llama model that ``--truth``'s process also loads);
- *blocked*: both sizes in one fresh process, but :data:`BLOCK` calls of one size at a time, in random
  order of the sizes, as a run of ``--against`` times one size for a while;
- *separate*: one batch size per fresh process; the pairs alternate which size starts;
- *forked*: one batch size per process, forked from a fork server that imported what ``--against``'s
  imports for a DistilBERT session (:func:`modelperf.ab.forkserver.preload_for`), as each side's
  workers run.

Each way gives N ratios of lower deciles, and per batch size the median number of minor page faults a
call took (``getrusage``). The fault counts are why the ways differ: glibc serves a large buffer from a
fresh mmap, or from the heap top that it trims back to the system once more than its trim threshold
is free there, and both thresholds move with the largest block the process has freed. So how many
pages a call faults in afresh, each zeroed by the kernel, depends on the process's history and not on
the call alone. Counts do not depend on the machine's load, so they stay exact where the timings are
noisy.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..studies import REPO
from .truth import BASE_SENTENCES, decile, sentence_batch

__all__ = ["SizeFigures", "context_child", "run_contexts"]


BLOCK = 10  # calls of one size in a row, in the blocked way


@dataclass(frozen=True)
class SizeFigures:
    """One batch size in one process: the lower decile of its call times, and its page faults per call."""

    p10: float
    faults: float  # median minor page faults per call


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def context_child(sizes: list[int], rounds: int, block: int = 1) -> dict[int, SizeFigures]:
    """In this process, DistilBERT only: each size in ``sizes`` timed ``rounds`` times, ``block`` calls of
    one size at a time, the sizes in random order; per size its lower decile and faults per call."""
    from modelperf.models import distilbert
    from modelperf.utils import parse_threads

    bert = distilbert.load_distilbert(None, parse_threads("auto"))
    batches = {size: sentence_batch(size) for size in sizes}
    times: dict[int, list[float]] = {size: [] for size in sizes}
    faults: dict[int, list[int]] = {size: [] for size in sizes}
    rng = random.Random(27)
    for _ in range(rounds // block + 2):  # two warm-up turns, dropped below
        for size in rng.sample(sizes, len(sizes)):
            for _ in range(block):
                before = _faults()
                start = time.perf_counter()
                bert.classify(batches[size])
                times[size].append(time.perf_counter() - start)
                faults[size].append(_faults() - before)
    return {size: SizeFigures(decile(times[size][2 * block:]), statistics.median(faults[size][2 * block:]))
            for size in sizes}


def _parse(output: str) -> dict[int, SizeFigures]:
    return {int(size): SizeFigures(**figures) for size, figures in json.loads(output.splitlines()[-1]).items()}


def _arguments(sizes: list[int], rounds: int, block: int) -> list[str]:
    return [str(rounds), str(block), *map(str, sizes)]


def _in_child(sizes: list[int], rounds: int, block: int = 1) -> dict[int, SizeFigures]:
    done = subprocess.run([sys.executable, "-m", __name__, *_arguments(sizes, rounds, block)], check=True,
                          capture_output=True, text=True, cwd=REPO)
    return _parse(done.stdout)


class _Forked:
    """Children forked from one fork server that preloaded what ``--against``'s does for DistilBERT."""

    def __init__(self, folder: Path) -> None:
        from modelperf.ab.forkserver import preload_for, preloadable
        from modelperf.forking.server import ForkServer

        self._folder = folder
        self._server = ForkServer(preloadable([REPO], preload_for(["distilbert"], [])), folder / "server.log",
                                  name="the truth check's fork server")
        self._server.wait_ready()

    def run(self, size: int, rounds: int) -> dict[int, SizeFigures]:
        log = self._folder / f"child-{size}.log"
        child = self._server.spawn(_arguments([size], rounds, 1), cwd=REPO, env=dict(os.environ), path=[str(REPO)],
                                   log_path=log, module=__name__)
        if child.wait() != 0:
            raise RuntimeError(f"a forked truth process failed; its output is in {log}")
        return _parse(log.read_text())

    def close(self) -> None:
        self._server.close()


def _line(label: str, ratios: list[float], faults: list[tuple[float, float]], base: int, change: int, extra: int) -> str:
    base_faults = statistics.median(f[0] for f in faults)
    change_faults = statistics.median(f[1] for f in faults)
    page_kib = resource.getpagesize() / 1024
    return (f"test_distilbert_batch (+{extra}), {label}: mean x{statistics.fmean(ratios):.3f} over {len(ratios)} "
            f"(x{min(ratios):.3f}-{max(ratios):.3f}); page faults per call {base_faults:.0f} at {base}, "
            f"{change_faults:.0f} at {change} ({(change_faults - base_faults) * page_kib / 1024:+.1f} MiB faulted in "
            f"afresh per call)")


def run_contexts(pairs: int, extra: int, rounds: int) -> int:
    """Print ``pairs`` ratios and fault counts of the DistilBERT change in each way, and their summaries."""
    base, change = BASE_SENTENCES, BASE_SENTENCES + extra
    ways = ("mixed", "blocked", "separate", "forked")
    ratios: dict[str, list[float]] = {way: [] for way in ways}
    faults: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}

    def keep(way: str, both: dict[int, SizeFigures]) -> None:
        ratios[way].append(both[change].p10 / both[base].p10)
        faults[way].append((both[base].faults, both[change].faults))

    forked = _Forked(Path(tempfile.mkdtemp(prefix="modelperf-truth-forked-")))
    try:
        for index in range(pairs):
            keep("mixed", _in_child([base, change], rounds))
            keep("blocked", _in_child([base, change], rounds, BLOCK))
            order = [base, change] if index % 2 == 0 else [change, base]
            keep("separate", {size: _in_child([size], rounds)[size] for size in order})
            keep("forked", {size: forked.run(size, rounds)[size] for size in order})
            print(f"pair {index + 1} of {pairs}: " + ", ".join(
                f"{way} x{ratios[way][-1]:.3f} ({faults[way][-1][0]:.0f}/{faults[way][-1][1]:.0f} faults a call)"
                for way in ways), flush=True)
    finally:
        forked.close()
    labels = {"mixed": "both sizes in one process, call by call (DistilBERT only)",
              "blocked": f"both sizes in one process, {BLOCK} calls at a time",
              "separate": "one size per fresh process",
              "forked": "one size per process forked from a fork server as --against's"}
    for way in ways:
        print(_line(labels[way], ratios[way], faults[way], base, change, extra))
    return 0


if __name__ == "__main__":
    figures = context_child([int(size) for size in sys.argv[3:]], int(sys.argv[1]), int(sys.argv[2]))
    print(json.dumps({size: vars(f) for size, f in figures.items()}))
