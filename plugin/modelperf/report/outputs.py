"""What a finished ``--benchmark`` session leaves behind: history rows, JSON, markdown, per-example lines.

Each writer is independent: one that fails (an unreachable database, an unwritable path) is
reported as a note at the end of the session and does not stop the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelperf.config import Settings
from modelperf.records import Kind, SessionResults
from modelperf.report.examples import write_examples
from modelperf.store.atomic import atomic_write_text

__all__ = ["FileNote", "write_session_outputs"]


@dataclass(frozen=True)
class FileNote:
    """What one writer did, as a line of the summary's files section; ``failed`` when it wrote nothing."""

    line: str
    failed: bool = False


def _history(session: SessionResults, url: str) -> FileNote:
    from modelperf.store.history import HistoryError, HistoryStore, RunInfo

    versions: dict[str, Any] = {k: session.machine.get(k) for k in ("python", "torch", "transformers",
                                                                     "llama_cpp_python")}
    versions["models"] = {k: dict(v) for k, v in session.models.items()}  # which weights, quantisation, threads
    run = RunInfo.new(hardware_id=session.hardware_id, machine=dict(session.machine), commit=session.commit,
                      dirty=session.dirty, versions=versions)
    try:
        with HistoryStore(url) as store:
            store.append(run, session.results)
    except HistoryError as exc:
        return FileNote(f"history NOT written: {exc}", failed=True)
    return FileNote(f"history: run {run.run_id[:12]} appended to {url} (`modelperf history`)")


def _tradeoff_plot(session: SessionResults, root: Path) -> list[FileNote]:
    from modelperf.report.tradeoff import plot

    target = root / ".modelperf" / "tradeoff.png"
    try:
        written = plot([r.measurement for r in session.results], target)
    except (OSError, ValueError) as exc:
        return [FileNote(f"trade-off plot NOT written ({exc})", failed=True)]
    return [FileNote(f"trade-off plot (accuracy vs latency and memory): {written}")] if written else []


def _results_json(session: SessionResults) -> str:
    data = session.to_json()
    del data["notes"]  # they describe the files being written right now, this one included
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_session_outputs(session: SessionResults, settings: Settings, root: Path) -> list[FileNote]:
    """Write history, JSON, markdown and per-example files as ``settings`` asks; one note per file."""
    from modelperf.report.terminal import markdown_summary

    notes: list[FileNote] = []
    measurements = [r.measurement for r in session.results]
    if settings.history and measurements:
        notes.append(_history(session, settings.history))
    writes: list[tuple[Path | None, Callable[[Path], None]]] = [
        (settings.results_json, lambda p: atomic_write_text(p, _results_json(session))),
        (settings.summary_markdown, lambda p: atomic_write_text(p, markdown_summary(session))),
        (settings.accuracy_output, lambda p: write_examples(
            p, [m for m in measurements if m.kind is Kind.ACCURACY and m.metric == "accuracy"])),
    ]
    for path, write in writes:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            notes.append(FileNote(f"wrote {path}"))
        except OSError as exc:
            notes.append(FileNote(f"could NOT write {path} ({exc.strerror or exc}): check the directory exists and "
                                  "is writable", failed=True))
    notes.extend(_tradeoff_plot(session, root))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown_summary(session))
        except OSError as exc:
            notes.append(FileNote(f"could NOT append to $GITHUB_STEP_SUMMARY ({exc.strerror or exc})", failed=True))
    return notes
