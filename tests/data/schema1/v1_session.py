import pytest


def work(n: int = 20000) -> int:
    return sum(i * i for i in range(n))


@pytest.mark.latency(role="stand-in:batch1")
def test_latency(benchmark):
    benchmark.extra_info["items_per_s"] = 1.0
    benchmark(work)


@pytest.mark.peak_memory(role="stand-in:memory")
def test_memory():
    data = bytearray(8 * 2**20)
    assert len(data)


@pytest.mark.accuracy
def test_accuracy(accuracy):
    from modelperf.measure.accuracy import AccuracyResult
    accuracy.record(AccuracyResult("stand-in@0123456789ab", "set", "ff", (0, 1, 2, 3), (1, 1, 0, 0), (1, 1, 0, 1),
                                   (0.9, 0.8, 0.2, 0.6), 0.004))
