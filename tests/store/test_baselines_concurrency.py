"""Concurrent sessions saving into one baseline folder, as real processes: nothing is lost.

Each writer loads the store first and saves after a barrier, as a session reads at its start and
writes at its end; without a lock and a re-read at write time, the last writer's file would drop
the records the others wrote in between.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from modelperf.store.baselines import BaselineStore
from tests.store.writers import HW, ROUNDS, save

WRITERS = 8
SESSIONS = 4  # whole pytest sessions: about a second of start-up each, on a machine of 2 cores


def _run_writers(root: Path, jobs: list[tuple[str, float]]) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    processes = [context.Process(target=save, args=(str(root), test, value, barrier)) for test, value in jobs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0


def test_eight_sessions_saving_different_tests_leave_every_record(tmp_path: Path) -> None:
    root = tmp_path / "baselines"
    _run_writers(root, [(f"test_{i}", 1.0 + i) for i in range(WRITERS)])
    records = BaselineStore(root, HW).load()
    assert sorted(records) == sorted(f"tests/test_a.py::test_{i}::p10_s" for i in range(WRITERS))
    assert {key: r.measurement.value for key, r in records.items()} == {
        f"tests/test_a.py::test_{i}::p10_s": 1.0 + i + ROUNDS - 1 for i in range(WRITERS)
    }
    assert sorted(p.name for p in (root / HW).iterdir()) == ["machine.json", "tests__test_a.json"]


def test_two_sessions_saving_the_same_test_leave_one_whole_record(tmp_path: Path) -> None:
    root = tmp_path / "baselines"
    _run_writers(root, [("test_same", 10.0), ("test_same", 20.0)])
    document = json.loads((root / HW / "tests__test_a.json").read_text())
    [(key, record)] = document["records"].items()
    assert key == "tests/test_a.py::test_same::p10_s"
    assert record["value"] in (10.0 + ROUNDS - 1, 20.0 + ROUNDS - 1)
    assert record["samples"] == [record["value"]] * 5  # value and samples come from the same save


def test_concurrent_baseline_save_sessions_leave_every_record(pytester: pytest.Pytester) -> None:
    """The same as a user would start them: pytest processes, each saving one test of one module. The lock's
    race is the writers' test above (8 of them, 3 saves each); this one shows a session's save takes it."""
    import subprocess
    import sys

    from tests.plugin.test_plugin_accuracy import STAND_IN, _write_dataset

    tests = "".join(f"""
    @pytest.mark.accuracy
    def test_{i}(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
""" for i in range(SESSIONS))
    pytester.makepyfile(test_acc=STAND_IN + tests)
    _write_dataset(pytester)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark", "--history", "off",
            "--baseline-dir", "baselines", "--accuracy-dataset", "data.tsv", "--baseline-save"]
    processes = [subprocess.Popen([*argv, f"test_acc.py::test_{i}"], cwd=pytester.path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for i in range(SESSIONS)]
    outputs = [process.communicate(timeout=300)[0].decode() for process in processes]
    assert all(process.returncode == 0 for process in processes), "\n".join(outputs)
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    assert sorted(json.loads(path.read_text())["records"]) == [f"test_acc.py::test_{i}::accuracy" for i in range(SESSIONS)]
