"""Baseline folders of the old scheme, whose hardware id also hashed library versions and threads.

Such a folder holds baselines of this very machine that the new id (the machine only) no longer
names. They are read as fallbacks, never moved or deleted: a ``--baseline-save`` writes the new
folder, and the old one stays for the team to remove in a reviewed commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelperf.store.baseline_file import MACHINE_FILE, StoredRecord, read_file
from modelperf.store.hardware import HARDWARE_FIELDS, VERSION_FIELDS

__all__ = ["is_old_scheme_of", "read_old_folders"]


def read_old_folders(root: Path, hardware_ids: Iterable[str],
                     machine: Mapping[str, Any]) -> tuple[dict[str, StoredRecord], list[str]]:
    """The records of this machine's old-scheme folders among ``hardware_ids`` (newest save of each
    key wins, versions taken from the folder's machine.json), and the names of those folders."""
    found: dict[str, StoredRecord] = {}
    names = []
    for other in hardware_ids:
        info = _machine_of(root / other / MACHINE_FILE)
        if info is None or not is_old_scheme_of(info, machine):
            continue
        versions = {name: info.get(name) for name in VERSION_FIELDS}
        for path in sorted((root / other).glob("*.json")):
            if path.name == MACHINE_FILE:
                continue
            for key, record in read_file(path, other).items():
                record = record if record.environment else replace(record, environment=versions)
                if key not in found or record.saved_at > found[key].saved_at:
                    found[key] = record
        names.append(other)
    return found, names


def is_old_scheme_of(info: Mapping[str, Any], machine: Mapping[str, Any]) -> bool:
    """Whether ``info`` (a machine.json) was written by the old scheme on this machine.

    The old scheme wrote no CPU flags; a folder whose machine.json has them is of the new scheme,
    and under another name it is another machine (or another --baseline-key), never adopted.
    """
    return "cpu_flags" not in info and all(info.get(f) == machine.get(f) for f in HARDWARE_FIELDS)


def _machine_of(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
