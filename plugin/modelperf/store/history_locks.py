"""The history database's locks: which errors a retry of the whole transaction cures, and who holds a SQLite file.

:class:`~modelperf.store.history.HistoryStore` retries a transaction that met one of
:func:`is_locked`'s errors (SQLite's busy lock, PostgreSQL's deadlock and serialisation failures), and
while a SQLite writer waits it names the processes holding the file's write lock (:func:`lock_holders`).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["is_locked", "lock_holders"]

# Messages of errors that go away when the whole transaction is tried again.
_LOCK_SIGNS = ("database is locked", "database is busy", "deadlock detected", "could not serialize access")


def lock_holders(database: str) -> list[str]:
    """The other processes holding a POSIX lock on the SQLite file ``database`` (Linux), as 'PID (command)'."""
    inodes = set()
    for path in (database, f"{database}-shm"):  # in WAL mode the write lock lies in the -shm file
        try:
            inodes.add(str(os.stat(path).st_ino))
        except OSError:
            pass
    try:
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    # A line: "1: POSIX  ADVISORY  WRITE 12345 08:01:4567 0 EOF"; readers' READ locks are no hold-up.
    pids = sorted({fields[4] for fields in (line.split() for line in locks)
                   if len(fields) > 5 and fields[3] == "WRITE" and fields[5].rsplit(":", 1)[-1] in inodes
                   and fields[4] != str(os.getpid())})
    holders = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = ""
        holders.append(f"{pid} ({command[:80]})" if command else pid)
    return holders


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock or serialisation error, which the same transaction tried again can pass."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(sign in text for sign in _LOCK_SIGNS)
