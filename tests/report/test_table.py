"""The one table model and its three renderings."""

from __future__ import annotations

from modelperf.report.table import Table

TABLE = Table.of(("test", "value"), [["a|b", "1.0 ms"], ["<long name>", "12.0 ms"]], align="lr", marked=[1])


def test_text_aligns_columns_under_a_rule() -> None:
    assert TABLE.text() == [
        "test           value",
        "-----------  -------",
        "a|b           1.0 ms",
        "<long name>  12.0 ms",
    ]


def test_markdown_escapes_pipes_and_aligns_right_columns() -> None:
    assert TABLE.markdown() == ["| test | value |", "|---|---:|", "| a\\|b | 1.0 ms |", "| <long name> | 12.0 ms |"]


def test_html_escapes_cells_and_marks_rows() -> None:
    page = TABLE.html()
    assert page.startswith("<table><tr><th>test</th><th>value</th></tr>")
    assert '<tr class="regressed"><td>&lt;long name&gt;</td><td>12.0 ms</td></tr></table>' in page
    assert "<tr><td>a|b</td>" in page


def test_text_of_a_table_without_rows_is_header_and_rule() -> None:
    assert Table.of(("a", "bb"), []).text() == ["a  bb", "-  --"]
