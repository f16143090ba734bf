"""One baseline record file: its name, its error type, its records, the validation of what it holds on
reading and the text it is written as (and whether a folder's ``machine.json`` needs rewriting).

Every problem with a file becomes a :class:`BaselineError` whose message is one sentence naming the
file, the record and the fix. Records are checked for what the decision code needs (latency rounds
that are positive, accuracy samples that are 0 or 1), so a hand-edited file fails at load, with its
name, never later as a traceback inside a comparison.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelperf.records import SCHEMA_VERSION, Kind, Measurement, measurement_from_json
from modelperf.store.hardware import VOLATILE_FIELDS

__all__ = ["MACHINE_FILE", "RESAVE_COMMAND", "BaselineError", "StoredRecord", "bad", "dumps", "machine_changed",
           "module_slug", "read_file", "render", "show"]

# Named in every error message as the way to rebuild a baseline; the lead may adjust the flags.
RESAVE_COMMAND = "pytest --benchmark --baseline-save"
MACHINE_FILE = "machine.json"
_MAX_SHOWN = 60  # characters of a bad value quoted in an error message
_MAX_SLUG = 120  # leaves room for the hardware folder within the 255-byte filename limit.


class BaselineError(Exception):
    """A baseline file or folder is unusable; the message is one sentence saying how to fix it."""


@dataclass(frozen=True)
class StoredRecord:
    """A measurement as saved in a baseline, with the provenance of that save.

    ``environment`` holds the library versions and thread counts the figure was measured with
    (empty in records saved before they were stored).
    """

    measurement: Measurement
    commit: str | None
    dirty: bool
    saved_at: str
    environment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {
            **self.measurement.to_json(),
            "commit": self.commit,
            "dirty": self.dirty,
            "saved_at": self.saved_at,
        }
        return {**data, "environment": self.environment} if self.environment else data


def show(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def bad(path: Path, problem: str, fix: str = "") -> BaselineError:
    fix = fix or f"restore it from git or delete it and run `{RESAVE_COMMAND}`"
    return BaselineError(f"Baseline file {show(path)} {problem}: {fix}.")


def dumps(document: Mapping[str, Any]) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would break other readers of the files.
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def module_slug(test_id: str) -> str:
    """File stem for the test module of ``test_id``: ``tests/test_a.py::t`` -> ``tests__test_a``."""
    module = test_id.split("::", 1)[0].replace("\\", "/")
    module = module.removesuffix(".py")
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", module.replace("/", "__")).lstrip(".") or "_"
    if len(slug) > _MAX_SLUG:
        slug = f"{slug[:_MAX_SLUG]}-{hashlib.sha256(module.encode()).hexdigest()[:8]}"
    # 'machine' would collide with machine.json, which holds no records.
    return f"{slug}_" if f"{slug}.json" == MACHINE_FILE else slug


def render(path: Path, hardware_id: str, records: Mapping[str, StoredRecord]) -> str:
    """The text of the record file ``path`` of ``hardware_id`` holding ``records``, as it is written."""
    document = {
        "schema": SCHEMA_VERSION,
        "hardware_id": hardware_id,
        "records": {key: record.to_json() for key, record in records.items()},
    }
    try:
        return dumps(document)
    except (TypeError, ValueError) as exc:
        raise BaselineError(
            f"Cannot write baseline file {show(path)} because a measurement holds a value "
            f"JSON cannot store ({exc}): make its value finite and its extra JSON-safe."
        ) from exc


def machine_changed(path: Path, machine: Mapping[str, Any]) -> bool:
    """Whether the machine.json at ``path`` needs rewriting: only when a stable field changed, to keep
    baseline diffs quiet."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if not isinstance(old, dict):
        return True

    def stable(info: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in info.items() if k not in VOLATILE_FIELDS}

    return stable(old) != stable(json.loads(json.dumps(dict(machine))))


def read_file(path: Path, hardware_id: str) -> dict[str, StoredRecord]:
    """Parse and validate one record file; a missing file holds no records."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise bad(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise bad(path, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(document, dict):
        raise bad(path, "does not hold a JSON object")
    schema = document.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        raise bad(
            path,
            f"has schema {schema}, newer than the schema {SCHEMA_VERSION} this pytest-modelperf reads",
            f"upgrade pytest-modelperf, or delete it and run `{RESAVE_COMMAND}`",
        )
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise bad(
            path, f"has schema {schema!r}, but this pytest-modelperf reads schemas 1 to {SCHEMA_VERSION}"
        )
    if document.get("hardware_id") != hardware_id:
        raise bad(
            path, f"names hardware {document.get('hardware_id')!r} but lies in the folder of {hardware_id!r}"
        )
    records = document.get("records")
    if not isinstance(records, dict):
        raise bad(path, "has no 'records' object")
    return {key: _parse_record(path, key, data, schema) for key, data in records.items()}


def _parse_record(path: Path, key: str, data: Any, schema: int) -> StoredRecord:
    if not isinstance(data, dict):
        raise bad(path, f"has a record {key!r} that is not a JSON object")
    problem = _record_problem(data) or _samples_problem(data)
    if problem:
        raise bad(path, f"has a record {key!r} whose {problem}")
    try:
        measurement = measurement_from_json(data, schema)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(path, f"has a record {key!r} whose details cannot be read ({type(exc).__name__}: {exc})") from None
    if measurement.key != key:
        raise bad(path, f"files the record of {measurement.key!r} under the key {key!r}")
    return StoredRecord(measurement, data["commit"], data["dirty"], data["saved_at"], data.get("environment", {}))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Field -> (check, expected type in words); those in _OPTIONAL may be absent.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "test_id": (lambda v: isinstance(v, str), "a string"),
    "kind": (lambda v: v in {k.value for k in Kind}, "one of " + ", ".join(k.value for k in Kind)),
    "metric": (lambda v: isinstance(v, str), "a string"),
    "unit": (lambda v: isinstance(v, str), "a string"),
    "value": (_is_number, "a finite number"),
    "samples": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    "control": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    "model": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "extra": (lambda v: isinstance(v, dict), "an object"),  # schema 1
    "role": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "latency": (lambda v: isinstance(v, dict), "an object"),
    "memory": (lambda v: isinstance(v, dict), "an object"),
    "accuracy": (lambda v: isinstance(v, dict), "an object"),
    "info": (lambda v: isinstance(v, dict), "an object"),
    "commit": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "dirty": (lambda v: isinstance(v, bool), "true or false"),
    "saved_at": (lambda v: isinstance(v, str), "a string"),
    "environment": (lambda v: isinstance(v, dict), "an object"),
}
_OPTIONAL = {"samples", "control", "model", "extra", "environment", "role", "latency", "memory", "accuracy", "info"}


def _holds_non_finite(value: Any) -> bool:
    """A NaN or infinity (Python's json reads them) where numbers belong, said by name rather than by type."""
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


def _record_problem(data: Mapping[str, Any]) -> str | None:
    """Why ``data`` is not a valid stored record, as the end of a sentence; None when it is."""
    for name, (check, expected) in _CHECKS.items():
        if name not in data:
            if name in _OPTIONAL:
                continue
            return f"field {name!r} is missing"
        if name in ("value", "samples", "control") and _holds_non_finite(data[name]):
            return (f"field {name!r} holds NaN or an infinity, which no measurement produces: expected "
                    f"{'a finite number' if name == 'value' else 'a list of finite numbers'}")
        if not check(data[name]):
            shown = repr(data[name])
            shown = shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."
            return f"field {name!r} is {shown}, expected {expected}"
    return None


def _samples_problem(data: Mapping[str, Any]) -> str | None:
    """What makes a well-typed record useless to the comparison it exists for; None when nothing does."""
    kind, samples = Kind(data["kind"]), data.get("samples") or []
    if kind in (Kind.LATENCY, Kind.ACCURACY) and not samples:
        # Without them decide has nothing to test: a latency or accuracy verdict is made on the samples.
        return f"field 'samples' is missing or empty, but {kind.value} records are compared by their samples"
    if kind is Kind.LATENCY and any(x <= 0 for x in [*samples, *data.get("control", [])]):
        return "samples or control hold a value that is not positive, which no timed round can take"
    # Per-example accuracy pairs its samples; a perplexity (also an accuracy record) is one figure, compared by value.
    if kind is Kind.ACCURACY and data.get("metric") != "perplexity" and any(x not in (0, 1) for x in samples):
        return "samples hold a value other than 0 or 1 (one per example: wrong or right)"
    return None
