"""A TSV dataset reads exactly as the same rows written as JSON lines, however long a sentence is."""

from __future__ import annotations

import csv
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from modelperf.datasets import SentimentSet, parse_sentiment

# Text a TSV cell can hold: no tab, no line break of any kind (splitlines() splits on all of them).
_LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
SENTENCES = st.text(st.characters(blacklist_characters=_LINE_BREAKS, blacklist_categories=("Cs",)),
                    min_size=1).filter(lambda s: s.strip() and "\0" not in s)


def _both(rows: list[tuple[str, int]]) -> tuple[SentimentSet, SentimentSet]:
    tsv = "sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows)
    jsonl = "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows)
    return parse_sentiment(tsv.encode(), "data.tsv"), parse_sentiment(jsonl.encode(), "data.jsonl")


def _rows(found: SentimentSet) -> list[tuple[str, int, str]]:
    return [(e.text, e.label, e.split) for e in found.examples]


def test_a_five_megabyte_sentence_reads_from_tsv_as_from_jsonl() -> None:
    long = "word " * 1_000_000 + "end"
    tsv, jsonl = _both([("a short one", 1), (long, 0)])
    assert _rows(tsv) == _rows(jsonl)
    assert tsv.examples[1].line == 3 and len(tsv.examples[1].text) == len(long)


def test_reading_a_long_tsv_leaves_csv_field_limit_as_it_was() -> None:
    before = csv.field_size_limit()
    _both([("x" * 300_000, 1)])
    assert csv.field_size_limit() == before


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(SENTENCES, st.sampled_from([0, 1])), min_size=1, max_size=5))
def test_tsv_and_jsonl_of_the_same_rows_read_alike(rows: list[tuple[str, int]]) -> None:
    tsv, jsonl = _both(rows)
    assert _rows(tsv) == _rows(jsonl)
