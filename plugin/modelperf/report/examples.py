"""The per-example file of a session's accuracy figures (``--accuracy-output``): one JSON line per example.

It is output, written after the session, so it lives with the other writers of the report layer and
reads the figures only through the :class:`~modelperf.records.Measurement` they travel in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from modelperf.records import Measurement
from modelperf.store.atomic import atomic_write_text

__all__ = ["example_lines", "write_examples"]


def example_lines(measurement: Measurement) -> list[str]:
    """One JSON line per example of an accuracy Measurement: model, index, label, prediction, score."""
    detail = measurement.accuracy
    if detail is None:
        return []
    rows = zip(detail.example_ids, detail.labels, detail.predictions, detail.scores)
    return [json.dumps({"test": measurement.test_id, "model": measurement.model, "dataset": detail.dataset,
                        "index": index, "label": label, "prediction": prediction, "score": score,
                        "correct": int(label == prediction)}, sort_keys=True)
            for index, label, prediction, score in rows]


def write_examples(path: Path, measurements: Sequence[Measurement]) -> None:
    """Write every example of every accuracy measurement as JSON lines, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for m in measurements for line in example_lines(m)))
