"""A GGUF file cut short stops the session at its start (exit status 4), as the other bad model paths do,
instead of failing every test that loads it one by one."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from modelperf.models.gguf_size import expected_size


def _string(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


def tiny_gguf(values: int = 64) -> bytes:
    """A GGUF v3 file with one metadata entry and one F32 tensor of ``values`` floats."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    header += _string("general.alignment") + struct.pack("<II", 4, 32)
    header += _string("weights") + struct.pack("<IQIQ", 1, values, 0, 0)
    padding = -len(header) % 32
    return header + b"\0" * padding + struct.pack(f"<{values}f", *range(values))


@pytest.mark.parametrize("values", [1, 64, 1000])
def test_the_size_a_header_describes_is_the_file_size(tmp_path: Path, values: int) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(tiny_gguf(values))
    assert expected_size(path) == path.stat().st_size


def test_the_embedded_model_is_whole(tmp_path: Path) -> None:
    from modelperf.models.base import ModelUnavailable
    from modelperf.models.embedded import smollm_gguf_path

    try:
        path = smollm_gguf_path()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    assert expected_size(path) == path.stat().st_size


@pytest.mark.parametrize("cut", [1, 200, 300])
def test_a_truncated_gguf_is_one_sentence_at_the_start(pytester: pytest.Pytester, cut: int) -> None:
    data = tiny_gguf()
    (pytester.path / "model.gguf").write_bytes(data[: len(data) - cut])
    pytester.makepyfile(test_plain="def test_plain():\n    raise AssertionError('no test may run')\n")
    result = pytester.runpytest("--benchmark", "--history", "off", "--llama-model", "model.gguf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert "The Llama model model.gguf is truncated" in error and error.endswith("download it again.")


def test_a_whole_gguf_passes_the_start_check(pytester: pytest.Pytester) -> None:
    (pytester.path / "model.gguf").write_bytes(tiny_gguf())
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("--benchmark", "--history", "off", "--llama-model", "model.gguf")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
