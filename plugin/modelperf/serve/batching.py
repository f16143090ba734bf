"""Dynamic batching: requests that arrive together are run through the model as one batch.

The usual serving pattern (Triton's dynamic batcher, TorchServe's batch_size/max_batch_delay):
the first waiting request opens a batch; the batch closes when it holds ``max_batch`` items or
``max_wait_s`` after it opened, whichever comes first, and runs in a worker thread while the next
batch gathers. One batch runs at a time, as one model instance does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatchResult", "DynamicBatcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class BatchResult(Generic[Result]):
    value: Result
    batch_size: int  # how many items ran together with this one, itself included


class DynamicBatcher(Generic[Item, Result]):
    """Runs ``run_batch(items) -> results`` (one result per item, same order) on gathered batches."""

    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], *, max_batch: int,
                 max_wait_s: float) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"dynamic batching needs max_batch >= 1 and max_wait_s >= 0, got {max_batch} and "
                             f"{max_wait_s}: give e.g. max_batch=8, max_wait_s=0.005.")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[BatchResult[Result]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start gathering batches (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def aclose(self) -> None:
        """Stop gathering; requests still waiting get an error."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(self, item: Item) -> BatchResult[Result]:
        """Queue ``item`` and wait for its result."""
        if self._task is None:
            raise RuntimeError("the batcher is not started: call start() inside the server's event loop first.")
        future: asyncio.Future[BatchResult[Result]] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _gather(self) -> list[tuple[Item, asyncio.Future[BatchResult[Result]]]]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        closes = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = closes - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except (TimeoutError, asyncio.TimeoutError):
                break
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            live = [(item, future) for item, future in batch if not future.done()]  # callers that gave up
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self._run_batch, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"the model returned {len(results)} results for a batch of {len(live)}")
            except Exception as exc:  # noqa: BLE001 - one failed batch fails its own requests, not the server
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), value in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(BatchResult(value, len(live)))
