"""Reading labelled sentiment sets: every bad file is one DatasetError naming the file and the line."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelperf.datasets import DatasetError, SentimentSet, embedded_sentiment, load_sentiment, parse_sentiment

GOOD_TSV = b"sentence\tlabel\nA fine film.\t1\nA dull film.\t0\n"


@pytest.mark.parametrize(
    ("name", "data", "where", "problem"),
    [
        ("set.tsv", b"sentence\tscore\nA fine film.\t1\n", "set.tsv, line 1", "'sentence' and 'label'"),
        ("set.tsv", b"text\tlabel\nA fine film.\t1\n", "set.tsv, line 1", "'sentence' and 'label'"),
        ("set.tsv", b"sentence\tlabel\nA fine film.\t1\nA dull film.\t2\n", "set.tsv, line 3", "label '2'"),
        ("set.tsv", b"sentence\tlabel\nA fine film.\tpositive\n", "set.tsv, line 2", "label 'positive'"),
        ("set.tsv", b"sentence\tlabel\nA fine film.\t1\textra\n", "set.tsv, line 2", "3 fields where the header has 2"),
        ("set.tsv", b"sentence\tlabel\nA fine film.\t1\nA dull film.\n", "set.tsv, line 3", "1 fields"),
        ("set.tsv", b"sentence\tlabel\n\t1\n", "set.tsv, line 2", "the sentence is empty"),
        ("set.tsv", b"sentence\tlabel\n   \t1\n", "set.tsv, line 2", "the sentence is empty"),
        ("set.tsv", b"sentence\tlabel\tsplit\nA fine film.\t1\tdev\n", "set.tsv, line 2", "split 'dev'"),
        ("set.tsv", b"sentence\tlabel\nA fine film.\t1\nA caf\xe9 film.\t0\n", "set.tsv, line 3", "not UTF-8"),
        ("set.tsv", b"", "set.tsv", "the file is empty"),
        ("set.tsv", b" \n\n", "set.tsv", "the file is empty"),
        ("set.tsv", b"sentence\tlabel\n", "set.tsv", "holds no labelled rows"),
        ("set.jsonl", b'{"text": "A fine film.", "label": 1}\n{"text": "A dull", \n', "set.jsonl, line 2",
         "not valid JSON"),
        ("set.jsonl", b'{"text": "A fine film.", "label": 1}\n["A dull film.", 0]\n', "set.jsonl, line 2",
         "'text' and 'label'"),
        ("set.jsonl", b'{"text": "A fine film."}\n', "set.jsonl, line 1", "'text' and 'label'"),
        ("set.jsonl", b'{"text": " ", "label": 1}\n', "set.jsonl, line 1", "the text is empty"),
        ("set.jsonl", b'{"text": "A fine film.", "label": 3}\n', "set.jsonl, line 1", "label '3'"),
        ("set.jsonl", b'{"text": "A fine film.", "label": true}\n', "set.jsonl, line 1", "label 'True'"),
        ("set.jsonl", b'\n\n{"text": "A fine film.", "label": 1, "split": "val"}\n', "set.jsonl, line 3",
         "split 'val'"),
    ],
)
def test_bad_dataset_is_one_error_naming_file_and_line(name: str, data: bytes, where: str, problem: str) -> None:
    with pytest.raises(DatasetError) as raised:
        parse_sentiment(data, name)
    message = str(raised.value)
    assert message.startswith((where + ":", where + ",", where + " "))
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        # A JSON value nested deeper than the parser's recursion limit.
        ("set.jsonl", b'{"text": "A fine film.", "label": 1}\n{"text": ' + b"[" * 100_000 + b"\n", "set.jsonl, line 2"),
        # A sentence longer than the csv module's default field limit of 131072 characters.
        ("set.tsv", b"sentence\tlabel\n" + b"a" * 200_000 + b"\t1\n", "set.tsv, line 2"),
        # Old Mac line endings: carriage returns only.
        ("set.tsv", b"sentence\tlabel\rA fine film.\t1\r", "set.tsv"),
    ],
)
def test_pathological_input_is_a_dataset_error_too(name: str, data: bytes, where: str) -> None:
    try:
        parse_sentiment(data, name)
    except DatasetError as exc:
        assert str(exc).startswith(where)


def test_json_text_must_be_a_string() -> None:
    # null would otherwise be read as the sentence "None" and change the accuracy silently.
    with pytest.raises(DatasetError, match=r"set\.jsonl, line 1: "):
        parse_sentiment(b'{"text": null, "label": 1}\n', "set.jsonl")


@pytest.mark.parametrize(
    "data",
    [
        GOOD_TSV,
        GOOD_TSV.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + GOOD_TSV,  # Excel writes a byte-order mark
        GOOD_TSV + b"\n\n",  # blank trailing lines are not rows
        b"label\tsentence\n1\tA fine film.\n0\tA dull film.\n",  # columns in any order
        b"sentence\tlabel\tsplit\nA fine film.\t1\t\nA dull film.\t0\tTEST\n",  # split defaults to test
    ],
)
def test_good_tsv_variants_read_alike(data: bytes) -> None:
    parsed = parse_sentiment(data, "set.tsv")
    assert [(e.index, e.text, e.label, e.split) for e in parsed.examples] == [
        (0, "A fine film.", 1, "test"),
        (1, "A dull film.", 0, "test"),
    ]


def test_jsonl_reads_like_tsv_and_keeps_splits() -> None:
    lines = [{"text": "A fine film.", "label": 1, "split": "train"}, {"text": "A dull film.", "label": "0"}]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    parsed = parse_sentiment(data, "set.data")  # detected by its first character, not its name
    assert [(e.text, e.label, e.split) for e in parsed.examples] == [("A fine film.", 1, "train"),
                                                                      ("A dull film.", 0, "test")]
    assert parsed.split("train") == parsed.examples[:1]
    assert parsed.evaluation == parsed.examples[1:]


def test_quotes_are_kept_as_written() -> None:
    parsed = parse_sentiment(b'sentence\tlabel\n"Great," she said.\t1\n', "set.tsv")
    assert parsed.examples[0].text == '"Great," she said.'


def test_sha256_ties_a_set_to_its_exact_bytes() -> None:
    first = parse_sentiment(GOOD_TSV, "a.tsv")
    assert first.sha256 == parse_sentiment(GOOD_TSV, "b.tsv").sha256
    assert first.sha256 != parse_sentiment(GOOD_TSV.replace(b"dull", b"drab"), "a.tsv").sha256


def test_load_sentiment_names_a_missing_file_and_the_option(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf"Cannot read the dataset {re.escape(str(tmp_path))}.*--accuracy-dataset"):
        load_sentiment(tmp_path / "missing.tsv")


def test_load_sentiment_reads_a_file_under_its_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.tsv"
    path.write_bytes(GOOD_TSV)
    parsed = load_sentiment(path)
    assert parsed.name == str(path) and len(parsed.examples) == 2


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), name=st.sampled_from(["set.tsv", "set.jsonl"]))
@example(data=b"sentence\tlabel\rA fine film.\t1\r", name="set.tsv")
def test_parse_sentiment_raises_nothing_but_dataset_error(data: bytes, name: str) -> None:
    try:
        parsed = parse_sentiment(data, name)
    except DatasetError as exc:
        assert str(exc).startswith(name)
        return
    assert isinstance(parsed, SentimentSet) and parsed.examples
    assert all(e.label in (0, 1) and e.text.strip() and e.split in ("train", "test") for e in parsed.examples)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                                       min_size=1).filter(str.strip), st.sampled_from([0, 1])), min_size=1, max_size=20))
def test_written_rows_read_back_unchanged(rows: list[tuple[str, int]]) -> None:
    data = "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows).encode()
    parsed = parse_sentiment(data, "set.jsonl")
    assert [(e.text, e.label) for e in parsed.examples] == [(text.strip(), label) for text, label in rows]


def test_embedded_set_is_large_balanced_and_its_splits_disjoint() -> None:
    data = embedded_sentiment()
    assert len(data.examples) >= 300
    counts = Counter((e.split, e.label) for e in data.examples)
    assert counts[("train", 0)] == counts[("train", 1)] > 0
    assert counts[("test", 0)] == counts[("test", 1)] > 0
    train = {e.text.casefold() for e in data.split("train")}
    test = {e.text.casefold() for e in data.split("test")}
    assert not train & test
    assert len(train) + len(test) == len(data.examples), "no sentence may repeat"


@pytest.mark.parametrize(
    ("name", "text", "has_splits"),
    [
        ("a.tsv", "sentence\tlabel\nfine\t1\n", False),
        ("a.tsv", "sentence\tlabel\tsplit\nfine\t1\ttest\n", True),
        ("a.jsonl", '{"text": "fine", "label": 1}\n', False),
        ("a.jsonl", '{"text": "fine", "label": 1}\n{"text": "ok", "label": 0, "split": "train"}\n', True),
    ],
)
def test_a_set_knows_whether_its_file_names_splits(name: str, text: str, has_splits: bool) -> None:
    data = parse_sentiment(text.encode(), name)
    assert data.has_splits is has_splits
    assert (data.warning is None) is has_splits


def test_each_example_knows_its_line() -> None:
    data = parse_sentiment(b'\n{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n', "a.jsonl")
    assert [e.line for e in data.examples] == [2, 4]
