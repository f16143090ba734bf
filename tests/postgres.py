"""A throwaway PostgreSQL server for tests that need a real one.

Import the fixtures explicitly where they are needed
(``from tests.postgres import postgres_server, postgres_url  # noqa: F401``): ``postgres_server``
starts one server per test session (initdb into a temporary folder, a private Unix socket, no TCP)
and ``postgres_url`` gives each test a fresh, empty database on it. Set
``MODELPERF_TEST_POSTGRES_URL`` to a superuser URL of an existing server to use that instead.
When no server can be started the tests skip with one reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

__all__ = ["postgres_server", "postgres_url"]

ENV_URL = "MODELPERF_TEST_POSTGRES_URL"
# Seconds to wait for a fresh server to accept connections; a cold start on a busy CI box is slow.
_START_TIMEOUT_S = 60
_SKIP_HINT = f"install the postgresql server package or set {ENV_URL}"


def _binary(name: str) -> str | None:
    """The newest Debian-packaged binary first, then whatever PATH offers."""
    packaged = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    return packaged[-1] if packaged else shutil.which(name)


def _version_key(path: str) -> int:
    version = Path(path).parents[1].name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    # The server listens on a private socket only; the port just names the socket file.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root; run it as the ``postgres`` (or ``nobody``) account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    pytest.skip(f"PostgreSQL cannot run as root and no unprivileged account exists: {_SKIP_HINT}.")


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], URL]:
    initdb, postgres = _binary("initdb"), _binary("postgres")
    if initdb is None or postgres is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, postgres) were not found: {_SKIP_HINT}.")
    owner = _run_as()
    data, sockets = workdir / "data", workdir / "sock"
    sockets.mkdir()
    if owner is not None:
        for path in (workdir, sockets):
            os.chown(path, *owner)
    uid, gid = owner if owner else (None, None)
    groups: list[int] | None = [] if owner else None
    init = subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=False,
        capture_output=True,
        cwd=workdir,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    if init.returncode != 0:
        tail = init.stderr.decode(errors="replace").strip().splitlines()[-1:]
        pytest.skip(f"PostgreSQL initdb failed ({' '.join(tail)}): {_SKIP_HINT}.")
    port = _free_port()
    command = [postgres, "-D", str(data), "-k", str(sockets), "-p", str(port)]
    command += ["-c", "listen_addresses=", "-c", "fsync=off"]
    with open(workdir / "server.log", "wb") as log:  # the child keeps its own copy of the handle
        server = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    url = URL.create(
        "postgresql+psycopg2",
        username="postgres",
        database="postgres",
        query={"host": str(sockets), "port": str(port)},
    )
    _wait_ready(server, url, workdir / "server.log")
    return server, url


def _wait_ready(server: subprocess.Popen[bytes], url: URL, log: Path) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + _START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                pytest.skip(f"PostgreSQL server exited at start ({' '.join(tail)}): {_SKIP_HINT}.")
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:  # noqa: BLE001 - any failure here means "not up yet"
                time.sleep(0.2)
    finally:
        engine.dispose()
    _stop(server)
    pytest.skip(f"PostgreSQL server did not accept connections within {_START_TIMEOUT_S} s: {_SKIP_HINT}.")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # "fast shutdown": roll back sessions and exit
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[URL]:
    """A superuser URL of a PostgreSQL server that lives for the test session."""
    given = os.environ.get(ENV_URL)
    if given:
        yield make_url(given)
        return
    # Not under pytest's basetemp: that tree is private to root, and the server runs as another user.
    workdir = Path(tempfile.mkdtemp(prefix="mp-pg-"))
    try:
        server, url = _start(workdir)
        try:
            yield url
        finally:
            _stop(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: URL) -> Iterator[str]:
    """A URL of a fresh, empty database, dropped after the test."""
    name = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield postgres_server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
