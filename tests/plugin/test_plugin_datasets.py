"""Users' dataset files at the edges: a row too long for the model, a file without a split column.

The stand-in model refuses a text longer than 10,000 characters with the sentence the Llama adapter
uses, so the row-naming path is exercised without loading a real model.
"""

from __future__ import annotations

import json

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, STAND_IN, _accuracy_test, _write_dataset

RUN = ("--benchmark", "--history", "off", "--baseline-dir", "baselines")
REFUSING = STAND_IN.replace('''        def classify(self, texts):
''', '''        def classify(self, texts):
            for text in texts:
                if len(text) > 10_000:
                    raise ValueError(f"{len(text) // 4} tokens do not fit the context of 2048: shorten the input "
                                     "or raise --llama-context.")
''')


def _jsonl(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def test_a_row_too_long_for_the_model_is_named_and_nothing_is_lost(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    rows = [json.dumps({"text": f"review number {i}", "label": i % 2, "split": "test"}) for i in range(40)]
    (pytester.path / "data.jsonl").write_text(_jsonl(rows))
    pytester.makepyfile(test_acc=_accuracy_test().replace(STAND_IN, REFUSING))
    pytester.runpytest(*RUN, "--accuracy-dataset", "data.jsonl").assert_outcomes(passed=1)
    [record] = (pytester.path / "baselines").rglob("test_acc.json")
    before = record.read_bytes()
    rows[2] = json.dumps({"text": "x" * 5_000_000 + " number 2", "label": 0, "split": "test"})
    (pytester.path / "data.jsonl").write_text(_jsonl(rows))
    result = pytester.runpytest(*RUN, "--accuracy-dataset", "data.jsonl")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        ("*test_acc.py::test_accuracy: */data.jsonl, line 3 (5,000,009 characters): 1250002 tokens do not fit the "
         "context of 2048: shorten the input or raise --llama-context; long inputs are refused rather than "
         "truncated, so shorten or remove that row."),
    ])
    assert "recorded no result" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert record.read_bytes() == before


@pytest.mark.parametrize("with_split", [False, True])
def test_a_file_without_a_split_column_warns_that_every_row_is_scored(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, with_split: bool
) -> None:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    if with_split:
        lines = ["sentence\tlabel\tsplit"] + [f"review number {i}\t{i % 2}\ttest" for i in range(50)]
        (pytester.path / "data.tsv").write_text("\n".join(lines) + "\n")
    else:
        _write_dataset(pytester, rows=50)
    pytester.makepyfile(test_acc=_accuracy_test())
    result = pytester.runpytest(*RUN, "--accuracy-dataset", "data.tsv")
    result.assert_outcomes(passed=1)
    warning = ("*data.tsv has no split column, so all 50 rows are scored, including any sentence an embedded head "
               "or prompt was fitted on (the in-repo set's train split): add a split column (train/test) to keep "
               "them apart")
    if with_split:
        assert "has no split column" not in result.stdout.str()
    else:
        result.stdout.fnmatch_lines(["*modelperf: dataset*", warning])
