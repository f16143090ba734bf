"""Hardware is hardware: library versions, thread counts and weights travel with each record.

A library upgrade is compared and its line names the change; other weights or thread counts are
compared only with ``--compare-across``; a baseline folder of the old scheme (keyed by versions and
threads too) is read, never dropped. The inner tests use the accuracy stand-in model (no torch).
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, RUN, _accuracy_test, _write_dataset

RECORD = "test_acc.py::test_accuracy::accuracy"
OTHER_WEIGHTS = "stand-in@ba9876543210"


def _first_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=_accuracy_test())
    pytester.runpytest(*RUN).assert_outcomes(passed=1)
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    return path


def _edit_environment(path: Path, **changes: Any) -> dict[str, Any]:
    document = json.loads(path.read_text())
    environment: dict[str, Any] = document["records"][RECORD]["environment"]
    environment.update(changes)
    path.write_text(json.dumps(document))
    return environment


def test_each_record_stores_the_versions_and_threads_it_ran_with(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _first_run(pytester, monkeypatch)
    environment = json.loads(path.read_text())["records"][RECORD]["environment"]
    assert environment["torch"] == metadata.version("torch")
    assert {"python", "transformers", "llama_cpp_python", "numpy", "torch_threads", "llama_threads"} <= set(environment)
    assert "torch" not in path.parent.name  # the folder is keyed by the machine only


def test_a_library_upgrade_is_compared_and_its_line_names_the_change(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _first_run(pytester, monkeypatch)
    _edit_environment(path, torch="2.12.0")  # the baseline was saved before the upgrade
    monkeypatch.setenv(FLIPS, "60")  # a real drop: it must be caught, not waved through as "not compared"
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)
    now = metadata.version("torch")
    result.stdout.fnmatch_lines([
        f"*accuracy*[[]changed since the baseline: torch 2.12.0 -> {now}; same python *",
        f"compared across torch 2.12.0 -> {now}: 1 figure(s); --baseline-save records the new figures",
    ])


def test_an_unchanged_environment_is_shown_on_the_comparison_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_run(pytester, monkeypatch)
    result = pytester.runpytest(*RUN, "--results-json", "results.json")
    result.assert_outcomes(passed=1)
    [entry] = json.loads((pytester.path / "results.json").read_text())["results"]
    now = metadata.version("torch")
    assert entry["judgement"]["verdict"] == "pass"
    assert f" [same python 3.{sys.version_info.minor}, torch {now}, " in entry["judgement"]["line"]
    assert entry["judgement"]["line"].endswith(", weights stand-in@0123456789ab]") and "torch threads" in entry["judgement"]["line"]


@pytest.mark.parametrize("how", ["option", "ini", "env"])
def test_other_weights_are_compared_only_when_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    _first_run(pytester, monkeypatch)
    monkeypatch.setenv(KEY, OTHER_WEIGHTS)
    monkeypatch.setenv(FLIPS, "60")
    pytester.runpytest(*RUN).assert_outcomes(passed=1)  # not compared: the drop goes unjudged
    args: tuple[str, ...] = ()
    if how == "option":
        args = ("--compare-across", "weights")
    elif how == "ini":
        pytester.makeini("[pytest]\ncompare_across = weights\n")
    else:
        monkeypatch.setenv("MODELPERF_COMPARE_ACROSS", "weights")
    result = pytester.runpytest(*RUN, *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*changed since the baseline: weights stand-in@0123456789ab -> {OTHER_WEIGHTS}*"])


def test_other_thread_counts_are_not_compared_unless_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _first_run(pytester, monkeypatch)
    now = _edit_environment(path)["torch_threads"]
    _edit_environment(path, torch_threads=now + 7)
    monkeypatch.setenv(FLIPS, "60")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        (f"*the baseline ran with other thread counts (torch threads {now + 7} -> {now}): not compared; run with "
         "--baseline-save to replace it, or with --compare-across threads to compare anyway*"),
        f"kept {RECORD} 0.9: *",
    ])
    across = pytester.runpytest(*RUN, "--compare-across", "weights,threads")
    across.assert_outcomes(failed=1)
    across.stdout.fnmatch_lines([f"*changed since the baseline: torch threads {now + 7} -> {now}*"])


def test_a_bad_compare_across_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--benchmark", "--compare-across", "speed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--compare-across takes weights and/or threads, comma-separated, not 'speed'" in result.stderr.str()


def test_an_old_scheme_folder_of_this_machine_is_read_and_never_dropped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _first_run(pytester, monkeypatch)
    # Rebuild the folder as the old scheme wrote it: another name (versions and threads were hashed
    # in), no CPU flags in machine.json, and records without an environment.
    old = path.parent.with_name("x86_64-old-scheme-1a2b3c4d")
    shutil.move(path.parent, old)
    machine = json.loads((old / "machine.json").read_text())
    machine.pop("cpu_flags")
    machine["torch"] = "2.12.0"
    (old / "machine.json").write_text(json.dumps(machine))
    document = json.loads((old / path.name).read_text())
    document["hardware_id"] = old.name
    document["records"][RECORD].pop("environment")
    (old / path.name).write_text(json.dumps(document))
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    monkeypatch.setenv(FLIPS, "60")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(failed=1)  # compared with the old folder's record
    result.stdout.fnmatch_lines([
        f"*changed since the baseline: torch 2.12.0 -> {metadata.version('torch')}*",
        (f"read 1 baselines of this machine from the old-scheme folder(s) {old.name} (keyed by library versions and "
         f"threads too): they are compared until --baseline-save writes them to {path.parent.name}, and nothing is "
         "deleted"),
    ])
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
