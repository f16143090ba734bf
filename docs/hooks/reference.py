"""The docs' reference pages, generated from the code's own declarations (an mkdocs hook).

A reference page holds a placeholder such as ``<!-- modelperf-reference: options -->``; the hook replaces it
with tables built from :data:`modelperf.config.OPTIONS`, :data:`modelperf.markers.MARKERS` and the
``modelperf`` command's parser, so an option, ini key, environment variable or marker argument that the
code declares is on the site, with its default, as soon as it exists. Nothing here is written by hand
twice, except the environment variables that no option declares (:data:`OTHER_ENVIRONMENT`); the
unit test ``tests/docs/test_reference_page.py`` checks that every ``MODELPERF_*`` name in the package
is on the page.

The functions are pure (declarations in, markdown out); only :func:`on_page_markdown` is mkdocs'.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "OTHER_ENVIRONMENT",
    "PLACEHOLDER",
    "PlaceholderError",
    "cli_markdown",
    "environment_markdown",
    "field_descriptions",
    "fixtures",
    "fixtures_markdown",
    "markers_markdown",
    "on_page_markdown",
    "options_markdown",
    "render",
]

# The docs describe this checkout's code, not whatever copy of modelperf is installed.
_SOURCE_ROOT = Path(__file__).resolve().parents[2] / "plugin"
if str(_SOURCE_ROOT) not in sys.path:
    sys.path.insert(0, str(_SOURCE_ROOT))

_USAGE_WIDTH = 100  # columns of the usage lines on the CLI page, whatever terminal builds the docs
PLACEHOLDER = re.compile(r"<!--\s*modelperf-reference:\s*([a-z-]+)\s*-->")

# Environment variables the package reads or sets that no option declares: (name, who uses it, meaning).
OTHER_ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    ("MODELPERF_CACHE", "you",
     ("folder for files derived from the models (the converted DistilBERT checkpoint, weight hashes, fitted "
      "heads, the Llama classifier's calibration and its few-shot prefix KV cells); default "
      "`$XDG_CACHE_HOME/modelperf`, else `~/.cache/modelperf`. Delete it to start afresh.")),
    ("XDG_CACHE_HOME", "you", "the base of the default `MODELPERF_CACHE` when that is not set."),
    ("GITHUB_STEP_SUMMARY", "GitHub Actions",
     "when set, the end-of-session markdown summary is appended to this file as well."),
    ("MODELPERF_WORKER_FDS", "the plugin",
     "set only in `--against` worker processes (the pipes to their controller); never set it yourself."),
    ("MODELPERF_WORKER_PRELOAD", "the plugin",
     "set only in `--against` worker processes: load the selected tests' models before reporting ready."),
    ("MODELPERF_SERVE_PARENT", "the plugin",
     "set only in a model server's launcher process: the pid it serves, so it exits when that process is gone."),
)


class PlaceholderError(ValueError):
    """A placeholder the generator does not know; the message names it and the known ones."""


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: no line breaks, pipes escaped outside code spans (the tables
    extension already reads a pipe inside backticks as text, and would show the backslash there)."""
    parts = re.split(r"(`[^`]*`)", " ".join(text.split()))
    return "".join(part if part.startswith("`") else part.replace("|", "\\|") for part in parts)


def _prose(text: str) -> str:
    """Plain text that markdown must not read as HTML (marker docstrings write ``'<model>:<figure>'``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return f"`{text}`"


def _anchor(flag: str) -> str:
    return flag.lstrip("-")


def options_markdown(options: Sequence[Any]) -> str:
    """Every option of ``OPTIONS``: a summary table, then one section per option with its ini key and variable."""
    lines = ["| option | ini key | environment variable | default |", "|---|---|---|---|"]
    for opt in options:
        flag = f"{opt.flag} {opt.metavar}" if opt.metavar else opt.flag
        env = _code(opt.env) if opt.env else "(none)"
        lines.append(f"| [{_cell(_code(flag))}](#{_anchor(opt.flag)}) | {_code(opt.dest)} | {env} | "
                     f"{_cell(opt.default_text)} |")
    for opt in options:
        flag = f"{opt.flag} {opt.metavar}" if opt.metavar else opt.flag
        lines += ["", f"### `{flag}` {{ #{_anchor(opt.flag)} }}", "", _sentence(opt.help), ""]
        takes = "a flag (ini or environment: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`)" if opt.parse is None \
            else f"`{opt.metavar or 'VALUE'}`"
        lines += [f"- takes: {takes}", f"- default: {opt.default_text}", f"- ini key: `{opt.dest}`"]
        lines.append(f"- environment variable: `{opt.env}`" if opt.env else "- environment variable: none")
    return "\n".join(lines) + "\n"


def environment_markdown(options: Sequence[Any], others: Sequence[tuple[str, str, str]]) -> str:
    """Every environment variable: those of the options (linked to them), then the others."""
    lines = ["| variable | set by | meaning |", "|---|---|---|"]
    for opt in options:
        if opt.env:
            lines.append(f"| `{opt.env}` | you | the same as [`{opt.flag}`](options.md#{_anchor(opt.flag)}) |")
    for name, who, meaning in others:
        lines.append(f"| `{name}` | {who} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def field_descriptions(cls: type[Any]) -> dict[str, str]:
    """Each field's text in ``cls``'s docstring, written there as ``name: what it does; next: ...``.

    The docstring is the one ``pytest --markers`` reads its summary from; a field it does not describe
    maps to an empty string.
    """
    doc = " ".join((cls.__doc__ or "").split("\n\n", 1)[-1].split())
    names = [f.name for f in fields(cls)]
    starts = sorted((match.start(), match.end(), name) for name in names
                    for match in [re.search(rf"(?<![\w<]){re.escape(name)}:", doc)] if match)
    texts = {name: "" for name in names}
    for index, (_, end, name) in enumerate(starts):
        stop = starts[index + 1][0] if index + 1 < len(starts) else len(doc)
        texts[name] = doc[end:stop].strip().rstrip(";.").strip()
    return texts


def _default(field: Field[Any]) -> str:
    if field.default is not MISSING:
        return _code(repr(field.default))
    if field.default_factory is not MISSING:
        return _code(repr(field.default_factory()))
    return "required"


def markers_markdown(markers: Mapping[str, type[Any]], help_line: Callable[[str], str]) -> str:
    """Every marker of ``MARKERS``: its ``pytest --markers`` line and a table of its arguments."""
    lines: list[str] = []
    for name, cls in markers.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        described = field_descriptions(cls)
        lines += [f"## `@pytest.mark.{name}` {{ #{name} }}", "", _prose(summary), "",
                  "```python", _signature(help_line(name)), "```", "",
                  "| argument | type | default | meaning |", "|---|---|---|---|"]
        for field in fields(cls):
            lines.append(f"| `{field.name}` | {_cell(_code(str(field.type)))} | {_cell(_default(field))} | "
                         f"{_cell(_prose(described[field.name] or '(not described in the marker docstring)'))} |")
        lines.append("")
    return "\n".join(lines)


def _signature(help_line: str) -> str:
    """``@pytest.mark.name(args)`` from the ``pytest --markers`` line ``name(args): summary``."""
    return "@pytest.mark." + help_line.split("): ", 1)[0] + (")" if "): " in help_line else "")


def _subcommands(parser: argparse.ArgumentParser) -> Mapping[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _arguments(parser: argparse.ArgumentParser) -> Iterable[tuple[str, str]]:
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        metavar = action.metavar if isinstance(action.metavar, str) else None
        if action.option_strings:
            name = ", ".join(action.option_strings) + (f" {metavar}" if metavar and action.nargs != 0 else "")
        else:
            name = (metavar or action.dest) + (" ..." if action.nargs in ("+", "*") else "")
        text = action.help or ""
        if action.required and action.option_strings:
            text += " (required)"
        yield name, text


def _fixed_width(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=_USAGE_WIDTH)


def cli_markdown(parser: argparse.ArgumentParser) -> str:
    """The ``modelperf`` command: one section per subcommand with a table of its arguments."""
    lines: list[str] = []
    for name, sub in _subcommands(parser).items():
        sub.formatter_class = _fixed_width  # the usage lines must not depend on the terminal that builds the docs
        lines += [f"## `{parser.prog} {name}` {{ #{name} }}", "", _sentence(sub.description or ""), "",
                  "```", sub.format_usage().strip(), "```", "", "| argument | meaning |", "|---|---|"]
        lines += [f"| {_cell(_code(arg))} | {_cell(text)} |" for arg, text in _arguments(sub)]
        lines.append("")
    return "\n".join(lines)


def _fixture_scope(decorator: ast.expr) -> str | None:
    """The scope of a ``@pytest.fixture`` / ``@pytest.fixture(scope=...)`` decorator; None for another decorator."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    if not (isinstance(target, ast.Attribute) and target.attr == "fixture") and \
            not (isinstance(target, ast.Name) and target.id == "fixture"):
        return None
    for keyword in call.keywords if call else ():
        if keyword.arg == "scope" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return "function"


def fixtures(source: str) -> list[tuple[str, str, str]]:
    """(name, scope, docstring's first paragraph) of every fixture a module's source defines, methods included,
    in source order."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                scope = _fixture_scope(decorator)
                if scope is not None:
                    doc = (ast.get_docstring(node) or "").split("\n\n")[0]
                    found.append((node.lineno, node.name, scope, " ".join(doc.split())))
    return [(name, scope, doc) for _, name, scope, doc in sorted(found)]


def fixtures_markdown(sources: Iterable[str]) -> str:
    """A table of the plugin's fixtures: name, scope and what its docstring says."""
    lines = ["| fixture | scope | what it gives |", "|---|---|---|"]
    for source in sources:
        for name, scope, doc in fixtures(source):
            lines.append(f"| `{name}` | {scope} | {_cell(_docstring_markdown(doc))} |")
    return "\n".join(lines) + "\n"


def _docstring_markdown(text: str) -> str:
    """reStructuredText's double backticks as markdown code, the rest as prose."""
    parts = re.split(r"``(.+?)``", text)
    return "".join(f"`{part}`" if index % 2 else _prose(part) for index, part in enumerate(parts))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return _prose(text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


def _sections() -> dict[str, Callable[[], str]]:
    # Imported here: mkdocs loads this hook before any page, and a broken import should name the page.
    from modelperf.cli import build_parser
    from modelperf.config import OPTIONS
    from modelperf.markers import MARKERS, marker_help

    face = _SOURCE_ROOT / "modelperf" / "pytest"
    return {
        "options": lambda: options_markdown(OPTIONS),
        "environment": lambda: environment_markdown(OPTIONS, OTHER_ENVIRONMENT),
        "markers": lambda: markers_markdown(MARKERS, marker_help),
        "cli": lambda: cli_markdown(build_parser()),
        "fixtures": lambda: fixtures_markdown(path.read_text() for path in sorted(face.glob("*.py"))),
    }


def render(markdown: str, where: str = "the page") -> str:
    """``markdown`` with every reference placeholder replaced by its generated section."""
    if not PLACEHOLDER.search(markdown):
        return markdown
    sections = _sections()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in sections:
            raise PlaceholderError(f"{where}: unknown placeholder 'modelperf-reference: {name}'; "
                                 f"use one of {', '.join(sorted(sections))}.")
        return sections[name]()

    return PLACEHOLDER.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs' hook: fill the reference placeholders of each page."""
    page = kwargs.get("page")
    where = getattr(getattr(page, "file", None), "src_uri", "a page")
    return render(markdown, str(where))
