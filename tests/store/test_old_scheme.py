"""Baseline folders of the old hardware-id scheme are read as this machine's fallbacks, never others'."""

from __future__ import annotations

import json
from pathlib import Path

from modelperf.records import Kind, LatencyDetail, Measurement
from modelperf.store.baseline_file import dumps
from modelperf.store.old_scheme import is_old_scheme_of, read_old_folders

MACHINE = {"cpu_model": "Test CPU", "arch": "x86_64", "physical_cores": 2, "logical_cores": 2, "memory_gb": 8,
           "os": "Linux", "accelerator": None, "cpu_flags": ["avx2"], "torch": "2.13.0"}


def _folder(root: Path, name: str, info: dict[str, object], saved_at: str, value: float) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text(json.dumps(info))
    m = Measurement("t.py::t", Kind.LATENCY, "p10_s", "s", value, (value,) * 10, (0.1,), latency=LatencyDetail("p10"))
    record = {**m.to_json(), "commit": None, "dirty": False, "saved_at": saved_at}
    (folder / "t.json").write_text(dumps({"schema": 2, "hardware_id": name, "records": {m.key: record}}))


def test_an_old_scheme_folder_of_this_machine_is_read_newest_save_first(tmp_path: Path) -> None:
    old = {k: v for k, v in MACHINE.items() if k != "cpu_flags"} | {"torch": "2.12.0"}
    _folder(tmp_path, "old-a", old, "2026-01-01T00:00:00+00:00", 1.0)
    _folder(tmp_path, "old-b", old, "2026-02-01T00:00:00+00:00", 2.0)
    found, names = read_old_folders(tmp_path, ["old-a", "old-b"], MACHINE)
    assert names == ["old-a", "old-b"]
    assert found["t.py::t::p10_s"].measurement.value == 2.0
    assert found["t.py::t::p10_s"].environment["torch"] == "2.12.0"  # the versions the figure ran on


def test_a_new_scheme_folder_or_another_machine_is_never_adopted(tmp_path: Path) -> None:
    assert not is_old_scheme_of(MACHINE, MACHINE)  # it has CPU flags: new scheme, another name
    other = {k: v for k, v in MACHINE.items() if k != "cpu_flags"} | {"cpu_model": "Other CPU"}
    _folder(tmp_path, "other", other, "2026-01-01T00:00:00+00:00", 1.0)
    assert read_old_folders(tmp_path, ["other"], MACHINE) == ({}, [])
