"""What a program says to the studio that started it, and what it asks of it.

A program's process gets a channel (`CHAIN_STUDIO_PROGRAM_EVENTS`: a file descriptor) on which it
writes one JSON object per line (contexts, prompted and sampled tokens, titles, user_input
questions, the result), and reads the answers to its user_input questions on standard input, one
JSON line each: `{"text": "..."}`, or `{"none": "why"}` when no answer can come.

Outside a program (a notebook, a script) there is no channel: events go nowhere, `user_input` asks
with `input()`, and files are read from the working folder."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

EVENTS_ENV = "CHAIN_STUDIO_PROGRAM_EVENTS"
FILES_ENV = "CHAIN_STUDIO_PROGRAM_FILES"
MAX_FILE_BYTES = 5 * 2**20  # per file given to a program
MAX_FILES_BYTES = 50 * 2**20  # all files given to one program


class NoUserInput(RuntimeError):
    """user_input() was called where nobody can answer."""


class _Host:
    def __init__(self) -> None:
        self._channel: IO[str] | None = None
        self._lock = threading.Lock()
        self._answers = asyncio.Lock()
        descriptor = os.environ.get(EVENTS_ENV, "")
        if descriptor.isdigit():
            self._channel = os.fdopen(int(descriptor), "w", encoding="utf-8", buffering=1)

    @property
    def in_program(self) -> bool:
        return self._channel is not None

    def emit(self, event: dict[str, Any]) -> None:
        """Send one event to the studio (dropped outside a program)."""
        if self._channel is None:
            return
        line = json.dumps(event, ensure_ascii=False)
        with self._lock:
            self._channel.write(line + "\n")
            self._channel.flush()

    async def user_input(self, label: str) -> str:
        """The person's answer to `label` (one question at a time, in call order)."""
        async with self._answers:
            if self._channel is None:
                if not sys.stdin or not sys.stdin.isatty():
                    raise NoUserInput(f"user_input({label!r}): nobody can answer here (no program host "
                                      "and standard input is not a terminal)")
                return await asyncio.to_thread(input, label + " ")
            self.emit({"type": "user_input", "label": label})
            raw = await asyncio.to_thread(sys.stdin.readline)
            if not raw:
                raise NoUserInput(f"user_input({label!r}): no more input (the studio closed it)")
            answer = json.loads(raw)
            if "text" not in answer:
                raise NoUserInput(f"user_input({label!r}): {answer.get('none') or 'no input is possible here'}")
            text = str(answer["text"])
            self.emit({"type": "user_input_answered", "label": label, "text": text})
            return text


_host: _Host | None = None


def host() -> _Host:
    """The process's one host channel (opened on first use)."""
    global _host
    if _host is None:
        _host = _Host()
    return _host


def files_folder() -> Path:
    """Where `read_file` looks: the files given to the program, else the working folder."""
    given = os.environ.get(FILES_ENV, "")
    return Path(given) if given else Path.cwd()


def read_file_bytes(name: str) -> bytes:
    """A file given to the program, by its name (no folders: only the files given are readable)."""
    folder = files_folder()
    if not name or Path(name).name != name or name in (".", ".."):
        raise FileNotFoundError(f"read_file({name!r}): give the name of a file given to the program, without a folder")
    path = folder / name
    if not path.is_file():
        given = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        raise FileNotFoundError(f"read_file({name!r}): no such file was given to the program"
                                + (f" (given: {', '.join(given)})" if given else " (none was given)"))
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"read_file({name!r}): the file is larger than {MAX_FILE_BYTES // 2**20} MiB")
    return path.read_bytes()
