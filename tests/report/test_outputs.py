"""The files a session writes at its end: each writer says what it did, and a failed one says so."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from modelperf.config import Settings
from modelperf.records import AccuracyDetail, Judgement, Kind, Measurement, SessionResults, TestResult
from modelperf.report.outputs import write_session_outputs
from modelperf.vocab import Verdict


def _settings(**paths: Path | str | None) -> Settings:
    values = {"benchmark": True, "distilbert_model": None, "llama_model": None, "distilbert_threads": 1,
              "llama_threads": 1, "llama_context": 256, "llama_repack": "auto", "model_probe_timeout": 0.0,
              "against": None, "against_processes": 3, "baseline_dir": Path("baselines"), "baseline_save": False,
              "baseline_key": None, "compare_across": None, "session_spread": 0.03, "keep_captures": False,
              "accuracy_dataset": None, "accuracy_output": None, "history": None, "results_json": None,
              "summary_markdown": None, "explicit": frozenset()}
    values.update(paths)
    return Settings(**values)  # type: ignore[arg-type]


def _session() -> SessionResults:
    detail = AccuracyDetail("set", "ff", (7, 8), (1, 0), (1, 1), (0.9, 0.6), 0.001)
    accuracy = Measurement("t.py::a", Kind.ACCURACY, "accuracy", "fraction", 0.5, (1.0, 0.0), accuracy=detail)
    return SessionResults((TestResult(accuracy, Judgement(Verdict.PASS, "accuracy 0.5")),), hardware_id="hw")


def test_each_file_asked_for_is_written_and_named(tmp_path: Path) -> None:
    settings = _settings(results_json=tmp_path / "r.json", accuracy_output=tmp_path / "a.jsonl",
                         summary_markdown=tmp_path / "s.md", history=str(tmp_path / "h.sqlite"))
    notes = write_session_outputs(_session(), settings, tmp_path)
    assert not any(note.failed for note in notes)
    assert json.loads((tmp_path / "r.json").read_text())["results"][0]["judgement"]["verdict"] == "pass"
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [(row["index"], row["correct"]) for row in lines] == [(7, 1), (8, 0)]
    assert any(note.line.startswith("history: run ") for note in notes)


@pytest.mark.parametrize("option", ["results_json", "summary_markdown", "accuracy_output"])
def test_a_file_that_cannot_be_written_is_a_failed_note_naming_it(tmp_path: Path, option: str) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    notes = write_session_outputs(_session(), _settings(**{option: blocked / "out"}), tmp_path)
    [failed] = [note for note in notes if note.failed]
    assert "could NOT write" in failed.line and str(blocked / "out") in failed.line


def test_no_file_asked_for_writes_none(tmp_path: Path) -> None:
    session = replace(_session(), results=())
    assert write_session_outputs(session, _settings(), tmp_path) == []
