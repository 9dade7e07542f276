"""PDF and text files become prompt text, or are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from app.core.prompt_list import parse_library, parse_prompt_list
from app.media.pdf import (
    DOCUMENT_SUMMARY_PROMPT,
    FINAL_SUMMARY_PROMPT,
    MAX_PDF_CHARACTERS,
    PAGE_SUMMARY_PROMPT,
    pdf_as_one_item,
    pdf_as_page_items,
)
from app.media.text_files import FileRefusedError, decode_text, read_text_file


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    document = pymupdf.open()
    for text in pages:
        page = document.new_page()
        if text:
            page.insert_text((72, 72), text)
    if password:
        document.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password)
    else:
        document.save(path)
    document.close()
    return path


def plan(text: str) -> tuple[str, list[str], list[str]]:
    """(pre-prompt, the items' own texts, the final prompts) of a prompt list."""
    parsed = parse_prompt_list(text)
    return (parsed.pre_prompt, [i.text for i in parsed.items if not i.collects_answers],
            [i.text for i in parsed.items if i.collects_answers])


def test_two_pages_become_two_items_after_samantha_instructions(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "two.pdf", ["The first page.", "The second page."])
    text = pdf_as_page_items(pdf).text
    assert text == (f"[{PAGE_SUMMARY_PROMPT}]\n[[{FINAL_SUMMARY_PROMPT}]]\n$$$\n"
                    "Page 1:\nThe first page.\n$$$\nPage 2:\nThe second page.")
    assert plan(text) == (PAGE_SUMMARY_PROMPT, ["Page 1:\nThe first page.", "Page 2:\nThe second page."],
                          [FINAL_SUMMARY_PROMPT])


def test_whole_document_is_one_item(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "doc.pdf", ["Alpha line", "Beta line"])
    text = pdf_as_one_item(pdf).text
    assert plan(text) == (DOCUMENT_SUMMARY_PROMPT, ["Document doc.pdf:\nPage 1:\nAlpha line\n\nPage 2:\nBeta line"], [])
    assert plan(pdf_as_one_item(pdf, "[Translate it:]\n[[Judge the translations:]]").text) == (
        "Translate it:", ["Document doc.pdf:\nPage 1:\nAlpha line\n\nPage 2:\nBeta line"], ["Judge the translations:"]
    )


def test_the_pdf_summary_entry_and_the_page_button_give_samantha_plan(tmp_path: Path) -> None:
    """The shipped "Summarise a PDF" entry, then "PDF → one item per page": every page is an item
    after the entry's instruction, and the final summary comes last (the entry's `---` line used to
    swallow page 1)."""
    from app.settings import PROJECT_ROOT

    entries = parse_library((PROJECT_ROOT / "user_prompts.txt").read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e.first_line.startswith("---Summarise a PDF")]
    pdf = make_pdf(tmp_path / "three.pdf", ["First.", "Second.", "Third."])
    pages = ["Page 1:\nFirst.", "Page 2:\nSecond.", "Page 3:\nThird."]
    assert plan(pdf_as_page_items(pdf, entry.text).text) == (PAGE_SUMMARY_PROMPT, pages, [FINAL_SUMMARY_PROMPT])
    # pasted below the entry by hand, the pages plan the same: the entry ends its own item with $$$
    assert plan(entry.text + "\n" + "\n$$$\n".join(pages)) == plan(pdf_as_page_items(pdf, entry.text).text)
    # a field's own instructions are kept, a missing one is Samantha's; other items are replaced
    own = pdf_as_page_items(pdf, "---notes\n[Translate the page into French:]\nan old item").text
    assert plan(own) == ("Translate the page into French:", pages, [FINAL_SUMMARY_PROMPT])
    own_final = pdf_as_page_items(pdf, "[[{max_tokens=300} List the three pages' topics:]]").text
    assert plan(own_final) == (PAGE_SUMMARY_PROMPT, pages, ["List the three pages' topics:"])
    assert parse_prompt_list(own_final).items[-1].overrides == {"max_tokens": 300}


def test_document_text_is_data_not_syntax(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "tricky.pdf", ["[looks like a pre-prompt] [[or a final]]", "{temperature=9} $$$ STOP_SAMANTHA"])
    for field in ("", "[[only a final]]", "[only a pre-prompt]"):
        parsed = parse_prompt_list(pdf_as_page_items(pdf, field).text)
        assert parsed.pre_prompt in (PAGE_SUMMARY_PROMPT, "only a pre-prompt")
        assert [i.text for i in parsed.items if i.collects_answers] in ([FINAL_SUMMARY_PROMPT], ["only a final"])
        assert [i.overrides for i in parsed.items] == [{}, {}, {}]
        assert parsed.items[0].text == "Page 1:\n[looks like a pre-prompt] [ [or a final]]"
        assert "STOP_SAMANTHA" in parsed.items[1].text
    whole = parse_prompt_list(pdf_as_one_item(pdf).text)
    assert whole.pre_prompt == DOCUMENT_SUMMARY_PROMPT and len(whole.items) == 1
    assert "[looks like a pre-prompt] [ [or a final]]" in whole.items[0].text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("encrypted", "password-protected"),
        ("scanned", "no text layer"),
        ("truncated", "not a readable PDF"),
        ("renamed", "not a readable PDF"),
        ("empty", "is empty"),
    ],
)
def test_unusable_pdfs_are_refused(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / f"{case}.pdf"
    if case == "encrypted":
        make_pdf(path, ["secret"], password="pw")
    elif case == "scanned":
        make_pdf(path, ["", ""])
    elif case == "truncated":
        good = make_pdf(tmp_path / "good.pdf", ["text"]).read_bytes()
        path.write_bytes(good[:40])
    elif case == "renamed":
        path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 200)
    else:
        path.write_bytes(b"")
    with pytest.raises(FileRefusedError, match=message):
        pdf_as_page_items(path)


def test_text_encodings(tmp_path: Path) -> None:
    assert decode_text("héllo".encode("utf-8")) == "héllo"
    assert decode_text("héllo – “quoted”".encode("cp1252")) == "héllo – “quoted”"
    assert decode_text("\ufeffhéllo".encode("utf-16-le").replace(b"\xff\xfe", b"\xff\xfe", 1)) == "héllo"
    assert decode_text(b"\xef\xbb\xbfBOM text") == "BOM text"
    with pytest.raises(FileRefusedError, match="binary"):
        decode_text(b"MZ\x90\x00\x03\x00\x00\x00")
    with pytest.raises(FileRefusedError, match="empty"):
        decode_text(b"")


def test_text_file_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(FileRefusedError, match="text files up to"):
        read_text_file(big, limit=1024)
    assert read_text_file(big) == "x" * 2048


def make_bomb(path: Path, pages: int, lines_per_page: int, first_page_text: str = "") -> Path:
    """A small PDF whose pages all draw one compressed content stream repeating a 100-character
    line `lines_per_page` times at the same place (a decompression bomb: kilobytes on disk)."""
    document = pymupdf.open()
    normal = document.new_page()
    normal.insert_text((72, 72), first_page_text or "A normal first page.")
    resources = document.xref_get_key(normal.xref, "Resources")[1]
    stream = document.get_new_xref()
    document.update_object(stream, "<<>>")
    line = b"1 0 0 1 20 400 Tm (" + b"A" * 99 + b") Tj "  # 100 characters with its line break
    content = b"BT /helv 8 Tf " + line * lines_per_page + b"ET"
    document.update_stream(stream, content, compress=True)
    for _ in range(pages):
        page = document.new_page()
        document.xref_set_key(page.xref, "Contents", f"{stream} 0 R")
        document.xref_set_key(page.xref, "Resources", resources)
    if not first_page_text:
        document.delete_page(0)
    document.save(path, deflate=True)
    document.close()
    return path


def test_a_pdf_bomb_is_read_only_up_to_the_character_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = make_bomb(tmp_path / "bomb.pdf", pages=30, lines_per_page=10_000)  # 1,000,000 characters a page
    assert pdf.stat().st_size < 60_000
    read_pages: list[int] = []
    original = pymupdf.Page.get_text

    def counting_get_text(page: pymupdf.Page, *args: object, **kwargs: object) -> object:
        read_pages.append(page.number)
        return original(page, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "get_text", counting_get_text)
    loaded = pdf_as_page_items(pdf)
    assert read_pages == [0, 1, 2]  # the 27 pages after the cap are never read
    assert loaded.note == (
        "bomb.pdf: only the first 2,000,000 characters were kept (up to page 3 of 30); the rest was not read"
    )
    items = parse_prompt_list(loaded.text).items
    assert [item.text.split("\n", 1)[0] for item in items[:-1]] == ["Page 1:", "Page 2:", "Page 3:"]
    instructions = len(PAGE_SUMMARY_PROMPT) + len(FINAL_SUMMARY_PROMPT)
    assert MAX_PDF_CHARACTERS <= len(loaded.text) - instructions < MAX_PDF_CHARACTERS + 100
    assert len(pdf_as_one_item(pdf).text) - len(DOCUMENT_SUMMARY_PROMPT) < MAX_PDF_CHARACTERS + 100


def test_a_page_that_expands_too_far_is_skipped_unread(tmp_path: Path) -> None:
    pdf = make_bomb(tmp_path / "one-page-bomb.pdf", pages=1, lines_per_page=200_000, first_page_text="Keep me.")
    loaded = pdf_as_page_items(pdf, "[Be brief.]")
    assert loaded.text == f"[Be brief.]\n[[{FINAL_SUMMARY_PROMPT}]]\n$$$\nPage 1:\nKeep me."
    assert loaded.note == (
        "page 2 of one-page-bomb.pdf skipped: the content expands beyond 16 MB, far more than a page of "
        "text holds (a compression bomb?)"
    )
    only_bomb = make_bomb(tmp_path / "only-bomb.pdf", pages=1, lines_per_page=200_000)
    with pytest.raises(FileRefusedError, match="page 1 of only-bomb.pdf skipped: the content expands beyond 16 MB"):
        pdf_as_page_items(only_bomb)


def test_the_files_tab_says_how_much_of_a_pdf_was_kept(tmp_path: Path) -> None:
    from app.ui.panels.files_panel import _loader

    pdf = make_bomb(tmp_path / "bomb.pdf", pages=3, lines_per_page=10_000)
    with pytest.warns(UserWarning, match="only the first 2,000,000 characters were kept"):
        text, status = _loader(pdf_as_page_items, "the PDF, one item per page")(str(pdf), "")
    assert text.startswith(f"[{PAGE_SUMMARY_PROMPT}]\n[[{FINAL_SUMMARY_PROMPT}]]\n$$$\nPage 1:\n" + "A" * 99)
    assert status == (
        "Loaded the PDF, one item per page. ⚠️ bomb.pdf: only the first 2,000,000 characters were kept "
        "(up to page 3 of 3); the rest was not read"
    )
    normal = make_pdf(tmp_path / "normal.pdf", ["Just one page."])
    field = "---Summarise\n[Be brief.]\n[[Sum up:]]\n$$$"  # the User prompt field, as the button reads it
    assert _loader(pdf_as_page_items, "the PDF")(str(normal), field) == (
        "[Be brief.]\n[[Sum up:]]\n$$$\nPage 1:\nJust one page.", "Loaded the PDF."
    )
