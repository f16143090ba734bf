"""Describe the machine, and reduce that description to a short id that names a baseline folder.

Baselines are only comparable on the same hardware, so each machine stores its own.
:func:`machine_info` gathers everything worth knowing (written next to the baselines as
``machine.json``); :func:`hardware_id` keeps only the machine itself (CPU, its feature flags, cores,
memory, accelerator, OS, architecture), so the same runner gets the same folder every time, also
after a library upgrade. Library versions and thread counts travel with each record instead, where a
comparison can name them ("torch 2.12.0 -> 2.13.0").

Nothing here imports torch or llama_cpp: versions come from package metadata and the GPU from
``nvidia-smi``, so loading the plugin stays cheap and never initialises CUDA.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "HARDWARE_FIELDS",
    "INFO_FIELDS",
    "KEY_FIELDS",
    "VERSION_FIELDS",
    "VOLATILE_FIELDS",
    "hardware_id",
    "machine_info",
    "parse_key_fields",
]

# Distributions whose version changes the speed or the numbers of a model (key name -> dist name).
_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "llama_cpp_python": "llama_cpp_python",
    "numpy": "numpy",
}

# Everything machine_info() reports, in the order it reports it.
INFO_FIELDS: tuple[str, ...] = (
    "cpu_model",
    "cpu_flags",
    "cpu_physical_cores",
    "cpu_logical_cores",
    "cpu_affinity_cores",
    "memory_total_bytes",
    "memory_gib",
    "os",
    "os_release",
    "arch",
    "accelerator",
    "python",
    "python_full",
    "python_implementation",
    *_PACKAGES,
    "cpu_mhz",
    "hostname",
)

# The machine, as an old baseline folder (keyed by versions and threads too) is recognised by: the
# fields both schemes recorded in machine.json.
HARDWARE_FIELDS: tuple[str, ...] = (
    "cpu_model",
    "cpu_physical_cores",
    "cpu_logical_cores",
    "memory_gib",
    "os",
    "arch",
    "accelerator",
)
# The id ignores the kernel release (os_release): CI images and laptops patch the kernel every few
# weeks without changing model speed, and a new folder each time would orphan every baseline.
# The CPU flags count: the same model name can come with AVX-512 or AMX enabled or fused off (a VM's
# CPU model hides them), and torch and llama.cpp pick their kernels by them.
KEY_FIELDS: tuple[str, ...] = (*HARDWARE_FIELDS[:1], "cpu_flags", *HARDWARE_FIELDS[1:])
# Software whose version changes the speed or the numbers of a model: stored in each record.
VERSION_FIELDS: tuple[str, ...] = ("python", *_PACKAGES)
# The flags torch's and llama.cpp's CPU kernels dispatch on (x86 from /proc/cpuinfo, Arm's SIMD too).
_CPU_FLAGS = frozenset({
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "sve2",
    "i8mm", "bf16",
})

# Values that differ between two runs on the same machine (frequency scaling, container names,
# a few MiB of kernel reservations); keying on them would give every run its own baseline folder.
VOLATILE_FIELDS: tuple[str, ...] = ("cpu_mhz", "hostname", "memory_total_bytes")

_GIB = 1024**3
_HASH_CHARS = 8  # 32 bits: collisions only matter between folders of one repository.
_MAX_CPU_SLUG = 40  # keeps the folder name readable in `ls` and well below path limits.
_NVIDIA_SMI_TIMEOUT_S = 10
_NVIDIA_PROC = Path("/proc/driver/nvidia")  # present whenever the NVIDIA kernel driver is loaded
_EXTRA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SPLIT = re.compile(r"[\s,]+")
_CPU_NOISE = re.compile(r"\((?:r|tm)\)|\bcpu\b|@.*$", re.IGNORECASE)


def machine_info() -> dict[str, Any]:
    """Return a full, JSON-safe description of this machine and its model software stack."""
    memory = psutil.virtual_memory().total
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_affinity_cores": _affinity_cores(),
        "memory_total_bytes": memory,
        # Rounded to the nearest GiB: kernel reservations shave a little off the nominal size.
        "memory_gib": round(memory / _GIB),
        "os": platform.system(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "accelerator": _accelerator(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "python_full": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    for field, dist in _PACKAGES.items():
        info[field] = _package_version(dist)
    info["cpu_mhz"] = _cpu_mhz()
    info["hostname"] = socket.gethostname()
    return info


def hardware_id(
    info: Mapping[str, Any],
    fields: tuple[str, ...] = KEY_FIELDS,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Return a short, stable, filesystem-safe id for ``info`` reduced to ``fields`` and ``extra``.

    Example: ``x86_64-intel-xeon-platinum-8480c-2c4t-23g-1a2b3c4d``. The readable prefix only
    uses selected fields, and the hash covers every selected field plus ``extra`` (settings such
    as thread counts that change speed), so field order never matters.
    """
    _check_fields(fields)
    selected: dict[str, Any] = {name: info.get(name) for name in fields}
    for name, value in (extra or {}).items():
        _check_extra(name, value)
        selected[name] = value
    digest = hashlib.sha256(json.dumps(selected, sort_keys=True, default=str).encode()).hexdigest()
    return "-".join([*_readable_parts(selected), digest[:_HASH_CHARS]])


def parse_key_fields(text: str) -> tuple[str, ...]:
    """Parse an option or ini value such as ``"cpu_model, arch, torch"`` into validated field names.

    Commas and whitespace both separate names; repeats are dropped, the first order is kept.
    """
    names = tuple(dict.fromkeys(name for name in _SPLIT.split(text) if name))
    if not names:
        raise ValueError(
            f"The hardware key field list {text!r} names no fields; give a comma-separated list "
            f"such as 'cpu_model, arch, torch'."
        )
    _check_fields(names)
    return names


def _check_fields(fields: tuple[str, ...]) -> None:
    for name in fields:
        if name in VOLATILE_FIELDS:
            raise ValueError(
                f"The field {name!r} changes between runs on the same machine and cannot be part of "
                f"the hardware id; remove it from the key fields."
            )
        if name not in INFO_FIELDS:
            allowed = ", ".join(f for f in INFO_FIELDS if f not in VOLATILE_FIELDS)
            raise ValueError(f"Unknown hardware key field {name!r}; choose from: {allowed}.")


def _check_extra(name: str, value: Any) -> None:
    if not _EXTRA_NAME.match(name) or name in INFO_FIELDS:
        raise ValueError(
            f"The extra hardware key {name!r} must be an identifier that is not a machine field; rename it."
        )
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(
            f"The extra hardware key {name!r} has a {type(value).__name__} value; pass a string, "
            f"number, boolean or None."
        )


def _readable_parts(selected: Mapping[str, Any]) -> list[str]:
    """Human-readable pieces of the id, from the selected fields only (absent ones are skipped)."""
    cpu = _CPU_NOISE.sub(" ", str(selected.get("cpu_model") or ""))
    physical, logical = selected.get("cpu_physical_cores"), selected.get("cpu_logical_cores")
    memory = selected.get("memory_gib")
    parts = [
        _slug(selected.get("arch")),
        _slug(cpu, _MAX_CPU_SLUG),
        (f"{physical}c" if physical else "") + (f"{logical}t" if logical else ""),
        f"{memory}g" if memory else "",
        _slug(selected.get("accelerator"), _MAX_CPU_SLUG),
    ]
    return [part for part in parts if part]


def _slug(value: Any, limit: int = _MAX_CPU_SLUG) -> str:
    """Lower-case letters, digits, '.', '_' and single dashes: safe on every filesystem."""
    if value is None:
        return ""
    return re.sub(r"[^a-z0-9._]+", "-", str(value).lower())[:limit].strip("-._")


def _cpu_model() -> str:
    """The marketing name of the CPU, e.g. 'Intel(R) Xeon(R) Platinum 8480C'."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    # x86 says 'model name'; older ARM kernels say 'Processor' or 'Hardware'.
    for label in ("model name", "Processor", "Hardware"):
        match = re.search(rf"^{label}\s*:\s*(.+)$", text, re.MULTILINE)
        if match and match.group(1).strip():
            return match.group(1).strip()
    if sys.platform == "darwin":
        brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if brand:
            return brand.strip()
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> str | None:
    """The model-relevant CPU feature flags, sorted and space-separated; None where the OS hides them."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # x86 says 'flags', Arm says 'Features'; every core lists the same set.
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    if match is None:
        return None
    return " ".join(sorted(_CPU_FLAGS.intersection(match.group(1).split())))


def _affinity_cores() -> int | None:
    """Cores this process may run on; smaller than the machine's count in pinned containers."""
    try:
        return len(psutil.Process().cpu_affinity() or [])
    except (AttributeError, OSError, psutil.Error):
        return None  # macOS has no affinity API


def _cpu_mhz() -> float | None:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, psutil.Error):
        return None
    return float(freq.current) if freq is not None else None


def _accelerator() -> str | None:
    """Name(s) of the NVIDIA GPUs, or None; never imports torch (that would initialise CUDA)."""
    listing = _run(["nvidia-smi", "-L"])
    # Lines look like 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)'.
    names = re.findall(r"^GPU \d+: (.+?)(?: \(UUID:.*)?$", listing or "", re.MULTILINE)
    if not names:
        names = _proc_gpu_names()
    if not names:
        return "nvidia" if _NVIDIA_PROC.exists() else None
    if len(set(names)) == 1 and len(names) > 1:
        return f"{len(names)}x {names[0]}"
    return " + ".join(names)


def _proc_gpu_names() -> list[str]:
    names = []
    for info in sorted((_NVIDIA_PROC / "gpus").glob("*/information")):
        try:
            match = re.search(r"^Model:\s*(.+)$", info.read_text(errors="replace"), re.MULTILINE)
        except OSError:
            continue
        if match:
            names.append(match.group(1).strip())
    return names


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
