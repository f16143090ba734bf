"""Baselines as sorted JSON files, one folder per hardware id, one file per test module.

Layout under ``root``::

    <hardware_id>/machine.json               the full machine_info() of the machine that saved
    <hardware_id>/tests__test_latency.json   records of tests/test_latency.py

A record file is ``{"schema": 1, "hardware_id": ..., "records": {<Measurement.key>: {...}}}``
written with sorted keys and indentation, so a pull request that updates baselines shows a small,
readable diff. Every problem with a file becomes a :class:`BaselineError` whose message names the
file and the fix; writes are atomic, so an interrupted save never destroys the previous baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelperf.records import SCHEMA_VERSION, Kind, Measurement
from modelperf.store.atomic import atomic_write_text
from modelperf.store.hardware import VOLATILE_FIELDS

__all__ = [
    "RESAVE_COMMAND",
    "BaselineDiff",
    "BaselineError",
    "BaselineStore",
    "StoredRecord",
    "diff_records",
    "module_slug",
]

# Named in every error message as the way to rebuild a baseline; the lead may adjust the flags.
RESAVE_COMMAND = "pytest --benchmark --baseline-save"
MACHINE_FILE = "machine.json"
_MAX_SLUG = 120  # leaves room for the hardware folder within the 255-byte filename limit.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_MAX_SHOWN = 60  # characters of a bad value quoted in an error message


class BaselineError(Exception):
    """A baseline file or folder is unusable; the message is one sentence saying how to fix it."""


@dataclass(frozen=True)
class StoredRecord:
    """A measurement as saved in a baseline, with the provenance of that save."""

    measurement: Measurement
    commit: str | None
    dirty: bool
    saved_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.measurement.to_json(),
            "commit": self.commit,
            "dirty": self.dirty,
            "saved_at": self.saved_at,
        }


@dataclass(frozen=True)
class BaselineDiff:
    """What a save adds, removes and changes (by headline value), each sorted by key."""

    added: list[str]
    removed: list[str]
    changed: list[tuple[str, float, float]]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One human-readable line per difference, e.g. ``changed k 0.0123 -> 0.0131 (+6.5 %)``."""
        out = [f"added {key}" for key in self.added]
        out += [f"removed {key}" for key in self.removed]
        for key, old, new in self.changed:
            ratio = f" ({(new - old) / abs(old) * 100:+.1f} %)" if old else ""
            out.append(f"changed {key} {old:.4g} -> {new:.4g}{ratio}")
        return out


def diff_records(old: Mapping[str, StoredRecord], new: Mapping[str, Measurement]) -> BaselineDiff:
    """Compare stored records with new measurements: keys only in one side, and changed values."""
    changed = [
        (key, old[key].measurement.value, new[key].value)
        for key in sorted(old.keys() & new.keys())
        if old[key].measurement.value != new[key].value
    ]
    return BaselineDiff(sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), changed)


def module_slug(test_id: str) -> str:
    """File stem for the test module of ``test_id``: ``tests/test_a.py::t`` -> ``tests__test_a``."""
    module = test_id.split("::", 1)[0].replace("\\", "/")
    module = module.removesuffix(".py")
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", module.replace("/", "__")).lstrip(".") or "_"
    if len(slug) > _MAX_SLUG:
        slug = f"{slug[:_MAX_SLUG]}-{hashlib.sha256(module.encode()).hexdigest()[:8]}"
    # 'machine' would collide with machine.json, which holds no records.
    return f"{slug}_" if f"{slug}.json" == MACHINE_FILE else slug


def _module_of(key: str) -> str:
    return key.split("::", 1)[0]


def _show(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _bad(path: Path, problem: str, fix: str = "") -> BaselineError:
    fix = fix or f"restore it from git or delete it and run `{RESAVE_COMMAND}`"
    return BaselineError(f"Baseline file {_show(path)} {problem}: {fix}.")


class BaselineStore:
    """The baselines of one hardware id under ``root``; reads lazily, writes atomically."""

    def __init__(self, root: Path, hardware_id: str) -> None:
        if not _SAFE_ID.match(hardware_id):
            raise ValueError(
                f"The hardware id {hardware_id!r} is not a safe folder name; use only letters, "
                f"digits, '.', '_' and '-'."
            )
        self.root = Path(root)
        self.hardware_id = hardware_id
        self.folder = self.root / hardware_id
        self._files: dict[Path, dict[str, StoredRecord]] | None = None
        self._merged: dict[str, StoredRecord] | None = None
        self._others: dict[str, dict[str, set[str]]] = {}

    @staticmethod
    def list_hardware(root: Path) -> list[str]:
        """Hardware ids that have a folder with at least one JSON file under ``root``, sorted."""
        root = Path(root)
        if not root.is_dir():
            return []
        return sorted(
            child.name
            for child in root.iterdir()
            if child.is_dir() and _SAFE_ID.match(child.name) and any(child.glob("*.json"))
        )

    def load(self) -> dict[str, StoredRecord]:
        """All records of this hardware id, keyed by ``Measurement.key``; read once, then cached."""
        return dict(self._records())

    def get(self, key: str) -> StoredRecord | None:
        return self._records().get(key)

    def _records(self) -> dict[str, StoredRecord]:
        if self._merged is not None:
            return self._merged
        merged: dict[str, StoredRecord] = {}
        seen_in: dict[str, Path] = {}
        for path, records in self._load_files().items():
            for key, record in records.items():
                if key in merged:
                    raise _bad(path, f"repeats the record {key!r} already in {_show(seen_in[key])}")
                merged[key], seen_in[key] = record, path
        self._merged = merged
        return merged

    def hardware_ids_with(self, key: str) -> list[str]:
        """Other hardware ids under the same root that hold a record for ``key``, sorted.

        Only for a hint such as "a baseline exists for hardware X only", so another machine's
        unreadable file is skipped rather than failing this machine's run.
        """
        slug = module_slug(_module_of(key))
        if slug not in self._others:
            found: dict[str, set[str]] = {}
            for other in self.list_hardware(self.root):
                if other == self.hardware_id:
                    continue
                try:
                    found[other] = set(_read_file(self.root / other / f"{slug}.json", other))
                except BaselineError:
                    continue
            self._others[slug] = found
        return sorted(hw for hw, keys in self._others[slug].items() if key in keys)

    def preview(self, measurements: Iterable[Measurement], *, replace_all: bool = False) -> BaselineDiff:
        """What :meth:`save` would add, remove and change, without writing anything."""
        new = {m.key: m for m in measurements}
        return diff_records(self._replaced(new, replace_all), new)

    def save(
        self,
        measurements: Iterable[Measurement],
        *,
        machine: Mapping[str, Any],
        commit: str | None,
        dirty: bool,
        replace_all: bool = False,
    ) -> BaselineDiff:
        """Write ``measurements`` into the files of their test modules and return what changed.

        Existing records of other tests are kept; with ``replace_all`` every old record of the
        modules being saved is dropped first (tests that no longer exist disappear). A repeated
        key keeps its last measurement.
        """
        new = {m.key: m for m in measurements}
        if not new:
            return BaselineDiff([], [], [])
        diff = diff_records(self._replaced(new, replace_all), new)
        saved_at = _utc_now()
        files = self._load_files()
        modules = {_module_of(key) for key in new}
        updated: dict[Path, dict[str, StoredRecord]] = {}
        for key, measurement in sorted(new.items()):
            path = self.folder / f"{module_slug(key)}.json"
            if path not in updated:
                kept = files.get(path, {})
                if replace_all:
                    kept = {k: r for k, r in kept.items() if _module_of(k) not in modules}
                updated[path] = dict(kept)
            updated[path][key] = StoredRecord(measurement, commit, dirty, saved_at)
        # Serialise everything before the first write, so a bad value cannot leave a half-save.
        texts = {path: self._render(path, records) for path, records in updated.items()}
        self._write(texts, machine)
        files.update(updated)
        self._merged = None
        self._others.clear()
        return diff

    def _replaced(self, new: Mapping[str, Measurement], replace_all: bool) -> dict[str, StoredRecord]:
        """The stored records a save of ``new`` overwrites (or, with replace_all, drops)."""
        old = self._records()
        if not replace_all:
            return {key: old[key] for key in new.keys() & old.keys()}
        modules = {_module_of(key) for key in new}
        return {key: record for key, record in old.items() if _module_of(key) in modules}

    def _load_files(self) -> dict[Path, dict[str, StoredRecord]]:
        if self._files is None:
            paths = sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []
            self._files = {p: _read_file(p, self.hardware_id) for p in paths if p.name != MACHINE_FILE}
        return self._files

    def _render(self, path: Path, records: Mapping[str, StoredRecord]) -> str:
        document = {
            "schema": SCHEMA_VERSION,
            "hardware_id": self.hardware_id,
            "records": {key: record.to_json() for key, record in records.items()},
        }
        try:
            return _dumps(document)
        except (TypeError, ValueError) as exc:
            raise BaselineError(
                f"Cannot write baseline file {_show(path)} because a measurement holds a value "
                f"JSON cannot store ({exc}): make its value finite and its extra JSON-safe."
            ) from exc

    def _write(self, texts: Mapping[Path, str], machine: Mapping[str, Any]) -> None:
        target = self.folder
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / MACHINE_FILE
            if _machine_changed(target, machine):
                atomic_write_text(target, _dumps(dict(machine)))
            for target, text in texts.items():
                atomic_write_text(target, text)
        except (OSError, TypeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise BaselineError(
                f"Cannot write baseline {_show(target)} ({reason}): make {_show(self.root)} a "
                f"writable folder or choose another baseline directory."
            ) from exc


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dumps(document: Mapping[str, Any]) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would break other readers of the files.
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _machine_changed(path: Path, machine: Mapping[str, Any]) -> bool:
    """Rewrite machine.json only when a stable field changed, to keep baseline diffs quiet."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if not isinstance(old, dict):
        return True

    def stable(info: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in info.items() if k not in VOLATILE_FIELDS}

    return stable(old) != stable(json.loads(json.dumps(dict(machine))))


def _read_file(path: Path, hardware_id: str) -> dict[str, StoredRecord]:
    """Parse and validate one record file; a missing file holds no records."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise _bad(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(document, dict):
        raise _bad(path, "does not hold a JSON object")
    schema = document.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        raise _bad(
            path,
            f"has schema {schema}, newer than the schema {SCHEMA_VERSION} this pytest-modelperf reads",
            f"upgrade pytest-modelperf, or delete it and run `{RESAVE_COMMAND}`",
        )
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise _bad(
            path, f"has schema {schema!r}, but this pytest-modelperf reads only schema {SCHEMA_VERSION}"
        )
    if document.get("hardware_id") != hardware_id:
        raise _bad(
            path, f"names hardware {document.get('hardware_id')!r} but lies in the folder of {hardware_id!r}"
        )
    records = document.get("records")
    if not isinstance(records, dict):
        raise _bad(path, "has no 'records' object")
    return {key: _parse_record(path, key, data) for key, data in records.items()}


def _parse_record(path: Path, key: str, data: Any) -> StoredRecord:
    if not isinstance(data, dict):
        raise _bad(path, f"has a record {key!r} that is not a JSON object")
    problem = _record_problem(data)
    if problem:
        raise _bad(path, f"has a record {key!r} whose {problem}")
    measurement = Measurement.from_json(data)
    if measurement.key != key:
        raise _bad(path, f"files the record of {measurement.key!r} under the key {key!r}")
    return StoredRecord(measurement, data["commit"], data["dirty"], data["saved_at"])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Field -> (check, expected type in words); samples, control, model and extra may be absent.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "test_id": (lambda v: isinstance(v, str), "a string"),
    "kind": (lambda v: v in {k.value for k in Kind}, "one of " + ", ".join(k.value for k in Kind)),
    "metric": (lambda v: isinstance(v, str), "a string"),
    "unit": (lambda v: isinstance(v, str), "a string"),
    "value": (_is_number, "a finite number"),
    "samples": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    "control": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    "model": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
    "commit": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "dirty": (lambda v: isinstance(v, bool), "true or false"),
    "saved_at": (lambda v: isinstance(v, str), "a string"),
}
_OPTIONAL = {"samples", "control", "model", "extra"}


def _record_problem(data: Mapping[str, Any]) -> str | None:
    """Why ``data`` is not a valid stored record, as the end of a sentence; None when it is."""
    for name, (check, expected) in _CHECKS.items():
        if name not in data:
            if name in _OPTIONAL:
                continue
            return f"field {name!r} is missing"
        if not check(data[name]):
            shown = repr(data[name])
            shown = shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."
            return f"field {name!r} is {shown}, expected {expected}"
    return None
