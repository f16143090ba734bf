"""Baselines and history written by the code before the typed records (schema 1) still load and compare.

``tests/data/schema1/`` holds what two sessions of ``v1_session.py`` (as ``test_v1.py``) wrote at ec84ac2; see its README.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelperf.store.hardware import KEY_FIELDS, hardware_id, machine_info
from modelperf.store.history import HistoryStore
from modelperf.vocab import Verdict

DATA = Path(__file__).parents[1] / "data" / "schema1"


def _baselines_of_this_machine(root: Path) -> Path:
    """The schema-1 record file in a folder named for this machine, as if it had been saved here."""
    here = hardware_id(machine_info(), KEY_FIELDS)
    folder = root / "baselines" / here
    folder.mkdir(parents=True)
    document = json.loads((DATA / "test_v1.json").read_text())
    assert document["schema"] == 1
    document["hardware_id"] = here
    (folder / "test_v1.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    shutil.copy(DATA / "machine.json", folder / "machine.json")
    return folder / "test_v1.json"


def test_schema_1_baselines_are_compared_by_a_session_and_left_as_they_were(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_v1=(DATA / "v1_session.py").read_text())
    record = _baselines_of_this_machine(pytester.path)
    before = record.read_text()
    result = pytester.runpytest("-p", "no:randomly", "--benchmark", "--baseline-dir", "baselines", "--history", "off",
                                "--model-probe-timeout", "0", "--results-json", "results.json")
    verdicts = {r["measurement"]["test_id"].split("::")[-1]: r["judgement"]["verdict"]
                for r in json.loads((pytester.path / "results.json").read_text())["results"]}
    compared = {Verdict.PASS.value, Verdict.REGRESSED.value, Verdict.IMPROVED.value, Verdict.INCONCLUSIVE.value}
    assert set(verdicts) == {"test_latency", "test_memory", "test_accuracy"}
    assert verdicts["test_latency"] in compared, result.stdout.str()  # speed on a shared machine: any verdict
    assert verdicts["test_accuracy"] == Verdict.PASS.value  # the same predictions, example by example
    assert verdicts["test_memory"] in compared
    assert record.read_text() == before, "a comparing run must not rewrite a stored record"


def test_a_schema_1_history_is_migrated_with_its_verdicts_and_details(tmp_path: Path) -> None:
    copy = tmp_path / "history.sqlite"
    shutil.copy(DATA / "history.sqlite", copy)
    with HistoryStore(str(copy)) as store:
        rows = store.series()
        runs = store.runs()
        measurements = store.measurements(runs[-1].run_id)
    assert len(runs) == 2 and len(rows) == 6
    first = {r.test_id.split("::")[-1]: r for r in rows if r.run_id == runs[0].run_id}
    second = {r.test_id.split("::")[-1]: r for r in rows if r.run_id == runs[1].run_id}
    assert all(r.judgement is not None and r.judgement.verdict is Verdict.RECORDED for r in first.values())
    assert second["test_accuracy"].judgement is not None
    assert second["test_accuracy"].judgement.verdict is Verdict.PASS
    assert second["test_accuracy"].judgement.reference == pytest.approx(0.75)
    assert first["test_latency"].role == "stand-in:batch1" and first["test_latency"].statistic == "p10"
    latency = next(m for m in measurements if m.metric == "p10_s")
    assert latency.latency is not None and latency.latency.control_version and latency.info == {"items_per_s": 1.0}
    accuracy = next(m for m in measurements if m.metric == "accuracy")
    assert accuracy.accuracy is not None and accuracy.accuracy.example_ids == (0, 1, 2, 3)
