"""``modelperf baselines``: list the stored baselines, or preview what saving a run would change."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from modelperf.cli.common import (
    SAVE,
    SHORT_ID,
    CliError,
    baseline_root,
    baseline_store,
    open_store,
    require_runs,
    resolve_run,
    text,
)
from modelperf.units import format_commit, format_time, format_value

if TYPE_CHECKING:
    from modelperf.store.baselines import StoredRecord

__all__ = ["cmd_baselines"]


def cmd_baselines(args: argparse.Namespace) -> int:
    from modelperf.store.baselines import BaselineStore

    root = baseline_root(args.baseline_dir)
    if args.preview_run:
        return _preview(args, root)
    known = BaselineStore.list_hardware(root)
    if not known:
        raise CliError(f"Baseline directory {args.baseline_dir} holds no baselines: {SAVE}.")
    if args.hardware is None:
        rows = []
        for hardware in known:
            records = baseline_store(root, hardware).load()
            saved = sorted(r.saved_at for r in records.values()) or ["-"]
            tests = {r.measurement.test_id for r in records.values()}
            rows.append([hardware, str(len(records)), str(len(tests)), format_time(saved[0]), format_time(saved[-1])])
        print(text(["hardware", "records", "tests", "first saved", "last saved"], rows, "lrrll"))
        return 0
    if args.hardware not in known:
        raise CliError(
            f"There are no baselines for hardware {args.hardware!r} under {args.baseline_dir}: "
            f"pick one of {', '.join(known)} with --hardware."
        )
    records = baseline_store(root, args.hardware).load()
    print(
        text(
            ["test", "metric", "value", "saved", "commit"],
            [_record_row(r) for _, r in sorted(records.items())],
            "llrll",
        )
    )
    return 0


def _record_row(record: StoredRecord) -> list[str]:
    m = record.measurement
    return [
        m.test_id,
        m.metric,
        format_value(m.value, m.unit),
        format_time(record.saved_at),
        format_commit(record.commit, record.dirty),
    ]


def _preview(args: argparse.Namespace, root: Path) -> int:
    with open_store(args) as store:
        run = resolve_run(store, require_runs(store), args.preview_run)
        measurements = store.measurements(run.run_id)
    diff = baseline_store(root, run.hardware_id).preview(measurements)
    where = root / run.hardware_id
    if diff.is_empty:
        print(f"Saving run {run.run_id[:SHORT_ID]} as the baseline would change nothing under {where}.")
        return 0
    print(f"Saving run {run.run_id[:SHORT_ID]} as the baseline would change {where}:")
    for line in diff.lines():
        print(f"  {line}")
    return 0
