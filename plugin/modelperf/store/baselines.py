"""Baselines as sorted JSON files, one folder per hardware id, one file per test module.

Layout under ``root``::

    <hardware_id>/machine.json               the full machine_info() of the machine that saved
    <hardware_id>/tests__test_latency.json   records of tests/test_latency.py

A record file is ``{"schema": 1, "hardware_id": ..., "records": {<Measurement.key>: {...}}}``
written with sorted keys and indentation, so a pull request that updates baselines shows a small,
readable diff. Every problem with a file becomes a :class:`BaselineError` whose message names the
file and the fix; writes are atomic, so an interrupted save never destroys the previous baseline.
One file's name, reading, validation and text are :mod:`modelperf.store.baseline_file`; this module
is the store: a hardware folder's files read, merged, locked and saved, and what a save changes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from modelperf.records import Measurement, TestResult
from modelperf.store.atomic import atomic_write_text, check_writable
from modelperf.store.baseline_file import (
    MACHINE_FILE,
    RESAVE_COMMAND,
    BaselineError,
    StoredRecord,
    bad,
    dumps,
    machine_changed,
    module_slug,
    read_file,
    render,
    show,
)
from modelperf.store.comparable import environment_changes, environment_note, why_not_compared
from modelperf.store.old_scheme import read_old_folders

__all__ = [
    "RESAVE_COMMAND",
    "BaselineDiff",
    "BaselineError",
    "BaselineStore",
    "StoredRecord",
    "diff_records",
]

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Held by a session while it re-reads and writes a hardware folder. It lies in the root, beside the
# folders, so a hardware folder holds only JSON; the file stays after release (POSIX locks cannot
# delete it safely), so a repository ignores it (.gitignore).
LOCK_FILE = ".modelperf.lock"
# A save takes well under a second; two minutes only runs out when a holder hangs (a stuck NFS mount).
_LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BaselineDiff:
    """What a save adds, removes and changes (by headline value), each sorted by key.

    ``kept`` lists the stored records a save without overwrite left alone, with the value this run
    would have put in their place.
    """

    added: list[str]
    removed: list[str]
    changed: list[tuple[str, float, float]]
    kept: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.kept)

    def lines(self) -> list[str]:
        """One human-readable line per difference, e.g. ``changed k 0.0123 -> 0.0131 (+6.5 %)``."""
        out = [f"added {key}" for key in self.added]
        out += [f"removed {key}" for key in self.removed]
        for key, old, new in self.changed:
            ratio = f" ({(new - old) / abs(old) * 100:+.1f} %)" if old else ""
            out.append(f"changed {key} {old:.4g} -> {new:.4g}{ratio}")
        for key, old, new in self.kept:
            out.append(f"kept {key} {old:.4g}: this run's {new:.4g} was not compared with it, so it was not "
                       f"written over it; run with --baseline-save to replace it")
        return out


def diff_records(old: Mapping[str, StoredRecord], new: Mapping[str, Measurement]) -> BaselineDiff:
    """Compare stored records with new measurements: keys only in one side, and changed values."""
    changed = [
        (key, old[key].measurement.value, new[key].value)
        for key in sorted(old.keys() & new.keys())
        if old[key].measurement.value != new[key].value
    ]
    return BaselineDiff(sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), changed)


def _module_of(key: str) -> str:
    return key.split("::", 1)[0]


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
        self._old: dict[str, StoredRecord] = {}

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

    def check_folder(self, *, saving: bool) -> None:
        """Fail at session start, in one sentence, when this session could not write its baselines.

        A comparing run may still add first records, so a file standing where a folder belongs is
        an error either way; a ``--baseline-save`` run also creates its folder now and writes a probe
        file into it, so an unwritable location (read-only, full) is found before any test ran rather
        than after the last one.
        """
        for path in (self.folder, *self.folder.parents):
            if path.exists():
                if not path.is_dir():
                    raise BaselineError(
                        f"The baseline directory {show(self.root)} cannot hold baselines because {show(path)} "
                        f"is a file: point --baseline-dir at a folder, or move that file aside.")
                break
        if saving:
            self._make_folder()
            try:
                check_writable(self.folder)  # an existing folder on a read-only or full disk, found now
            except OSError as exc:
                raise self._unwritable(self.folder, exc) from exc

    def baseline_for(self, current: Measurement, *, saving: bool, environment: Mapping[str, Any] | None = None,
                     across: Collection[str] = ()) -> tuple[Measurement | None, str]:
        """The stored measurement ``current`` is compared with and what the two ran on, or None and the
        sentence saying why none is. ``environment``: this run's library versions and thread counts."""
        if saving:
            return None, "saved as the new baseline (--baseline-save)"
        stored = self.get(current.key)
        if stored is None:
            others = self.hardware_ids_with(current.key)
            elsewhere = (f"; baselines exist for other hardware only ({', '.join(others)}), never compared"
                         if others else "")
            return None, f"no baseline for hardware {self.hardware_id}: recorded this run as its baseline{elsewhere}"
        reason = why_not_compared(stored, current, environment or {}, across)
        if reason:
            return None, reason
        return stored.measurement, environment_note(stored, current, environment or {})

    def name_environments(self, results: Sequence[TestResult], *, environment: Mapping[str, Any],
                          across: Collection[str] = ()) -> tuple[list[TestResult], list[str]]:
        """Each compared result with what the two figures ran on added to its ``line``, and one summary
        note per change compared across (a passing line is not printed, the upgrade must be)."""
        changes: dict[str, int] = {}
        named = []
        for result in results:
            current = result.measurement
            stored = self.get(current.key)
            if result.judgement.reference is None or stored is None or why_not_compared(stored, current, environment, across):
                named.append(result)
                continue
            line = f"{result.line} [{environment_note(stored, current, environment)}]"
            named.append(replace(result, judgement=replace(result.judgement, line=line)))
            changed, _same = environment_changes(stored, current, environment)
            if changed:
                changes[", ".join(changed)] = changes.get(", ".join(changed), 0) + 1
        return named, [f"compared across {change}: {count} figure(s); --baseline-save records the new figures"
                       for change, count in changes.items()]

    def adopt_old_folders(self, machine: Mapping[str, Any]) -> str | None:
        """Read this machine's folders of the old scheme (keyed by versions and threads too) as fallbacks.

        Their records are compared until this machine's folder holds its own; nothing is moved or
        deleted. Returns the one sentence that says so, or None when there are none.
        """
        others = [hw for hw in self.list_hardware(self.root) if hw != self.hardware_id]
        self._old, names = read_old_folders(self.root, others, machine)
        if not names:
            return None
        return (f"read {len(self._old)} baselines of this machine from the old-scheme folder(s) {', '.join(names)} "
                f"(keyed by library versions and threads too): they are compared until --baseline-save writes "
                f"them to {self.hardware_id}, and nothing is deleted")

    def load(self) -> dict[str, StoredRecord]:
        """All records of this hardware id, keyed by ``Measurement.key``; read once, then cached."""
        return dict(self._records())

    def get(self, key: str) -> StoredRecord | None:
        """This hardware's record of ``key``, else one adopted from an old-scheme folder, else None."""
        return self._records().get(key) or self._old.get(key)

    def _records(self) -> dict[str, StoredRecord]:
        if self._merged is not None:
            return self._merged
        merged: dict[str, StoredRecord] = {}
        seen_in: dict[str, Path] = {}
        for path, records in self._load_files().items():
            for key, record in records.items():
                if key in merged:
                    raise bad(path, f"repeats the record {key!r} already in {show(seen_in[key])}")
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
                    found[other] = set(read_file(self.root / other / f"{slug}.json", other))
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
        overwrite: bool = True,
        environment: Mapping[str, Any] | None = None,
    ) -> BaselineDiff:
        """Write ``measurements`` into the files of their test modules and return what changed.

        Existing records of other tests are kept; with ``replace_all`` every old record of the
        modules being saved is dropped first (tests that no longer exist disappear). Without
        ``overwrite`` only keys with no stored record are written; the others are listed as kept.
        A repeated key keeps its last measurement. The folder is locked and re-read first, so
        records that concurrent sessions saved since this one loaded are merged, never lost.
        """
        new = {m.key: m for m in measurements}
        if not new:
            return BaselineDiff([], [], [])
        for key, measurement in new.items():  # a value JSON cannot hold fails before anything is created
            render(self._path_of(key), self.hardware_id, {key: StoredRecord(measurement, commit, dirty, "")})
        with self._locked():
            self._forget()
            stored = self._records()
            kept = [] if overwrite else [(k, stored[k].measurement.value, new[k].value)
                                         for k in sorted(new.keys() & stored.keys())]
            new = {k: m for k, m in new.items() if overwrite or k not in stored}
            diff = diff_records(self._replaced(new, replace_all), new)
            if new:
                provenance = {"commit": commit, "dirty": dirty, "environment": dict(environment or {})}
                self._write_merged(new, provenance, replace_all, machine)
        return BaselineDiff(diff.added, diff.removed, diff.changed, kept)

    def _write_merged(self, new: Mapping[str, Measurement], provenance: Mapping[str, Any], replace_all: bool,
                      machine: Mapping[str, Any]) -> None:
        saved_at = _utc_now()
        files = self._load_files()
        modules = {_module_of(key) for key in new}
        updated: dict[Path, dict[str, StoredRecord]] = {}
        for key, measurement in sorted(new.items()):
            path = self._path_of(key)
            if path not in updated:
                kept = files.get(path, {})
                if replace_all:
                    kept = {k: r for k, r in kept.items() if _module_of(k) not in modules}
                updated[path] = dict(kept)
            updated[path][key] = StoredRecord(measurement, saved_at=saved_at, **provenance)
        # Serialise everything before the first write, so a bad value cannot leave a half-save.
        texts = {path: render(path, self.hardware_id, records) for path, records in updated.items()}
        self._write(texts, machine)
        files.update(updated)
        self._merged = None
        self._others.clear()

    def _path_of(self, key: str) -> Path:
        return self.folder / f"{module_slug(key)}.json"

    def _forget(self) -> None:
        """Drop what was read, so the next read sees what other sessions wrote since."""
        self._files, self._merged = None, None
        self._others.clear()

    def _make_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(self.folder, exc) from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the folder's lock: one session at a time re-reads, merges and writes its files."""
        self._make_folder()
        lock = FileLock(str(self.root / LOCK_FILE), timeout=_LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise BaselineError(
                f"Another session has held {show(self.root / LOCK_FILE)} for {_LOCK_TIMEOUT_S:.0f} s: "
                "wait for it to end, or delete that file if no pytest is running.") from None
        except OSError as exc:
            raise self._unwritable(self.root / LOCK_FILE, exc) from exc
        try:
            yield
        finally:
            lock.release()

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
            self._files = {p: read_file(p, self.hardware_id) for p in paths if p.name != MACHINE_FILE}
        return self._files

    def _write(self, texts: Mapping[Path, str], machine: Mapping[str, Any]) -> None:
        target = self.folder
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / MACHINE_FILE
            if machine_changed(target, machine):
                atomic_write_text(target, dumps(dict(machine)))
            for target, text in texts.items():
                atomic_write_text(target, text)
        except (OSError, TypeError, ValueError) as exc:
            raise self._unwritable(target, exc) from exc

    def _unwritable(self, target: Path, exc: Exception) -> BaselineError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return BaselineError(
            f"Cannot write baseline {show(target)} ({reason}): make {show(self.root)} a "
            f"writable folder or choose another baseline directory."
        )


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
