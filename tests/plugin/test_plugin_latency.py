"""``@pytest.mark.latency`` against stored baselines, seen from the outside.

Inner tests sum a range for about a millisecond (no model), and an environment variable repeats
that work, so a slowdown is injected without touching the test code. The injected slowdown that must
fail is 8x: under a parallel test run (`pytest -n auto`) a baseline recorded while the other worker was
busy read 2x work as x1.19, so 2x is not far enough beyond a shared machine's noise.

The plugin's control workload runs torch. Torch is imported here, before any inner session, because
pytester's in-process runs drop the modules a run imported, and torch cannot be imported twice into
one process.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

SLOWDOWN = "MODELPERF_TEST_SLOWDOWN"

LATENCY_TEST = """
    import os
    import pytest

    # CPU-bound work (not a sleep or a timed busy-wait), so it speeds up and slows down with the
    # machine as the plugin's control workload does, and drift correction applies to it.
    REPEATS = int(os.environ.get("MODELPERF_TEST_SLOWDOWN", "1"))

    def work():
        for _ in range(REPEATS):
            sum(range(30_000))

    # A 50 % minimum effect keeps a shared, loaded CI machine from ever failing the unchanged code,
    # while the injected 2x slowdown stays far past it.
    @pytest.mark.latency(min_effect=0.5)
    def test_work(benchmark):
        benchmark(work)
"""

# Short pytest-benchmark runs (a few hundred rounds of about 1 ms); files stay inside the pytester directory.
RUN = ("--benchmark", "--history", "off", "--baseline-dir", "baselines", "--benchmark-max-time=0.2")


torch = pytest.importorskip("torch")

from modelperf.measure import control as control_module


@pytest.fixture(autouse=True)
def _steady_control(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the plugin's flow (record, compare, save, fail), not about drift: a
    # control round of constant length keeps a busy CI machine's drift out of their verdicts.
    # Drift correction itself is tested with synthetic samples in test_decide.py.
    monkeypatch.setattr(control_module, "control_timer", lambda threads=None, model_weights=(): lambda: 0.003)


def _hardware_dirs(pytester: pytest.Pytester) -> list[Path]:
    root = pytester.path / "baselines"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _record_file(pytester: pytest.Pytester) -> Path:
    [folder] = _hardware_dirs(pytester)
    [record] = [p for p in folder.glob("*.json") if p.name != "machine.json"]
    return record


def _record_baseline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makepyfile(test_lat=LATENCY_TEST)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    return _record_file(pytester)


def test_first_run_records_a_baseline_for_this_hardware(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makepyfile(test_lat=LATENCY_TEST)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    [folder] = _hardware_dirs(pytester)
    result.stdout.fnmatch_lines([
        "*test_work*p10_s*recorded*",
        f"*no baseline for hardware {folder.name}: recorded this run as its baseline*",
        "added test_lat.py::test_work::p10_s",
    ])
    assert (folder / "machine.json").is_file()
    document = json.loads((folder / "test_lat.json").read_text())
    [(key, record)] = document["records"].items()
    assert key == "test_lat.py::test_work::p10_s"
    assert record["kind"] == "latency" and record["unit"] == "s"
    assert len(record["samples"]) >= 5 and record["control"], "samples and control must be stored for later runs"
    assert 0 < record["value"] < 1


@pytest.mark.parametrize(("slowdown", "outcome"), [("1", "passed"), ("8", "failed")])
def test_latency_marker_fails_only_when_clearly_slower_than_baseline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, slowdown: str, outcome: str
) -> None:
    record = _record_baseline(pytester, monkeypatch)
    before = record.read_bytes()
    monkeypatch.setenv(SLOWDOWN, slowdown)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(**{outcome: 1})
    if outcome == "passed":
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["*test_work*p10_s*pass*"])
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([
            "p10_s: median * -> * (drift-corrected p10 x*, 95% CI *, p=*): *50 % minimum effect*(confirmed by a re-measurement)",
            "*test_work*p10_s*regressed*",
        ])
    assert record.read_bytes() == before, "a comparing run must not rewrite the baseline"


def test_baseline_save_replaces_the_baseline_and_prints_the_diff(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record_baseline(pytester, monkeypatch)
    old = json.loads(record.read_text())["records"]["test_lat.py::test_work::p10_s"]["value"]
    monkeypatch.setenv(SLOWDOWN, "2")
    saved = pytester.runpytest(*RUN, "--baseline-save", "--results-json", "results.json")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines([
        "*saved as the new baseline (--baseline-save)*",
        "changed test_lat.py::test_work::p10_s * -> * (*%)",
    ])
    new = json.loads(record.read_text())["records"]["test_lat.py::test_work::p10_s"]["value"]
    # The stored figure is exactly this run's (not a timing threshold, which a busy machine can blur).
    [measured] = [r["measurement"]["value"] for r in json.loads((pytester.path / "results.json").read_text())["results"]]
    assert new == measured and new != old
    # The saved figure is now the reference a later run compares with. (Which verdict that run gets
    # depends on how steady this shared machine is between two runs, so it is not asserted here.)
    pytester.runpytest(*RUN, "--results-json", "again.json")
    [compared] = json.loads((pytester.path / "again.json").read_text())["results"]
    assert compared["judgement"]["reference"] == new


@pytest.mark.parametrize("extra", [(), ("--baseline-save",)])
def test_corrupt_baseline_is_a_usage_error_and_left_untouched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]
) -> None:
    record = _record_baseline(pytester, monkeypatch)
    garbage = b'{"schema": 1, "records": {"test_lat.py::test_work::p10_s": {"value": '
    record.write_bytes(garbage)
    result = pytester.runpytest(*RUN, *extra)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    relative = record.relative_to(pytester.path)
    assert f"Baseline file {relative}" in errors[0]
    assert "--baseline-save" in errors[0] or "git" in errors[0], "the sentence must say how to fix it"
    assert record.read_bytes() == garbage


def test_baselines_of_other_hardware_are_never_compared(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _record_baseline(pytester, monkeypatch)
    other = record.parent.rename(record.parent.with_name("other-machine-0000"))
    document = json.loads((other / record.name).read_text())
    document["hardware_id"] = other.name  # as that machine would have written it
    (other / record.name).write_text(json.dumps(document))
    before = (other / record.name).read_bytes()
    monkeypatch.setenv(SLOWDOWN, "2")  # would fail if it were compared with the other machine
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        ("*no baseline for hardware *: recorded this run as its baseline; baselines exist for other hardware "
        "only (other-machine-0000), never compared*"),
    ])
    assert [p.name for p in _hardware_dirs(pytester)] == sorted([other.name, record.parent.name])
    assert (other / record.name).read_bytes() == before
    assert (record.parent / record.name).is_file()


def test_disabled_benchmark_records_nothing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makepyfile(test_lat=LATENCY_TEST)
    result = pytester.runpytest(*RUN, "--benchmark-disable")
    result.assert_outcomes(passed=1)
    assert not any(folder.glob("test_lat.json") for folder in _hardware_dirs(pytester))


def test_latency_marker_without_benchmark_fixture_fails_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.latency
        def test_untimed():
            sum(range(100))
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.latency needs the `benchmark` fixture; add it*"])
    assert "Traceback" not in result.stdout.str()


def test_failing_latency_test_records_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.latency
        def test_broken(benchmark):
            benchmark(sum, range(100))
            assert False, "the code under test is wrong"
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the code under test is wrong*"])
    assert not any(p for folder in _hardware_dirs(pytester) for p in folder.glob("*.json") if p.name != "machine.json")


# A latency test skips in pytest-xdist workers: asserted in test_plugin_memory.py's xdist session, which
# has one beside its memory tests (each -n session is a controller and its workers).


@pytest.mark.parametrize("failing_call", [1, 2])
def test_broken_control_workload_fails_one_test_not_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    # The control runs once before the test body (warm-up) and between its rounds; either may fail.
    calls = []

    def broken_timer(threads: object = None, model_weights: object = ()) -> object:
        def one_round() -> float:
            calls.append(threads)
            if len(calls) == failing_call:
                raise RuntimeError("the control workload broke")
            return 0.003

        return one_round

    monkeypatch.setattr(control_module, "control_timer", broken_timer)
    pytester.makepyfile(test_lat=LATENCY_TEST + """
    def test_after():
        pass
""")
    result = pytester.runpytest(*RUN)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the control workload broke*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert len(calls) >= failing_call, "the stand-in control was not used"


def _with_second_latency_test(name: str) -> str:
    """LATENCY_TEST plus a second latency test of the same work, named ``name``."""
    return LATENCY_TEST + f"""
    @pytest.mark.latency(min_effect=0.5)
    def {name}(benchmark):
        benchmark(work)
"""


def test_a_test_measured_on_a_busy_machine_is_remeasured_before_it_is_saved(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second test's control runs x1.5 slower (a busy machine) until it is re-measured.
    timers = iter([lambda: 0.003, iter([0.0045] * 61 + [0.003] * 1000).__next__])
    monkeypatch.setattr(control_module, "control_timer", lambda threads=None, model_weights=(): next(timers))
    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makepyfile(test_lat=_with_second_latency_test("test_busy"))
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*modelperf: re-measured because the machine was busy*",
        "test_lat.py::test_busy: its control ran x1.50 slower than this session's quietest",
    ])
    records = json.loads(_record_file(pytester).read_text())["records"]
    busy = records["test_lat.py::test_busy::p10_s"]
    assert busy["latency"]["busy_factor"] == 1.5 and busy["latency"]["remeasured_rounds"] > 0
    assert records["test_lat.py::test_work::p10_s"]["latency"]["remeasured_rounds"] == 0


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize(("ini", "lines"), [
    ("", ["*latency measured under glibc * malloc; its own dynamic thresholds, raised to their steady state*"]),
    ("malloc_thresholds = fixed", ["*latency measured under glibc * malloc; thresholds fixed during latency tests*",
                                   "*modelperf: measurement set-up*",
                                   "latency tests ran with glibc malloc's thresholds fixed*"]),
])
def test_the_summary_names_the_allocator_latency_ran_under(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, lines: list[str]
) -> None:
    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_lat=_with_second_latency_test("test_again"))
    result = pytester.runpytest(*RUN, "--results-json", "results.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(lines)
    out = result.stdout.str()
    assert out.count("latency measured under") == 1
    assert out.count("latency tests ran with glibc malloc's thresholds fixed") == (1 if ini else 0)  # set-up once
    machine = json.loads((pytester.path / "results.json").read_text())["machine"]
    assert machine["allocator"].startswith("glibc ")


def test_a_baseline_of_another_control_workload_is_not_compared(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(control_module, "control_identity", lambda model_weights=(): "v0")
        _record_baseline(pytester, monkeypatch)
    monkeypatch.setenv(SLOWDOWN, "2")  # a real slowdown must not be judged against a foreign control either
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        ("*the baseline was measured against another control workload (v0, now v1; the control changed, or the "
         "model's weight dtypes or shapes did): not compared; run with --baseline-save to re-record it*"),
    ])


def test_benchmark_reached_through_another_fixture_is_measured_with_control_rounds(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelperf.measure.latency import CONTROL_PER_SLOT, MIN_CONTROL_SLOTS

    monkeypatch.delenv(SLOWDOWN, raising=False)
    pytester.makepyfile(test_lat="""
        import pytest
        from pytest_benchmark.fixture import BenchmarkFixture

        @pytest.fixture
        def timed(benchmark):
            return lambda fn: benchmark(fn)

        @pytest.mark.latency(min_effect=0.5)
        def test_through_a_fixture(timed):
            timed(lambda: sum(range(30_000)))

        def test_unmarked_gets_pytest_benchmarks_own_fixture(benchmark):
            assert isinstance(benchmark, BenchmarkFixture)
            benchmark(lambda: None)
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=2)
    record = json.loads(_record_file(pytester).read_text())["records"]["test_lat.py::test_through_a_fixture::p10_s"]
    assert len(record["control"]) >= MIN_CONTROL_SLOTS * CONTROL_PER_SLOT, "control rounds between the timed rounds"
    assert record["latency"]["control_version"], "the control's identity is recorded for later comparisons"
