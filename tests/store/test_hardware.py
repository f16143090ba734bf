"""Unit tests for modelperf.store.hardware: the machine description and the id derived from it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.store import hardware
from modelperf.store.hardware import (
    INFO_FIELDS,
    KEY_FIELDS,
    VOLATILE_FIELDS,
    hardware_id,
    machine_info,
    parse_key_fields,
)

ALLOWED = [name for name in INFO_FIELDS if name not in VOLATILE_FIELDS]

INFO: dict[str, Any] = {
    "cpu_model": "Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz",
    "cpu_flags": "amx_bf16 amx_int8 amx_tile avx avx2 avx512_vnni avx512f fma",
    "cpu_physical_cores": 2,
    "cpu_logical_cores": 4,
    "cpu_affinity_cores": 4,
    "memory_total_bytes": 24_696_061_952,
    "memory_gib": 23,
    "os": "Linux",
    "os_release": "6.1.0-18-amd64",
    "arch": "x86_64",
    "accelerator": None,
    "python": "3.11",
    "python_full": "3.11.7",
    "python_implementation": "CPython",
    "torch": "2.13.0+cpu",
    "transformers": "5.24.0",
    "llama_cpp_python": "0.3.16",
    "numpy": "2.4.6",
    "cpu_mhz": 2299.998,
    "hostname": "runner-17",
}

# A different, valid value for every field, to show which ones move the id.
OTHER_VALUE: dict[str, Any] = {
    "cpu_model": "AMD EPYC 7763 64-Core Processor",
    "cpu_flags": "avx avx2 fma",
    "cpu_physical_cores": 4,
    "cpu_logical_cores": 8,
    "cpu_affinity_cores": 2,
    "memory_total_bytes": 24_000_000_000,
    "memory_gib": 31,
    "os": "Darwin",
    "os_release": "6.8.0-31-generic",
    "arch": "aarch64",
    "accelerator": "NVIDIA H100 80GB HBM3",
    "python": "3.12",
    "python_full": "3.11.9",
    "python_implementation": "PyPy",
    "torch": "2.12.0+cpu",
    "transformers": "4.57.1",
    "llama_cpp_python": "0.3.2",
    "numpy": "1.26.4",
    "cpu_mhz": 3100.0,
    "hostname": "runner-42",
}

ONE_SENTENCE = re.compile(r"^[^\n]+[.]$")


def _is_one_sentence(message: str) -> bool:
    return bool(ONE_SENTENCE.match(message)) and ". " not in message


def test_machine_info_reports_every_field_as_json() -> None:
    info = machine_info()
    assert tuple(info) == INFO_FIELDS
    assert json.loads(json.dumps(info)) == info
    assert info["memory_gib"] == round(info["memory_total_bytes"] / 1024**3)
    assert info["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert info["numpy"] == metadata.version("numpy")
    assert info["cpu_logical_cores"] >= 1


def test_machine_info_never_imports_torch_or_llama_cpp() -> None:
    code = (
        "import sys, modelperf.store.hardware as h; h.machine_info(); "
        "print(sorted(m for m in ('torch', 'llama_cpp', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n", "NVIDIA H100 80GB HBM3"),
        ("GPU 0: NVIDIA A10G (UUID: GPU-1)\nGPU 1: NVIDIA A10G (UUID: GPU-2)\n", "2x NVIDIA A10G"),
        ("GPU 0: Tesla T4 (UUID: GPU-1)\nGPU 1: NVIDIA L4 (UUID: GPU-2)\n", "Tesla T4 + NVIDIA L4"),
        (None, None),
        ("No devices were found\n", None),
    ],
)
def test_accelerator_parses_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, listing: str | None, expected: str | None
) -> None:
    monkeypatch.setattr(hardware, "_run", lambda command: listing)
    monkeypatch.setattr(hardware, "_NVIDIA_PROC", tmp_path / "no-driver")
    assert hardware._accelerator() == expected


def test_accelerator_falls_back_to_the_driver_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hardware, "_run", lambda command: None)
    monkeypatch.setattr(hardware, "_NVIDIA_PROC", tmp_path)
    assert hardware._accelerator() == "nvidia"
    gpu = tmp_path / "gpus" / "0000:01:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA L4\nIRQ: 42\n")
    assert hardware._accelerator() == "NVIDIA L4"


def test_hardware_id_is_readable_and_filesystem_safe() -> None:
    hid = hardware_id(INFO)
    assert re.fullmatch(r"x86_64-intel-xeon-platinum-8480c-2c4t-23g-[0-9a-f]{8}", hid)
    with_gpu = hardware_id({**INFO, "accelerator": "NVIDIA H100 80GB HBM3"})
    assert re.fullmatch(
        r"x86_64-intel-xeon-platinum-8480c-2c4t-23g-nvidia-h100-80gb-hbm3-[0-9a-f]{8}", with_gpu
    )


def test_hardware_id_is_stable_for_the_real_machine() -> None:
    assert hardware_id(machine_info()) == hardware_id(machine_info())


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_hardware_id_changes_with_each_key_field(field: str) -> None:
    assert hardware_id({**INFO, field: OTHER_VALUE[field]}) != hardware_id(INFO)


@pytest.mark.parametrize("field", [f for f in INFO_FIELDS if f not in KEY_FIELDS])
def test_hardware_id_ignores_fields_outside_the_key(field: str) -> None:
    assert hardware_id({**INFO, field: OTHER_VALUE[field]}) == hardware_id(INFO)


def test_hardware_id_ignores_field_order() -> None:
    assert hardware_id(INFO, tuple(reversed(KEY_FIELDS))) == hardware_id(INFO, KEY_FIELDS)


def test_hardware_id_uses_only_the_selected_fields() -> None:
    fields = ("arch", "torch")
    hid = hardware_id(INFO, fields)
    assert "xeon" not in hid and "2c4t" not in hid
    assert hardware_id({**INFO, "cpu_model": "Other CPU", "memory_gib": 64}, fields) == hid
    assert hardware_id({**INFO, "torch": "2.1.0"}, fields) != hid


def test_hardware_id_includes_extra_settings() -> None:
    base = hardware_id(INFO, extra={"torch_threads": 2, "llama_threads": 2})
    assert base == hardware_id(INFO, extra={"llama_threads": 2, "torch_threads": 2})
    assert base != hardware_id(INFO, extra={"torch_threads": 4, "llama_threads": 2})
    assert base != hardware_id(INFO)


@pytest.mark.parametrize("field", VOLATILE_FIELDS)
def test_hardware_id_refuses_volatile_fields(field: str) -> None:
    with pytest.raises(ValueError, match="changes between runs") as info:
        hardware_id(INFO, (*KEY_FIELDS, field))
    assert _is_one_sentence(str(info.value))


@pytest.mark.parametrize(
    ("fields", "extra", "match"),
    [
        (("arch", "gpu"), None, "Unknown hardware key field 'gpu'"),
        (KEY_FIELDS, {"arch": "arm"}, "not a machine field"),
        (KEY_FIELDS, {"bad name": 1}, "must be an identifier"),
        (KEY_FIELDS, {"threads": [1, 2]}, "has a list value"),
    ],
)
def test_hardware_id_refuses_bad_requests(
    fields: tuple[str, ...], extra: dict[str, Any] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match) as info:
        hardware_id(INFO, fields, extra)
    assert _is_one_sentence(str(info.value))


def test_hardware_id_tolerates_a_partial_description() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}", hardware_id({}))
    assert hardware_id({"arch": "arm64"}, ("arch",)).startswith("arm64-")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu_model, arch, torch", ("cpu_model", "arch", "torch")),
        ("arch\n  torch", ("arch", "torch")),
        (" arch,,torch, ", ("arch", "torch")),
        ("arch, arch", ("arch",)),
    ],
)
def test_parse_key_fields_examples(text: str, expected: tuple[str, ...]) -> None:
    assert parse_key_fields(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "names no fields"),
        (" , ", "names no fields"),
        ("arch, hostname", "changes between runs"),
        ("arch, cpu", "Unknown hardware key field 'cpu'"),
    ],
)
def test_parse_key_fields_errors(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        parse_key_fields(text)
    assert _is_one_sentence(str(info.value))


SEPARATORS = st.sampled_from([",", ", ", " ", "\n", " ,\t", ",,"])


@given(st.lists(st.sampled_from(ALLOWED), min_size=1), st.lists(SEPARATORS, min_size=1), SEPARATORS)
def test_parse_key_fields_round_trips(names: list[str], separators: list[str], edge: str) -> None:
    text = edge + "".join(name + separators[i % len(separators)] for i, name in enumerate(names))
    assert parse_key_fields(text) == tuple(dict.fromkeys(names))


@given(
    st.lists(st.sampled_from(ALLOWED)), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1)
)
def test_parse_key_fields_rejects_any_unknown_name(names: list[str], unknown: str) -> None:
    if unknown in INFO_FIELDS:
        return
    with pytest.raises(ValueError, match=f"Unknown hardware key field '{unknown}'"):
        parse_key_fields(", ".join([*names, unknown]))


@given(st.text())
def test_parse_key_fields_only_returns_valid_names_or_raises_value_error(text: str) -> None:
    try:
        names = parse_key_fields(text)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return
    assert names and set(names) <= set(ALLOWED)
    assert hardware_id(INFO, names)
