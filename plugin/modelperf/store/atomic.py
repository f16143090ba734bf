"""Crash-safe file replacement, shared by every module that writes results to disk.

A reader (or a later run) sees either the complete old file or the complete new one, never a
half-written mix: the text goes to a temporary file in the same directory, is flushed to disk and
then renamed over the target, which POSIX and Windows both do atomically within one filesystem.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["atomic_write_text", "check_writable", "open_new"]

# rw for everyone, narrowed by the process umask exactly as open() would for a brand-new file.
_NEW_FILE_MODE = 0o666


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, ``\\n`` line endings) atomically.

    The temporary file is removed on any failure, including ``KeyboardInterrupt``; the target is
    then left exactly as it was. ``OSError`` propagates so the caller can phrase the message.
    """
    path = Path(path)
    directory = path.parent
    # Same directory as the target: os.replace is only atomic within one filesystem.
    temp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    old_mode = _existing_mode(path)
    fd = open_new(temp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if old_mode is not None:
            os.chmod(temp, old_mode)  # set afterwards: os.open's mode is narrowed by the umask
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def open_new(path: Path) -> int:
    """Create ``path`` (it must not exist) for writing and return its descriptor.

    Every result file is created here, so a test can make a folder read-only or full by replacing
    this one function: running as root, chmod alone does not stop a write.
    """
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)


def check_writable(directory: Path) -> None:
    """Raise ``OSError`` unless a file can be created in ``directory``; the probe file is removed again."""
    probe = Path(directory) / f".modelperf-write-check.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = open_new(probe)
    try:
        os.write(fd, b"0")  # a full disk may accept the empty file and refuse its first block
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _existing_mode(path: Path) -> int | None:
    """The permissions of the file being replaced, kept on the new one; None for a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself, so a power cut cannot resurrect the old file."""
    if os.name != "posix":
        return  # Windows cannot open a directory; NTFS journals the rename anyway.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    # Some filesystems (network mounts, tmpfs variants) refuse fsync on directories; the data is
    # already in place, so losing only the durability guarantee there is acceptable.
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)
    os.close(dir_fd)
