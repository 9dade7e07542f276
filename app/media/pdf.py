"""PDF text for prompt lists: one item per page, or the whole document as one item.

Document text is data, not prompt-list syntax: every page item starts with "Page N:" (so a page
can never read as a `[pre-prompt]`, a `{settings}` block or a `---` comment), and `$$$` inside the
text is broken up so it cannot split items.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from app.core.prompt_list import ITEM_SEPARATOR
from app.media.text_files import FileRefusedError

MAX_PDF_BYTES = 200 * 2**20
MAX_PDF_PAGES = 2000


def _neutral(text: str) -> str:
    return text.replace(ITEM_SEPARATOR, "$ $ $").strip()


def pdf_page_texts(path: str | Path) -> list[str]:
    """The text of every page, refused with a reason for files that give no usable text."""
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
    with document:
        if document.needs_pass:
            raise FileRefusedError(f"{name} is password-protected; remove the password and load it again")
        if document.page_count == 0:
            raise FileRefusedError(f"{name} has no pages")
        if document.page_count > MAX_PDF_PAGES:
            raise FileRefusedError(
                f"{name} has {document.page_count} pages; up to {MAX_PDF_PAGES} pages can be loaded at once"
            )
        try:
            texts = [page.get_text().strip() for page in document]
        except Exception as exc:
            raise FileRefusedError(f"{name} is damaged: its text cannot be read ({exc})") from exc
    if not any(texts):
        raise FileRefusedError(f"{name} has no text layer (a scanned document?); it would need OCR first")
    return texts


def pdf_as_page_items(path: str | Path) -> str:
    """A prompt list with one item per page (pages without text are left out)."""
    texts = pdf_page_texts(path)
    items = [f"Page {number}:\n{_neutral(text)}" for number, text in enumerate(texts, start=1) if text]
    return f"\n{ITEM_SEPARATOR}\n".join(items)


def pdf_as_one_item(path: str | Path) -> str:
    """A prompt list whose only item is the whole document's text."""
    texts = pdf_page_texts(path)
    body = "\n\n".join(_neutral(t) for t in texts if t)
    return f"Document {Path(path).name}:\n{body}\n{ITEM_SEPARATOR}"
