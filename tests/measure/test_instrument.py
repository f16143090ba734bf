"""The measurement interface driven outside pytest, as a worker process would drive it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelperf.markers import MARKERS, AccuracyOptions, MemoryOptions
from modelperf.measure.instrument import INSTRUMENTS, MeasureContext, Target, create
from modelperf.records import Kind, Measurement


def test_every_marker_has_an_instrument() -> None:
    assert set(INSTRUMENTS) == set(MARKERS)


def test_measuring_modules_import_without_pytest() -> None:
    code = ("import sys; import modelperf.measure.instrument, modelperf.measure.latency, "
            "modelperf.measure.memory_instrument, modelperf.measure.accuracy; assert 'pytest' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_memory_instrument_measures_a_block_and_deletes_its_capture(tmp_path: Path) -> None:
    instrument = create("peak_memory", Target("x.py::test_alloc", MemoryOptions()), MeasureContext(tmp_path))
    with instrument.measuring() as measured:
        block = bytearray(20_000_000)
        block[::4096] = b"x" * len(block[::4096])
    [figure] = measured.measurements
    assert figure.kind is Kind.MEMORY and figure.metric == "memray_peak_bytes"
    assert 20_000_000 <= figure.value < 21_000_000
    assert list(tmp_path.glob("*.bin")) == [], "an unjudged capture is not kept"


def test_a_failing_block_measures_nothing_and_raises(tmp_path: Path) -> None:
    instrument = create("peak_memory", Target("x.py::test_alloc", MemoryOptions()), MeasureContext(tmp_path))
    with pytest.raises(ZeroDivisionError), instrument.measuring() as measured:
        _ = 1 / 0
    assert measured.measurements == ()
    assert list(tmp_path.glob("*.bin")) == []


def test_accuracy_instrument_returns_what_the_body_recorded() -> None:
    from modelperf.measure.accuracy import AccuracyInstrument

    instrument = create("accuracy", Target("x.py::test_acc", AccuracyOptions()), MeasureContext())
    assert isinstance(instrument, AccuracyInstrument)
    figure = Measurement("x.py::test_acc", Kind.ACCURACY, "accuracy", "fraction", 0.5, (1.0, 0.0))
    with instrument.measuring() as measured:
        instrument.record(figure)
    assert measured.measurements == (figure,)
