"""A model that crashes or hangs its library is a result, not the end of the session.

The Llama stand-in is a fake ``llama_cpp`` package put first on the inner session's path: the
probe's child imports it through the plugin's real loading code and dies with SIGSEGV (or sleeps)
the moment a model is constructed, as llama.cpp's AMX repack does on the first evaluation. Beside
its tests, a test that uses no model still runs and records its figure (the real DistilBERT is only
probed: ``load_model`` may load either model).
"""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest

from modelperf.models.base import ModelUnavailable
from modelperf.models.embedded import cache_root
from modelperf.models.repack import cpu_has_amx, repack_choice

# pytester gives inner sessions a HOME of their own; share the real cache of converted checkpoints.
SHARED_CACHE = str(cache_root())

RUN = ("--benchmark", "--baseline-dir", "baselines", "--history", "history.sqlite", "-p", "no:randomly")

STANDIN = {
    "__init__.py": """
        import os
        import signal
        import time

        __version__ = "0.0.0+standin"

        def llama_print_system_info():
            return b"CPU : AVX2 = 1 | AMX_INT8 = 1 | stand-in build"

        class Llama:
            def __init__(self, model_path, **kwargs):
                if os.environ.get("STANDIN_LLAMA") == "hang":
                    time.sleep(3600)
                if os.environ.get("STANDIN_LLAMA") == "raise":
                    raise RuntimeError("stand-in load error")
                os.kill(os.getpid(), signal.SIGSEGV)
    """,
    "llama_cpp.py": """
        import types

        class llama_model_params:
            _fields_ = [("use_extra_bufts", None)]

        def llama_model_default_params():
            return types.SimpleNamespace(use_extra_bufts=True)
    """,
}

INNER = """
    import pytest

    @pytest.mark.peak_memory
    def test_without_a_model():
        assert len(bytearray(1 << 20)) == 1 << 20

    def test_llama_generates(llama):
        llama.generate("Once upon a time", 2)

    def test_llama_loads_fresh(load_model):
        load_model("llama")
"""


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPERF_CACHE", SHARED_CACHE)


def _standin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    package = pytester.path / "standin" / "llama_cpp"
    package.mkdir(parents=True)
    for name, text in STANDIN.items():
        (package / name).write_text(textwrap.dedent(text))
    (pytester.path / "model.gguf").write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 16)
    # In front of the path the session was given, which may name the plugin's source to test.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(package.parent), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("STANDIN_LLAMA", mode)


def _real_distilbert() -> None:
    from modelperf.models.embedded import minilm_source_dir

    try:
        minilm_source_dir()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


def test_a_probe_crash_fails_that_models_tests_and_the_session_still_ends_whole(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _real_distilbert()  # probed too: load_model may load it
    _standin(pytester, monkeypatch, "segv")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(*RUN, "--llama-model", "model.gguf", "-rA")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    # The session fixture's failure is an error at set-up; load_model's is a failure in the test body.
    assert (outcomes.get("passed"), outcomes.get("errors"), outcomes.get("failed")) == (1, 1, 1), outcomes
    result.stdout.fnmatch_lines([
        "modelperf: probing distilbert, llama in child processes*",  # load_model may load either
        ("modelperf: llama: The Llama model model.gguf crashed the probe process with SIGSEGV (signal 11) while "
        "loading it and evaluating once, so its tests fail without running: *--llama-repack*"),
        "*PASSED*test_without_a_model*",
        "ERROR test_inner.py::test_llama_generates - Failed: The Llama model*",
        "FAILED test_inner.py::test_llama_loads_fresh - Failed: The Llama model*",
    ])
    assert "Fatal Python error" not in result.stdout.str() + result.stderr.str()
    # The session wrote what it measured: the other test's record, the machine's llama.cpp line, history.
    [folder] = [p for p in (pytester.path / "baselines").iterdir() if p.is_dir()]
    records = json.loads((folder / "test_inner.json").read_text())
    assert list(records["records"]) == ["test_inner.py::test_without_a_model::memray_peak_bytes"]
    machine = json.loads((folder / "machine.json").read_text())
    assert machine["llama_cpp_system_info"] == "CPU : AVX2 = 1 | AMX_INT8 = 1 | stand-in build"
    with sqlite3.connect(pytester.path / "history.sqlite") as db:
        [(count,)] = db.execute("select count(*) from measurements").fetchall()
    assert count == 1


def test_a_hung_probe_is_stopped_at_its_time_limit_with_a_sentence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _standin(pytester, monkeypatch, "hang")
    pytester.makepyfile(test_inner="def test_llama(llama):\n    llama.generate('Hi', 1)\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(*RUN, "--llama-model", "model.gguf", "--model-probe-timeout", "1")
    # The stand-in sleeps an hour; the whole session ending within a minute shows it was stopped.
    assert time.monotonic() - started < 60
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        ("modelperf: llama: The Llama model model.gguf did not finish loading and evaluating once within 1 s in "
        "the probe process, which was stopped: raise --model-probe-timeout*"),
    ])


def test_probe_timeout_zero_skips_the_probe(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in raises when constructed: with no probe, the session's own load meets the error.
    _standin(pytester, monkeypatch, "raise")
    pytester.makepyfile(test_inner="def test_plain():\n    pass\n\ndef test_llama(llama):\n    pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--llama-model", "model.gguf", "--model-probe-timeout", "0")
    result.assert_outcomes(passed=1, errors=1)
    assert "probing" not in result.stdout.str()
    assert "stand-in load error" in result.stdout.str()


@pytest.mark.parametrize("value", ["maybe", "yes", ""])
def test_bad_repack_value_is_a_usage_sentence(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(f"--llama-repack={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llama-repack*"])


def test_repack_ini_key_reaches_the_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllama_repack = off\nmodel_probe_timeout = 12.5\n")
    pytester.makepyfile("""
        def test_show(request):
            settings = request.config.pluginmanager.get_plugin("modelperf-session").settings
            print(f"SETTING repack={settings.llama_repack} probe={settings.model_probe_timeout}")
    """)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*SETTING repack=off probe=12.5*"])


CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile amx_int8\n"
CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"


@pytest.mark.parametrize(("cpuinfo", "has_amx"), [(CPUINFO_AMX, True), (CPUINFO_PLAIN, False), ("", False)])
def test_amx_is_read_from_the_cpu_flags(cpuinfo: str, has_amx: bool) -> None:
    assert cpu_has_amx(cpuinfo) is has_amx


@pytest.mark.parametrize(
    ("setting", "has_amx", "repack"),
    [("auto", True, False), ("auto", False, True), ("on", True, True), ("off", False, False)],
)
def test_repack_choice(setting: str, has_amx: bool, repack: bool) -> None:
    chosen, why = repack_choice(setting, has_amx)
    assert chosen is repack
    assert why.startswith("on" if repack else "off")
    assert ("Intel AMX CPU" in why) is (setting == "auto" and has_amx)


@pytest.mark.parametrize(("setting", "hint"), [("on", "this CPU has Intel AMX"), ("off", "already off")])
def test_the_crash_sentence_names_amx_when_it_is_the_likely_cause(
    monkeypatch: pytest.MonkeyPatch, setting: str, hint: str
) -> None:
    from dataclasses import replace

    from modelperf.config import OPTIONS, Settings
    from modelperf.models import repack
    from modelperf.models.registry import ModelRegistry

    monkeypatch.setattr(repack, "cpu_has_amx", lambda: True)
    defaults = {o.dest: o.parse(o.default) if isinstance(o.default, str) and o.parse else o.default for o in OPTIONS}
    settings = Settings(**{**defaults, "benchmark": True, "baseline_save": False, "keep_captures": False,
                           "baseline_dir": Path("b"), "explicit": frozenset()})
    hint_text = ModelRegistry(replace(settings, llama_repack=setting))._crash_hint("llama")
    assert hint in hint_text and "--llama-repack" in hint_text


def _real_llama_path() -> Path:
    from modelperf.models.embedded import smollm_gguf_path

    try:
        return smollm_gguf_path()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


def test_auto_on_an_amx_cpu_loads_the_real_llama_without_repacking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AMX code path, forced on a CPU without AMX: the load must reach llama.cpp with repacking off."""
    _real_llama_path()
    pytest.importorskip("llama_cpp")
    from modelperf.models import llama as llama_module

    really_amx = llama_module.cpu_has_amx()
    monkeypatch.setattr(llama_module, "cpu_has_amx", lambda: True)
    model = llama_module.load_llama(None, 1, 128, repack="auto")
    assert model.llm.model_params.use_extra_bufts is False
    assert model.info.details["weight_repack"].startswith("off (auto: Intel AMX CPU")
    assert model.info.key.endswith("+norepack")
    assert model.generate("Once upon a time", 2).tokens  # it evaluates

    if really_amx:  # the comparison with repacking on would kill this process (the bug auto avoids)
        return
    plain = llama_module.load_llama(None, 1, 128, repack="on")
    assert plain.llm.model_params.use_extra_bufts is True
    assert "+" not in plain.info.key
    # Without repacking the numbers are the same; only the memory layout of the weights differs.
    assert plain.generate("Once upon a time", 2).tokens == model.generate("Once upon a time", 2).tokens


def test_model_tests_under_xdist_report_their_results_without_internal_errors(pytester: pytest.Pytester) -> None:
    """The real DistilBERT's info crosses from workers to the controller (its versions once were TorchVersion)."""
    pytest.importorskip("xdist")
    _real_distilbert()
    pytester.makepyfile(test_inner="""
        import pytest

        @pytest.mark.latency
        def test_latency(distilbert, benchmark):
            benchmark(distilbert.classify, ["A fine film."])

        @pytest.mark.peak_memory
        def test_memory(distilbert):
            distilbert.classify(["A fine film."])
    """)
    # No probe: the crossing from worker to controller is the point, and the probe has tests of its own.
    # One worker is enough for that crossing; each more would load torch and the model again.
    result = pytester.runpytest_subprocess(*RUN, "-n", "1", "--model-probe-timeout", "0", "--results-json",
                                           "results.json", "-rs")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*latency is not measured in pytest-xdist workers*"])
    results = json.loads((pytester.path / "results.json").read_text())["results"]
    assert [r["measurement"]["metric"] for r in results] == ["memray_peak_bytes"]
