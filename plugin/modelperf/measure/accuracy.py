"""Accuracy of a model on a labelled sentiment set, kept per example so comparisons are paired.

Per-example predictions travel in the Measurement (``samples`` holds 1 for a correct answer, 0
for a wrong one, in dataset order; ``extra`` holds the predictions, scores and example ids), so a
later run can be compared example by example (McNemar) and anyone can recount the figure from
the per-example output file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelperf.datasets import Example
from modelperf.measure.instrument import Instrument, Target
from modelperf.models.base import Model
from modelperf.records import Kind, Measurement

__all__ = ["AccuracyInstrument", "AccuracyResult", "ExampleError", "evaluate_sentiment"]

BATCH = 32  # DistilBERT batch size; large enough to amortise overhead, small enough for any laptop


@dataclass(frozen=True)
class AccuracyResult:
    model: str
    dataset: str
    dataset_sha256: str
    example_ids: tuple[int, ...]
    labels: tuple[int, ...]
    predictions: tuple[int, ...]
    scores: tuple[float, ...]  # probability of the positive label
    seconds: float

    @property
    def correct(self) -> tuple[int, ...]:
        return tuple(int(p == y) for p, y in zip(self.predictions, self.labels))

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    @property
    def seconds_per_example(self) -> float:
        return self.seconds / len(self.labels)

    def to_measurement(self, test_id: str) -> Measurement:
        extra = {
            "dataset": self.dataset,
            "dataset_sha256": self.dataset_sha256,
            "example_ids": list(self.example_ids),
            "labels": list(self.labels),
            "predictions": list(self.predictions),
            "scores": [round(s, 6) for s in self.scores],
            "seconds_per_example": self.seconds_per_example,
            "n": len(self.labels),
        }
        return Measurement(test_id, Kind.ACCURACY, "accuracy", "fraction", self.accuracy,
                           tuple(float(c) for c in self.correct), (), self.model, extra)


class ExampleError(ValueError):
    """A model refused one example; the message names the dataset row and the fix."""


def _failing_row(model: Any, batch: Sequence[Example], dataset: str, exc: ValueError) -> str:
    """One sentence naming the first row of ``batch`` the model refuses (found by retrying one at a time)."""
    for example in batch:
        try:
            model.classify([example.text])
        except ValueError as single:
            where = f"line {example.line}" if example.line else f"example {example.index}"
            return (f"{dataset}, {where} ({len(example.text):,} characters): {str(single).rstrip('.')}; long "
                    "inputs are refused rather than truncated, so shorten or remove that row.")
    return f"{dataset}: the model refused a batch of examples ({exc})."


def evaluate_sentiment(
    model: Any, examples: Sequence[Example], dataset: str, dataset_sha256: str,
    progress: Callable[[int], None] | None = None,
) -> AccuracyResult:
    """Classify every example (in batches) and keep each prediction; ``progress`` gets done counts."""
    predictions: list[int] = []
    scores: list[float] = []
    start = time.perf_counter()
    for i in range(0, len(examples), BATCH):
        batch = examples[i : i + BATCH]
        try:
            result = model.classify([e.text for e in batch])
        except ValueError as exc:
            raise ExampleError(_failing_row(model, batch, dataset, exc)) from exc
        predictions.extend(result.labels)
        scores.extend(row[1] for row in result.probabilities)
        if progress is not None:
            progress(len(batch))
    return AccuracyResult(
        model=model.info.key, dataset=dataset, dataset_sha256=dataset_sha256,
        example_ids=tuple(e.index for e in examples), labels=tuple(e.label for e in examples),
        predictions=tuple(predictions), scores=tuple(scores), seconds=time.perf_counter() - start,
    )


class AccuracyInstrument(Instrument):
    """Accuracy and perplexity: the body hands its figures in with :meth:`record` (the ``accuracy`` fixture).

    They are kept when the body fails afterwards: a figure handed in was measured in full.
    """

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._recorded: list[Measurement] = []

    def record(self, measurement: Measurement) -> None:
        self._recorded.append(measurement)

    def start(self, models: Mapping[str, Model]) -> None:
        """Nothing to start: the body measures by calling :meth:`record`."""

    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        recorded, self._recorded = tuple(self._recorded), []
        return recorded
