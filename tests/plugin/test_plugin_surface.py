"""What a user meets before any measurement: the --benchmark gate, options, ini keys, help and model paths.

Every test runs an inner pytest session through ``pytester`` and looks only at its outcome and output.
"""

from __future__ import annotations

import re
import struct

import pytest

from modelperf.config import OPTIONS

# Every --benchmark session below keeps its files inside the pytester directory.
BENCH = ("--benchmark", "--history", "off", "--baseline-dir", "baselines")

MODEL_TESTS = """
    import pytest

    def test_plain():
        pass

    def test_uses_distilbert(distilbert):
        pass

    def test_uses_llama(llama):
        pass

    def test_uses_load_model(load_model):
        pass

    @pytest.mark.latency
    def test_latency_marked(benchmark):
        pass

    @pytest.mark.peak_memory(limit="1 GB")
    def test_memory_marked():
        pass

    @pytest.mark.accuracy
    def test_accuracy_marked():
        pass
"""

SHOW_SETTINGS = """
    def test_show(request):
        settings = request.config.pluginmanager.get_plugin("modelperf-session").settings
        print(f"SETTING llama_context={settings.llama_context} benchmark={settings.benchmark} "
              f"baseline_dir={settings.baseline_dir} history={settings.history}")
"""


# ---------------------------------------------------------------------------------- the --benchmark gate


def test_model_tests_skip_without_benchmark_flag_and_say_how_to_run_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODEL_TESTS)
    passed, skipped, failed = pytester.inline_run().listoutcomes()
    assert [r.nodeid.split("::")[1] for r in passed] == ["test_plain"]
    assert not failed
    assert len(skipped) == 6
    for report in skipped:
        assert isinstance(report.longrepr, tuple)
        assert "add --benchmark" in report.longrepr[2], report.nodeid


def test_plain_tests_run_and_pass_with_benchmark_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*BENCH, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SETTING*benchmark=True*"])


def test_summary_sections_appear_only_with_benchmark_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_note(modelperf_summary):
            modelperf_summary("modelperf: notes from the suite", "the note of this test")
    """)
    plain = pytester.runpytest()
    plain.assert_outcomes(passed=1)
    assert "modelperf" not in plain.stdout.str().split("collected", 1)[1]
    benched = pytester.runpytest(*BENCH)
    benched.assert_outcomes(passed=1)
    benched.stdout.fnmatch_lines(["=* modelperf: notes from the suite =*", "the note of this test"])


def test_benchmark_flag_coexists_with_pytest_benchmark_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*BENCH, "--benchmark-disable-gc", "--benchmark-min-rounds=3", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SETTING*benchmark=True*"])


def test_abbreviated_benchmark_flag_is_rejected(pytester: pytest.Pytester) -> None:
    # pytest parses with abbreviations off, so a typo never silently means --benchmark.
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("--benchmar")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --benchmar*"])


# ---------------------------------------------------------------------------------- help and markers


def _help_entries(out: str) -> dict[str, str]:
    """Each ``--flag`` of ``pytest --help`` with its help text, wrapped lines joined."""
    entries: dict[str, str] = {}
    flag = None
    for line in out.splitlines():
        match = re.match(r"  (--[a-z][a-z-]*)[= ]?", line)
        if match:
            flag = match.group(1)
            entries[flag] = line
        elif flag is not None and line.startswith("     "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return {key: " ".join(text.split()) for key, text in entries.items()}


def test_help_lists_every_option_with_its_default_ini_key_and_env_var(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    entries = _help_entries(result.stdout.str())
    for option in OPTIONS:
        text = entries[option.flag]
        assert text.count("(default: ") == 1, f"{option.flag} must state its default once: {text!r}"
        assert f"ini {option.dest}" in text
        if option.env:
            assert f"env {option.env}" in text


@pytest.mark.parametrize(
    ("marker", "arguments"),
    [
        ("latency", ("min_effect=0.1", "statistic='p10'", "direction='lower'", "alpha=0.01", "role=None")),
        ("peak_memory", ("limit=None", "rel=0.1", "figure='memray'", "warmup=True", "role=None")),
        ("accuracy", ("min_drop=0.02", "min_fraction=0.99", "alpha=0.05", "role=None")),
    ],
)
def test_markers_listing_shows_each_marker_with_its_arguments(
    pytester: pytest.Pytester, marker: str, arguments: tuple[str, ...]
) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == pytest.ExitCode.OK
    lines = [line for line in result.stdout.lines if line.startswith(f"@pytest.mark.{marker}(")]
    assert len(lines) == 1
    signature = lines[0].split("(", 1)[1].split(")", 1)[0]
    assert tuple(part.strip() for part in signature.split(",")) == arguments
    assert re.search(r"\): \S", lines[0]), "the marker line has no description"


# ---------------------------------------------------------------------------------- settings precedence


@pytest.mark.parametrize(
    ("option", "ini", "env", "expected"),
    [
        (None, None, None, 2048),  # the default
        (None, None, "256", 256),  # env beats the default
        (None, "512", "256", 512),  # ini beats env
        ("1024", "512", "256", 1024),  # the option beats everything
        ("1024", None, None, 1024),
    ],
)
def test_setting_resolves_option_then_ini_then_env_then_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    option: str | None, ini: str | None, env: str | None, expected: int,
) -> None:
    monkeypatch.delenv("MODELPERF_LLAMA_CONTEXT", raising=False)
    if env is not None:
        monkeypatch.setenv("MODELPERF_LLAMA_CONTEXT", env)
    if ini is not None:
        pytester.makeini(f"[pytest]\nllama_context = {ini}\n")
    pytester.makepyfile(SHOW_SETTINGS)
    args = ["-s"] + ([f"--llama-context={option}"] if option is not None else [])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SETTING llama_context={expected} *"])


@pytest.mark.parametrize(("ini", "expected"), [("true", True), ("off", False)])
def test_benchmark_flag_can_be_set_in_ini(pytester: pytest.Pytester, ini: str, expected: bool) -> None:
    pytester.makeini(f"[pytest]\nbenchmark = {ini}\nhistory = off\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*SETTING*benchmark={expected} *"])


def test_history_off_disables_the_history_store(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", "--history", "OFF")
    result.stdout.fnmatch_lines(["*SETTING*history=None"])


def test_relative_baseline_dir_from_ini_is_under_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nbaseline_dir = perf/baselines\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([f"*baseline_dir={pytester.path / 'perf' / 'baselines'} *"])


@pytest.mark.parametrize(
    ("ini", "env", "named"),
    [
        ("llama_context = lots", {}, "ini key 'llama_context'"),
        ("llama_context = 0", {}, "ini key 'llama_context'"),
        ("baseline_save = maybe", {}, "ini key 'baseline_save'"),
        ("distilbert_threads = -2", {}, "ini key 'distilbert_threads'"),
        ("", {"MODELPERF_LLAMA_CONTEXT": "many"}, "environment variable MODELPERF_LLAMA_CONTEXT"),
        ("", {"MODELPERF_LLAMA_THREADS": "0"}, "environment variable MODELPERF_LLAMA_THREADS"),
        ("", {"MODELPERF_BASELINE_KEY": "no_such_field"}, "environment variable MODELPERF_BASELINE_KEY"),
        ("session_spread = 3%", {}, "ini key 'session_spread'"),
        ("", {"MODELPERF_SESSION_SPREAD": "1.5"}, "environment variable MODELPERF_SESSION_SPREAD"),
        ("malloc_thresholds = adaptive", {}, "ini key 'malloc_thresholds'"),
        ("", {"MODELPERF_MALLOC_THRESHOLDS": "none"}, "environment variable MODELPERF_MALLOC_THRESHOLDS"),
    ],
)
def test_bad_ini_or_env_value_is_one_usage_sentence_naming_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    assert named in errors[0]
    assert "Traceback" not in result.stderr.str()


def test_bad_env_value_is_ignored_when_the_option_is_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPERF_LLAMA_CONTEXT", "many")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", "--llama-context=64")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SETTING llama_context=64 *"])


@pytest.mark.parametrize("value", ["lots", "0", "-1"])
def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(f"--llama-context={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llama-context*"])


def test_session_spread_is_a_fraction_with_a_measured_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_show(request):
            settings = request.config.pluginmanager.get_plugin("modelperf-session").settings
            print(f"SETTING session_spread={settings.session_spread}")
    """)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*session_spread=0.03*"])
    pytester.runpytest("-s", "--session-spread=0").stdout.fnmatch_lines(["*session_spread=0.0*"])
    result = pytester.runpytest("--session-spread=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--session-spread*'3' is not a fraction in [[]0, 1)*"])


# ---------------------------------------------------------------------------------- explicit model paths


def _truncated_gguf(path: pytest.Pytester) -> str:
    (path.path / "short.gguf").write_bytes(b"GGUF" + b"\x03\x00\x00")
    return "short.gguf"


def _not_gguf(path: pytest.Pytester) -> str:
    (path.path / "weights.bin").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    return "weights.bin"


def _a_directory(path: pytest.Pytester) -> str:
    (path.path / "gguf_dir").mkdir()
    return "gguf_dir"


def _no_config(path: pytest.Pytester) -> str:
    (path.path / "ckpt").mkdir()
    (path.path / "ckpt" / "model.safetensors").write_bytes(b"\x00" * 16)
    return "ckpt"


def _no_weights(path: pytest.Pytester) -> str:
    (path.path / "ckpt").mkdir()
    (path.path / "ckpt" / "config.json").write_text("{}")
    return "ckpt"


def _a_file(path: pytest.Pytester) -> str:
    (path.path / "model.safetensors").write_bytes(b"\x00" * 16)
    return "model.safetensors"


def _missing(path: pytest.Pytester) -> str:
    return str(path.path / "nonexistent" / "model")


@pytest.mark.parametrize(
    ("flag", "make", "problem", "fix"),
    [
        ("--distilbert-model", _missing, "does not exist", "nothing is downloaded"),
        ("--distilbert-model", _no_config, "has no config.json", "save_pretrained"),
        ("--distilbert-model", _no_weights, "holds no model.safetensors", "complete checkpoint"),
        ("--distilbert-model", _a_file, "is a file, not a directory", "give the checkpoint directory"),
        ("--llama-model", _missing, "does not exist", "give the path of a .gguf file"),
        ("--llama-model", _not_gguf, "is not a GGUF file", "convert it"),
        ("--llama-model", _truncated_gguf, "is truncated (7 bytes)", "download it again"),
        ("--llama-model", _a_directory, "is a directory", "the .gguf file inside it"),
    ],
)
def test_unusable_explicit_model_fails_the_session_at_start_with_path_and_fix(
    pytester: pytest.Pytester, flag: str, make: object, problem: str, fix: str
) -> None:
    path = make(pytester)  # type: ignore[operator]
    pytester.makepyfile(MODEL_TESTS)
    result = pytester.runpytest(*BENCH, f"{flag}={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    assert path in errors[0] and problem in errors[0] and fix in errors[0]
    assert "collected" not in result.stdout.str(), "no test may run before the model check"


def test_unusable_model_from_env_var_is_checked_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPERF_LLAMA_MODEL", _truncated_gguf(pytester))
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*BENCH)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *short.gguf is truncated*"])


def test_model_paths_are_not_checked_without_benchmark_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MODEL_TESTS)
    result = pytester.runpytest(f"--llama-model={_truncated_gguf(pytester)}", "--distilbert-model=nowhere")
    result.assert_outcomes(passed=1, skipped=6)


def test_unknown_hub_id_is_an_error_without_download(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty cache and an unreachable endpoint: a download attempt could only make this slow or odd.
    monkeypatch.setenv("HF_HOME", str(pytester.path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*BENCH, "--distilbert-model=no-such-org/no-such-model")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *no-such-org/no-such-model does not exist*nothing is downloaded*"])
    assert not (pytester.path / "hf" / "hub" / "models--no-such-org--no-such-model").exists()


def test_gguf_that_llama_cpp_cannot_load_fails_tests_once_with_one_sentence(pytester: pytest.Pytester) -> None:
    pytest.importorskip("llama_cpp")
    # A well-formed, empty GGUF header passes the start-up check; llama.cpp then refuses it.
    (pytester.path / "empty.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    pytester.makepyfile("""
        def test_one(llama):
            pass

        def test_two(llama):
            pass
    """)
    # -rN: no short summary, whose lines carry the message only when CI is set.
    result = pytester.runpytest_subprocess(*BENCH, "--llama-model=empty.gguf", "-rN")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert out.count("llama.cpp could not load empty.gguf") == 2  # once per error section, no chained repeat
    assert "During handling of the above exception" not in out


# ---------------------------------------------------------------------------------- bad marker arguments


@pytest.mark.parametrize(
    ("decorator", "expected"),
    [
        ("@pytest.mark.latency(bogus=1)",
         ("*test_bad_marker*@pytest.mark.latency got unknown argument(s) bogus; allowed: min_effect, statistic,"
         " direction, alpha, role.*")),
        ('@pytest.mark.peak_memory(limit="lots")',
         "*@pytest.mark.peak_memory: Cannot read the memory size 'lots'*such as '600 MB'*"),
        ('@pytest.mark.peak_memory("30 MB")', "*@pytest.mark.peak_memory takes keyword arguments only*"),
        ('@pytest.mark.latency(statistic="p95")', "*statistic='p95' is not one of p10, median, mean, p90, p99*"),
        ("@pytest.mark.accuracy(alpha=0.9)", "*alpha=0.9 must be a number between 0 and 0.5*"),
        ("@pytest.mark.latency\n@pytest.mark.peak_memory", "*latency and peak_memory cannot share a test*split it*"),
    ],
)
def test_bad_marker_arguments_error_the_test_with_one_sentence(
    pytester: pytest.Pytester, decorator: str, expected: str
) -> None:
    pytester.makepyfile(f"""
import pytest

{decorator}
def test_bad_marker(benchmark):
    benchmark(sum, range(10))

def test_fine():
    pass
""")
    result = pytester.runpytest(*BENCH, "--benchmark-disable")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([expected])
    assert "During handling of the above exception" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_bad_marker_arguments_are_not_checked_without_benchmark_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.latency(bogus=1)
        def test_bad_marker():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(skipped=1)
