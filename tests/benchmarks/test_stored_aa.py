"""The stored-baseline A/A study's session runner, with the sessions faked (no pytest is started)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import stored_aa
from modelperf.records import Kind, LatencyDetail, Measurement


class _FakeSessions:
    """Stands in for subprocess.run: records each command and writes its results file unless told not to."""

    def __init__(self, write: bool = True) -> None:
        self.commands: list[list[str]] = []
        self.write = write

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        self.commands.append(command)
        if self.write:
            Path(command[command.index("--results-json") + 1]).write_text("{}")
        return subprocess.CompletedProcess(command, 0)


def test_pairs_save_then_compare_into_their_own_baselines_and_share_one_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = _FakeSessions()
    monkeypatch.setattr(stored_aa.subprocess, "run", sessions)
    stored_aa.run_pairs(2, tmp_path, ["tests/suite"], ["-x"])
    outputs = [c[c.index("--results-json") + 1] for c in sessions.commands]
    assert [Path(o).name for o in outputs] == ["pair-1-save.json", "pair-1-compare.json", "pair-2-save.json",
                                               "pair-2-compare.json"]
    assert {c[c.index("--history") + 1] for c in sessions.commands} == {str(tmp_path / stored_aa.HISTORY)}
    baselines = [c[c.index("--baseline-dir") + 1] for c in sessions.commands]
    assert baselines[0] == baselines[1] != baselines[2] == baselines[3]
    assert all(c[-1] == "-x" and "tests/suite" in c for c in sessions.commands)
    lines = [json.loads(line) for line in (tmp_path / "sessions.jsonl").read_text().splitlines()]
    assert [(line["pair"], line["role"], line["rc"]) for line in lines] == [
        (1, "save", 0), (1, "compare", 0), (2, "save", 0), (2, "compare", 0)]
    stored_aa.run_pairs(1, tmp_path, ["tests/suite"], [])  # more pairs later: numbered after those done
    assert Path(sessions.commands[-1][sessions.commands[-1].index("--results-json") + 1]).name == "pair-3-compare.json"


def test_a_session_that_wrote_no_results_stops_the_study_and_names_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stored_aa.subprocess, "run", _FakeSessions(write=False))
    with pytest.raises(SystemExit, match="pair 1's save session wrote no results; see .*pair-1-save.log"):
        stored_aa.run_pairs(1, tmp_path, ["tests/suite"], [])


def _compare(path: Path, verdicts: dict[str, str]) -> None:
    """A compare session's results as today's --results-json writes them: each verdict in a judgement."""
    results = [{"measurement": {"kind": "latency", "test_id": f"tests/suite/test_latency.py::{name}",
                                "model": "llama@abc", "role": "llama:decode"},
                "judgement": {"verdict": verdict, "ratio": 1.02, "drift": 0.9, "session_spread": 0.03}}
               for name, verdict in verdicts.items()]
    path.write_text(json.dumps({"commit": "b" * 40, "results": results}))


def test_analysis_counts_the_verdicts_and_spreads_of_every_compare_session(tmp_path: Path) -> None:
    _compare(tmp_path / "pair-1-compare.json", {"test_decode": "pass", "test_itl": "pass"})
    _compare(tmp_path / "pair-2-compare.json", {"test_decode": "pass", "test_itl": "improved"})
    figures = stored_aa.analyze(tmp_path)
    assert figures.pairs == 2 and figures.revisions == ("b" * 40,)
    assert figures.verdicts == {("latency", "llama"): {"pass": 3, "improved": 1}}
    itl = next(t for t in figures.tests if t.name == "test_itl")
    assert itl.verdicts == {"pass": 1, "improved": 1} and itl.ratios == (1.02, 1.02) and itl.spreads == (0.03, 0.03)


def test_the_analysis_judges_each_pair_again_by_this_checkouts_rule(tmp_path: Path) -> None:
    # The compare session had interference in every fourth round, its control's alike: its p90 and its
    # control's p90 both grew by half. The session reported "improved" (a made-up old verdict); the
    # rule of this checkout corrects a tail by the control's own p90 and finds no change.
    rng = np.random.default_rng(5)

    def session(interfered: bool) -> dict[str, Any]:
        rounds, control = 0.012 * rng.lognormal(0, 0.01, 100), 0.04 * rng.lognormal(0, 0.01, 60)
        if interfered:
            rounds[::4] *= 1.5
            control[::4] *= 1.5
        return Measurement("tests/suite/test_latency.py::test_itl", Kind.LATENCY, "p90_s", "s",
                           float(np.quantile(rounds, 0.9)), tuple(rounds), tuple(control),
                           latency=LatencyDetail("p90")).to_json()

    judgement = {"verdict": "improved", "ratio": 0.7, "min_effect": 0.2, "session_spread": 0.07}
    for role, interfered in (("save", True), ("compare", False)):
        results = [{"measurement": session(interfered), "judgement": judgement}] if role == "compare" else [
            {"measurement": session(interfered), "judgement": {"verdict": "new"}}]
        (tmp_path / f"pair-1-{role}.json").write_text(json.dumps({"commit": "c" * 40, "results": results}))
    test = stored_aa.analyze(tmp_path).tests[0]
    assert test.verdicts == {"improved": 1} and test.rejudged == {"pass": 1}


def test_the_analysis_judges_load_figures_again_with_the_served_default_and_states_their_power(
        tmp_path: Path) -> None:
    # A served median 19 % faster in the compare session, 60 requests a side: the sessions judged it
    # "improved" with 3 % between sessions; this checkout's judge widens a served median by 10 % until
    # the history holds its own, finds no change, and says what it could have seen.
    from modelperf.load_records import LoadDetail

    rng = np.random.default_rng(7)

    def served(scale: float) -> dict[str, Any]:
        requests = scale * 0.03 * rng.lognormal(0, 0.05, 60)
        detail = LoadDetail("Poisson 5/s (seed 0)", "http://127.0.0.1", 12.0, 60, 60, 0, 5.0, 0.0)
        return Measurement("tests/suite/test_serving.py::test_distilbert_near_capacity", Kind.LOAD, "e2e_p50", "s",
                           float(np.median(requests)), tuple(requests), model="distilbert@abc", load=detail).to_json()

    saved = [{"measurement": served(1.0), "judgement": {"verdict": "new"}}]
    compared = [{"measurement": served(0.81), "judgement": {"verdict": "improved", "ratio": 0.81, "min_effect": 0.1}}]
    for role, results in (("save", saved), ("compare", compared)):
        (tmp_path / f"pair-1-{role}.json").write_text(json.dumps({"commit": "d" * 40, "results": results}))
    figures = stored_aa.analyze(tmp_path)
    [test] = figures.tests
    assert (test.kind, test.verdicts, test.rejudged) == ("load", {"improved": 1}, {"pass": 1})
    assert len(test.detectable) == 1 and test.detectable[0] > 1.3
    assert figures.to_json()["load_tests"]["test_distilbert_near_capacity"]["rejudged"] == {"pass": 1}
    assert figures.verdicts == {("load", "distilbert"): {"improved": 1}}  # the family from the test's name
