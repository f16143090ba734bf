"""Do the serving figures mean what they claim? Two checks on the embedded SmolLM2 (prints figures, gates nothing).

1. No queueing: one client at a time through llama-cpp-python's server, against the same prompts
   generated in this process by the Llama adapter (``timed_generate``) plus the measured HTTP round
   trip. TTFT p50 through the server should be close to in-process TTFT + round trip, and TPOT p50
   close to the in-process inter-token median.
2. Queueing: Poisson arrivals at the rate that loads the server to ``--load`` (default 70 %), from
   the service times measured in step 1. The server handles one request at a time, so it is an
   M/G/1 queue: the measured mean wait before the first token (TTFT under load less the same
   prompt's TTFT without queueing) is compared with the Pollaczek-Khinchine prediction.

    python benchmarks/serving_check.py                      # the figures (about 4 minutes)
    python benchmarks/serving_check.py --tokens 8 --requests 6 --load-seconds 15   # a quick look

Run it on a quiet machine: anything else on the cores bends both the service times and the wait.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx

from modelperf.serve.arrivals import Concurrency, Limits, Poisson
from modelperf.serve.client import run_load_sync
from modelperf.serve.figures import LoadRun, RequestRecord, summarize
from modelperf.serve.process import ServerProcess
from modelperf.serve.prompts import COMPLETION_PROMPTS
from modelperf.serve.queueing import mg1_mean_wait, utilisation
from modelperf.serve.servers import LlamaServerConfig, completion_endpoint, llama_server
from modelperf.utils import parse_threads

ROUND_TRIPS = 50  # GET /v1/models: a request the server answers without the model


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="auto", help="llama.cpp threads (default: auto, as the Llama tests)")
    parser.add_argument("--tokens", type=int, default=32, help="tokens generated per request (default: 32)")
    parser.add_argument("--requests", type=int, default=18, help="requests without queueing, each side (default: 18)")
    parser.add_argument("--load", type=float, default=0.7, help="server utilisation of step 2 (default: 0.7)")
    parser.add_argument("--load-seconds", type=float, default=120.0, help="arrival window of step 2 (default: 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Poisson arrivals (default: 0)")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the server's log goes (default: a temp dir)")
    return parser.parse_args()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _round_trip(server: ServerProcess) -> float:
    """Median time of a request the server answers without touching the model."""
    times = []
    with httpx.Client(trust_env=False, timeout=10) as client:
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            client.get(server.base_url + "/v1/models").raise_for_status()
            times.append(time.perf_counter() - start)
    return _median(times)


def _in_process(threads: int, tokens: int, requests: int) -> tuple[list[float], list[float], list[float]]:
    """From the Llama adapter, on the server's prompts in turn: (TTFT of each request, every inter-token
    gap); and every gap of llama-cpp-python's own streaming loop (``create_completion``) in this process,
    which is what the server runs per request, so a gap between the two is the library's, not HTTP's."""
    from llama_cpp import LogitsProcessorList, MinTokensLogitsProcessor

    from modelperf.models.llama import load_llama

    llama = load_llama(None, threads, 2048, logits_all=False)  # as the server's context
    prompts = [llama._bos() + llama.tokenize(p) for p in COMPLETION_PROMPTS]  # as llama_cpp.server tokenizes
    llama.timed_generate(prompts[-1], tokens)  # warm-up
    ttft: list[float] = []
    gaps: list[float] = []
    library: list[float] = []
    for index in range(requests):
        timing = llama.timed_generate(prompts[index % len(prompts)], tokens)
        ttft.append(timing.time_to_first_token_s)
        gaps.extend(timing.inter_token_s)
    llm = llama.llm
    for index in range(requests):
        exact = LogitsProcessorList([MinTokensLogitsProcessor(tokens, llm.token_eos())])  # as min_tokens does
        stamps = [time.perf_counter() for _ in llm.create_completion(
            COMPLETION_PROMPTS[index % len(prompts)], max_tokens=tokens, temperature=0.0, stream=True,
            logits_processor=exact)]
        library.extend(b - a for a, b in itertools.pairwise(stamps))
    return ttft, gaps, library


def _median_by_prompt(run: LoadRun, figure: Callable[[RequestRecord], float | None]) -> dict[int, float]:
    """Median ``figure`` (a request's TTFT, or its end-to-end time) of each prompt in ``run``."""
    seen: dict[int, list[float]] = defaultdict(list)
    for record in run.requests:
        if (value := figure(record)) is not None:
            seen[record.prompt_index].append(value)
    return {index: _median(values) for index, values in seen.items()}


def _replayed_mean_wait(loaded: LoadRun, service: dict[int, float]) -> float:
    """Mean wait of a single first-come-first-served server fed ``loaded``'s actual send times, each request
    taking its prompt's unloaded service time (Lindley: W[n+1] = max(0, W[n] + S[n] - A[n+1]))."""
    requests = sorted(loaded.requests, key=lambda r: r.sent_s)
    waits, wait = [], 0.0
    for previous, current in itertools.pairwise(requests):
        wait = max(0.0, wait + service[previous.prompt_index] - (current.sent_s - previous.sent_s))
        waits.append(wait)
    return statistics.fmean([0.0, *waits]) if requests else float("nan")


def _no_queueing(server: ServerProcess, args: argparse.Namespace, threads: int) -> LoadRun:
    endpoint = completion_endpoint(server, max_tokens=args.tokens)
    last = len(COMPLETION_PROMPTS) - 1
    run_load_sync(endpoint, Concurrency(1), Limits(1, 60.0, 120.0), start_prompt=last)  # warm-up
    alone = run_load_sync(endpoint, Concurrency(1), Limits(args.requests, 3600.0, 120.0))
    trip = _round_trip(server)
    ttft, gaps, library = _in_process(threads, args.tokens, args.requests)
    summary = summarize(alone)
    served_ttft = summary.ttft.p50 if summary.ttft else float("nan")
    served_tpot = summary.tpot.p50 if summary.tpot else float("nan")
    print(f"1. no queueing: {summary.completed} requests of {args.tokens} tokens through the server, one at a time")
    print(f"   HTTP round trip (GET /v1/models, median of {ROUND_TRIPS}): {trip * 1e3:.2f} ms")
    expected = _median(ttft) + trip
    print(f"   TTFT p50: server {served_ttft * 1e3:.1f} ms; in-process {_median(ttft) * 1e3:.1f} ms + round trip = "
          f"{expected * 1e3:.1f} ms (server / expected = {served_ttft / expected:.3f})")
    print(f"   TPOT p50: server {served_tpot * 1e3:.2f} ms; in-process inter-token median {_median(gaps) * 1e3:.2f} ms "
          f"(ratio {served_tpot / _median(gaps):.3f}); llama-cpp-python's own streaming loop in-process "
          f"{_median(library) * 1e3:.2f} ms (ratio {served_tpot / _median(library):.3f})")
    return alone


def _queueing(server: ServerProcess, args: argparse.Namespace, alone: LoadRun) -> None:
    service = [e2e for r in alone.requests if (e2e := r.e2e_s) is not None]
    rate = args.load / statistics.fmean(service)
    unloaded = _median_by_prompt(alone, lambda r: r.ttft_s)
    limits = Limits(max_requests=100_000, duration_s=args.load_seconds, request_timeout_s=600.0)
    after = len(alone.requests) % len(COMPLETION_PROMPTS)  # continue the turn: no prompt twice in a row
    loaded = run_load_sync(completion_endpoint(server, max_tokens=args.tokens), Poisson(rate, args.seed), limits,
                           start_prompt=after)
    summary = summarize(loaded)
    waits = [r.ttft_s - unloaded[r.prompt_index] for r in loaded.requests if r.ttft_s is not None]
    predicted = mg1_mean_wait(rate, service)
    measured = statistics.fmean(waits) if waits else float("nan")
    print(f"2. queueing: Poisson {rate:.3f} requests/s for {args.load_seconds:g} s (utilisation "
          f"{utilisation(rate, service):.0%} from {len(service)} service times, mean {statistics.fmean(service):.3f} s)")
    print(f"   sent {summary.sent}, completed {summary.completed}, failed {summary.failed}; measured arrival gaps: "
          f"mean {summary.mean_gap_s or float('nan'):.3f} s (1/rate = {1 / rate:.3f} s), CV {summary.gap_cv or 0:.2f}")
    print(f"   mean wait before the first token: measured {measured:.3f} s, M/G/1 (Pollaczek-Khinchine) "
          f"{predicted:.3f} s (measured / predicted = {measured / predicted:.3f})")
    # A run of a few minutes holds a few dozen arrivals: their realised rate and burstiness move the mean
    # wait far more than any server effect. Two predictions that take the realised arrivals into account:
    # P-K at the realised rate, and a first-come-first-served replay (Lindley's recursion) of the very
    # arrivals sent, each request served for its prompt's unloaded time.
    realised = 1 / summary.mean_gap_s if summary.mean_gap_s else rate
    at_realised = mg1_mean_wait(realised, service)
    replayed = _replayed_mean_wait(loaded, _median_by_prompt(alone, lambda r: r.e2e_s))
    print(f"   P-K at the realised rate {realised:.3f}/s (utilisation {utilisation(realised, service):.0%}): "
          f"{at_realised:.3f} s (measured / predicted = {measured / at_realised:.3f}); first-come-first-served "
          f"replay of the arrivals sent: {replayed:.3f} s (measured / replayed = {measured / replayed:.3f})")
    if summary.ttft is not None:
        print(f"   TTFT under load: p50 {summary.ttft.p50:.3f} s, p90 {summary.ttft.p90:.3f} s, "
              f"p99 {summary.ttft.p99:.3f} s")


def main() -> int:
    args = _arguments()
    threads = parse_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="serving-check-") as scratch:
        logs = args.log_dir or Path(scratch)
        with llama_server(LlamaServerConfig(None, threads=threads), logs) as server:
            print(f"llama-cpp-python's server on the embedded SmolLM2, {threads} thread(s), log {server.log_path}")
            alone = _no_queueing(server, args, threads)
            _queueing(server, args, alone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
