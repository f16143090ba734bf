"""What the ``modelperf`` commands share: the error they raise, the stores they open, the runs they resolve."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelperf.config import option
from modelperf.report.table import Table
from modelperf.store.history import HistoryStore, RunInfo

if TYPE_CHECKING:
    from modelperf.store.baselines import BaselineStore

__all__ = ["DEFAULT_BASELINE_DIR", "DEFAULT_HISTORY", "HISTORY_ENV", "RECORD", "SAVE", "SHORT_ID", "CliError",
           "baseline_root", "baseline_store", "open_store", "require_runs", "resolve_run", "text"]

# The plugin's own defaults, so `pytest --benchmark` and `modelperf` read the same store and baselines.
DEFAULT_HISTORY = str(option("history").default)
HISTORY_ENV = str(option("history").env)
DEFAULT_BASELINE_DIR = str(option("baseline_dir").default)
RECORD = "run `pytest --benchmark` to record one"
SAVE = "run `pytest --benchmark --baseline-save` to create them"
SHORT_ID = 8  # characters of a run id shown in tables; any unique prefix works as a reference


class CliError(Exception):
    """A problem with what the user asked for; the message is one sentence with the fix."""


def open_store(args: argparse.Namespace) -> HistoryStore:
    """The store named by --history, $MODELPERF_HISTORY or the default; a missing file is an error."""
    location = args.history or os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY
    if "://" not in location and not Path(location).exists():
        # Opening would create an empty database, and a read command should leave no trace.
        raise CliError(
            f"There is no history store at {location}: {RECORD} first, or point --history "
            f"(or ${HISTORY_ENV}) at an existing store."
        )
    return HistoryStore(location, create=False)  # a read never writes tables into a file that is not a store


def require_runs(store: HistoryStore, hardware: str | None = None) -> list[RunInfo]:
    runs = store.runs()
    if not runs:
        raise CliError(f"History store {store.display} holds no runs: {RECORD}.")
    if hardware is None:
        return runs
    mine = [r for r in runs if r.hardware_id == hardware]
    if not mine:
        known = ", ".join(sorted({r.hardware_id for r in runs}))
        raise CliError(
            f"History store {store.display} holds no runs of hardware {hardware!r}: pick one of {known} with --hardware."
        )
    return mine


def resolve_run(store: HistoryStore, runs: Sequence[RunInfo], ref: str) -> RunInfo:
    """A run from an id, a unique id prefix, ``latest`` or ``previous`` (``runs`` oldest first)."""
    if ref == "latest":
        return runs[-1]
    if ref == "previous":
        latest = runs[-1]
        same = [r for r in runs if r.hardware_id == latest.hardware_id]
        if len(same) < 2:
            raise CliError(
                f"History store {store.display} holds only one run of hardware {latest.hardware_id!r}, so there is "
                f"no previous run: {RECORD} more."
            )
        return same[-2]
    found = [r for r in runs if r.run_id.startswith(ref.lower())] if ref else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise CliError(
            f"History store {store.display} holds no run {ref!r}: `modelperf history` shows run ids, or use latest or previous."
        )
    raise CliError(f"Run prefix {ref!r} matches {len(found)} runs in {store.display}: give more characters of the id.")


def baseline_root(folder: str) -> Path:
    root = Path(folder)
    if not root.is_dir():
        raise CliError(f"Baseline directory {folder} does not exist: {SAVE}, or point --baseline-dir at them.")
    return root


def baseline_store(root: Path, hardware: str) -> BaselineStore:
    from modelperf.store.baselines import BaselineStore

    try:
        return BaselineStore(root, hardware)
    except ValueError as exc:  # an id that cannot name a folder
        raise CliError(str(exc)) from None


def text(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    return "\n".join(Table.of(headers, rows, align).text())
