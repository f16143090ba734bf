"""``@pytest.mark.peak_memory`` seen from the outside: limits, baselines, failure sections, captures.

Inner tests allocate known amounts (50 MB, every page touched) so the figures sit far from every
limit and tolerance used here; memray's own overhead is a few tens of kilobytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCALE = "MODELPERF_TEST_SCALE"
RUN = ("--benchmark", "--history", "off", "--baseline-dir", "baselines")

ALLOCATE = """
    import os

    import numpy as np
    import pytest

    SIZE = int(50_000_000 * float(os.environ.get("MODELPERF_TEST_SCALE", "1")))

    def with_bytearray():
        block = bytearray(SIZE)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so RSS grows too
        return block

    def with_numpy():
        return np.ones(SIZE // 8)  # float64: 8 bytes each, ones() writes every page
"""


def _memory_test(decorator: str, allocator: str = "with_bytearray") -> str:
    return ALLOCATE + f"""
    {decorator}
    def test_alloc():
        kept = {allocator}()
        assert len(kept) > 0
"""


def _captures(pytester: pytest.Pytester) -> list[Path]:
    folder = pytester.path / ".modelperf" / "captures"
    return sorted(folder.glob("*.bin")) if folder.is_dir() else []


def _record_file(pytester: pytest.Pytester) -> Path:
    [folder] = [p for p in (pytester.path / "baselines").iterdir() if p.is_dir()]
    return folder / "test_mem.json"


@pytest.mark.parametrize("allocator", ["with_bytearray", "with_numpy"])
@pytest.mark.parametrize(("limit", "outcome"), [("30 MB", "failed"), ("200 MB", "passed")])
def test_peak_memory_limit_fails_only_above_the_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, allocator: str, limit: str, outcome: str
) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=_memory_test(f'@pytest.mark.peak_memory(limit="{limit}")', allocator))
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines([
            "memray_peak_bytes: memray peak 4*MiB: over the limit of 28.6 MiB*",
            "*- modelperf memray_peak_bytes -*",
            "memray peak: 4*MiB (high-water mark*",
            "*/test_mem.py:* with_*",  # the largest allocation points at the allocating line
            "  memray flamegraph */.modelperf/captures/memray-*.bin",
        ])
        [capture] = _captures(pytester)
        assert str(capture) in result.stdout.str(), "the section must name the capture it kept"
    else:
        result.stdout.fnmatch_lines(["*test_alloc*memray_peak_bytes*4*MiB*"])
        assert _captures(pytester) == [], "a passing test's capture is deleted unless --keep-captures"


def test_keep_captures_keeps_the_capture_of_a_passing_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=_memory_test('@pytest.mark.peak_memory(limit="200 MB")'))
    result = pytester.runpytest(*RUN, "--keep-captures")
    result.assert_outcomes(passed=1)
    assert len(_captures(pytester)) == 1


def test_rss_figure_is_asserted_when_chosen(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=_memory_test('@pytest.mark.peak_memory(limit="30 MB", figure="rss")'))
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["rss_delta_bytes: RSS growth * over the limit of 28.6 MiB*"])


@pytest.mark.parametrize(
    ("scale", "outcome", "verdict"),
    [("2.0", "failed", "regressed"), ("1.05", "passed", "pass"), ("0.5", "passed", "improved")],
)
def test_peak_memory_fails_when_over_the_baseline_tolerance(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, scale: str, outcome: str, verdict: str
) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=_memory_test("@pytest.mark.peak_memory(rel=0.10)"))
    first = pytester.runpytest(*RUN)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*no baseline for hardware *: recorded this run as its baseline*"])
    record = _record_file(pytester)
    before = record.read_bytes()
    stored = json.loads(before)["records"]["test_mem.py::test_alloc::memray_peak_bytes"]
    assert 50_000_000 <= stored["value"] < 51_000_000

    monkeypatch.setenv(SCALE, scale)
    second = pytester.runpytest(*RUN)
    second.assert_outcomes(**{outcome: 1})
    second.stdout.fnmatch_lines([f"*test_alloc*memray_peak_bytes*{verdict}*"])
    if outcome == "failed":
        second.stdout.fnmatch_lines(["memray_peak_bytes: memray peak * above the baseline 4*MiB + 10% = *"])
    assert record.read_bytes() == before, "a comparing run must not rewrite the baseline"


def test_memory_of_a_failing_test_is_not_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mem="""
        import pytest

        @pytest.mark.peak_memory
        def test_alloc():
            block = bytearray(1_000_000)
            assert not block, "the code under test is wrong"
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the code under test is wrong*"])
    assert _captures(pytester) == []
    assert not (pytester.path / "baselines").exists() or not list((pytester.path / "baselines").rglob("test_mem.json"))


def test_a_regressed_test_shows_its_own_outcome_word_and_fails_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=_memory_test('@pytest.mark.peak_memory(limit="30 MB")') + """
    def test_plain_failure():
        assert False, "an ordinary failure keeps pytest's own word"
""")
    result = pytester.runpytest(*RUN)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["test_mem.py RF*"])
    result.stdout.fnmatch_lines_random([
        "REGRESSED test_mem.py::test_alloc - memray_peak_bytes: memray peak *",
        "FAILED test_mem.py::test_plain_failure - AssertionError*",
    ])


def test_under_xdist_workers_figures_reach_the_baseline_and_a_regression_fails_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``-n 2`` session (three pytest processes) for all three: the figures the workers send, the
    outcome words of a regressed and a failed test in the controller's summary, and a latency test,
    which skips in a worker and records nothing."""
    pytest.importorskip("xdist")
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem=ALLOCATE + """
    @pytest.mark.peak_memory
    @pytest.mark.parametrize("n", [1, 2])
    def test_alloc(n):
        kept = [with_bytearray() for _ in range(n)]
        assert kept

    @pytest.mark.peak_memory(limit="30 MB")
    def test_over_limit():
        assert len(with_bytearray()) > 0

    def test_plain_failure():
        assert False, "an ordinary failure keeps pytest's own word"

    @pytest.mark.latency
    def test_latency(benchmark):
        benchmark(sum, range(100))
""")
    result = pytester.runpytest_subprocess(*RUN, "-n", "2", "-rfs")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=2, skipped=1)
    result.stdout.fnmatch_lines_random([
        "REGRESSED test_mem.py::test_over_limit - memray_peak_bytes: memray peak *",
        "FAILED test_mem.py::test_plain_failure - AssertionError*",
        "*latency is not measured in pytest-xdist workers*run latency tests without -n*",
    ])
    records = json.loads(_record_file(pytester).read_text())["records"]
    assert not [key for key in records if "::test_latency" in key]
    peaks = {key.split("[")[1][0]: record["value"] for key, record in records.items() if "::test_alloc[" in key}
    assert set(peaks) == {"1", "2"}
    assert 1.9 < peaks["2"] / peaks["1"] < 2.1


def test_a_marker_role_is_stored_with_the_figure_and_filled_from_parameters(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCALE, raising=False)
    pytester.makepyfile(test_mem="""
        import pytest

        @pytest.mark.peak_memory(role="{name}:memory")
        @pytest.mark.parametrize("name", ["distilbert"])
        def test_alloc(name):
            assert bytearray(1_000_000)

        @pytest.mark.peak_memory(role="{size}:memory")
        def test_bad_role():
            pass
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_bad_role: role='{size}:memory' names a parameter the test does not have*"])
    records = json.loads(_record_file(pytester).read_text())["records"]
    assert records["test_mem.py::test_alloc[distilbert]::memray_peak_bytes"]["role"] == "distilbert:memory"


LAZY_CACHE = """
    import pytest

    _CACHE = []

    def work():
        if not _CACHE:  # first use in the process: a 30 MB cache, as libraries build on first call
            _CACHE.append(bytearray(30_000_000))
        return bytearray(5_000_000)

    def test_a_earlier_test_uses_it():
        work()

    @pytest.mark.peak_memory
    def test_mem():
        work()

    @pytest.mark.peak_memory(warmup=False)
    def test_cold():
        work()
"""


def _memray_figures(pytester: pytest.Pytester, session: str, passed: int, *args: str) -> dict[str, float]:
    # Each session records into a folder of its own: the figures are compared here, not by the plugin.
    result = pytester.runpytest(*RUN, "--baseline-dir", session, "--results-json", "results.json", *args)
    result.assert_outcomes(passed=passed)
    results = json.loads((pytester.path / "results.json").read_text())["results"]
    return {r["measurement"]["test_id"].split("::")[-1]: float(r["measurement"]["value"]) for r in results}


def test_a_memory_figure_does_not_depend_on_what_ran_before_it(pytester: pytest.Pytester) -> None:
    """With the warm-up call (the default) a test pays no cache that an earlier test happened not to build;
    with ``warmup=False`` the first use pays it inside the tracked body. Both markers share the sessions."""
    pytester.makepyfile(test_lazy=LAZY_CACHE)
    after_others = _memray_figures(pytester, "after-others", 3)
    assert set(after_others) == {"test_mem", "test_cold"}
    for figure in after_others.values():
        assert 5_000_000 <= figure < 6_000_000  # the cache was paid by the earlier test
    alone = _memray_figures(pytester, "alone", 1, "-k", "test_mem")
    assert alone["test_mem"] == pytest.approx(after_others["test_mem"], rel=0.02)
    cold_alone = _memray_figures(pytester, "cold-alone", 1, "-k", "test_cold")
    assert cold_alone["test_cold"] > 30_000_000  # alone, the first use pays the cache inside the tracked body
