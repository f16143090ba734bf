"""The gate benchmark's load modes: their sessions' commands and environment, the more-tokens change,
and the count of the load test's verdicts, on made-up session files (no real session runs here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.gate import cli, slowdown
from benchmarks.gate.analysis import analyze
from benchmarks.gate.more_tokens import ask_more_tokens, more_tokens
from benchmarks.gate.plan import DEFAULT_LOAD_SELECT, Mode, parse_load_slowdown, plan_session
from benchmarks.gate.slowdown import Settings, settings_from
from benchmarks.gate.summary import headline
from modelperf.ab.workers import WORKER_ENV
from modelperf.serve import servers

LOAD_TEST = "tests/suite/test_load.py::test_llama_near_capacity"


def test_load_slowdown_modes_parse_and_judge_by_the_load_test() -> None:
    mode = parse_load_slowdown("0.10:10")
    assert mode == Mode("load-slowdown-0.10", 10, 0.1) and mode.kind == "load"
    assert Mode("load-aa", 3).kind == "load" and Mode("slowdown-0.10", 3, 0.1).kind == "latency"
    with pytest.raises(argparse.ArgumentTypeError, match="--load-slowdown takes FACTOR:SESSIONS"):
        parse_load_slowdown("ten percent")


def test_a_load_slowdown_session_asks_the_change_side_for_more_tokens_and_no_kernel_work(tmp_path: Path) -> None:
    common: dict[str, Any] = {"python": "py", "rev": "abc", "tree": tmp_path / "tree", "results_dir": tmp_path,
                              "selection": ("tests/suite/test_load.py", "-k", "near"), "extra": (),
                              "against_processes": None}
    slow = plan_session(parse_load_slowdown("0.10:1"), 2, **common)
    assert slow.env["PYTEST_PLUGINS"] == slowdown.__name__
    assert slow.env[slowdown.TOKENS_ENV] == "0.1" and slowdown.FACTOR_ENV not in slow.env
    assert slow.env[slowdown.TREE_ENV] == str(tmp_path / "tree")
    assert slow.command[-5:] == ("--against", "abc", "tests/suite/test_load.py", "-k", "near")
    assert slow.results == tmp_path / "load-slowdown-0.10-2.json"
    aa = plan_session(Mode("load-aa", 1), 0, **common)
    assert "PYTEST_PLUGINS" not in aa.env and slowdown.TOKENS_ENV not in aa.env and "--against" in aa.command


def test_dry_run_gives_load_modes_the_load_test_and_latency_modes_theirs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--aa", "1", "--load-aa", "1", "--load-slowdown", "0.10:2", "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert len(lines) == 4
    aa, load_aa, slow, slow_again = lines
    assert "tests/suite/test_latency.py" in aa and "test_load" not in aa
    for line in (load_aa, slow, slow_again):
        assert line.endswith("--against HEAD " + DEFAULT_LOAD_SELECT)
    assert f"{slowdown.TOKENS_ENV}=0.1" in slow and slowdown.TOKENS_ENV not in load_aa
    assert "load-slowdown-0.10-1.json" in slow_again


def test_a_change_side_worker_of_a_load_mode_asks_for_more_tokens_only(tmp_path: Path) -> None:
    environ = {slowdown.TOKENS_ENV: "0.10", slowdown.TREE_ENV: str(tmp_path), WORKER_ENV: "3,4"}
    assert settings_from(environ, tmp_path) == Settings(0.0, None, 0.1)
    assert settings_from(environ, tmp_path.parent) is None  # the base side's tree
    with pytest.raises(ValueError, match="MODELPERF_GATE_MORE_TOKENS='lots' is not a number"):
        settings_from(environ | {slowdown.TOKENS_ENV: "lots"}, tmp_path)
    with pytest.raises(ValueError, match="MODELPERF_GATE_MORE_TOKENS is set but MODELPERF_GATE_SLOWDOWN_TREE"):
        settings_from({slowdown.TOKENS_ENV: "0.10", WORKER_ENV: "3,4"}, tmp_path)


@pytest.mark.parametrize(("tokens", "share", "asked"), [(16, 0.10, 18), (16, 0.05, 17), (100, 0.10, 110), (2, 0.1, 3)])
def test_more_tokens_adds_the_share_and_at_least_one(tokens: int, share: float, asked: int) -> None:
    assert more_tokens(tokens, share) == asked


def test_served_completions_ask_for_more_tokens_once_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(servers.Served, "endpoint", servers.Served.endpoint)  # restored after the test
    log = tmp_path / "inject.jsonl"
    ask_more_tokens(0.10, log)
    ask_more_tokens(0.10, log)  # a second install changes nothing
    served = servers.Served("llama", "http://127.0.0.1:1", servers.external_server("http://127.0.0.1:1"))
    assert served.endpoint(16).body("hello")["max_tokens"] == 18
    [line] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (line["tokens"], line["asked"], line["share"]) == (16, 18, 0.1)


def _load_result(verdict: str, ratio: float) -> dict[str, Any]:
    """A load result as ``--results-json`` writes it today: the verdict inside its judgement."""
    return {"measurement": {"kind": "load", "test_id": LOAD_TEST, "metric": "e2e_p50", "value": 1.0},
            "judgement": {"verdict": verdict, "ratio": ratio, "min_effect": 0.1}, "pid": 1}


def test_analysis_counts_the_load_tests_verdicts_per_load_mode(tmp_path: Path) -> None:
    latency = {"measurement": {"kind": "latency", "test_id": "t::test_a"}, "judgement": {"verdict": "regressed"}}
    sessions = {"load-aa-0": [_load_result("pass", 1.01), latency], "load-aa-1": [_load_result("improved", 0.8)],
                "load-slowdown-0.10-0": [_load_result("regressed", 1.3)],
                "load-slowdown-0.10-1": [_load_result("inconclusive", 1.1)]}
    for name, results in sessions.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({"commit": "b" * 40, "results": results}))
    figures = analyze(tmp_path)
    aa, slow = figures.mode("load-aa"), figures.mode("load-slowdown-0.10")
    assert aa is not None and slow is not None
    # The latency result in a load session is not the load mode's to count.
    assert aa.comparisons == 2 and aa.false_alarms is not None and (aa.false_alarms.count, aa.false_alarms.of) == (1, 2)
    assert slow.detection is not None and (slow.detection.count, slow.detection.of) == (1, 2)
    assert [t.median_ratio for t in slow.tests] == [pytest.approx(1.2)]
    assert headline(figures) == "load A/A: 1 false alarm in 2; load, +10 % tokens: 1 of 2 detected."
