"""A small asyncio + httpx load client: Poisson arrivals or fixed concurrency, timed per token.

Why our own client: GuideLLM and AIPerf resolve a Hugging Face tokenizer by the served model's
name (a hub download at run time, which this offline machine cannot make) and pull dozens of
pinned packages (datasets, pandas, sanic or kubernetes clients) beside torch; Locust monkey-patches
the process with gevent, has no Poisson arrivals and does not time streamed tokens. Where one
machine cannot send enough load, Locust's distributed master/worker mode is the tool to use.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx

from modelperf.serve.arrivals import Concurrency, Limits, Pattern, Poisson, poisson_offsets
from modelperf.serve.endpoints import Endpoint, RequestFailed
from modelperf.serve.figures import LoadRun, RequestRecord

__all__ = ["run_load", "run_load_sync"]

# Idle keep-alive connections kept for reuse; a Poisson burst opens more and closes them after.
_KEEPALIVE = 32
_CONNECT_TIMEOUT_S = 5.0


@dataclass
class _Run:
    endpoint: Endpoint
    limits: Limits
    client: httpx.AsyncClient
    start: float
    records: list[RequestRecord]
    start_prompt: int = 0

    def clock(self) -> float:
        return time.perf_counter() - self.start

    async def one(self, index: int, scheduled: float | None) -> None:
        prompts = self.endpoint.prompts
        prompt_index = (self.start_prompt + index) % len(prompts)  # in turn: consecutive ones never share a prompt
        sent = self.clock()
        try:
            exchange = await asyncio.wait_for(self.endpoint.exchange(self.client, prompts[prompt_index], self.clock),
                                              timeout=self.limits.request_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            error = f"cut off after the request timeout of {self.limits.request_timeout_s:g} s"
        except (httpx.HTTPError, RequestFailed, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            self.records.append(RequestRecord(index, prompt_index, scheduled, sent, exchange.first_token_s,
                                              exchange.end_s, exchange.token_times_s, exchange.output_tokens))
            return
        self.records.append(RequestRecord(index, prompt_index, scheduled, sent, None, None, (), 0, error))


async def _poisson(run: _Run, pattern: Poisson) -> None:
    offsets = poisson_offsets(pattern.rate, pattern.seed, max_requests=run.limits.max_requests,
                              duration_s=run.limits.duration_s)
    tasks = []
    for index, offset in enumerate(offsets):
        delay = offset - run.clock()  # absolute schedule: a late wake-up does not shift later arrivals
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(run.one(index, offset)))
    await asyncio.gather(*tasks)


async def _closed_loop(run: _Run, pattern: Concurrency) -> None:
    numbers = itertools.count()

    async def client_loop() -> None:
        while (index := next(numbers)) < run.limits.max_requests and run.clock() < run.limits.duration_s:
            await run.one(index, None)

    await asyncio.gather(*(client_loop() for _ in range(pattern.clients)))


async def run_load(endpoint: Endpoint, pattern: Pattern, limits: Limits, *, start_prompt: int = 0) -> LoadRun:
    """Send ``endpoint``'s requests in ``pattern`` within ``limits`` and return every request's times.

    The run ends by itself: no request is sent after ``limits.duration_s`` or beyond
    ``limits.max_requests``, and one still unanswered ``limits.request_timeout_s`` after it was sent
    is cut off and recorded as failed. Prompts are sent in turn from ``start_prompt``: a run that follows
    another on the same server starts after the prompt the last one ended with, so no request finds its
    whole prompt already in the server's cache.
    """
    timeout = httpx.Timeout(limits.request_timeout_s, connect=min(_CONNECT_TIMEOUT_S, limits.request_timeout_s))
    pool = httpx.Limits(max_connections=None, max_keepalive_connections=_KEEPALIVE)
    # trust_env=False: a proxy configured in the environment must never see load meant for 127.0.0.1.
    async with httpx.AsyncClient(timeout=timeout, limits=pool, trust_env=False) as client:
        run = _Run(endpoint, limits, client, time.perf_counter(), [], start_prompt)
        if isinstance(pattern, Poisson):
            await _poisson(run, pattern)
            label = f"{pattern.label} (seed {pattern.seed})"
        else:
            await _closed_loop(run, pattern)
            label = pattern.label
        wall = run.clock()
    records = tuple(sorted(run.records, key=lambda record: record.index))
    return LoadRun(endpoint.label, label, limits, records, wall)


def run_load_sync(endpoint: Endpoint, pattern: Pattern, limits: Limits, *, start_prompt: int = 0) -> LoadRun:
    """:func:`run_load` in a fresh event loop, for callers that have none (tests, scripts)."""
    return asyncio.run(run_load(endpoint, pattern, limits, start_prompt=start_prompt))
