"""PDF and text files become prompt text, or are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from app.core.prompt_list import parse_prompt_list
from app.media.pdf import pdf_as_one_item, pdf_as_page_items
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


def test_two_pages_become_two_items(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "two.pdf", ["The first page.", "The second page."])
    items = parse_prompt_list(pdf_as_page_items(pdf)).items
    assert [i.text for i in items] == ["Page 1:\nThe first page.", "Page 2:\nThe second page."]


def test_whole_document_is_one_item(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "doc.pdf", ["Alpha line", "Beta line"])
    items = parse_prompt_list(pdf_as_one_item(pdf)).items
    assert len(items) == 1 and "Alpha line" in items[0].text and "Beta line" in items[0].text


def test_document_text_is_data_not_syntax(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "tricky.pdf", ["[looks like a pre-prompt]", "{temperature=9} $$$ STOP_SAMANTHA"])
    parsed = parse_prompt_list(pdf_as_page_items(pdf))
    assert parsed.pre_prompt == ""
    assert [i.overrides for i in parsed.items] == [{}, {}]
    assert len(parsed.items) == 2 and "STOP_SAMANTHA" in parsed.items[1].text


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
