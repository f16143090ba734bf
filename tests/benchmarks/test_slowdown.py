"""The gate benchmark's injected slowdown: how much work each call gets, counted on a simulated clock.

A fake machine advances its clock by a known time per call and per kernel, so the kernel counts the
slowdown fixes are exact numbers: no timing, no thresholds.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.gate import slowdown
from benchmarks.gate.slowdown import CALIBRATION_CALLS, Settings, Slowdown, argument_shape, settings_from
from modelperf.ab.workers import WORKER_ENV

REPO = Path(__file__).resolve().parents[2]
UNIT = 2.0**-16  # seconds per kernel on the fake machine; powers of two keep the arithmetic exact
TICK = 2.0**-10  # one unit of a fake method's duration


class FakeMachine:
    """A clock that only moves when work is done, and a kernel that records each count it is given."""

    def __init__(self) -> None:
        self.now = 0.0
        self.counts: list[int] = []

    def clock(self) -> float:
        return self.now

    def kernel(self, count: int) -> None:
        self.counts.append(count)
        self.now += count * UNIT


class Adapter:
    """A model adapter whose calls take ``durations`` ticks in turn (the last one repeats)."""

    def __init__(self, machine: FakeMachine, durations: list[float]) -> None:
        self.machine, self.durations = machine, durations

    def classify(self, texts: list[str]) -> str:
        ticks = self.durations.pop(0) if len(self.durations) > 1 else self.durations[0]
        self.machine.now += ticks * TICK
        return "positive"

    def next_token(self) -> int:
        self.machine.now += TICK
        return 7

    def decode(self, count: int) -> list[int]:
        return [self.next_token() for _ in range(count)]


def _slowed(factor: float, durations: list[float], log: Path | None = None) -> tuple[FakeMachine, Adapter]:
    machine = FakeMachine()
    cls = type("SlowedAdapter", (Adapter,), {})
    Slowdown(factor, machine.kernel, clock=machine.clock, log=log).install(cls, ("classify", "next_token", "decode"))
    return machine, cls(machine, durations)


def _paid(machine: FakeMachine, call: Callable[[], object]) -> int:
    """Kernels the call ran after its real work (the last count; a unit re-measure comes before it)."""
    before = len(machine.counts)
    call()
    added = machine.counts[before:]
    return added[-1] if added else 0


@pytest.mark.parametrize(("factor", "expected"), [(0.25, 64), (0.5, 128), (1.0, 256), (0.05, 13)])
def test_every_call_pays_the_factor_of_its_own_cost_in_kernels(factor: float, expected: int) -> None:
    machine, adapter = _slowed(factor, [4.0])  # 4 ticks = 256 kernels of work
    paid = [_paid(machine, lambda: adapter.classify(["a fine film"])) for _ in range(CALIBRATION_CALLS + 5)]
    assert paid == [expected] * len(paid)
    assert expected == round(factor * 4 * TICK / UNIT)


def _total(factor: float, calls: int) -> int:
    machine, adapter = _slowed(factor, [8.0])
    return sum(_paid(machine, lambda: adapter.classify(["x"])) for _ in range(calls))


def test_the_work_scales_linearly_with_the_factor() -> None:
    assert _total(0.5, 10) == 2 * _total(0.25, 10) == 4 * _total(0.125, 10) > 0


def test_calibration_calls_pay_for_the_fastest_so_far_then_the_count_is_fixed() -> None:
    machine, adapter = _slowed(0.5, [4.0, 3.0, 5.0, 6.0, 3.5, 10.0, 1.0])
    paid = [_paid(machine, lambda: adapter.classify(["text"])) for _ in range(7)]
    # 0.5 of 4 ticks, then of 3 ticks (the fastest so far) until fixed; later calls keep that count
    # however long they take.
    assert paid == [128, 96, 96, 96, 96, 96, 96]


def test_each_argument_shape_is_calibrated_on_its_own() -> None:
    machine, adapter = _slowed(1.0, [1.0] * 5 + [2.0] * 5 + [1.0])
    short = [_paid(machine, lambda: adapter.classify(["short"])) for _ in range(5)]
    long = [_paid(machine, lambda: adapter.classify(["a much longer text"])) for _ in range(5)]
    assert short == [64] * 5
    assert long == [128] * 5
    assert _paid(machine, lambda: adapter.classify(["short"])) == 64


def test_a_call_from_inside_a_wrapped_call_adds_nothing() -> None:
    machine, adapter = _slowed(1.0, [1.0])
    # decode(4) runs 4 next_token calls of one tick: it alone pays, for its 4 ticks.
    assert [_paid(machine, lambda: adapter.decode(4)) for _ in range(6)] == [256] * 6
    assert _paid(machine, adapter.next_token) == 64  # called directly, it pays its own share


def test_passthrough_runs_the_real_method_only() -> None:
    machine = FakeMachine()
    cls = type("SlowedAdapter", (Adapter,), {})
    injected = Slowdown(1.0, machine.kernel, clock=machine.clock)
    injected.install(cls, ("classify",))
    adapter = cls(machine, [1.0])
    with injected.passthrough():
        assert _paid(machine, lambda: adapter.classify(["x"])) == 0
    assert _paid(machine, lambda: adapter.classify(["x"])) == 64


def test_each_fixed_count_is_logged_as_one_json_line(tmp_path: Path) -> None:
    log = tmp_path / "inject.jsonl"
    _, adapter = _slowed(0.5, [2.0], log=log)
    for _ in range(CALIBRATION_CALLS + 3):
        adapter.classify(["x"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["n"] == 64 and lines[0]["factor"] == 0.5 and lines[0]["unit_s"] == UNIT
    assert lines[0]["method"].endswith("classify") and len(lines[0]["times_s"]) == CALIBRATION_CALLS


def test_a_method_missing_from_the_adapter_is_named() -> None:
    machine = FakeMachine()
    with pytest.raises(AttributeError, match="no method 'prefill'.*TARGETS"):
        Slowdown(0.1, machine.kernel, clock=machine.clock).install(Adapter, ("prefill",))


@pytest.mark.parametrize("factor", [0.0, -0.05, 10.5, math.nan])
def test_a_factor_outside_its_range_is_refused(factor: float) -> None:
    with pytest.raises(ValueError, match="must lie in"):
        Slowdown(factor, FakeMachine().kernel)


@given(st.text(max_size=40), st.text(max_size=40))
def test_strings_of_one_length_share_a_shape(first: str, second: str) -> None:
    assert (argument_shape(first) == argument_shape(second)) is (len(first) == len(second))


@pytest.mark.parametrize(("value", "shape"), [
    (["ab", "cde"], ("l", 2, 5)), (32, ("i", 32)), (True, ("i", 1)), (b"xyz", ("s", 3)), (None, ("NoneType",))])
def test_argument_shapes(value: object, shape: tuple[object, ...]) -> None:
    assert argument_shape(value) == shape


def _environ(tmp_path: Path, **overrides: str) -> dict[str, str]:
    environ = {slowdown.FACTOR_ENV: "0.05", slowdown.TREE_ENV: str(tmp_path), WORKER_ENV: "3,4"}
    environ.update(overrides)
    return {k: v for k, v in environ.items() if v}


def test_a_change_side_worker_gets_the_settings(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    assert settings_from(_environ(tmp_path, **{slowdown.LOG_ENV: str(log)}), tmp_path / "sub") == Settings(0.05, log)


@pytest.mark.parametrize("case", ["no factor", "controller", "base side"])
def test_other_processes_are_left_alone(tmp_path: Path, case: str) -> None:
    environ = _environ(tmp_path, **{slowdown.FACTOR_ENV: ""} if case == "no factor" else
                       {WORKER_ENV: ""} if case == "controller" else {})
    cwd = tmp_path.parent if case == "base side" else tmp_path
    assert settings_from(environ, cwd) is None


@pytest.mark.parametrize(("overrides", "message"), [
    ({slowdown.FACTOR_ENV: "five"}, "is not a number"),
    ({slowdown.FACTOR_ENV: "12"}, "must lie in"),
    ({slowdown.TREE_ENV: ""}, "is not; set it to the change side's tree"),
])
def test_bad_settings_are_named(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from(_environ(tmp_path, **overrides), tmp_path)


def test_install_wraps_the_target_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fresh(Adapter):
        pass

    cls = Fresh
    module = types.ModuleType("fake_models")
    setattr(module, "Adapter", cls)  # noqa: B010 (a module built here has no declared attributes)
    monkeypatch.setitem(sys.modules, "fake_models", module)
    injected = slowdown.install(Settings(0.1, None), {"fake_models": ("Adapter", ("classify", "decode"))})
    assert injected.factor == 0.1 and injected.provisional_unit > 0
    assert getattr(cls.classify, "__wrapped__", None) is Adapter.classify
    assert getattr(cls.decode, "__wrapped__", None) is Adapter.decode
    assert not hasattr(cls.next_token, "__wrapped__")


def test_a_session_with_a_bad_factor_stops_with_one_sentence(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    monkeypatch.setenv(slowdown.FACTOR_ENV, "lots")
    monkeypatch.setenv(slowdown.TREE_ENV, str(pytester.path))
    monkeypatch.setenv(WORKER_ENV, "3,4")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "plugin")]))
    result = pytester.runpytest_subprocess("-p", "benchmarks.gate.slowdown", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*MODELPERF_GATE_SLOWDOWN='lots' is not a number*"])


def test_the_controller_session_loads_the_plugin_and_stays_unslowed(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The session that starts --against's workers (no worker descriptors in its environment) measures
    # nothing itself: the plugin loads there, as PYTEST_PLUGINS reaches every process, and slows nothing.
    pytester.makepyfile("from modelperf.models.distilbert import DistilBert\n\n"
                        "def test_adapter_not_wrapped(pytestconfig):\n"
                        "    assert pytestconfig.pluginmanager.has_plugin('benchmarks.gate.slowdown')\n"
                        "    assert not hasattr(DistilBert.classify, '__wrapped__')\n")
    monkeypatch.setenv(slowdown.FACTOR_ENV, "0.05")
    monkeypatch.setenv(slowdown.TREE_ENV, str(pytester.path))
    monkeypatch.delenv(WORKER_ENV, raising=False)
    monkeypatch.setenv("PYTEST_PLUGINS", "benchmarks.gate.slowdown")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(REPO / "plugin")]))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
