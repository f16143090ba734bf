"""Whether llama.cpp may repack a GGUF's weights into its extra buffer types (--llama-repack).

On CPUs with Intel AMX llama.cpp repacks weights into AMX buffers, and that path segfaults on the
first evaluation (a known llama.cpp bug), taking the whole process down. ``auto`` therefore loads
without extra buffer types on such CPUs; ``llama_cpp.Llama`` takes no argument for that, so
:func:`model_params` sets the field for the duration of one load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelperf.models.base import ModelUnavailable

__all__ = ["AMX_FLAGS", "check_repack_supported", "cpu_has_amx", "model_params", "repack_choice", "repack_fields"]

# /proc/cpuinfo flags of Intel AMX. On such CPUs llama.cpp repacks weights into AMX buffers, and
# that path segfaults on the first evaluation (a known llama.cpp bug), killing the whole process.
AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")
_CPUINFO = Path("/proc/cpuinfo")


def cpu_has_amx(cpuinfo: str | None = None) -> bool:
    """Whether this CPU (or the given /proc/cpuinfo text) reports any Intel AMX flag."""
    if cpuinfo is None:
        try:
            cpuinfo = _CPUINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False  # not Linux: no AMX detection, and no repack change
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in AMX_FLAGS)


def repack_choice(setting: str, has_amx: bool) -> tuple[bool, str]:
    """(repack?, why) for --llama-repack ``setting`` ("auto", "on" or "off") on a CPU with or without AMX."""
    if setting == "on":
        return True, "on (--llama-repack on)"
    if setting == "off":
        return False, "off (--llama-repack off)"
    if has_amx:
        return False, "off (auto: Intel AMX CPU, where llama.cpp's repacked AMX path crashes)"
    return True, "on (auto: no Intel AMX)"


def repack_fields(repack: bool) -> dict[str, Any]:
    """The model-parameter fields (for :func:`model_params`) that carry a repack choice to llama.cpp."""
    return {} if repack else {"use_extra_bufts": False}


@contextlib.contextmanager
def model_params(**fields: Any) -> Iterator[None]:
    """Load-time model parameters that llama_cpp.Llama does not take as arguments.

    ``Llama.__init__`` starts from ``llama_model_default_params()``; wrapping that function for the
    duration of one load is the narrowest way to change a field such as ``use_extra_bufts``.
    """
    import llama_cpp.llama_cpp as native

    original = native.llama_model_default_params

    def patched() -> Any:
        params = original()
        for name, value in fields.items():
            setattr(params, name, value)
        return params

    native.llama_model_default_params = patched
    try:
        yield
    finally:
        native.llama_model_default_params = original


def check_repack_supported() -> None:
    import llama_cpp
    import llama_cpp.llama_cpp as native

    names = {name for name, *_ in getattr(native.llama_model_params, "_fields_", ())}
    if "use_extra_bufts" not in names:
        raise ModelUnavailable(
            f"llama-cpp-python {llama_cpp.__version__} cannot turn llama.cpp's weight repacking off (its model "
            "parameters have no use_extra_bufts): upgrade it with `pip install -U llama-cpp-python`, or run with "
            "--llama-repack on if this CPU's llama.cpp build does not crash."
        )
