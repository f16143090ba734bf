"""The docs' reference pages cover everything the code declares, and the code's pointers into the docs resolve.

The pages are rendered by the same hook mkdocs runs (``docs/hooks/reference.py``) from the real page
sources, so a new option, ini key, environment variable, marker argument, fixture or ``modelperf``
argument that is missing from the site fails here, as does a comment that points at a docs page or
anchor that does not exist.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.cli import build_parser
from modelperf.config import OPTIONS
from modelperf.markers import MARKERS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "plugin" / "modelperf"


def _load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelperf_docs_reference", DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look a module up by name
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _page(name: str) -> str:
    return str(hook.render((DOCS / "reference" / f"{name}.md").read_text(), name))


def _table_rows(page: str) -> dict[str, str]:
    """First cell (without its backticks and link) -> the whole row, for every table row of a page."""
    rows = {}
    for line in page.splitlines():
        match = re.match(r"\|\s*\[?`([^`]+)`", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_option_is_on_the_options_page_with_its_ini_key_variable_and_default() -> None:
    page = _page("options")
    rows = _table_rows(page)
    for option in OPTIONS:
        flag = f"{option.flag} {option.metavar}" if option.metavar else option.flag
        row = rows.get(flag)
        assert row is not None, f"{option.flag} has no row on docs/reference/options.md"
        assert f"`{option.dest}`" in row, f"{option.flag}'s ini key {option.dest} is missing from its row"
        if option.env:
            assert f"`{option.env}`" in row, f"{option.flag}'s variable {option.env} is missing from its row"
        assert option.default_text in row
        # Its own section, whose anchor the summary table links to, with the option's help text.
        anchor = option.flag.lstrip("-")
        assert f"{{ #{anchor} }}" in page and f"](#{anchor})" in row
        assert " ".join(option.help.split())[1:40] in page


def test_every_marker_argument_is_on_the_markers_page_with_its_default_and_meaning() -> None:
    page = _page("markers")
    for name, cls in MARKERS.items():
        assert f"## `@pytest.mark.{name}`" in page
        section = page.split(f"## `@pytest.mark.{name}`", 1)[1].split("\n## ", 1)[0]
        rows = _table_rows(section)
        for field in fields(cls):
            row = rows.get(field.name)
            assert row is not None, f"@pytest.mark.{name}({field.name}=...) has no row on docs/reference/markers.md"
            assert f"`{field.default!r}`" in row
            assert "not described" not in row, (
                f"@pytest.mark.{name}'s argument {field.name} has no meaning on the docs page: describe it in "
                f"{cls.__name__}'s docstring as '{field.name}: what it does;'.")


def test_every_environment_variable_the_package_names_is_on_the_environment_page() -> None:
    rows = _table_rows(_page("environment"))
    named = {match for path in PACKAGE.rglob("*.py") for match in re.findall(r"MODELPERF_[A-Z_]+", path.read_text())}
    named |= {option.env for option in OPTIONS if option.env}
    assert named, "no MODELPERF_ variable found in the package: the scan is looking in the wrong place"
    missing = sorted(named - set(rows))
    assert not missing, f"not on docs/reference/environment.md: {', '.join(missing)}; add them to OTHER_ENVIRONMENT"


def test_every_modelperf_subcommand_and_argument_is_on_the_cli_page() -> None:
    page = _page("cli")
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert commands
    for name, sub in commands.items():
        assert f"## `modelperf {name}`" in page
        section = page.split(f"## `modelperf {name}`", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            shown = action.option_strings[0] if action.option_strings else str(action.metavar or action.dest)
            assert f"`{shown}" in section, f"modelperf {name}: {shown} is missing from docs/reference/cli.md"


def test_the_fixtures_page_lists_what_pytest_itself_reports_as_the_plugins_fixtures(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:randomly")
    # `pytest --fixtures` groups fixtures under "fixtures defined from <module>"; keep the plugin's groups.
    ours: set[str] = set()
    group = ""
    for line in result.outlines:
        heading = re.match(r"-+ fixtures defined from (\S+) -+", line)
        if heading:
            group = heading.group(1)
        elif group.startswith("modelperf") and re.match(r"\w+ ", line):
            ours.add(line.split()[0])
    assert {"distilbert", "llama", "accuracy"} <= ours, result.stdout.str()
    rows = _table_rows(_page("fixtures"))
    assert ours <= set(rows), f"fixtures missing from docs/reference/fixtures.md: {sorted(ours - set(rows))}"
    assert "session" in rows["distilbert"] and "function" in rows["accuracy"]


def test_every_reference_placeholder_in_the_docs_is_filled() -> None:
    for path in DOCS.rglob("*.md"):
        assert "modelperf-reference:" not in hook.render(path.read_text(), str(path))


def test_an_unknown_placeholder_names_the_page_and_the_known_ones() -> None:
    with pytest.raises(hook.PlaceholderError, match=r"reference/x\.md: unknown placeholder .*options"):
        hook.render("<!-- modelperf-reference: option -->", "reference/x.md")


@dataclass(frozen=True)
class _Example:
    """Summary line.

    size: how big, such as "1 MB" (default none); mode: one of a | b, see size: below;
    quiet: no colon-free text follows
    """

    size: str | None = None
    mode: str = "a"
    quiet: bool = False
    silent: int = 0


def test_field_descriptions_split_the_docstring_at_each_field_name() -> None:
    described = hook.field_descriptions(_Example)
    assert described == {"size": 'how big, such as "1 MB" (default none)', "mode": "one of a | b, see size: below",
                         "quiet": "no colon-free text follows", "silent": ""}


_NAMES = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda name: not keyword.iskeyword(name))
# Meanings as docstrings write them: any words and punctuation except the ';' that ends a field's text.
_MEANINGS = st.text(st.sampled_from("abcdefghij xyz0123456789()'\"|,-<>=%"), min_size=1, max_size=40).map(str.strip)


@given(st.dictionaries(_NAMES, _MEANINGS.filter(bool), min_size=1, max_size=6), st.sampled_from(["; ", ";\n    "]))
def test_field_descriptions_recover_every_meaning_written_as_name_colon_meaning(
        meanings: dict[str, str], separator: str) -> None:
    cls = make_dataclass("Options", [(name, str, "") for name in meanings])
    cls.__doc__ = "Summary.\n\n    " + separator.join(f"{name}: {text}" for name, text in meanings.items()) + ".\n"
    # Line breaks and runs of spaces read as one space, as the docstring is wrapped; the closing ";" or "." goes.
    expected = {name: " ".join(text.split()).rstrip(";.").strip() for name, text in meanings.items()}
    assert hook.field_descriptions(cls) == expected


def _anchors(page: Path) -> set[str]:
    """The ids a page's headings get: explicit ``{ #id }`` attributes, else mkdocs' slug of the heading."""
    ids = set()
    for line in page.read_text().splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if not heading:
            continue
        explicit = re.search(r"\{\s*#([\w-]+)\s*\}\s*$", heading.group(1))
        if explicit:
            ids.add(explicit.group(1))
        else:
            text = re.sub(r"[^\w\s-]", "", heading.group(1).replace("`", "")).strip().lower()
            ids.add(re.sub(r"[-\s]+", "-", text))
    return ids


def test_pointers_from_the_code_into_the_docs_resolve() -> None:
    pointers = {(path, match) for path in PACKAGE.rglob("*.py")
                for match in re.findall(r"docs/([\w./-]+\.md)(?:#([\w-]+))?", path.read_text())}
    for path, (page, anchor) in pointers:
        target = DOCS / page
        assert target.is_file(), f"{path.relative_to(ROOT)} points at docs/{page}, which does not exist"
        if anchor:
            where = path.relative_to(ROOT)
            assert anchor in _anchors(target), f"{where} points at docs/{page}#{anchor}: no such anchor"
