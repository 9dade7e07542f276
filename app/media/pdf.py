"""PDF text for prompt lists: one item per page, or the whole document as one item.

Document text is data, not prompt-list syntax: every page item starts with "Page N:" (so a page
can never read as a `[pre-prompt]`, a `{settings}` block or a `---` comment), and `$$$` inside the
text is broken up so it cannot split items.

A small PDF can hold a compressed page that expands to tens of millions of characters (56 KB gave
40 million in 12.7 s): reading stops once MAX_PDF_CHARACTERS are kept, and a page whose content
expands beyond MAX_PAGE_CONTENT_BYTES is skipped without being read; the note says what was kept.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf

from app.core.prompt_list import ITEM_SEPARATOR
from app.media.text_files import FileRefusedError

MAX_PDF_BYTES = 200 * 2**20
MAX_PDF_PAGES = 2000
MAX_PDF_CHARACTERS = 2_000_000  # about 1,000 dense pages: more than any model's context
MAX_PAGE_CONTENT_BYTES = 16 * 2**20  # a dense page of text takes well under 1 MB of drawing commands


@dataclass(frozen=True)
class PdfText:
    """The text read from a PDF's pages, and a note when not all of it was kept."""

    pages: tuple[str, ...]  # one per page read; pages after the cap are not read at all
    page_count: int
    note: str = ""


@dataclass(frozen=True)
class PdfPrompt:
    """Prompt-list text made from a PDF, and the note to show when not all of it was kept."""

    text: str
    note: str = ""


def _neutral(text: str) -> str:
    return text.replace(ITEM_SEPARATOR, "$ $ $").strip()


def _content_size(document: Any, page: Any, limit: int) -> int | None:
    """How many bytes the page's drawing commands expand to, counted only up to just past `limit`
    (inflating a bomb fully is what must be avoided); None when a filter other than Flate is used
    (then the page is read as it is)."""
    total = 0
    for xref in page.get_contents():
        kind, value = document.xref_get_key(xref, "Filter")
        raw = document.xref_stream_raw(xref) or b""
        if kind == "null":
            total += len(raw)
        elif value.strip("[] ") == "/FlateDecode":
            try:
                total += len(zlib.decompressobj().decompress(raw, limit + 1 - total))
            except zlib.error:
                return None  # damaged: pymupdf reports what it can
        else:
            return None
        if total > limit:
            break
    return total


def pdf_page_texts(
    path: str | Path, max_characters: int = MAX_PDF_CHARACTERS, max_page_content: int = MAX_PAGE_CONTENT_BYTES
) -> PdfText:
    """The text of every page, refused with a reason for files that give no usable text. Reading
    stops once `max_characters` are kept; pages whose content expands beyond `max_page_content`
    bytes are skipped unread. `note` says so."""
    file_path = Path(path)
    name = file_path.name
    try:
        size = file_path.stat().st_size
    except OSError as exc:
        raise FileRefusedError(f"{name} cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise FileRefusedError(f"{name} is empty")
    if size > MAX_PDF_BYTES:
        raise FileRefusedError(f"{name} is {size / 2**20:.0f} MB; PDFs up to {MAX_PDF_BYTES // 2**20} MB can be loaded")
    try:
        document = pymupdf.open(file_path, filetype="pdf")
    except Exception as exc:  # pymupdf raises FileDataError and others for damaged files
        raise FileRefusedError(f"{name} is not a readable PDF ({exc})") from exc
    texts: list[str] = []
    skipped: list[int] = []
    kept, capped = 0, False
    with document:
        if document.needs_pass:
            raise FileRefusedError(f"{name} is password-protected; remove the password and load it again")
        page_count = document.page_count
        if page_count == 0:
            raise FileRefusedError(f"{name} has no pages")
        if page_count > MAX_PDF_PAGES:
            raise FileRefusedError(
                f"{name} has {page_count} pages; up to {MAX_PDF_PAGES} pages can be loaded at once"
            )
        try:
            for page in document:
                content = _content_size(document, page, max_page_content)
                if content is not None and content > max_page_content:
                    skipped.append(page.number + 1)
                    texts.append("")
                    continue
                text = page.get_text().strip()
                texts.append(text[: max_characters - kept])
                kept += len(texts[-1])
                capped = len(text) > len(texts[-1]) or (kept >= max_characters and len(texts) < page_count)
                if capped:
                    break  # the rest is never read
        except Exception as exc:
            raise FileRefusedError(f"{name} is damaged: its text cannot be read ({exc})") from exc
    notes = []
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (" …" if len(skipped) > 10 else "")
        notes.append(
            f"page{'s' if len(skipped) > 1 else ''} {shown} of {name} skipped: the content expands beyond "
            f"{max_page_content // 2**20} MB, far more than a page of text holds (a compression bomb?)"
        )
    if capped:
        notes.append(
            f"{name}: only the first {max_characters:,} characters were kept (up to page {len(texts)} of "
            f"{page_count}); the rest was not read"
        )
    note = "; ".join(notes)
    if not any(texts):
        raise FileRefusedError(note or f"{name} has no text layer (a scanned document?); it would need OCR first")
    return PdfText(tuple(texts), page_count, note)


def pdf_as_page_items(path: str | Path) -> PdfPrompt:
    """A prompt list with one item per page (pages without text are left out)."""
    read = pdf_page_texts(path)
    items = [f"Page {number}:\n{_neutral(text)}" for number, text in enumerate(read.pages, start=1) if text]
    return PdfPrompt(f"\n{ITEM_SEPARATOR}\n".join(items), read.note)


def pdf_as_one_item(path: str | Path) -> PdfPrompt:
    """A prompt list whose only item is the whole document's text."""
    read = pdf_page_texts(path)
    body = "\n\n".join(_neutral(t) for t in read.pages if t)
    return PdfPrompt(f"Document {Path(path).name}:\n{body}\n{ITEM_SEPARATOR}", read.note)
