"""Unit tests for modelperf.store.baselines and modelperf.store.atomic: the on-disk baseline store."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelperf.records import Kind, Measurement
from modelperf.store import baselines
from modelperf.store.atomic import atomic_write_text
from modelperf.store.baseline_file import module_slug
from modelperf.store.baselines import (
    BaselineDiff,
    BaselineError,
    BaselineStore,
    StoredRecord,
    diff_records,
)

DATA = Path(__file__).parent.parent / "data" / "baselines"
VALID_HW = "x86_64-fixture-valid-2c2t-8g-0badc0de"
SCHEMA99_HW = "x86_64-fixture-schema99-0badc0de"
TRUNCATED_HW = "x86_64-fixture-truncated-0badc0de"
HW = "x86_64-test-2c2t-8g-12345678"
MACHINE: dict[str, Any] = {"arch": "x86_64", "cpu_model": "Test CPU", "cpu_mhz": 2300.0, "hostname": "a"}
SAVE: dict[str, Any] = {"machine": MACHINE, "commit": "abc1234", "dirty": False}


def latency(test_id: str, value: float, metric: str = "median_s") -> Measurement:
    return Measurement(
        test_id, Kind.LATENCY, metric, "s", value, (value, value * 1.1), (0.5,), "m@1", info={"r": 2}
    )


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(baselines, "_utc_now", lambda: "2025-01-02T03:04:05+00:00")
    return "2025-01-02T03:04:05+00:00"


@pytest.fixture
def store(tmp_path: Path) -> BaselineStore:
    return BaselineStore(tmp_path / "baselines", HW)


def test_save_then_load_round_trips(store: BaselineStore, fixed_now: str) -> None:
    saved = [latency("tests/test_a.py::test_x", 0.0123), latency("tests/sub/test_b.py::test_y[1-a]", 2.5)]
    diff = store.save(saved, machine=MACHINE, commit="abc1234", dirty=True)
    assert diff == BaselineDiff(added=sorted(m.key for m in saved), removed=[], changed=[])
    fresh = BaselineStore(store.root, HW).load()
    assert fresh == {m.key: StoredRecord(m, "abc1234", True, fixed_now) for m in saved}
    assert sorted(p.name for p in store.folder.iterdir()) == [
        "machine.json",
        "tests__sub__test_b.json",
        "tests__test_a.json",
    ]
    assert json.loads((store.folder / "machine.json").read_text()) == MACHINE


def test_saved_files_are_sorted_and_independent_of_input_order(tmp_path: Path, fixed_now: str) -> None:
    ms = [latency(f"tests/test_a.py::test_{i}", 0.1 + i) for i in range(5)]
    first, second = BaselineStore(tmp_path / "one", HW), BaselineStore(tmp_path / "two", HW)
    first.save(ms, **SAVE)
    second.save(reversed(ms), **SAVE)
    text = (first.folder / "tests__test_a.json").read_text()
    assert text == (second.folder / "tests__test_a.json").read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert json.loads(text)["schema"] == 2 and json.loads(text)["hardware_id"] == HW


def test_valid_fixture_is_in_canonical_form_and_loads() -> None:
    path = DATA / VALID_HW / "tests__test_a.json"
    text = path.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    records = BaselineStore(DATA, VALID_HW).load()
    assert sorted(records) == [
        "tests/test_a.py::test_accuracy::accuracy",
        "tests/test_a.py::test_classify::median_s",
        "tests/test_a.py::test_classify::peak_bytes",
    ]
    latency_record = records["tests/test_a.py::test_classify::median_s"]
    assert latency_record.measurement.kind is Kind.LATENCY and latency_record.measurement.value == 0.0123
    assert latency_record.commit == "3734204" and latency_record.dirty is False


def test_get_returns_none_for_unknown_keys_and_missing_folders(store: BaselineStore) -> None:
    assert store.load() == {}
    assert store.get("tests/test_a.py::test_x::median_s") is None


def test_save_merges_into_existing_records_by_default(store: BaselineStore) -> None:
    store.save([latency("tests/test_a.py::test_x", 1.0), latency("tests/test_a.py::test_y", 2.0)], **SAVE)
    diff = store.save(
        [latency("tests/test_a.py::test_x", 1.5), latency("tests/test_a.py::test_z", 3.0)], **SAVE
    )
    assert diff.added == ["tests/test_a.py::test_z::median_s"]
    assert diff.removed == []
    assert diff.changed == [("tests/test_a.py::test_x::median_s", 1.0, 1.5)]
    reread = BaselineStore(store.root, HW).load()
    assert {k: r.measurement.value for k, r in reread.items()} == {
        "tests/test_a.py::test_x::median_s": 1.5,
        "tests/test_a.py::test_y::median_s": 2.0,
        "tests/test_a.py::test_z::median_s": 3.0,
    }


def test_replace_all_drops_old_records_of_the_saved_modules_only(store: BaselineStore) -> None:
    store.save([latency("tests/test_a.py::test_x", 1.0), latency("tests/test_a.py::test_y", 2.0)], **SAVE)
    store.save([latency("tests/test_b.py::test_keep", 9.0)], **SAVE)
    diff = store.save([latency("tests/test_a.py::test_x", 1.0)], **SAVE, replace_all=True)
    assert diff == BaselineDiff(added=[], removed=["tests/test_a.py::test_y::median_s"], changed=[])
    assert sorted(BaselineStore(store.root, HW).load()) == [
        "tests/test_a.py::test_x::median_s",
        "tests/test_b.py::test_keep::median_s",
    ]


def test_preview_matches_save_and_writes_nothing(store: BaselineStore) -> None:
    store.save([latency("tests/test_a.py::test_x", 1.0), latency("tests/test_a.py::test_y", 2.0)], **SAVE)
    before = (store.folder / "tests__test_a.json").read_bytes()
    new = [latency("tests/test_a.py::test_x", 1.1)]
    preview = store.preview(new, replace_all=True)
    assert (store.folder / "tests__test_a.json").read_bytes() == before
    assert preview == store.save(new, **SAVE, replace_all=True)


def test_save_keeps_the_other_records_provenance(
    store: BaselineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(baselines, "_utc_now", lambda: "2025-01-01T00:00:00+00:00")
    store.save([latency("tests/test_a.py::test_old", 1.0)], machine=MACHINE, commit="old", dirty=True)
    monkeypatch.setattr(baselines, "_utc_now", lambda: "2025-02-01T00:00:00+00:00")
    store.save([latency("tests/test_a.py::test_new", 1.0)], machine=MACHINE, commit="new", dirty=False)
    records = BaselineStore(store.root, HW).load()
    old, new = records["tests/test_a.py::test_old::median_s"], records["tests/test_a.py::test_new::median_s"]
    assert (old.commit, old.dirty, old.saved_at) == ("old", True, "2025-01-01T00:00:00+00:00")
    assert (new.commit, new.dirty, new.saved_at) == ("new", False, "2025-02-01T00:00:00+00:00")


def test_machine_json_is_rewritten_only_when_a_stable_field_changes(store: BaselineStore) -> None:
    store.save([latency("tests/test_a.py::test_x", 1.0)], **SAVE)
    machine_file = store.folder / "machine.json"
    store.save([latency("tests/test_a.py::test_x", 1.0)], **{**SAVE, "machine": {**MACHINE, "cpu_mhz": 1.0}})
    assert json.loads(machine_file.read_text())["cpu_mhz"] == MACHINE["cpu_mhz"]
    store.save([latency("tests/test_a.py::test_x", 1.0)], **{**SAVE, "machine": {**MACHINE, "arch": "arm64"}})
    assert json.loads(machine_file.read_text())["arch"] == "arm64"


def test_save_of_nothing_writes_nothing(store: BaselineStore) -> None:
    assert store.save([], **SAVE).is_empty
    assert not store.root.exists()


@pytest.mark.parametrize(
    ("diff", "lines"),
    [
        (BaselineDiff([], [], []), []),
        (
            BaselineDiff(
                ["t.py::a::m"], ["t.py::b::m"], [("tests/test_a.py::test_x::median_s", 0.0123, 0.0131)]
            ),
            [
                "added t.py::a::m",
                "removed t.py::b::m",
                "changed tests/test_a.py::test_x::median_s 0.0123 -> 0.0131 (+6.5 %)",
            ],
        ),
        (BaselineDiff([], [], [("k", 2.0, 1.0)]), ["changed k 2 -> 1 (-50.0 %)"]),
        (BaselineDiff([], [], [("k", 0.0, 1.0)]), ["changed k 0 -> 1"]),
        (
            BaselineDiff([], [], [("k", 104857600.0, 115343360.0)]),
            ["changed k 1.049e+08 -> 1.153e+08 (+10.0 %)"],
        ),
    ],
)
def test_diff_lines(diff: BaselineDiff, lines: list[str]) -> None:
    assert diff.lines() == lines


def test_diff_records_sorts_and_ignores_unchanged_values() -> None:
    old = {
        m.key: StoredRecord(m, None, False, "t") for m in [latency("t.py::b", 1.0), latency("t.py::a", 2.0)]
    }
    new = {m.key: m for m in [latency("t.py::c", 1.0), latency("t.py::b", 1.0), latency("t.py::a", 3.0)]}
    assert diff_records(old, new) == BaselineDiff(
        ["t.py::c::median_s"], [], [("t.py::a::median_s", 2.0, 3.0)]
    )
    assert diff_records(old, {}) == BaselineDiff([], ["t.py::a::median_s", "t.py::b::median_s"], [])


@pytest.mark.parametrize(
    ("test_id", "slug"),
    [
        ("tests/test_latency.py::test_x", "tests__test_latency"),
        ("tests\\sub\\test_a.py::T::test[a::b]", "tests__sub__test_a"),
        ("test_top.py", "test_top"),
        ("tests/my test+1.py::t", "tests__my_test_1"),
        ("../outside.py::t", "__outside"),
        ("machine.py::t", "machine_"),
    ],
)
def test_module_slug(test_id: str, slug: str) -> None:
    assert module_slug(test_id) == slug


def test_module_slug_stays_short_and_distinct() -> None:
    long_a, long_b = "tests/" + "a" * 300 + ".py::t", "tests/" + "a" * 299 + "b.py::t"
    assert len(module_slug(long_a)) < 140
    assert module_slug(long_a) != module_slug(long_b)


def test_list_hardware_and_other_hardware_hints() -> None:
    assert BaselineStore.list_hardware(DATA) == sorted([VALID_HW, SCHEMA99_HW, TRUNCATED_HW])
    assert BaselineStore.list_hardware(DATA / "missing") == []
    mine = BaselineStore(DATA, "x86_64-somewhere-else-00000000")
    # The unreadable fixtures are skipped: this is only a hint about other machines.
    assert mine.hardware_ids_with("tests/test_a.py::test_classify::median_s") == [VALID_HW]
    assert mine.hardware_ids_with("tests/test_a.py::test_unknown::median_s") == []
    assert BaselineStore(DATA, VALID_HW).hardware_ids_with("tests/test_a.py::test_classify::median_s") == []


def test_store_refuses_an_unsafe_hardware_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a safe folder name"):
        BaselineStore(tmp_path, "../escape")


@pytest.mark.parametrize(
    ("hardware", "match"),
    [
        (SCHEMA99_HW, r"has schema 99, newer than the schema 2 .*: upgrade pytest-modelperf"),
        (TRUNCATED_HW, r"is not valid JSON \(line \d+, column \d+\): restore it from git"),
    ],
)
def test_bad_fixtures_raise_one_sentence(hardware: str, match: str) -> None:
    with pytest.raises(BaselineError, match=match) as info:
        BaselineStore(DATA, hardware).load()
    assert "tests__test_a.json" in str(info.value) and one_sentence(str(info.value))


def _valid_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / VALID_HW / "tests__test_a.json").read_text())
    document["hardware_id"] = HW
    return document


def _record(document: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = document["records"]["tests/test_a.py::test_classify::median_s"]
    return record


Mutation = Callable[[dict[str, Any]], Any]
BAD_DOCUMENTS: list[tuple[str, Mutation, str]] = [
    ("list", lambda d: [d], "does not hold a JSON object"),
    ("schema missing", lambda d: d.pop("schema"), "has schema None"),
    ("schema string", lambda d: d.update(schema="1"), "has schema '1'"),
    ("schema zero", lambda d: d.update(schema=0), "has schema 0"),
    ("other hardware", lambda d: d.update(hardware_id="other"), "names hardware 'other'"),
    ("no records", lambda d: d.pop("records"), "has no 'records' object"),
    ("record not object", lambda d: d["records"].update(x=[1]), "record 'x' that is not a JSON object"),
    ("key mismatch", lambda d: _record(d).update(metric="mean_s"), "under the key"),
    ("bad kind", lambda d: _record(d).update(kind="speed"), "'kind' is 'speed', expected one of latency"),
    (
        "value string",
        lambda d: _record(d).update(value="fast"),
        "'value' is 'fast', expected a finite number",
    ),
    ("value bool", lambda d: _record(d).update(value=True), "'value' is True"),
    ("samples text", lambda d: _record(d).update(samples=["1"]), "'samples' is \\['1'\\]"),
    ("control number", lambda d: _record(d).update(control=1), "'control' is 1"),
    ("model number", lambda d: _record(d).update(model=3), "'model' is 3"),
    ("extra list", lambda d: _record(d).update(extra=[]), "'extra' is \\[\\]"),
    ("dirty string", lambda d: _record(d).update(dirty="no"), "'dirty' is 'no', expected true or false"),
    ("commit number", lambda d: _record(d).update(commit=12), "'commit' is 12"),
    (
        "long value",
        lambda d: _record(d).update(samples=["x" * 500]),
        r"'samples' is \['xxx.*\.\.\., expected",
    ),
]


def _drop(name: str) -> Mutation:
    return lambda document: _record(document).pop(name)


BAD_DOCUMENTS += [
    (f"missing {name}", _drop(name), f"field '{name}' is missing")
    for name in ("test_id", "kind", "metric", "unit", "value", "commit", "dirty", "saved_at")
]


@pytest.mark.parametrize(
    ("mutate", "match"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_hand_edited_files_raise_one_sentence(store: BaselineStore, mutate: Mutation, match: str) -> None:
    document = _valid_document()
    result = mutate(document)
    store.folder.mkdir(parents=True)
    path = store.folder / "tests__test_a.json"
    path.write_text(json.dumps(result if isinstance(result, list) else document))
    with pytest.raises(BaselineError, match=match) as info:
        store.load()
    assert str(path.name) in str(info.value) and one_sentence(str(info.value))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"is not valid JSON \(line 1, column 1\)"),
        (b'{"schema": 1,\n  "records": {,}}', r"is not valid JSON \(line 2, column 15\)"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_unreadable_files_raise_one_sentence(store: BaselineStore, content: bytes, match: str) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / "tests__test_a.json").write_bytes(content)
    with pytest.raises(BaselineError, match=match) as info:
        store.load()
    assert one_sentence(str(info.value))


def test_optional_fields_may_be_absent(store: BaselineStore) -> None:
    # A latency or accuracy record is compared by its samples, so only a memory record may lack them.
    document = _valid_document()
    for name in ("control", "model", "extra"):
        _record(document).pop(name)
    document["records"]["tests/test_a.py::test_classify::peak_bytes"].pop("samples")
    store.folder.mkdir(parents=True)
    (store.folder / "tests__test_a.json").write_text(json.dumps(document))
    record = store.get("tests/test_a.py::test_classify::median_s")
    assert record is not None and record.measurement.control == () and record.measurement.model is None
    memory = store.get("tests/test_a.py::test_classify::peak_bytes")
    assert memory is not None and memory.measurement.samples == ()


ACCURACY_KEY = "tests/test_a.py::test_accuracy::accuracy"
LATENCY_KEY = "tests/test_a.py::test_classify::median_s"


@pytest.mark.parametrize(
    ("key", "change", "match"),
    [
        (LATENCY_KEY, {"samples": None}, "field 'samples' is missing or empty, but latency records are compared"),
        (LATENCY_KEY, {"samples": []}, "field 'samples' is missing or empty"),
        (ACCURACY_KEY, {"samples": None}, "but accuracy records are compared by their samples"),
        (LATENCY_KEY, {"samples": [-0.01, -0.02, -0.03]}, "samples or control hold a value that is not positive"),
        (LATENCY_KEY, {"control": [0.5, 0.0]}, "samples or control hold a value that is not positive"),
        (ACCURACY_KEY, {"samples": [1.0, 0.5]}, "samples hold a value other than 0 or 1"),
    ],
)
def test_records_decide_cannot_use_are_refused_naming_file_and_key(
    store: BaselineStore, key: str, change: dict[str, Any], match: str
) -> None:
    document = _valid_document()
    record = document["records"][key]
    for name, value in change.items():
        if value is None:
            record.pop(name)
        else:
            record[name] = value
    store.folder.mkdir(parents=True)
    (store.folder / "tests__test_a.json").write_text(json.dumps(document))
    with pytest.raises(BaselineError, match=match) as info:
        store.load()
    message = str(info.value)
    assert "tests__test_a.json" in message and repr(key) in message and one_sentence(message)


def test_a_record_repeated_in_two_files_is_refused(store: BaselineStore) -> None:
    store.folder.mkdir(parents=True)
    text = json.dumps(_valid_document())
    (store.folder / "tests__test_a.json").write_text(text)
    (store.folder / "copy.json").write_text(text)
    with pytest.raises(BaselineError, match="repeats the record"):
        store.load()


def test_save_refuses_to_merge_into_a_corrupt_file(store: BaselineStore) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / "tests__test_a.json").write_text("{")
    with pytest.raises(BaselineError, match="is not valid JSON"):
        store.save([latency("tests/test_a.py::test_x", 1.0)], **SAVE)
    assert (store.folder / "tests__test_a.json").read_text() == "{"


def test_unwritable_folder_raises_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    store = BaselineStore(blocker / "baselines", HW)  # root runs the tests, so chmod would not stop it
    with pytest.raises(BaselineError, match="Cannot write baseline .* writable folder") as info:
        store.save([latency("tests/test_a.py::test_x", 1.0)], **SAVE)
    assert one_sentence(str(info.value))


def test_non_finite_values_are_refused_before_anything_is_written(store: BaselineStore) -> None:
    with pytest.raises(BaselineError, match="JSON cannot store") as info:
        store.save([latency("tests/test_a.py::test_x", float("nan"))], **SAVE)
    assert one_sentence(str(info.value))
    assert not store.root.exists()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")])
@pytest.mark.parametrize("machine", [MACHINE, {"arch": "new"}], ids=["records-file", "machine-file"])
def test_interrupted_save_leaves_previous_files_byte_identical(
    store: BaselineStore, monkeypatch: pytest.MonkeyPatch, error: BaseException, machine: dict[str, Any]
) -> None:
    store.save([latency("tests/test_a.py::test_x", 1.0)], **SAVE)
    before = {p.name: p.read_bytes() for p in store.folder.iterdir()}
    targets: list[str] = []

    def crash(src: Any, dst: Any) -> None:
        targets.append(Path(dst).name)
        raise error

    monkeypatch.setattr(os, "replace", crash)
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else BaselineError
    with pytest.raises(expected):
        store.save([latency("tests/test_a.py::test_x", 2.0)], **{**SAVE, "machine": machine})
    monkeypatch.undo()
    assert targets == ["tests__test_a.json" if machine is MACHINE else "machine.json"]
    assert {p.name: p.read_bytes() for p in store.folder.iterdir()} == before
    assert store.get("tests/test_a.py::test_x::median_s").measurement.value == 1.0  # type: ignore[union-attr]


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\n")
    assert target.read_bytes() == b"two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_write_keeps_the_permissions_of_the_replaced_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.parametrize("error", [KeyboardInterrupt, PermissionError])
def test_atomic_write_cleans_up_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")

    def crash(src: Any, dst: Any) -> None:
        raise error()

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(error):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_write_into_a_missing_folder_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "f.json", "x")


def test_fixture_tree_is_untouched_by_the_tests() -> None:
    # Guards against a test writing into tests/data by mistake (they must use tmp_path).
    names = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file())
    assert names == sorted(
        [
            f"{VALID_HW}/machine.json",
            f"{VALID_HW}/tests__test_a.json",
            f"{SCHEMA99_HW}/tests__test_a.json",
            f"{TRUNCATED_HW}/tests__test_a.json",
        ]
    )
