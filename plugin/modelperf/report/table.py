"""The one table model of the reports, rendered as aligned terminal text, markdown or HTML.

Every report builds a :class:`Table` of already formatted cells and picks a renderer, so the
terminal summary, the markdown summary, the ``modelperf`` commands and the HTML page cannot
disagree about what a table holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Table", "markdown_cell"]


@dataclass(frozen=True)
class Table:
    """Headers and rows of text cells; ``align`` has one ``l`` or ``r`` per column (default all ``l``).

    ``marked`` holds the indexes of rows to highlight (a regression) in HTML.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""
    marked: frozenset[int] = frozenset()

    @classmethod
    def of(cls, headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "",
           marked: Sequence[int] = ()) -> Table:
        return cls(tuple(headers), tuple(tuple(str(c) for c in row) for row in rows), align, frozenset(marked))

    def _right(self) -> list[bool]:
        return [a == "r" for a in self.align.ljust(len(self.headers), "l")]

    def text(self) -> list[str]:
        """Aligned columns separated by two spaces, with a rule of dashes under the header."""
        widths = [max(len(c) for c in column) for column in zip(self.headers, *self.rows)]
        right = self._right()

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

        return [line(self.headers), line(["-" * w for w in widths]), *(line(row) for row in self.rows)]

    def markdown(self) -> list[str]:
        """A GitHub-flavoured markdown table; cells are escaped so a ``|`` cannot split a column."""
        rule = "|" + "".join("---:|" if r else "---|" for r in self._right())
        return [_md_row(self.headers), rule, *(_md_row(row) for row in self.rows)]

    def html(self) -> str:
        """A ``<table>`` element, every cell escaped; marked rows carry ``class="regressed"``."""
        cells = ["<tr>" + "".join(f"<th>{escape(c)}</th>" for c in self.headers) + "</tr>"]
        for index, row in enumerate(self.rows):
            css = ' class="regressed"' if index in self.marked else ""
            cells.append(f"<tr{css}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        return "<table>" + "\n".join(cells) + "</table>"


def markdown_cell(text: str) -> str:
    """``text`` safe inside a markdown table cell or list item: pipes escaped, one line."""
    return text.replace("|", "\\|").replace("\n", " ")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(markdown_cell(c) for c in cells) + " |"
