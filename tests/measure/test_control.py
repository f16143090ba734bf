"""Unit tests for modelperf.measure.control: the fixed workload that measures the machine's speed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from modelperf.measure import control
from modelperf.measure.control import control_timer, measure_control

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("rounds", [1, 3])
def test_measure_control_returns_requested_positive_seconds(rounds: int) -> None:
    seconds = measure_control(rounds)
    assert len(seconds) == rounds
    assert all(isinstance(s, float) and math.isfinite(s) and s > 0 for s in seconds)


def test_threads_apply_during_the_round_and_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    original = control._block

    def spy(weights: dict[str, Any]) -> Any:
        seen.append(torch.get_num_threads())
        return original(weights)

    monkeypatch.setattr(control, "_block", spy)
    wanted = 2 if before == 1 else 1  # differs from the current setting, so the test can fail
    measure_control(2, threads=wanted)
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before


def test_workload_is_deterministic_and_finite() -> None:
    weights = control._weights()
    first, second = control._block(weights), control._block(weights)
    assert first.shape == (1, 16, 384)
    assert torch.equal(first, second)
    assert bool(torch.isfinite(first).all())


def test_timer_can_be_reused_between_rounds() -> None:
    timer = control_timer()
    assert all(timer() > 0 for _ in range(3))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: measure_control(0), "rounds=0 must be at least 1"),
    (lambda: measure_control(1, threads=0), "threads=0 must be a positive number of threads"),
])
def test_bad_arguments_raise_one_sentence(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_the_control_walks_the_models_weights_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = (torch.randn(8, 384), torch.randn(384, 8))
    seen: list[tuple[int, ...]] = []
    original = torch.nn.functional.linear

    def spy(features: Any, weight: Any, *rest: Any) -> Any:
        seen.append(tuple(weight.shape))
        return original(features, weight, *rest)

    timer = control_timer(1, weights)
    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    assert timer() > 0
    assert seen[-2:] == [(8, 384), (384, 8)]  # after the generic block, each model weight once


def test_control_identity_names_the_weights_layout() -> None:
    from modelperf.measure.control import CONTROL_VERSION, control_identity

    assert control_identity() == f"v{CONTROL_VERSION}"
    float32 = control_identity((torch.zeros(4, 3),))
    assert float32.startswith(f"v{CONTROL_VERSION}+weights:")
    assert float32 == control_identity((torch.ones(4, 3),))  # values do not matter, layout does
    assert float32 != control_identity((torch.zeros(4, 3, dtype=torch.bfloat16),))
    assert float32 != control_identity((torch.zeros(3, 4),))


def test_control_weights_must_be_matrices() -> None:
    with pytest.raises(ValueError, match="control weights must be 2-D torch tensors"):
        control_timer(1, (torch.zeros(3),))


def test_without_torch_the_control_runs_in_numpy_under_its_own_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "has_torch", lambda: False)
    assert control.control_identity() == f"numpy-v{control.CONTROL_VERSION}"
    assert control.control_identity() != f"v{control.CONTROL_VERSION}"  # never compared with torch's block
    assert control.control_threads() == 1
    out = control._numpy_block(control._numpy_weights())
    assert out.shape == (control._SEQ, control._WIDTH) and bool((abs(out) < 100).all())
    seconds = control.measure_control(rounds=3)
    assert len(seconds) == 3 and all(math.isfinite(s) and s > 0 for s in seconds)
