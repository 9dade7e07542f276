"""Prompt library files: read their entries, and save a prompt as a new entry."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.errors import ChainStudioError
from app.core.prompt_list import LIBRARY_SEPARATOR, LibraryEntry, parse_library
from app.media.text_files import read_text_file

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def library_entries(path: Path) -> list[LibraryEntry]:
    """The entries of a library file (an unreadable file gives a ChainStudioError)."""
    return parse_library(read_text_file(path))


def entry_label(entry: LibraryEntry, width: int = 90) -> str:
    """A one-line label for an entry: its first line, without a leading --- marker."""
    line = entry.first_line.removeprefix("---").strip() or f"Entry {entry.index}"
    return line if len(line) <= width else line[: width - 1] + "…"


def save_prompt(folder: Path, name: str, text: str) -> Path:
    """Save `text` as a new entry of `folder/name.txt` (created when missing); returns the path."""
    if not text.strip():
        raise ChainStudioError("the user prompt is empty: there is nothing to save")
    stem = _SAFE_NAME.sub("", (name or "").strip()).strip(" .")
    stem = stem.removesuffix(".txt") or "my_prompts"
    path = folder / f"{stem}.txt"
    existing = path.read_text(encoding="utf-8").rstrip() if path.exists() else ""
    body = f"{existing}\n{LIBRARY_SEPARATOR}\n{text.strip()}\n" if existing else f"{text.strip()}\n"
    path.write_text(body, encoding="utf-8")
    return path
