"""Prompt library files: read their entries, and save a prompt as a new entry of a saved library
(never of a library shipped with the studio, see `save_prompt`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from app import settings
from app.core.errors import ChainStudioError, StorageError
from app.core.prompt_list import LIBRARY_SEPARATOR, LibraryEntry, parse_library
from app.media.text_files import read_text_file

# Letters (any script), digits, "_", ".", "-" and spaces: no separators, drive colons or wildcards.
_UNSAFE_NAME = re.compile(r"[^\w. -]+")
NAME_HINT = "give the prompt file a name, e.g. my_prompts"


def library_entries(path: Path) -> list[LibraryEntry]:
    """The entries of a library file (an unreadable file gives a ChainStudioError)."""
    return parse_library(read_text_file(path))


def entry_label(entry: LibraryEntry, width: int = 90) -> str:
    """A one-line label for an entry: its first line, without a leading --- marker."""
    line = entry.first_line.removeprefix("---").strip() or f"Entry {entry.index}"
    return line if len(line) <= width else line[: width - 1] + "…"


def library_stem(name: str) -> str:
    """The file name (without .txt) a library name is saved under; raises ChainStudioError when
    nothing usable is left (an empty name, or only characters a file name cannot hold)."""
    stem = _UNSAFE_NAME.sub("", (name or "").strip())
    if stem.lower().endswith(".txt"):
        stem = stem[: -len(".txt")]
    stem = stem.strip(" .")
    if not stem:
        given = (name or "").strip()
        if given:
            raise ChainStudioError(f"{given!r} has no letters or digits to name a file with: {NAME_HINT}")
        raise ChainStudioError(NAME_HINT)
    return stem


def save_prompt(folder: Path, name: str, text: str, shipped: Iterable[Path] | None = None) -> Path:
    """Add `text` as a new entry of `folder/<name>.txt` (created when missing); returns its path.

    `shipped` are the libraries that come with the studio (`settings.shipped_library_files()` by
    default); they are never written. Saving under the name of one of them writes `folder`'s copy,
    which starts with the shipped entries, and the library list shows that copy in its place: a
    person who types "user_prompts" means "add it to the list I see under that name", which neither
    a refusal nor an empty file hiding the shipped entries would do. (A later update of the shipped
    file does not reach the copy; deleting the copy brings the shipped file back.)

    Raises ChainStudioError for empty text, a name that gives no file name, and a `folder` holding
    shipped files (CHAIN_STUDIO_PROMPTS_DIR pointing into the install folder); StorageError when
    the file cannot be written.
    """
    if not text.strip():
        raise ChainStudioError("the user prompt is empty: there is nothing to save")
    path = folder / f"{library_stem(name)}.txt"
    originals = {p.name: p for p in (settings.shipped_library_files() if shipped is None else shipped)}
    original = originals.get(path.name)
    if _resolved(folder) in {_resolved(p.parent) for p in originals.values()}:
        raise ChainStudioError(
            f"{folder} holds the prompt libraries that come with the studio, which are not changed: set "
            f"{settings.PROMPTS_DIR_ENV} to a folder of your own (without it, prompts are saved in the "
            "data folder)"
        )
    existing = _text_or_nothing(path if path.exists() or original is None else original).rstrip()
    try:
        body = f"{existing}\n{LIBRARY_SEPARATOR}\n{text.strip()}\n" if existing else f"{text.strip()}\n"
        path.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot save the prompt to {path}: {exc.strerror or exc}") from exc
    return path


def _text_or_nothing(path: Path) -> str:
    """A library's text; "" for a missing or empty file (read_text_file refuses those)."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return ""
    except OSError:
        pass  # read_text_file says what is wrong
    return read_text_file(path)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
