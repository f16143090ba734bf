"""What a fresh model server costs: started as a fresh interpreter, or forked from a fork server (prints figures).

An ``--against`` load test runs each phase after the first on a fresh server process, and sends it one
unmeasured warm-up request first (:mod:`modelperf.measure.load`). This script times, for the embedded
SmolLM2 server or the embedded DistilBERT service, what the plugin does between two phases,
alternating the two ways of starting it:

- start: from asking for the server until its health check answers (imports, model load, uvicorn);
- warm-up: the one unmeasured request a fresh server gets before its phase;
- stop: SIGTERM to the process group until it has exited.

    python benchmarks/server_start.py              # 6 starts each way, alternated (about 1 minute)
    python benchmarks/server_start.py --starts 10 --model distilbert

Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from modelperf.forking.server import ForkServer
from modelperf.serve.arrivals import Concurrency, Limits
from modelperf.serve.client import run_load_sync
from modelperf.serve.process import ServerProcess
from modelperf.serve.servers import (
    SERVER_PRELOAD,
    ClassifierServerConfig,
    LlamaServerConfig,
    Served,
    classifier_server,
    llama_server,
)
from modelperf.utils import parse_threads


def _served(model: str, logs: Path) -> tuple[ServerProcess, Callable[[ServerProcess], Served]]:
    """A not yet started server of ``model`` and how to address it once started."""
    threads = parse_threads("auto")
    if model == "llama":
        llama = LlamaServerConfig(None, threads)
        return llama_server(llama, logs), lambda p: Served("llama", p.base_url, p, model=llama.alias)
    return classifier_server(ClassifierServerConfig(None, threads), logs), lambda p: Served(
        "distilbert", p.base_url + "/v1/classify", p, completion=False)


def _one(model: str, logs: Path, forks: ForkServer | None) -> tuple[float, float, float]:
    began = time.perf_counter()
    process, address = _served(model, logs)
    process.forks = forks
    process.start()
    started = time.perf_counter()
    # Two tokens, as the plugin's warm-up request (a classifier ignores the count).
    run_load_sync(address(process).endpoint(2), Concurrency(1), Limits(1, 60.0, 60.0), start_prompt=0)
    warmed = time.perf_counter()
    process.stop()
    return started - began, warmed - started, time.perf_counter() - warmed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--starts", type=int, default=6, help="starts of each kind (default 6)")
    parser.add_argument("--model", choices=("llama", "distilbert"), default="llama", help="whose server (default llama)")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="modelperf-server-start-"))
    began = time.perf_counter()
    forks = ForkServer(SERVER_PRELOAD[args.model], logs / "fork-server.log",
                       name=f"the {args.model} servers' fork server")
    forks.wait_ready()
    print(f"fork server ready in {time.perf_counter() - began:.2f} s (once a session)")
    times: dict[str, list[tuple[float, float, float]]] = {"fresh interpreter": [], "forked": []}
    try:
        for _ in range(args.starts):
            times["fresh interpreter"].append(_one(args.model, logs, None))
            times["forked"].append(_one(args.model, logs, forks))
    finally:
        forks.close()
    print(f"{'server':<18} {'start (median, range)':>24} {'warm-up':>9} {'stop':>7}")
    for kind, rows in times.items():
        start, warm, stop = zip(*rows)
        print(f"{kind:<18} {statistics.median(start):>8.2f} s ({min(start):.2f}-{max(start):.2f})"
              f" {statistics.median(warm):>7.2f} s {statistics.median(stop):>5.2f} s")
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
