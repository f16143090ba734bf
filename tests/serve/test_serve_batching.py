"""Dynamic batching: requests that arrive together run as one batch, bounded in size and wait."""

from __future__ import annotations

import asyncio

import pytest

from modelperf.serve.batching import BatchResult, DynamicBatcher


def run_concurrently(batcher: DynamicBatcher[int, int], items: list[int]) -> list[BatchResult[int]]:
    async def main() -> list[BatchResult[int]]:
        batcher.start()
        try:
            return list(await asyncio.gather(*(batcher.submit(item) for item in items)))
        finally:
            await batcher.aclose()

    return asyncio.run(main())


def test_requests_arriving_together_share_batches_of_at_most_max_batch() -> None:
    batches: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        batches.append(items)
        return [2 * item for item in items]

    results = run_concurrently(DynamicBatcher(double, max_batch=4, max_wait_s=1.0), list(range(10)))
    assert [r.value for r in results] == [2 * i for i in range(10)]
    assert [len(b) for b in batches] == [4, 4, 2]  # the last waits its max_wait for two more, then runs
    assert [r.batch_size for r in results] == [4] * 8 + [2] * 2


def test_no_wait_means_whatever_is_queued_runs_at_once() -> None:
    batches: list[list[int]] = []
    results = run_concurrently(DynamicBatcher(lambda items: batches.append(items) or items, max_batch=64,
                                              max_wait_s=0.0), list(range(5)))
    assert [r.value for r in results] == list(range(5)) and sum(map(len, batches)) == 5


def test_a_failing_batch_fails_its_own_requests_and_the_batcher_goes_on() -> None:
    def picky(items: list[int]) -> list[int]:
        if 3 in items:
            raise RuntimeError("the model cannot take 3")
        return items

    async def main() -> tuple[object, int]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(picky, max_batch=1, max_wait_s=0.0)
        batcher.start()
        try:
            bad = await asyncio.gather(batcher.submit(3), return_exceptions=True)
            good = await batcher.submit(4)
            return bad[0], good.value
        finally:
            await batcher.aclose()

    bad, good = asyncio.run(main())
    assert isinstance(bad, RuntimeError) and "cannot take 3" in str(bad) and good == 4


def test_a_model_returning_the_wrong_number_of_results_is_an_error_not_a_mismatch() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(lambda items: items[:-1], max_batch=2, max_wait_s=0.5)
    with pytest.raises(RuntimeError, match="returned 1 results for a batch of 2"):
        run_concurrently(batcher, [1, 2])


def test_submitting_before_start_says_what_to_do() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(list, max_batch=2, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="call start"):
        asyncio.run(batcher.submit(1))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch >= 1"):
        DynamicBatcher(list, max_batch=0, max_wait_s=0.0)
