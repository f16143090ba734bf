"""``@pytest.mark.accuracy`` and the ``accuracy`` fixture, with a stand-in model over a small written dataset.

The stand-in is right on every example except every tenth (90 % accuracy); an environment variable
makes it also get the first N otherwise-right examples wrong, so a second run can lose a known
number of answers and the paired (McNemar) comparison can be checked on both sides of its threshold.
"""

from __future__ import annotations

import json

import pytest

FLIPS = "MODELPERF_TEST_FLIPS"
KEY = "MODELPERF_TEST_MODEL_KEY"
ROWS = 200
RUN = ("--benchmark", "--history", "off", "--baseline-dir", "baselines", "--accuracy-dataset", "data.tsv")

STAND_IN = """
    import os
    from types import SimpleNamespace

    import pytest

    from modelperf.models.base import Classification

    class StandIn:
        def __init__(self):
            key = os.environ.get("MODELPERF_TEST_MODEL_KEY", "stand-in@0123456789ab")
            self.info = SimpleNamespace(key=key, name="stand-in")
            right = [i for i in range(1000) if i % 10 != 9]
            self.flipped = set(right[: int(os.environ.get("MODELPERF_TEST_FLIPS", "0"))])

        def classify(self, texts):
            labels = []
            for text in texts:
                index = int(text.split()[-1])
                wrong = index % 10 == 9 or index in self.flipped
                labels.append(1 - index % 2 if wrong else index % 2)
            probabilities = tuple((0.2, 0.8) if label else (0.8, 0.2) for label in labels)
            return Classification(tuple(labels), probabilities, ("negative", "positive"))
"""


def _write_dataset(pytester: pytest.Pytester, rows: int = ROWS) -> None:
    lines = ["sentence\tlabel"] + [f"review number {i}\t{i % 2}" for i in range(rows)]
    (pytester.path / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _accuracy_test(marker: str = "@pytest.mark.accuracy") -> str:
    return STAND_IN + f"""
    {marker}
    def test_accuracy(accuracy, sentiment_data):
        result = accuracy.evaluate(StandIn(), sentiment_data)
        assert len(result.labels) == len(sentiment_data.examples)
"""


def _baseline_accuracy(pytester: pytest.Pytester) -> float:
    [record] = [p for p in (pytester.path / "baselines").rglob("test_acc.json")]
    value = json.loads(record.read_text())["records"]["test_acc.py::test_accuracy::accuracy"]["value"]
    return float(value)


def _first_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    monkeypatch.delenv(FLIPS, raising=False)
    monkeypatch.delenv(KEY, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=_accuracy_test(marker))
    first = pytester.runpytest(*RUN)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines([
        "*test_accuracy*accuracy*0.900*recorded*",
        "*no baseline for hardware *: recorded this run as its baseline*",
    ])
    assert _baseline_accuracy(pytester) == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("marker", "flips", "outcome", "expected"),
    [
        # Default rules: fail below 0.99 x the baseline (89.1 %) or on a significant drop of 2 points.
        ("@pytest.mark.accuracy", 0, "passed", "*test_accuracy*accuracy*0.900*0.900*pass*"),
        ("@pytest.mark.accuracy", 1, "passed", "*test_accuracy*accuracy*0.895*0.900*pass*"),
        ("@pytest.mark.accuracy", 60, "failed",
         "accuracy: accuracy 90.00% -> 60.00% (95% CI *, n=200, lost 60, gained 0, McNemar p=*): below 0.99 x*"),
        # Without the ratio rule only McNemar decides: 3 lost of 3 discordant (p=0.125) is no evidence,
        # 10 of 10 (p~0.001) is, and 5 points exceed the 2-point minimum drop.
        ("@pytest.mark.accuracy(min_fraction=0.5)", 3, "passed", "*test_accuracy*accuracy*0.885*0.900*pass*"),
        ("@pytest.mark.accuracy(min_fraction=0.5)", 10, "failed",
         "accuracy: accuracy 90.00% -> 85.00% (*lost 10, gained 0, McNemar p=0.00098): significant drop of 5.00%*"),
    ],
)
def test_accuracy_marker_fails_only_on_a_real_drop(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, marker: str, flips: int, outcome: str, expected: str
) -> None:
    _first_run(pytester, monkeypatch, marker)
    monkeypatch.setenv(FLIPS, str(flips))
    second = pytester.runpytest(*RUN)
    second.assert_outcomes(**{outcome: 1})
    second.stdout.fnmatch_lines([expected])
    assert second.ret == (pytest.ExitCode.OK if outcome == "passed" else pytest.ExitCode.TESTS_FAILED)
    assert _baseline_accuracy(pytester) == pytest.approx(0.9), "a comparing run must not rewrite the baseline"


def test_accuracy_output_holds_every_example_and_recounts_to_the_recorded_figure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FLIPS, "7")
    monkeypatch.delenv(KEY, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=_accuracy_test())
    result = pytester.runpytest(*RUN, "--accuracy-output", "out/examples.jsonl")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_accuracy*accuracy*0.865*recorded*", f"wrote {pytester.path}/out/examples.jsonl"])
    rows = [json.loads(line) for line in (pytester.path / "out" / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == ROWS
    assert all({"model", "index", "label", "prediction", "score"} <= row.keys() for row in rows)
    assert [row["index"] for row in rows] == list(range(ROWS))
    assert {row["model"] for row in rows} == {"stand-in@0123456789ab"}
    assert [row["label"] for row in rows] == [i % 2 for i in range(ROWS)]
    recount = sum(row["label"] == row["prediction"] for row in rows) / len(rows)
    assert recount == pytest.approx(_baseline_accuracy(pytester)) == pytest.approx(0.865)
    assert all(row["score"] == (0.8 if row["prediction"] else 0.2) for row in rows)


def test_accuracy_can_evaluate_a_set_built_in_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_acc=STAND_IN + """
    from modelperf.datasets import parse_sentiment

    @pytest.mark.accuracy
    def test_accuracy(accuracy):
        rows = "".join(f"review number {i}\\t{i % 2}\\t{'train' if i < 10 else 'test'}\\n" for i in range(30))
        data = parse_sentiment(("sentence\\tlabel\\tsplit\\n" + rows).encode(), "inline.tsv")
        result = accuracy.evaluate(StandIn(), data)
        assert result.example_ids == tuple(range(10, 30))  # the test split only
""")
    result = pytester.runpytest(*RUN[:5])
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_accuracy*accuracy*0.900*recorded*"])


def test_changed_dataset_is_not_compared_and_says_to_resave(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_run(pytester, monkeypatch, "@pytest.mark.accuracy")
    _write_dataset(pytester, rows=100)
    monkeypatch.setenv(FLIPS, "60")  # would fail if it were compared
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        ("*accuracy not compared: the baseline has 200 examples and this run 100; the evaluation set changed, "
        "so re-save the baseline*"),
    ])


def test_other_weights_are_not_compared(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _first_run(pytester, monkeypatch, "@pytest.mark.accuracy")
    monkeypatch.setenv(KEY, "stand-in@ba9876543210")
    monkeypatch.setenv(FLIPS, "60")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        ("*the baseline was measured with other weights (stand-in@0123456789ab, now stand-in@ba9876543210): "
        "not compared; run with --baseline-save to replace it*"),
    ])


def test_accuracy_test_that_records_nothing_errors_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_acc="""
        import pytest

        @pytest.mark.accuracy
        def test_accuracy(accuracy):
            pass
    """)
    result = pytester.runpytest(*RUN[:5])
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.accuracy test recorded no result; call accuracy.evaluate(model, data)*"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"sentence\tlabel\nfine\t1\nbad\t7\n", "*data.tsv, line 3: label '7' is not 0 (negative) or 1 (positive)*"),
        (b"text\tlabel\nfine\t1\n", "*data.tsv, line 1: the header must name the columns 'sentence' and 'label'*"),
        (b"", "*data.tsv: the file is empty*"),
    ],
)
def test_unusable_accuracy_dataset_fails_the_test_with_file_and_line(
    pytester: pytest.Pytester, content: bytes, expected: str
) -> None:
    (pytester.path / "data.tsv").write_bytes(content)
    pytester.makepyfile(test_acc=_accuracy_test())
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([expected])
    assert "During handling of the above exception" not in result.stdout.str()


def test_missing_accuracy_dataset_names_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_acc=_accuracy_test())
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([("*Cannot read the dataset */data.tsv (No such file or directory): check the path "
                                 "given to --accuracy-dataset.*")])


@pytest.mark.parametrize(("value", "outcome", "verdict"), [("10.0", "passed", "pass"), ("10.5", "failed", "regressed")])
def test_perplexity_recorded_by_an_unmarked_test_is_compared_with_its_tolerance(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str, outcome: str, verdict: str
) -> None:
    pytester.makepyfile(test_ppl="""
        import os
        from types import SimpleNamespace

        def test_perplexity(accuracy):
            model = SimpleNamespace(info=SimpleNamespace(key="stand-in@0123456789ab"))
            figure = float(os.environ.get("MODELPERF_TEST_PPL", "10.0"))
            accuracy.record_perplexity(model, SimpleNamespace(value=figure, scored_tokens=100, chunks=1, context=64))
    """)
    monkeypatch.delenv("MODELPERF_TEST_PPL", raising=False)
    pytester.runpytest(*RUN[:-2]).stdout.fnmatch_lines(["*test_perplexity*perplexity*10 ppl*recorded*"])
    monkeypatch.setenv("MODELPERF_TEST_PPL", value)
    second = pytester.runpytest(*RUN[:-2])
    second.assert_outcomes(**{outcome: 1})
    second.stdout.fnmatch_lines([f"*test_perplexity*perplexity*{verdict}*"])
