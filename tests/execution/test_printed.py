"""How printed output is recognised: HTML (a frame), Markdown (rendered), or plain text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.execution import kernel_boot
from app.execution.printed import (
    HTML,
    MARKDOWN,
    PLOTLY_SRC,
    TEXT,
    closed_fences,
    needs_frame,
    plotly_js_path,
    printed_kind,
)
from app.installer import VENVS

PANDAS_TABLE = ('<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n'
                "      <th>city</th>\n    </tr>\n  </thead>\n  <tbody>\n    <tr>\n      <td>Lisbon</td>\n"
                "    </tr>\n  </tbody>\n</table>\n")


@pytest.mark.parametrize("printed", [
    PANDAS_TABLE,
    "<div><b>done</b></div>",
    "<!DOCTYPE html>\n<html><body><p>page</p></body></html>\n",
    "<html><head><title>t</title></head></html>",
    '<svg width="10" height="10"><circle r="4"/></svg>',
    "  <ul><li>one</li><li>two</li></ul>  \n",
    '<p>See <a href="https://example.org">this</a></p>',
])
def test_printed_html(printed: str) -> None:
    assert printed_kind(printed) == HTML


@pytest.mark.parametrize("printed", [
    "See [the docs](https://example.org/docs).",
    "# Results\nall good",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "Total: **42**",
    "```python\nprint(1)\n```",
    "Summary\n<table><tr><td>1</td></tr></table>",  # text then HTML: Markdown (the table is kept)
])
def test_printed_markdown(printed: str) -> None:
    assert printed_kind(printed) == MARKDOWN


@pytest.mark.parametrize("printed", [
    "42\n",
    "<Figure size 640x480 with 1 Axes>",  # matplotlib's repr: a tag-like name, never closed
    "<__main__.Point object at 0x7f3a2c1b2d90>",
    "<class 'int'>",
    "<b",
    "   city  people\n0  Lisbon  545000\n1   Porto  232000",  # a DataFrame printed as text
    "{'a': [1, 2], 'b': (3, 4)}",
    "[1, 2, 3] (a list)",
    "#hashtag and # not a heading at the start? no: 'x # y'",
    "- one\n- two",  # a list alone stays text (plain prints look like that too)
    "a|b\nc|d",
    "",
    "   \n",
])
def test_plain_text_stays_text(printed: str) -> None:
    assert printed_kind(printed) == TEXT


def test_scripts_need_a_frame_and_plain_tables_do_not() -> None:
    assert needs_frame('<div id="p"></div><script>Plotly.newPlot("p")</script>')
    assert needs_frame('<IFRAME src="x"></IFRAME>')
    assert not needs_frame(PANDAS_TABLE)


def test_an_unclosed_fence_is_closed() -> None:
    assert closed_fences("```python\nprint(1)") == "```python\nprint(1)\n```"
    assert closed_fences("```\na\n```\n") == "```\na\n```\n"
    assert closed_fences("no fence") == "no fence"


def test_the_kernel_and_the_page_agree_on_plotlys_placeholder() -> None:
    assert kernel_boot.PLOTLY_SRC == PLOTLY_SRC
    # kernel_boot runs in venvs/jupyter without the studio: it imports only the standard library
    tree = ast.parse(Path(kernel_boot.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "app" not in imported


def test_plotly_js_is_found_in_the_code_environment(tmp_path: Path) -> None:
    path = plotly_js_path(VENVS / "jupyter")
    assert path is not None and path.name == "plotly.min.js" and path.stat().st_size > 1_000_000
    assert plotly_js_path(tmp_path) is None
