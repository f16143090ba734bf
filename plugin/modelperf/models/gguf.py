"""A GGUF file as the Llama adapter meets it: the checks before llama.cpp opens it, and its quantisation's name.

llama.cpp finds a wrong path, a file of another format or a truncated download only when it loads
it, and then each test that loads the model fails on its own; :func:`check_gguf` finds each before,
in one sentence naming the file and the fix. The model registry and the llama server call it before
anything loads or starts, and :func:`modelperf.models.llama.load_llama` before every load.
"""

from __future__ import annotations

from pathlib import Path

from modelperf.models.base import ModelUnavailable
from modelperf.models.gguf_size import GGUFError, expected_size

__all__ = ["check_gguf", "quantization_name"]

_GGUF_MAGIC = b"GGUF"
# Smallest possible GGUF: magic, version, tensor count and metadata count.
_GGUF_HEADER_BYTES = 24
# llama.cpp's general.file_type enumeration, for the quantisations users meet in practice.
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
               11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
               17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def quantization_name(file_type: int) -> str:
    """The name of a GGUF's ``general.file_type`` (``Q4_K_M``), or ``file type N`` for one not listed."""
    return _FILE_TYPES.get(file_type, f"file type {file_type}")


def check_gguf(path: Path) -> None:
    """Raise ModelUnavailable unless ``path`` is a readable file that starts like a GGUF."""
    if not path.exists():
        raise ModelUnavailable(f"The Llama model {path} does not exist: give the path of a .gguf file to --llama-model.")
    if path.is_dir():
        raise ModelUnavailable(f"The Llama model {path} is a directory: give the path of the .gguf file inside it.")
    try:
        with path.open("rb") as handle:
            head = handle.read(_GGUF_HEADER_BYTES)
    except OSError as exc:
        raise ModelUnavailable(f"The Llama model {path} is not readable ({exc.strerror}): fix its permissions.") from None
    if not head.startswith(_GGUF_MAGIC):
        raise ModelUnavailable(
            f"The Llama model {path} is not a GGUF file (it does not start with 'GGUF'): convert it with "
            "llama.cpp's convert_hf_to_gguf.py or download a .gguf build."
        )
    if len(head) < _GGUF_HEADER_BYTES:
        raise ModelUnavailable(f"The Llama model {path} is truncated ({len(head)} bytes): download it again.")
    try:
        needed = expected_size(path)
    except GGUFError as exc:
        raise ModelUnavailable(f"The Llama model {path} is truncated or damaged ({exc}): download it again.") from None
    except OSError as exc:
        raise ModelUnavailable(f"The Llama model {path} is not readable ({exc.strerror}): fix its permissions.") from None
    size = path.stat().st_size
    if needed is not None and size < needed:
        raise ModelUnavailable(f"The Llama model {path} is truncated: its header describes {needed} bytes and the "
                               f"file has {size}; download it again.")
