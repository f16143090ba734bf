"""Labelled sentiment data and the perplexity text: the in-repo sets and users' own files.

Two formats are read: GLUE TSV (header ``sentence<TAB>label``, an optional ``split`` column) and
JSON lines (``{"text": ..., "label": ...}``, optional ``"split"``). Labels are 0 (negative) and
1 (positive). Every problem is reported as one sentence naming the file and line, because a
silently skipped row would change an accuracy figure without anyone noticing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "DatasetError",
    "Example",
    "SentimentSet",
    "embedded_perplexity_text",
    "embedded_sentiment",
    "load_sentiment",
    "parse_sentiment",
]

LABELS = (0, 1)
_CSV_FIELD_LIMIT = 131072  # csv's own default, kept for files smaller than it
SPLITS = ("train", "test")


class DatasetError(ValueError):
    """A dataset file cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Example:
    index: int
    text: str
    label: int
    split: str
    line: int = 0  # in its file, so an error about this example can name the row (0: not from a file)


@dataclass(frozen=True)
class SentimentSet:
    """Examples in file order; ``sha256`` ties stored per-example results to this exact file."""

    name: str
    examples: tuple[Example, ...]
    sha256: str
    has_splits: bool = True  # False: the file names no split, so every row is scored

    @property
    def warning(self) -> str | None:
        """The sentence a run over this set must show, or None."""
        if self.has_splits:
            return None
        return (f"{self.name} has no split column, so all {len(self.examples)} rows are scored, including any "
                "sentence an embedded head or prompt was fitted on (the in-repo set's train split): add a split "
                "column (train/test) to keep them apart")

    def split(self, name: str) -> tuple[Example, ...]:
        return tuple(e for e in self.examples if e.split == name)

    @property
    def evaluation(self) -> tuple[Example, ...]:
        """Examples to score: the test split, never sentences a head or prompt was fitted on."""
        return self.split("test")


def _label(raw: object, where: str) -> int:
    text = str(raw).strip()
    if text not in {"0", "1"}:
        raise DatasetError(f"{where}: label {text!r} is not 0 (negative) or 1 (positive); fix that row.")
    return int(text)


def _split(raw: object, where: str) -> str:
    text = str(raw).strip().lower() or "test"
    if text not in SPLITS:
        raise DatasetError(f"{where}: split {text!r} is not 'train' or 'test'; fix that row.")
    return text


def _parse_tsv(text: str, name: str) -> tuple[list[Example], bool]:
    """The examples, and whether the header has a split column."""
    # splitlines() knows every line ending (\r alone included), which csv.reader on a stream does not.
    reader = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    # csv's field limit (128 KiB) is not JSONL's: a long sentence reaches the model, which truncates or refuses it.
    limit = csv.field_size_limit(max(len(text), _CSV_FIELD_LIMIT))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise DatasetError(f"{name}, line {reader.line_num}: unreadable TSV row ({exc}); fix that row.") from None
    finally:
        csv.field_size_limit(limit)
    header = [h.strip() for h in rows[0]]
    if "sentence" not in header or "label" not in header:
        raise DatasetError(
            f"{name}, line 1: the header must name the columns 'sentence' and 'label' "
            f"(GLUE TSV), found {header!r}."
        )
    col = {h: i for i, h in enumerate(header)}
    examples: list[Example] = []
    for number, row in enumerate(rows[1:], start=2):
        where = f"{name}, line {number}"
        if not any(cell.strip() for cell in row):
            continue  # a blank trailing line is not a row
        if len(row) != len(header):
            raise DatasetError(f"{where}: {len(row)} fields where the header has {len(header)}; fix that row.")
        sentence = row[col["sentence"]].strip()
        if not sentence:
            raise DatasetError(f"{where}: the sentence is empty; fill it in or remove the row.")
        split = _split(row[col["split"]], where) if "split" in col else "test"
        examples.append(Example(len(examples), sentence, _label(row[col["label"]], where), split, number))
    return examples, "split" in col


def _parse_jsonl(text: str, name: str) -> tuple[list[Example], bool]:
    """The examples, and whether any line names its split."""
    examples: list[Example] = []
    splits = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}, line {number}"
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"{where}: not valid JSON ({getattr(exc, 'msg', 'nested too deeply')}); "
                               "fix that line.") from None
        if not isinstance(item, dict) or "text" not in item or "label" not in item:
            raise DatasetError(f"{where}: each line must be an object with 'text' and 'label' keys.")
        if not isinstance(item["text"], str):
            raise DatasetError(f"{where}: 'text' must be a string, found {type(item['text']).__name__}; fix that line.")
        sentence = str(item["text"]).strip()
        if not sentence:
            raise DatasetError(f"{where}: the text is empty; fill it in or remove the line.")
        split = _split(item.get("split", "test"), where)
        examples.append(Example(len(examples), sentence, _label(item["label"], where), split, number))
        splits = splits or "split" in item
    return examples, splits


def parse_sentiment(data: bytes, name: str) -> SentimentSet:
    """Parse TSV or JSONL bytes (JSONL when ``name`` ends in .jsonl/.json or the data starts with '{')."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{name}, line {line}: the file is not UTF-8; re-save it as UTF-8.") from None
    if not text.strip():
        raise DatasetError(f"{name}: the file is empty; add a header and labelled rows.")
    is_jsonl = name.endswith((".jsonl", ".json")) or text.lstrip().startswith("{")
    examples, has_splits = _parse_jsonl(text, name) if is_jsonl else _parse_tsv(text, name)
    if not examples:
        raise DatasetError(f"{name}: the file holds no labelled rows; add some.")
    return SentimentSet(name, tuple(examples), hashlib.sha256(data).hexdigest(), has_splits)


def load_sentiment(path: Path) -> SentimentSet:
    """Read a user's dataset file; missing or unreadable files raise DatasetError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"Cannot read the dataset {path} ({exc.strerror or exc}): check the path given to --accuracy-dataset."
        ) from None
    return parse_sentiment(data, str(path))


def embedded_sentiment() -> SentimentSet:
    """The project's own 800 labelled sentences (600 train, 200 test), written for this suite."""
    data = resources.files("modelperf").joinpath("data/sentiment.tsv").read_bytes()
    return parse_sentiment(data, "modelperf/data/sentiment.tsv")


def embedded_perplexity_text() -> str:
    """An original essay of about 1,900 words used to measure perplexity."""
    return resources.files("modelperf").joinpath("data/perplexity.txt").read_text(encoding="utf-8")
