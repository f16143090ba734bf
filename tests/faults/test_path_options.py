"""Every path option means the same file, and the tests keep the same ids, whether it is written
``--opt value`` or ``--opt=value`` and wherever the file lies (pytest would take an existing path
given as a separate argument for a test path and move its rootdir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, STAND_IN, _write_dataset

TEST = STAND_IN + """
    @pytest.mark.accuracy
    def test_1(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
"""
BASE = ("--benchmark", "--history", "off", "--baseline-dir", "baselines", "--accuracy-dataset", "data.tsv")
KEY_1 = "test_acc.py::test_1::accuracy"


def _embedded_gguf() -> str:
    from modelperf.models.base import ModelUnavailable
    from modelperf.models.embedded import smollm_gguf_path

    try:
        return str(smollm_gguf_path())
    except ModelUnavailable as exc:  # the package that ships it is optional
        pytest.skip(f"the embedded Llama is not installed ({exc})")


@pytest.fixture
def elsewhere(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=TEST)
    folder = pytester.path.with_name(pytester.path.name + "-elsewhere")
    folder.mkdir()
    return folder


def _with(option: str, value: str, spelling: str) -> list[str]:
    """BASE with ``option`` set to ``value``, written as two arguments or with '='."""
    args = list(BASE)
    if option in args:
        index = args.index(option)
        del args[index:index + 2]
    return [*args, option, value] if spelling == "space" else [*args, f"{option}={value}"]


def _records(folder: Path) -> dict[str, object]:
    files = sorted(folder.rglob("*.json"))
    assert [f.name for f in files if f.name != "machine.json"] == ["test_acc.json"], files
    [path] = [f for f in files if f.name == "test_acc.json"]
    records: dict[str, object] = json.loads(path.read_text())["records"]
    return records


@pytest.mark.parametrize("option", ["--baseline-dir", "--history", "--accuracy-dataset", "--accuracy-output",
                                    "--results-json", "--summary-markdown", "--llama-model"])
def test_both_spellings_of_a_path_option_write_and_read_the_same_records(
    pytester: pytest.Pytester, elsewhere: Path, option: str
) -> None:
    value = {"--baseline-dir": elsewhere / "bl", "--history": elsewhere / "history.sqlite",
             "--accuracy-dataset": elsewhere / "data.tsv", "--accuracy-output": elsewhere / "examples.jsonl",
             "--results-json": elsewhere / "results.json", "--summary-markdown": elsewhere / "summary.md"}.get(option)
    if value is None:  # a link: the real file lies under another project, whose ini pytest would find and apply
        value = elsewhere / "model.gguf"
        value.symlink_to(_embedded_gguf())
    text = str(value)
    if option == "--baseline-dir":
        Path(text).mkdir()
    elif option == "--accuracy-dataset":
        Path(text).write_bytes((pytester.path / "data.tsv").read_bytes())
    elif option != "--llama-model":
        Path(text).write_text("")  # an output from an earlier run: it exists, so pytest sees a path
    if option == "--history":
        Path(text).unlink()
        pytester.runpytest(*_with(option, text, "equals"))  # the store exists from now on
    first = pytester.runpytest(*_with(option, text, "equals"))
    first.assert_outcomes(passed=1)
    second = pytester.runpytest(*_with(option, text, "space"))
    assert second.ret == pytest.ExitCode.OK, second.stdout.str()
    second.stdout.fnmatch_lines([f"rootdir: {pytester.path}*"])
    assert "recorded this run as its baseline" not in second.stdout.str()  # compared with the first run
    second.stdout.fnmatch_lines(["test_1*accuracy*0.900*0.900*pass*"])
    assert list(_records(Path(text) if option == "--baseline-dir" else pytester.path / "baselines")) == [KEY_1]


@pytest.mark.parametrize("addopts", [True, False], ids=["ini with addopts", "ini with markers only"])
def test_an_ini_file_beside_the_outside_folder_is_not_used(
    pytester: pytest.Pytester, elsewhere: Path, addopts: bool
) -> None:
    # pytest found that ini file from the option's value; a project without one must not get its settings.
    (elsewhere / "pytest.ini").write_text("[pytest]\n" + ("addopts = -q\n" if addopts else "markers = m: a marker\n"))
    (elsewhere / "bl").mkdir()
    result = pytester.runpytest(*_with("--baseline-dir", str(elsewhere / "bl"), "space"))
    if addopts:  # already applied before the plugin could see the option: only '=' can avoid it
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
        assert f"write --baseline-dir={elsewhere / 'bl'} (with '=') instead" in error
    else:
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines([f"rootdir: {pytester.path}"])
        assert "configfile" not in result.stdout.str()
        assert list(_records(elsewhere / "bl")) == [KEY_1]
