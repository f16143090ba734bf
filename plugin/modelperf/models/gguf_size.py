"""The size a GGUF file must have, read from its own header: a truncated download is found before loading.

llama.cpp meets a file cut short only when it maps the tensors, and then each test that loads the
model fails on its own; the header alone (metadata, then each tensor's type, shape and offset)
says how long the file must be, so the check costs one pass over the metadata and reads no weights.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["GGUFError", "expected_size"]

# ggml tensor types -> (bytes per block, values per block); a type not listed counts as one byte past its offset.
_TYPE_SIZES = {0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32), 9: (36, 32),
               10: (84, 256), 11: (110, 256), 12: (144, 256), 13: (176, 256), 14: (210, 256), 15: (292, 256),
               24: (1, 1), 25: (2, 1), 26: (4, 1), 27: (8, 1), 28: (8, 1), 30: (2, 1)}
# Metadata value types -> fixed byte size; 8 is a string and 9 an array, read apart.
_VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32


class GGUFError(ValueError):
    """The header itself ends early or holds impossible sizes."""


class _Reader:
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size, self.position = handle, size, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.position + count > self.size:
            raise GGUFError(f"the header ends at byte {self.size} inside a field that needs {count} bytes")
        data = self.handle.read(count)
        self.position += count
        return data

    def number(self, fmt: str) -> int:
        value: int = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.number("Q"))

    def value(self, kind: int) -> int | None:
        """Read one metadata value; returns it when it is an unsigned integer (general.alignment is one)."""
        if kind == _STRING:
            self.string()
        elif kind == _ARRAY:
            item, count = self.number("I"), self.number("Q")
            if item in _VALUE_SIZES:
                self.take(_VALUE_SIZES[item] * count)
            else:
                for _ in range(count):
                    self.value(item)
        elif kind in _VALUE_SIZES:
            data = self.take(_VALUE_SIZES[kind])
            return int.from_bytes(data, "little") if kind in (4, 10) else None
        else:
            raise GGUFError(f"the metadata holds a value of unknown type {kind}")
        return None


def expected_size(path: Path) -> int | None:
    """The smallest size ``path`` can have given its header; None for a GGUF version this does not read."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        reader = _Reader(handle, size)
        reader.take(4)  # the magic, checked by the caller
        if reader.number("I") < 2:
            return None  # version 1 used 32-bit counts; no current file has it
        tensors, entries = reader.number("Q"), reader.number("Q")
        alignment = _DEFAULT_ALIGNMENT
        for _ in range(entries):
            key = reader.string()
            found = reader.value(reader.number("I"))
            if key == b"general.alignment" and found:
                alignment = found
        end = 0
        for _ in range(tensors):
            reader.string()
            shape = [reader.number("Q") for _ in range(reader.number("I"))]
            kind, offset = reader.number("I"), reader.number("Q")
            values = 1
            for extent in shape:
                values *= extent
            block_bytes, block_values = _TYPE_SIZES.get(kind, (0, 1))
            end = max(end, offset + max(1, values // block_values * block_bytes))
        start = -(-reader.position // alignment) * alignment
        return start + end if tensors else reader.position
