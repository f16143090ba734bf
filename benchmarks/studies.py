"""What every study writes: its raw files outside the repository, one compact summary inside it.

A study's raw sessions (results JSON, logs) are large and dated; the repository keeps only
``docs/studies/<name>.md`` (the figures as a table, the exact commands, the revision, the machine, the
date) and ``docs/studies/<name>.json`` (the same figures, for the docs pages), plus ``index.md``, one
line per study.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["REPO", "STUDIES_DIR", "Machine", "Provenance", "Summary", "add_summary_arguments", "cache_root", "provenance",
           "raw_dir", "read_summaries", "record_start", "recorded_machine", "study_record", "write_index", "write_summary"]

REPO = Path(__file__).resolve().parents[1]
STUDIES_DIR = REPO / "docs" / "studies"
_RECORD = "study.json"  # in a raw folder: the commands that ran it and when it started
_INDEX_INTRO = """# Studies

Measurements of pytest-modelperf itself. Each line links to one study's summary: its figures, the exact
commands that produced them, the revision and the machine. The raw sessions are not kept in the
repository; `benchmarks/README.md` says how to run each study again.
"""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/modelperf/studies`` (``~/.cache/...`` by default): where raw sessions go."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "modelperf", "studies")


def raw_dir(study: str, given: Path | None) -> Path:
    """The folder for a study's raw files: the one named, else a new dated one under :func:`cache_root`."""
    if given is not None:
        path = given.expanduser().resolve()
        if path.is_relative_to(REPO):
            print(f"note: {path} lies inside the repository; raw sessions are large, so keep them out of "
                  "commits (the summary under docs/studies/ is what the repository keeps).", file=sys.stderr)
    else:
        path = cache_root() / f"{study}-{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def study_record(raw: Path) -> dict[str, Any]:
    """What :func:`record_start` kept in ``raw``: ``commands`` and ``started``; empty for a folder without."""
    path = raw / _RECORD
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it, then give --date and "
                         "--study-command.") from None
    return data if isinstance(data, dict) else {}


def record_start(raw: Path, command: str) -> None:
    """Keep the command, the start date, the revision and the machine with the raw files, for the summary."""
    from modelperf.ab.git import head_commit

    data = study_record(raw)
    data["commands"] = [*data.get("commands", []), command]
    data.setdefault("started", time.strftime("%Y-%m-%d"))
    data.setdefault("revision", head_commit(REPO))
    data.setdefault("machine", Machine.here().to_json())
    (raw / _RECORD).write_text(json.dumps(data, indent=1) + "\n")


def recorded_machine(record: Mapping[str, Any]) -> Machine | None:
    """The machine :func:`record_start` kept, if any."""
    info = record.get("machine")
    if not isinstance(info, dict):
        return None
    return Machine(str(info.get("cpu_model")), info.get("physical_cores"), info.get("logical_cores"),
                   info.get("memory_gib"), str(info.get("note") or ""))


@dataclass(frozen=True)
class Machine:
    """The parts of a session's ``machine`` record that a reader of a summary needs."""

    cpu_model: str
    physical_cores: int | None
    logical_cores: int | None
    memory_gib: int | None
    note: str = ""  # what else mattered, e.g. "Intel AMX" or "shared VM"

    @classmethod
    def from_info(cls, info: Mapping[str, Any], note: str = "") -> Machine:
        def count(key: str) -> int | None:
            value = info.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        flags = str(info.get("cpu_flags") or "").split()
        amx = "CPU with Intel AMX" if any(flag.startswith("amx") for flag in flags) else ""
        return cls(str(info.get("cpu_model") or "unknown CPU"), count("cpu_physical_cores"),
                   count("cpu_logical_cores"), count("memory_gib"), note or amx)

    @classmethod
    def here(cls, note: str = "") -> Machine:
        from modelperf.store.hardware import machine_info

        return cls.from_info(machine_info(), note)

    def describe(self) -> str:
        cores = "" if self.physical_cores is None else f", {self.physical_cores} cores"
        if self.logical_cores is not None and self.logical_cores != self.physical_cores:
            cores += f" ({self.logical_cores} logical)"
        memory = "" if self.memory_gib is None else f", {self.memory_gib} GiB"
        return f"{self.cpu_model}{cores}{memory}" + (f"; {self.note}" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return {"cpu_model": self.cpu_model, "physical_cores": self.physical_cores,
                "logical_cores": self.logical_cores, "memory_gib": self.memory_gib, "note": self.note}


@dataclass(frozen=True)
class Provenance:
    """Where a study's figures come from: when, which commit, which machine, which commands."""

    date: str  # when the sessions ran (YYYY-MM-DD)
    revision: str
    machine: Machine | None
    commands: tuple[str, ...]  # what produced the raw sessions, exactly
    analysis_command: str = ""  # what turned the raw sessions into the summary

    def to_json(self) -> dict[str, Any]:
        return {"date": self.date, "revision": self.revision,
                "machine": None if self.machine is None else self.machine.to_json(),
                "commands": list(self.commands), "analysis_command": self.analysis_command}


def provenance(args: argparse.Namespace, raw: Path | None, *, revisions: Sequence[str] = (),
               machine: Machine | None = None, analysis_command: str = "") -> Provenance:
    """The options of :func:`add_summary_arguments` first, then what the raw files recorded."""
    record = study_record(raw) if raw is not None else {}
    revision = args.revision or ", ".join(r[:10] for r in revisions) or str(record.get("revision") or "")[:10]
    return Provenance(
        args.date or str(record.get("started") or "not recorded"), revision or "not recorded",
        machine or recorded_machine(record),
        tuple(args.study_command) or tuple(str(c) for c in record.get("commands", [])) or ("not recorded",),
        analysis_command)


@dataclass(frozen=True)
class Summary:
    """One study, compact: a table of its figures and how they were made."""

    name: str  # the file stem under docs/studies/
    title: str
    headline: str  # one sentence for the index
    provenance: Provenance
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    figures: Mapping[str, Any] | None = None  # the same figures, machine-readable
    tables: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, ...], ...]], ...] = ()  # (heading, columns, rows)

    def markdown(self) -> str:
        made = self.provenance
        machine = made.machine.describe() if made.machine is not None else "not recorded"
        lines = [f"# {self.title}", "", self.headline, "", f"- Date: {made.date}", f"- Revision: `{made.revision}`",
                 f"- Machine: {machine}", "", *_table(self.columns, self.rows)]
        for heading, columns, rows in self.tables:
            lines += ["", f"## {heading}", "", *_table(columns, rows)]
        if self.notes:
            lines += ["", "## Notes", "", *(f"- {note}" for note in self.notes)]
        lines += ["", "## How it was made", "", "```", *made.commands, "```"]
        if made.analysis_command:
            lines += ["", "This summary, from the raw sessions:", "", "```", made.analysis_command, "```"]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "headline": self.headline, **self.provenance.to_json(),
                "columns": list(self.columns), "rows": [list(row) for row in self.rows],
                "figures": dict(self.figures or {})}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def write_summary(summary: Summary, directory: Path = STUDIES_DIR) -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.json`` into ``directory``, then refresh its index."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown, data = directory / f"{summary.name}.md", directory / f"{summary.name}.json"
    markdown.write_text(summary.markdown())
    data.write_text(json.dumps(summary.to_json(), indent=1) + "\n")
    write_index(directory)
    return markdown, data


def read_summaries(directory: Path = STUDIES_DIR) -> list[dict[str, Any]]:
    """The JSON of every summary in ``directory``, newest first (by date, then name)."""
    summaries = []
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); write it again with its study's --summary.") from None
        if isinstance(data, dict) and {"name", "title", "date", "headline"} <= data.keys():
            summaries.append(data)
    return sorted(summaries, key=lambda s: (str(s["date"]), str(s["name"])), reverse=True)


def write_index(directory: Path = STUDIES_DIR) -> Path:
    """``index.md``: one line per study, newest first."""
    lines = [_INDEX_INTRO]
    for data in read_summaries(directory):
        lines.append(f"- {data['date']}: [{data['title']}]({data['name']}.md): {data['headline']}")
    index = directory / "index.md"
    index.write_text("\n".join(lines) + "\n")
    return index


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every study takes for its summary (``--summary NAME`` and what goes in it)."""
    group = parser.add_argument_group("summary")
    group.add_argument("--summary", metavar="NAME", help="write docs/studies/NAME.md and NAME.json (the study summary)")
    group.add_argument("--studies-dir", type=Path, default=STUDIES_DIR,
                       help="where --summary writes (default: docs/studies)")
    group.add_argument("--title", help="the summary's title (default: names the results)")
    group.add_argument("--date", help="when the sessions ran, YYYY-MM-DD (default: from the raw files' records)")
    group.add_argument("--revision", help="the commit the sessions ran (default: from the raw files' records)")
    group.add_argument("--study-command", action="append", default=[], metavar="TEXT",
                       help="the command that ran the sessions, when the raw files do not record it; repeatable")
    group.add_argument("--note", action="append", default=[], help="a sentence for the summary's notes; repeatable")
