"""What a finished ``--benchmark`` session leaves behind: history rows, JSON, markdown, per-example lines.

Each writer is independent: one that fails (an unreachable database, an unwritable path) is
reported as a note at the end of the session and does not stop the others.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelperf.records import Kind, Measurement
from modelperf.store.atomic import atomic_write_text

__all__ = ["session_measurements", "write_session_outputs"]


def session_measurements(manager: Any) -> list[Measurement]:
    """The session's measurements, each carrying its verdict in ``extra`` for later reports."""
    out = []
    for result in manager.results:
        m = Measurement.from_json(result["measurement"])
        extra = dict(m.extra, verdict=result["verdict"])
        # What the verdict was made on, so a report's change column can never contradict it.
        extra.update({f"verdict_{k}": result[k] for k in ("baseline", "ratio") if result.get(k) is not None})
        out.append(Measurement(m.test_id, m.kind, m.metric, m.unit, m.value, m.samples, m.control, m.model, extra))
    return out


def _history(manager: Any, measurements: list[Measurement], commit: str | None, dirty: bool) -> str:
    from modelperf.store.history import HistoryError, HistoryStore, RunInfo

    versions: dict[str, Any] = {k: manager.machine.get(k) for k in ("python", "torch", "transformers", "llama_cpp_python")}
    versions["models"] = manager.model_info  # which weights, quantisation and threads produced the figures
    run = RunInfo.new(hardware_id=manager.hardware_id, machine=manager.machine, commit=commit, dirty=dirty,
                      versions=versions)
    try:
        with HistoryStore(manager.settings.history) as store:
            store.append(run, measurements)
    except HistoryError as exc:
        return f"history NOT written: {exc}"
    return f"history: run {run.run_id[:12]} appended to {manager.settings.history} (`modelperf history`)"


def _tradeoff_plot(manager: Any) -> list[str]:
    from modelperf.report.tradeoff import plot

    target = Path(str(manager.config.rootpath)) / ".modelperf" / "tradeoff.png"
    try:
        written = plot(manager.results, target)
    except (OSError, ValueError) as exc:
        return [f"trade-off plot NOT written ({exc})"]
    return [f"trade-off plot (accuracy vs latency and memory): {written}"] if written else []


def write_session_outputs(manager: Any, commit: str | None, dirty: bool) -> list[str]:
    from modelperf.measure.accuracy import write_examples
    from modelperf.report.terminal import markdown_summary

    notes: list[str] = []
    measurements = session_measurements(manager)
    settings = manager.settings
    if settings.history and measurements:
        notes.append(_history(manager, measurements, commit, dirty))
    writes: list[tuple[Path | None, Any]] = [
        (settings.results_json, lambda p: atomic_write_text(p, json.dumps(
            {"hardware_id": manager.hardware_id, "machine": manager.machine, "commit": commit, "dirty": dirty,
             "models": manager.model_info, "results": manager.results}, indent=2, sort_keys=True) + "\n")),
        (settings.summary_markdown, lambda p: atomic_write_text(p, markdown_summary(manager))),
        (settings.accuracy_output, lambda p: write_examples(
            p, [m for m in measurements if m.kind is Kind.ACCURACY and m.metric == "accuracy"])),
    ]
    for path, write in writes:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
            notes.append(f"wrote {path}")
        except OSError as exc:
            notes.append(f"could NOT write {path} ({exc.strerror or exc}): check the directory exists and is writable")
    notes.extend(_tradeoff_plot(manager))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown_summary(manager))
        except OSError as exc:
            notes.append(f"could NOT append to $GITHUB_STEP_SUMMARY ({exc.strerror or exc})")
    return notes
