"""The trade-off table finds its figures by the role a test declared, never by test names."""

from __future__ import annotations

from modelperf.records import Kind, Measurement
from modelperf.report.tradeoff import TRADEOFF_ROWS, collect, rows


def _figure(test_id: str, kind: Kind, value: float, role: str | None, **extra: float) -> Measurement:
    return Measurement(test_id, kind, "p10_s" if kind is Kind.LATENCY else "x", "s", value, (value, value), (),
                       None, role, info=dict(extra))


def test_figures_are_found_by_their_role_whatever_the_test_is_called() -> None:
    measured = [
        _figure("t.py::test_anything", Kind.LATENCY, 0.010, "distilbert:batch1"),
        _figure("t.py::test_other[llama]", Kind.LATENCY, 2.5, "llama:load"),
        _figure("t.py::test_distilbert_batch1_short", Kind.LATENCY, 9.0, None),  # the old name, no role: ignored
        _figure("t.py::test_x", Kind.LATENCY, 1.0, "gpt:batch1"),  # not one of the two models: ignored
    ]
    found = collect(measured)
    assert found["distilbert"] == {"batch1": measured[0]}
    assert found["llama"] == {"load": measured[1]}


def test_rows_show_the_declared_figures_and_dashes_for_the_rest() -> None:
    table = rows({}, [_figure("t.py::test_a", Kind.LATENCY, 0.010, "distilbert:batch1")])
    by_label = {row[0]: row[1:] for row in table}
    assert len(table) == len(TRADEOFF_ROWS)
    assert by_label["batch-1 latency p50"] == ["10.0 ms", "-"]
    assert by_label["load time"] == ["-", "-"]
