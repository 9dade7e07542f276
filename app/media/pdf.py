"""PDF text for prompt lists: one item per page, or the whole document as one item.

As in Samantha, the pages come after instructions: the pre-prompt and the final prompt already in
the User prompt field (so a library entry chosen first, such as "Summarise a PDF", is kept), else
Samantha's own (a summary of each page and a `[[final summary]]` of them; for the whole document, a
summary of each of its pages). The rest of the field is replaced.

Document text is data, not prompt-list syntax: every page starts with "Page N:" (so a page can
never read as a `{settings}` block or a `---` comment), the instructions come first (so a `[...]`
in a page is never the pre-prompt), `[[` in the text is broken up so it cannot be the final prompt,
and `$$$` is broken up so it cannot split items.

A small PDF can hold a compressed page that expands to tens of millions of characters (56 KB gave
40 million in 12.7 s): reading stops once MAX_PDF_CHARACTERS are kept, and a page whose content
expands beyond MAX_PAGE_CONTENT_BYTES is skipped without being read; the note says what was kept.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf

from app.core.prompt_list import ITEM_SEPARATOR, instruction_spans
from app.media.text_files import FileRefusedError

# Samantha's instructions for its PDF buttons (its "in Portuguese" left out: answers follow the page)
PAGE_SUMMARY_PROMPT = (
    "Generate a concise summary, one paragraph long, for the page below. Analyze carefully the textual "
    "content of the page. Generate a concise summary, faithfully capturing the main ideas. Each idea must "
    'be registered as a sentence in the paragraph. Start with the page number (ex: "Page 1:"). Do not '
    "include comments and avoid unnecessary repetitions:"
)
FINAL_SUMMARY_PROMPT = (
    "Create a summary joining the text pages below. Distribute the text into paragraphs however you see "
    "fit. Do not mention page numbers neither include comments and avoid unnecessary repetitions. Start "
    'with the topic "Summary:":'
)
DOCUMENT_SUMMARY_PROMPT = (
    "Generate a concise summary, one paragraph long for each page below. Analyze carefully the textual "
    "content of the page. Generate a concise summary, faithfully capturing the main ideas. Each idea must "
    'be registered as a sentence in the paragraph. Start with the page number (ex: "Page 1:"), followed by '
    "the page summary. Generate the page summary in a single paragraph. Do not include comments and avoid "
    "unnecessary repetitions:"
)

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
    return re.sub(r"\[(?=\[)", "[ ", text.replace(ITEM_SEPARATOR, "$ $ $")).strip()


def _instructions(field: str, pre_prompt: str, final: str | None) -> str:
    """The field's pre-prompt and final prompt, written as spans; a missing one is the default
    given here (`final` None: none)."""
    own_pre, own_final = instruction_spans(field)
    pre_prompt = own_pre or pre_prompt
    final = own_final if own_final is not None else final
    return f"[{pre_prompt}]" + ("" if final is None else f"\n[[{final}]]")


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


def _pages(read: PdfText) -> list[str]:
    return [f"Page {number}:\n{_neutral(text)}" for number, text in enumerate(read.pages, start=1) if text]


def pdf_as_page_items(path: str | Path, field: str = "") -> PdfPrompt:
    """A prompt list with one item per page (pages without text are left out), after the pre-prompt
    and final prompt of `field` (the User prompt field), or Samantha's: PAGE_SUMMARY_PROMPT and
    [[FINAL_SUMMARY_PROMPT]]."""
    read = pdf_page_texts(path)
    head = _instructions(field, PAGE_SUMMARY_PROMPT, FINAL_SUMMARY_PROMPT)
    separator = f"\n{ITEM_SEPARATOR}\n"
    return PdfPrompt(head + separator + separator.join(_pages(read)), read.note)


def pdf_as_one_item(path: str | Path, field: str = "") -> PdfPrompt:
    """A prompt list whose only item is the whole document's text, page by page, after the
    pre-prompt (and final prompt, if any) of `field`, or Samantha's DOCUMENT_SUMMARY_PROMPT."""
    read = pdf_page_texts(path)
    head = _instructions(field, DOCUMENT_SUMMARY_PROMPT, None)
    body = "\n\n".join(_pages(read))
    return PdfPrompt(f"{head}\n{ITEM_SEPARATOR}\nDocument {Path(path).name}:\n{body}\n{ITEM_SEPARATOR}", read.note)
