"""Read a text file whatever its encoding, or refuse it with a reason."""

from __future__ import annotations

import codecs
from pathlib import Path

from app.core.errors import ChainStudioError

MAX_TEXT_BYTES = 10 * 2**20


class FileRefusedError(ChainStudioError):
    """A file that cannot be used, with the reason."""


def decode_text(data: bytes, name: str = "file") -> str:
    """Text from bytes: a BOM decides (UTF-8, UTF-16), else UTF-8, else Windows-1252."""
    if not data:
        raise FileRefusedError(f"{name} is empty")
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise FileRefusedError(f"{name} starts like {encoding.upper()} text but is damaged") from exc
    if b"\0" in data[:8192]:
        raise FileRefusedError(f"{name} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_text_file(path: str | Path, limit: int = MAX_TEXT_BYTES) -> str:
    """The text of a file, refused when missing, too large, empty or binary."""
    file_path = Path(path)
    try:
        size = file_path.stat().st_size
        if size > limit:
            raise FileRefusedError(
                f"{file_path.name} is {size / 2**20:.1f} MB; text files up to {limit / 2**20:.0f} MB can be loaded"
            )
        data = file_path.read_bytes()
    except OSError as exc:
        raise FileRefusedError(f"{file_path.name} cannot be read ({exc.strerror or exc})") from exc
    return decode_text(data, file_path.name)
