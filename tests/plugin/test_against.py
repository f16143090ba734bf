"""``pytest --benchmark --against REF``, as users meet it: an inner git repository, a commit as the
base, the working tree as the change, and real worker processes of both sides.

The inner tests time pure-Python loops whose length is a constant in the test file, so "making the
change slower" is editing that constant: a 3x longer loop is a regression on any machine, while the
unchanged file is the same code on both sides.

Tests about anything but the latency verdict mark their loop with a 50 % minimum effect. With three
processes a side, the same code can land a few per cent apart after the control correction (CI saw
x1.030 once, on the 5 % default); a 30 % alarm line keeps those tests deterministic. How often the
gate raises false alarms is a rate over many sessions, measured by python -m benchmarks.gate.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

RUN = ("--benchmark", "--against-processes", "3", "-p", "no:randomly", "--history", "off")

SPIN = """
    import pytest

    LOOPS = {loops}

    def work():
        total = 0
        for i in range(LOOPS):
            total += i * i
        return total

    @pytest.mark.latency{mark}
    def test_spin(benchmark):
        benchmark(work)
"""
# The marker arguments of a loop whose verdict the test does not look at (see the module docstring).
STRUCTURAL = "(min_effect=0.5)"


def spin(loops: int, mark: str = STRUCTURAL) -> str:
    return SPIN.format(loops=loops, mark=mark)


def _git(pytester: pytest.Pytester, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=pytester.path,
                   check=True, capture_output=True)


def _commit(pytester: pytest.Pytester) -> None:
    if not (pytester.path / ".git").exists():
        _git(pytester, "init", "-q")
    _git(pytester, "add", "-A")
    _git(pytester, "commit", "-q", "-m", "base")


def test_same_code_on_both_sides_passes_with_both_figures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(20000))
    _commit(pytester)
    result = pytester.runpytest(*RUN, "--against", "HEAD", "--summary-markdown", "summary.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*this change against HEAD (*), measured side by side*",
                                 "*test*metric*change*base*change/base (95% CI)*verdict*",
                                 "test_spin*p10_s*s*s*x*(*-*)*pass"])
    markdown = (pytester.path / "summary.md").read_text()
    assert "this change against `HEAD (" in markdown and "| change/base (95% CI) |" in markdown


def test_a_slower_change_fails_with_a_one_line_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(20000, mark=""))
    _commit(pytester)
    pytester.makepyfile(test_spin=spin(60000, mark=""))  # the working tree: three times the work
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_spin.py R*", ("*p10_s: median * -> * (side-by-side p10 x*, 95% CI *): "
                                 "slower, past the alarm line x1.030 of the 5 % minimum effect*"),
                                 "*REGRESSED test_spin.py::test_spin*", "*1 failed*"])


def test_new_and_removed_tests_are_listed_not_compared(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_old=spin(5000), test_kept="def test_kept():\n    assert True\n")
    _commit(pytester)
    (pytester.path / "test_old.py").unlink()
    pytester.makepyfile(test_new=spin(5000))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_spin*not_compared*",
                                 "*new test: not in HEAD (*), so nothing to compare with*",
                                 "*removed since HEAD (*) (on the base side only, not compared): test_old.py::test_spin*"])


def test_a_missing_ref_is_one_sentence_and_the_change_is_still_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    _commit(pytester)
    result = pytester.runpytest(*RUN, "--against", "no-such-branch")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # a gate that compared nothing is not green
    result.stdout.fnmatch_lines([("*--against no-such-branch: no such commit, branch or tag in *; check the name, or "
                                  "fetch it first (in CI: check out with fetch-depth: 0).*"),
                                 "test_spin*p10_s*not_compared"])


def test_outside_a_git_repository_is_one_sentence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*--against compares with another commit, but * is not inside a git repository*"])


CRASH = """
    import os, signal
    import pytest

    @pytest.mark.latency
    def test_spin(benchmark):
        if {crash}:
            os.kill(os.getpid(), signal.SIGSEGV)
        benchmark(sum, range(1000))
"""


@pytest.mark.parametrize(("base_crashes", "outcome"), [(True, "passed"), (False, "failed")])
def test_a_side_whose_worker_dies_is_one_sentence(pytester: pytest.Pytester, base_crashes: bool,
                                                  outcome: str) -> None:
    pytester.makepyfile(test_spin=CRASH.format(crash=base_crashes))
    _commit(pytester)
    pytester.makepyfile(test_spin=CRASH.format(crash=not base_crashes))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.assert_outcomes(**{outcome: 1})
    side = "base" if base_crashes else "change"
    result.stdout.fnmatch_lines([(f"*the {side} side's worker process 0 (*) died with SIGSEGV (signal 11) while "
                                  "running test_spin.py::test_spin*full log: *")])


ACCURACY = """
    import pytest

    from modelperf.measure.accuracy import evaluate_sentiment
    from modelperf.models.base import Classification

    WRONG = {wrong}  # examples this version gets wrong, out of 200

    class StandIn:
        class info:
            key, name = "stand-in@0123456789ab", "stand-in"

        def classify(self, texts):
            labels = [int(t.split()[-1]) % 2 ^ (int(t.split()[-1]) < WRONG) for t in texts]
            return Classification(tuple(labels), tuple((0.2, 0.8) if x else (0.8, 0.2) for x in labels),
                                  ("negative", "positive"))

    @pytest.mark.accuracy
    def test_accuracy(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
"""


@pytest.mark.parametrize(("wrong", "verdict"), [(0, "pass"), (30, "regressed")])
def test_accuracy_is_compared_example_by_example(pytester: pytest.Pytester, wrong: int, verdict: str) -> None:
    lines = ["sentence\tlabel"] + [f"review number {i}\t{i % 2}" for i in range(200)]
    (pytester.path / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pytester.makepyfile(test_acc=ACCURACY.format(wrong=0))
    _commit(pytester)
    pytester.makepyfile(test_acc=ACCURACY.format(wrong=wrong))
    result = pytester.runpytest(*RUN, "--against", "HEAD", "--accuracy-dataset", "data.tsv")
    result.stdout.fnmatch_lines([f"test_accuracy*accuracy*{1 - wrong / 200:.3f}*1.000*{verdict}*"])
    if verdict == "regressed":
        result.stdout.fnmatch_lines(["*McNemar*"])
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    else:
        assert result.ret == pytest.ExitCode.OK


MEMORY = """
    import pytest

    MIB = {mib}

    @pytest.mark.peak_memory
    def test_memory():
        block = bytearray(MIB * 1024 * 1024)
        assert len(block) == MIB * 1024 * 1024
"""


@pytest.mark.parametrize(("mib", "verdict"), [(16, "pass"), (48, "regressed")])
def test_peak_memory_compares_each_side_from_a_fresh_process(pytester: pytest.Pytester, mib: int,
                                                             verdict: str) -> None:
    pytester.makepyfile(test_mem=MEMORY.format(mib=16))
    _commit(pytester)
    pytester.makepyfile(test_mem=MEMORY.format(mib=mib))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.stdout.fnmatch_lines([f"test_memory*memray_peak_bytes*{verdict}*",
                                 "*each from a fresh worker process*" if verdict != "pass" else "*"])
    assert result.ret == (pytest.ExitCode.OK if verdict == "pass" else pytest.ExitCode.TESTS_FAILED)


def test_a_base_that_cannot_start_fails_the_session_in_one_sentence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    pytester.makeconftest("raise RuntimeError('this commit cannot even be collected')")
    _commit(pytester)
    (pytester.path / "conftest.py").unlink()  # the change mends it
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # nothing was compared: the gate is not green
    result.stdout.fnmatch_lines(["*the base side's worker process * while collecting the tests*",
                                 "test_spin*p10_s*not_compared"])


def test_started_from_a_subdirectory_the_same_tests_are_compared(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")  # the rootdir is the repository, above the tests
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "test_spin.py").write_text(textwrap.dedent(spin(20000)))
    _commit(pytester)
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest(*RUN, "--against", "HEAD", "test_spin.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_spin*p10_s*s*s*x*(*-*)*pass"])
    result.stdout.no_fnmatch_line("*new test*")


def test_a_run_that_measures_nothing_is_not_compared_not_an_internal_error(pytester: pytest.Pytester) -> None:
    conditional = SPIN.replace("        benchmark(work)", "        if CALL:\n            benchmark(work)")
    conditional = conditional.replace("    LOOPS = {loops}", "    LOOPS = {loops}\n    CALL = {call}")
    pytester.makepyfile(test_spin=conditional.format(loops=5000, call=True, mark=STRUCTURAL))  # the base times the call
    _commit(pytester)
    pytester.makepyfile(test_spin=conditional.format(loops=5000, call=False, mark=STRUCTURAL))  # the change never does
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    result.stdout.no_fnmatch_line("*test_spin*p10_s*pass*")  # nothing measured on the change: no verdict


def test_fewer_than_three_processes_per_side_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    result = pytester.runpytest("--benchmark", "--against", "HEAD", "--against-processes", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*2 worker processes per side are too few to judge*give 3 or more.*"])


def test_a_cancelled_session_stops_its_workers_and_removes_the_base_worktree(pytester: pytest.Pytester) -> None:
    # A CI job that is cancelled gets SIGTERM; nothing of the session may be left behind.
    started = pytester.path / "started"
    pytester.makepyfile(test_slow=f"""
        import pathlib, time
        import pytest

        @pytest.mark.latency
        def test_slow(benchmark):
            pathlib.Path({str(started)!r}).write_text("yes")
            time.sleep(120)  # never finishes: the session is cancelled first
            benchmark(sum, range(10))
    """)
    _commit(pytester)
    session = subprocess.Popen([sys.executable, "-m", "pytest", *RUN, "--against", "HEAD"], cwd=pytester.path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and session.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert started.exists(), "the inner test never started"
        session.send_signal(signal.SIGTERM)
        output, _ = session.communicate(timeout=120)
    finally:
        session.kill()
    assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=pytester.path, capture_output=True, text=True,
                               check=True).stdout
    assert len(worktrees.splitlines()) == 1, worktrees  # only the repository's own


def test_the_two_sides_take_turns_and_never_run_at_once(pytester: pytest.Pytester) -> None:
    # Each timed call logs its process, side and start/end times; the file is outside both trees.
    log = pytester.path.parent / "calls.log"
    pytester.makepyfile(test_turns=f"""
        import os, time
        import pytest

        SIDE = {{side!r}}

        def work():
            start = time.perf_counter()
            deadline = start + 0.06  # one call longer than a turn, so every round hands the turn over
            while time.perf_counter() < deadline:
                pass
            with open({str(log)!r}, "a") as out:
                out.write(f"{{SIDE}} {{os.getpid()}} {{start}} {{time.perf_counter()}}\\n")

        @pytest.mark.latency{STRUCTURAL}
        def test_turns(benchmark):
            benchmark(work)
    """.replace("{side!r}", "'base'"))
    _commit(pytester)
    (pytester.path / "test_turns.py").write_text((pytester.path / "test_turns.py").read_text()
                                                  .replace("SIDE = 'base'", "SIDE = 'change'"))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.assert_outcomes(passed=1)
    calls = sorted((float(start), float(end), side, pid) for side, pid, start, end in
                   (line.split() for line in log.read_text().splitlines()))
    assert {side for *_, side, _ in calls} == {"base", "change"}
    for (_, end, side, pid), (start, _, next_side, next_pid) in itertools.pairwise(calls):
        assert end <= start or pid == next_pid, f"{side} {pid} and {next_side} {next_pid} ran at the same time"
    # Within each block (one process of each side) the sides alternate call by call.
    switches = sum(a[2] != b[2] for a, b in itertools.pairwise(calls))
    assert switches >= len(calls) // 2, [side for *_, side, _ in calls]


def test_only_the_first_run_of_a_slow_test_makes_a_warm_up_call(pytester: pytest.Pytester) -> None:
    # Each call logs its process. A call of 0.12 s is "slow" (REWARM_BELOW_S): the first block's two
    # runs warm up and tell the controller its time per call; the later blocks' runs do not warm up.
    log = pytester.path.parent / "slow-calls.log"
    pytester.makepyfile(test_slow=f"""
        import os, time
        import pytest

        def work():
            with open({str(log)!r}, "a") as out:
                out.write(f"{{os.getpid()}}\\n")
            time.sleep(0.12)  # how long a call takes is all this test needs, not what it computes

        @pytest.mark.latency{STRUCTURAL}
        def test_slow(benchmark):
            benchmark(work)
    """)
    _commit(pytester)
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.assert_outcomes(passed=1)
    calls_per_process = sorted(Counter(log.read_text().split()).values())
    rounds = 7  # 20 rounds for a call over 0.1 s, a third of them in each of 3 runs a side
    assert calls_per_process == [rounds] * 4 + [rounds + 1] * 2, calls_per_process
