"""What the code printed, as the page should show it: an HTML document or fragment (shown in a
sandboxed frame), Markdown (shown as Markdown), or plain text (shown as it is); and which of its
rich outputs need a frame of their own (HTML with scripts: Plotly figures, Bokeh, pyvis).

Pure standard library: the transcript (app/ui/render.py) and the tests use it without a kernel.

Printed HTML is recognised conservatively: the whole output is markup (it starts with "<" and ends
with ">"), and it holds at least one element people print on purpose, closed (`</table>`,
`</div>`, ...) or a document (`<!DOCTYPE html>`, `<html>`, `<svg>`). So `<Figure size 640x480
with 1 Axes>` or `<__main__.Point object at 0x7f...>` stay text. Printed Markdown needs a feature
plain output seldom has: a link, a heading, a table with its `|---|` row, bold text, a fenced
block, or closed HTML elements among text. A DataFrame printed as text, numbers and dicts stay text.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

HTML = "html"
MARKDOWN = "markdown"
TEXT = "text"

# What kernel_boot.py puts in a Plotly figure's HTML where plotly.js is loaded; the page replaces it
# with the library served by the studio (venvs/jupyter's own copy: no network, no 4.8 MB per figure
# in the journal). Must equal kernel_boot.PLOTLY_SRC.
PLOTLY_SRC = "chain-studio-plotly.min.js"

# Elements a person (or a library's to_html) prints as a page or a fragment of one.
_HTML_ELEMENTS = frozenset({
    "a", "article", "b", "blockquote", "body", "caption", "code", "dd", "details", "div", "dl", "dt", "em",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "html", "i", "label", "li", "main",
    "nav", "ol", "p", "pre", "section", "select", "small", "span", "strong", "style", "sub", "summary", "sup",
    "svg", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "u", "ul", "script", "canvas",
})
_DOCUMENT_STARTS = ("<!doctype html", "<html", "<svg")
_MARKDOWN_FEATURES = (
    re.compile(r"\[[^\]\n]+\]\((?:https?://|mailto:|/|#)[^)\s]*\)"),  # [text](url)
    re.compile(r"^#{1,6} +\S", re.MULTILINE),  # # Heading
    re.compile(r"^\s*\|?[^|\n]*\|[^\n]*\n\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE),  # table
    re.compile(r"\*\*[^*\n]+\*\*"),  # **bold**
    re.compile(r"^```", re.MULTILINE),  # a fenced block
)
_HTML_SIZE_LIMIT = 5_000_000  # larger printed output is shown as text (a frame that big helps nobody)


class _TagCounter(HTMLParser):
    """Counts the known elements that are opened and closed in some markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.opened: set[str] = set()
        self.closed: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _HTML_ELEMENTS:
            self.opened.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_ELEMENTS:
            self.closed.add(tag)


def _has_elements(text: str) -> bool:
    """Some known element is both opened and closed in `text`."""
    counter = _TagCounter()
    try:
        counter.feed(text)
        counter.close()
    except Exception:  # HTMLParser is lenient; anything it still chokes on is not markup
        return False
    return bool(counter.opened & counter.closed)


def is_html(text: str) -> bool:
    """`text` is an HTML document or fragment and nothing else (see the module docstring)."""
    stripped = text.strip()
    if not (stripped.startswith("<") and stripped.endswith(">")) or len(stripped) > _HTML_SIZE_LIMIT:
        return False
    return stripped[:20].lower().startswith(_DOCUMENT_STARTS) or _has_elements(stripped)


def is_markdown(text: str) -> bool:
    """`text` uses Markdown a plain print would not (see the module docstring), or mixes text with
    HTML elements (shown as Markdown too: its tables and emphasis pass the page's sanitizer, as
    the original rendered printed text as Markdown with HTML in it)."""
    if any(feature.search(text) for feature in _MARKDOWN_FEATURES):
        return True
    return "</" in text and len(text) <= _HTML_SIZE_LIMIT and _has_elements(text)


def printed_kind(text: str) -> str:
    """HTML, MARKDOWN or TEXT: how the page shows what the code printed."""
    if not text.strip():
        return TEXT
    if is_html(text):
        return HTML
    if is_markdown(text):
        return MARKDOWN
    return TEXT


def needs_frame(html: str) -> bool:
    """A rich HTML output that only works with its scripts (Plotly, Bokeh, pyvis, ipywidgets...):
    shown in a sandboxed frame. Script-less HTML (a DataFrame's table) is shown inline, through the
    page's sanitizer."""
    lowered = html.lower()
    return "<script" in lowered or "<iframe" in lowered


def closed_fences(markdown: str) -> str:
    """`markdown` with an unclosed ``` fence closed, so printed Markdown cannot turn the rest of
    the transcript into a code block."""
    if len(re.findall(r"^\s*```", markdown, re.MULTILINE)) % 2:
        return markdown.rstrip("\n") + "\n```"
    return markdown


def plotly_js_path(venv: Path) -> Path | None:
    """plotly.min.js of the plotly package in `venv` (the one the kernel's figures are made with),
    or None when plotly is not installed there."""
    pattern = ("Lib/site-packages" if sys.platform == "win32" else "lib/python*/site-packages") + \
        "/plotly/package_data/plotly.min.js"
    return next(iter(sorted(venv.glob(pattern))), None)
