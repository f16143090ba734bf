"""The history store: round trips, filters, schema versions, bad files and concurrent writers.

Every store test runs against SQLite and against a real PostgreSQL server (tests/postgres.py).
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from modelperf.load_records import LoadDetail, LoadObjective, LoadPercentiles
from modelperf.records import Kind, Measurement
from modelperf.store import history
from modelperf.store.history import HistoryError, HistoryStore
from modelperf.vocab import Verdict
from tests.postgres import postgres_server, postgres_url  # noqa: F401
from tests.store.writers import MEASUREMENTS_PER_RUN, RUNS_PER_WRITER, latency_measurement, run_info, write_runs

WRITERS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "nested" / "history.sqlite")
    return str(request.getfixturevalue("postgres_url"))


_measurement = latency_measurement
_run = run_info


def _schema_version(url: str) -> str:
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar())
    finally:
        engine.dispose()


def _set_schema_version(url: str, version: int) -> None:
    engine = create_engine(url if "://" in url else f"sqlite:///{url}")
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(version)})
    finally:
        engine.dispose()


def test_round_trip_keeps_runs_and_measurements(store_url: str) -> None:
    first = _run(started_at="2025-01-01T00:00:00+00:00")
    second = _run("other-hw", started_at="2025-01-02T00:00:00+00:00")
    measured = [_measurement("tests/a.py::test_x"), _measurement("tests/a.py::test_y", verdict="regressed")]
    with HistoryStore(store_url) as store:
        store.append(second, [_measurement("tests/b.py::test_z", value=2.0)])
        store.append(first, measured)
        assert store.runs() == [first, second]
        assert store.measurements(first.run_id) == measured
        assert store.measurements("no-such-run") == []


def test_filters_select_hardware_metric_and_literal_substring(store_url: str) -> None:
    with HistoryStore(store_url) as store:
        for hardware in ("hw-a", "hw-b"):
            store.append(
                _run(hardware),
                [
                    _measurement("t::a_b", "median"),
                    _measurement("t::axb", "median"),
                    _measurement("t::a_b", "p95"),
                ],
            )
        assert [r.hardware_id for r in store.runs("hw-b")] == ["hw-b"]
        # "_" is a LIKE wildcard; the filter must match it literally.
        assert {r.test_id for r in store.series(test="a_b")} == {"t::a_b"}
        rows = store.series(test="a_b", metric="p95", hardware_id="hw-a")
        assert [(r.test_id, r.metric, r.hardware_id, r.kind) for r in rows] == [("t::a_b", "p95", "hw-a", Kind.LATENCY)]
        assert rows[0].commit == "deadbeef" and rows[0].dirty is True
        assert store.series(test="nothing-like-this") == []


def test_series_is_oldest_first(store_url: str) -> None:
    with HistoryStore(store_url) as store:
        for day, value in ((3, 3.0), (1, 1.0), (2, 2.0)):
            store.append(_run(started_at=f"2025-01-0{day}T00:00:00+00:00"), [_measurement("t::x", value=value)])
        assert [r.value for r in store.series()] == [1.0, 2.0, 3.0]


def test_append_is_all_or_nothing(store_url: str) -> None:
    run = _run()
    with HistoryStore(store_url) as store:
        store.append(run, [_measurement("t::x")])
        with pytest.raises(HistoryError):
            store.append(run, [_measurement("t::y")] * 5)  # same run id: the run insert fails
        assert [m.test_id for m in store.measurements(run.run_id)] == ["t::x"]


def test_fresh_store_records_schema_version(store_url: str) -> None:
    HistoryStore(store_url).close()
    assert _schema_version(store_url) == str(history.SCHEMA_VERSION) == "2"


def test_newer_schema_is_refused_with_one_sentence(store_url: str) -> None:
    HistoryStore(store_url).close()
    _set_schema_version(store_url, 3)
    with pytest.raises(HistoryError) as info:
        HistoryStore(store_url)
    assert str(info.value).endswith(
        "was written by a newer pytest-modelperf (schema 3, this one reads up to 2): "
        "upgrade pytest-modelperf or point --history at another file."
    )


def test_a_schema_1_store_is_migrated_in_place_to_typed_details(store_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with HistoryStore(store_url) as store:
        store.append(_run(), [Measurement("t::x", Kind.LATENCY, "p10_s", "s", 0.5, (0.5, 0.6))])
    # The row as schema 1 wrote it: details and verdict as flat keys of "extra".
    flat = {"statistic": "p10", "rounds": 2, "iterations": 1, "control_version": "torch-v3", "role": "m:batch1",
            "sentences_per_s": 3.5, "verdict": "regressed", "verdict_ratio": 1.2, "verdict_ratio_low": 1.1,
            "verdict_ratio_high": 1.3, "verdict_baseline": 0.4}
    engine = create_engine(store_url if "://" in store_url else f"sqlite:///{store_url}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE measurements SET extra = :extra"), {"extra": json.dumps(flat)})
    engine.dispose()
    _set_schema_version(store_url, 1)
    steps: list[int] = []
    migrate = history._MIGRATIONS[1]
    monkeypatch.setattr(history, "_MIGRATIONS", {1: lambda conn: (steps.append(1), migrate(conn))})
    with HistoryStore(store_url) as store:
        [row] = store.series()
        [measurement] = store.measurements(row.run_id)
    assert row.judgement is not None and row.judgement.verdict is Verdict.REGRESSED
    assert (row.judgement.reference, row.judgement.ratio_low, row.judgement.ratio_high) == (0.4, 1.1, 1.3)
    assert row.role == "m:batch1" and measurement.latency is not None
    assert measurement.latency.control_version == "torch-v3" and dict(measurement.info) == {"sentences_per_s": 3.5}
    assert steps == [1] and _schema_version(store_url) == str(history.SCHEMA_VERSION) == "2"
    HistoryStore(store_url).close()
    assert steps == [1], "a migrated store must not be migrated again"


def test_schema_without_a_migration_step_is_refused(store_url: str) -> None:
    HistoryStore(store_url).close()
    _set_schema_version(store_url, 0)
    with pytest.raises(HistoryError, match="has schema 0, which this pytest-modelperf cannot migrate"):
        HistoryStore(store_url)


def test_foreign_tables_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (x INTEGER)"))
    engine.dispose()
    with pytest.raises(HistoryError, match="holds tables that pytest-modelperf did not write"):
        HistoryStore(path)


@pytest.mark.parametrize("content", [b"hello, not a database" * 100, b"\x00\xff" * 4096])
def test_non_database_file_names_its_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "history.sqlite"
    path.write_bytes(content)
    with pytest.raises(HistoryError) as info:
        HistoryStore(path)
    message = str(info.value)
    assert message.startswith(f"History store {path} ") and "file is not a database" in message
    assert message.count(". ") == 0 and "\n" not in message


@pytest.mark.parametrize(
    ("location", "expected"),
    [("dir", "is a directory"), ("nosuchdialect://x/y", "is not a usable database URL")],
)
def test_unusable_location_is_one_sentence(tmp_path: Path, location: str, expected: str) -> None:
    target = str(tmp_path) if location == "dir" else location
    with pytest.raises(HistoryError, match=expected):
        HistoryStore(target)


def test_unreachable_server_is_one_sentence(tmp_path: Path) -> None:
    url = f"postgresql+psycopg2://nobody@/db?host={tmp_path}&port=1"
    with pytest.raises(HistoryError, match=r"^History store postgresql\+psycopg2://nobody@/db.* cannot be read"):
        HistoryStore(url)


def test_concurrent_writer_processes_lose_nothing(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    # All writers also race to create the tables of a fresh store.
    workers = [context.Process(target=write_runs, args=(store_url, n, barrier)) for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    with HistoryStore(store_url) as store:
        assert len(store.runs()) == WRITERS * RUNS_PER_WRITER
        found = {row.test_id for row in store.series()}
    expected = {
        f"w{w}::r{r}::t{i}" for w in range(WRITERS) for r in range(RUNS_PER_WRITER) for i in range(MEASUREMENTS_PER_RUN)
    }
    assert found == expected


_finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    test_id=st.text(min_size=1, max_size=60),
    value=_finite,
    samples=st.lists(_finite, max_size=5),
    extra=st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans())),
)
def test_any_measurement_survives_a_sqlite_round_trip(
    test_id: str, value: float, samples: list[float], extra: dict[str, Any]
) -> None:
    measured = Measurement(test_id, Kind.ACCURACY, "accuracy", "ratio", value, tuple(samples), info=extra)
    with tempfile.TemporaryDirectory() as folder, HistoryStore(Path(folder) / "h.sqlite") as store:
        run = _run()
        store.append(run, [measured])
        (back,) = store.measurements(run.run_id)
    assert back == measured  # -0.0 may come back as 0.0 (SQLite stores integral REALs as integers)


def test_a_bare_postgresql_url_uses_the_installed_driver(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2")
    # Port 1 refuses: what matters is that the error is the connection's, not a missing module's.
    with pytest.raises(HistoryError, match=r"^History store postgresql\+psycopg2://nobody@/db.* cannot be read"):
        HistoryStore(f"postgresql://nobody@/db?host={tmp_path}&port=1")


def test_a_bare_postgresql_url_without_any_driver_names_the_missing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "psycopg" in name else real(name, *a))
    with pytest.raises(HistoryError) as info:
        HistoryStore("postgresql://nobody@127.0.0.1:1/x")
    message = str(info.value)
    assert "neither psycopg2 nor psycopg is installed: pip install psycopg2-binary" in message
    assert message.count(". ") == 0 and "\n" not in message


def test_a_url_naming_a_missing_driver_says_which_module_is_missing() -> None:
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here")
    with pytest.raises(HistoryError, match=r"needs the Python module psycopg, which is not installed"):
        HistoryStore("postgresql+psycopg://nobody@127.0.0.1:1/x")


def test_a_load_measurement_keeps_its_run_s_figures_in_the_history(tmp_path: Path) -> None:
    # The pattern, percentiles, objectives and phases are what a stored load comparison's spread, the
    # trend and the report read back; a history that dropped them kept only the gated number.
    detail = LoadDetail("Poisson 2/s (seed 0)", "http://127.0.0.1:8000 (16 tokens)", 10.0, 21, 20, 1, 2.0, 31.5,
                        ttft=LoadPercentiles(0.05, 0.09, 0.12, 20), e2e=LoadPercentiles(0.4, 0.7, 0.9, 20),
                        goodput=0.85, objectives=(LoadObjective("ttft_p99", 0.5, 0.12, True),), phases=4,
                        phase_figures=(0.41, 0.39, 0.4, 0.42))
    measured = Measurement("t.py::test_served", Kind.LOAD, "e2e_p50", "s", 0.4, (0.4, 0.5), model="m@1", load=detail)
    with HistoryStore(tmp_path / "h.sqlite") as store:
        run = _run()
        store.append(run, [measured])
        (back,) = store.measurements(run.run_id)
    assert back == measured
