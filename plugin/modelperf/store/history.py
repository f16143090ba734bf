"""The history store: every ``--benchmark`` session appends one run and all its measurements.

Baselines answer "what should this test measure here?"; history answers "how did it move over
time?". The store is a SQL database reached through SQLAlchemy Core, so one SQLite file serves a
laptop and a PostgreSQL URL serves a fleet of CI jobs. Concurrent writers (xdist workers, parallel
CI jobs on one SQLite file) lose nothing: each run goes in as one transaction, SQLite runs in WAL
mode with a busy timeout, and a write that still meets "database is locked" is retried whole.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from modelperf.records import Judgement, Measurement, TestResult, measurement_from_json
from modelperf.store.history_locks import is_locked, lock_holders
from modelperf.store.history_records import (
    HistoryRow,
    RunInfo,
    details_json,
    dumps,
    history_row,
    measurement_of,
    measurement_row,
)
from modelperf.store.history_url import HistoryError, to_url
from modelperf.vocab import Verdict

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SCHEMA_VERSION", "HistoryError", "HistoryRow", "HistoryStore", "RunInfo"]

# Bump when the tables change, and register the step up in _MIGRATIONS. 2: a measurement's details
# column holds its typed records (latency, memory, accuracy, role, info) and its judgement.
SCHEMA_VERSION = 2
# Seconds a SQLite writer waits for another writer's lock before "database is locked".
_SQLITE_BUSY_TIMEOUT_S = 60
# A writer's first try: long enough for an ordinary commit of another writer, short enough to say it waits.
_FIRST_TRY_MS = 1000
# Whole-transaction retries after a lock error outlives the busy timeout (or hits a WAL snapshot).
_LOCK_RETRIES = 8
# Any constant works: it only has to be the same for every writer of one PostgreSQL database.
_PG_INIT_LOCK = 0x6D6F64656C70

_T = TypeVar("_T")

_metadata = MetaData()
_meta = Table(
    "meta",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
_runs = Table(
    "runs",
    _metadata,
    Column("run_id", String(32), primary_key=True),
    Column("started_at", String(40), nullable=False, index=True),
    Column("hardware_id", String(200), nullable=False, index=True),
    Column("machine", Text, nullable=False),
    Column("commit", String(64), nullable=True),
    Column("dirty", Boolean, nullable=False),
    Column("versions", Text, nullable=False),
    Column("label", Text, nullable=True),
)
_measurements = Table(
    "measurements",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False, index=True),
    Column("test_id", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("metric", String(200), nullable=False),
    Column("unit", String(32), nullable=False),
    Column("value", Double, nullable=False),
    Column("samples", Text, nullable=False),
    Column("control", Text, nullable=False),
    Column("model", Text, nullable=True),
    Column("extra", Text, nullable=False),
)



def _migrate_1_to_2(conn: Connection) -> None:
    """Schema 1 kept a measurement's details and verdict as flat keys of ``extra``: type them."""
    m = _measurements.c
    rows = conn.execute(select(m.id, m.test_id, m.kind, m.metric, m.unit, m.value, m.extra)).mappings().all()
    for row in rows:
        flat = json.loads(row["extra"])
        data = {**{k: row[k] for k in ("test_id", "kind", "metric", "unit", "value")}, "extra": flat}
        measurement = measurement_from_json(data, schema=1)
        judgement = None
        if "verdict" in flat:
            judgement = Judgement.from_json({"verdict": _v1_verdict(str(flat["verdict"])), "line": "",
                                             **{k: flat.get(f"verdict_{k}") for k in ("ratio", "ratio_low",
                                                                                     "ratio_high")},
                                             "reference": flat.get("verdict_baseline")})
        conn.execute(update(_measurements).where(m.id == row["id"]).values(extra=details_json(measurement, judgement)))


def _v1_verdict(word: str) -> str:
    """A schema-1 verdict word as a Verdict's value; words the vocabulary no longer has ("unchanged") read as pass."""
    return word if word in {v.value for v in Verdict} else Verdict.PASS.value


# Steps up from schema N to N + 1, each run inside the locked init transaction.
_MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _migrate_1_to_2}


class HistoryStore:
    """Runs and measurements in a SQLite file or any SQLAlchemy database URL."""

    def __init__(self, url_or_path: str | Path, *, create: bool = True,
                 on_wait: Callable[[str], None] | None = None) -> None:
        """Open the store; ``create``: make its tables in an empty database (a reader passes False).
        ``on_wait`` gets the sentence saying that a write waits for another writer (default: stderr)."""
        self._create = create
        self._on_wait = on_wait or _say_on_stderr
        self._url = to_url(url_or_path)
        # How messages name the store: the path as given, or the URL without its password.
        plain = "://" not in str(url_or_path)
        self.display = str(url_or_path) if plain else self._url.render_as_string(hide_password=True)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        try:
            self._engine = self._create_engine()
        except ImportError as exc:
            raise HistoryError(
                f"History store {self.display} needs the Python module {exc.name or exc}, which is not "
                "installed: install it (pip install psycopg2-binary for PostgreSQL) or name another driver "
                "in the URL."
            ) from None
        try:
            # Check first without the write lock, so opening a current store only reads.
            if not self._transact(self._schema_is_current):
                self._transact(self._init_schema, write=True)
        except BaseException:
            self._engine.dispose()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def append(self, run: RunInfo, results: Sequence[TestResult | Measurement]) -> None:
        """Add one run and all its results (or bare measurements) in one transaction: all of it or nothing."""
        run_row = {
            "run_id": run.run_id,
            "started_at": run.started_at,
            "hardware_id": run.hardware_id,
            "machine": dumps(run.machine),
            "commit": run.commit,
            "dirty": run.dirty,
            "versions": dumps(run.versions),
            "label": run.label,
        }
        rows = [measurement_row(run.run_id, r) for r in results]

        def write(conn: Connection) -> None:
            conn.execute(insert(_runs), [run_row])
            if rows:
                conn.execute(insert(_measurements), rows)

        self._transact(write, write=True)

    def runs(self, hardware_id: str | None = None) -> list[RunInfo]:
        """Every run, oldest first, optionally only those of one hardware id."""
        query = select(_runs).order_by(_runs.c.started_at, _runs.c.run_id)
        if hardware_id is not None:
            query = query.where(_runs.c.hardware_id == hardware_id)
        result = self._transact(lambda conn: conn.execute(query).mappings().all())
        return [
            RunInfo(**{**r, "machine": json.loads(r["machine"]), "versions": json.loads(r["versions"])}) for r in result
        ]

    def series(
        self, test: str | None = None, metric: str | None = None, hardware_id: str | None = None
    ) -> list[HistoryRow]:
        """Measurements joined with their runs, oldest first; ``test`` matches a substring."""
        m, r = _measurements.c, _runs.c
        query = (
            select(r.run_id, r.started_at, r.hardware_id, r.commit, r.dirty)
            .add_columns(m.test_id, m.kind, m.metric, m.unit, m.value, m.extra, m.samples, m.model)
            .join_from(_measurements, _runs, m.run_id == r.run_id)
            .order_by(r.started_at, r.run_id, m.id)
        )
        if test is not None:
            query = query.where(m.test_id.contains(test, autoescape=True))
        if metric is not None:
            query = query.where(m.metric == metric)
        if hardware_id is not None:
            query = query.where(r.hardware_id == hardware_id)
        result = self._transact(lambda conn: conn.execute(query).mappings().all())
        return [history_row(row) for row in result]

    def measurements(self, run_id: str) -> list[Measurement]:
        """The measurements of one run, in the order they were appended."""
        query = select(_measurements).where(_measurements.c.run_id == run_id)
        result = self._transact(lambda conn: conn.execute(query.order_by(_measurements.c.id)).mappings().all())
        return [measurement_of(row)[0] for row in result]

    def _create_engine(self) -> Engine:
        if not self._sqlite:
            return create_engine(self._url, pool_pre_ping=True)
        engine = create_engine(self._url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            # pysqlite's own BEGIN handling defers the lock and breaks transactional DDL; we
            # emit BEGIN ourselves (below). WAL lets readers run beside the one writer.
            dbapi_connection.isolation_level = None
            if not self._create:
                return  # a reader changes nothing in the file, not even its journal mode
            try:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error:
                pass  # read-only or busy: the rollback journal plus busy timeout is still safe

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A writer takes the write lock up front, so it waits (busy timeout) instead of
            # failing at the first INSERT after its read snapshot went stale.
            write = conn.get_execution_options().get("modelperf_write", False)
            busy_ms = int(conn.get_execution_options().get("modelperf_busy_ms", _SQLITE_BUSY_TIMEOUT_S * 1000))
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {busy_ms}")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _transact(self, work: Callable[[Connection], _T], write: bool = False) -> _T:
        """Run ``work`` in one transaction, retrying it whole while the database is locked.

        A SQLite writer first tries with a short busy timeout, so that when another writer holds the
        lock the session says it waits, and for whom, before the long wait starts.
        """
        for attempt in range(_LOCK_RETRIES + 1):
            first_try = self._sqlite and write and attempt == 0
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(modelperf_write=write, modelperf_busy_ms=(
                        _FIRST_TRY_MS if first_try else _SQLITE_BUSY_TIMEOUT_S * 1000))
                    with conn.begin():
                        return work(conn)
            except (SQLAlchemyError, sqlite3.Error) as exc:
                if is_locked(exc) and attempt < _LOCK_RETRIES:
                    if first_try:
                        self._on_wait(self._waiting())
                    time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
                    continue
                raise self._error(exc) from exc
        raise AssertionError("unreachable: the loop returns or raises")

    def _waiting(self) -> str:
        holders = lock_holders(self._url.database or "")
        who = f"process {', '.join(holders)}" if holders else "another process"
        return (f"modelperf: the history store {self.display} is locked by {who}, which is writing to it: waiting "
                f"up to {_SQLITE_BUSY_TIMEOUT_S * (_LOCK_RETRIES + 1) // 60} minutes for it to finish (Ctrl-C stops "
                "the wait; the baselines are already written)")

    def _error(self, exc: BaseException) -> HistoryError:
        if isinstance(exc, HistoryError):
            return exc
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return HistoryError(
            f"History store {self.display} cannot be read or written ({reason}): "
            "check the path or URL given to --history / MODELPERF_HISTORY, or move the file aside."
        )

    def _schema_is_current(self, conn: Connection) -> bool:
        if not inspect(conn).has_table("meta"):
            if not self._create:
                raise HistoryError(
                    f"{self.display} is not a pytest-modelperf history store (it has no modelperf tables), so it "
                    "was left untouched: point --history (or $MODELPERF_HISTORY) at the store a --benchmark session "
                    "wrote.")
            return False
        return self._stored_version(conn) == SCHEMA_VERSION

    def _init_schema(self, conn: Connection) -> None:
        """Create the tables of a fresh store or migrate an old one, under a database-wide lock."""
        if conn.dialect.name == "postgresql":
            # Serialises table creation between concurrent first writers of one database.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_INIT_LOCK})")
        inspector = inspect(conn)
        if not inspector.has_table("meta"):
            if inspector.get_table_names():  # another program's database: never add tables to it
                raise HistoryError(
                    f"History store {self.display} holds tables that pytest-modelperf did not write: "
                    "point --history at a new file or database."
                )
            _metadata.create_all(conn)
            conn.execute(insert(_meta), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
            return
        self._migrate(conn, self._stored_version(conn))

    def _stored_version(self, conn: Connection) -> int:
        """The schema version the store records; one this code cannot read is refused here."""
        raw = conn.execute(select(_meta.c.value).where(_meta.c.key == "schema_version")).scalar()
        try:
            found = int(str(raw))
        except ValueError:
            raise HistoryError(
                f"History store {self.display} has no readable schema_version in its meta table "
                f"(found {raw!r}): point --history at a new file or database."
            ) from None
        if found > SCHEMA_VERSION:
            raise HistoryError(
                f"History store {self.display} was written by a newer pytest-modelperf "
                f"(schema {found}, this one reads up to {SCHEMA_VERSION}): "
                "upgrade pytest-modelperf or point --history at another file."
            )
        return found

    def _migrate(self, conn: Connection, found: int) -> None:
        for version in range(found, SCHEMA_VERSION):
            step = _MIGRATIONS.get(version)
            if step is None:
                raise HistoryError(
                    f"History store {self.display} has schema {version}, which this pytest-modelperf "
                    "cannot migrate: point --history at a new file or database."
                )
            step(conn)
        if found != SCHEMA_VERSION:
            conn.execute(update(_meta).where(_meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def _say_on_stderr(line: str) -> None:
    # At a session's end pytest no longer captures stderr: the line reaches the terminal.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
