"""Fenced code blocks in model answers."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)


def fenced_blocks(text: str, *languages: str) -> list[str]:
    """The bodies of the blocks of `text` fenced with any of `languages`, in order (languages
    matched case-insensitively)."""
    wanted = {language.lower() for language in languages}
    return [m.group("body").rstrip("\n") for m in _FENCE.finditer(text or "") if m.group("lang").lower() in wanted]


IDE_MARKER = "#IDE"
# Package installs the models like to add: the code environment is fixed, and pip inside a kernel
# would install into it behind the person's back.
_INSTALL_LINE = re.compile(r"^\s*[!%]?\s*pip3?\s+\w+")


def answer_code(text: str) -> str:
    """The Python an answer carries: its ```python blocks in order, joined by a blank line, without
    `pip …`/`!pip …` lines. Empty when the answer has none."""
    blocks = []
    for block in fenced_blocks(text, "python", "py", "python3"):
        kept = "\n".join(line for line in block.splitlines() if not _INSTALL_LINE.match(line))
        if kept.strip():
            blocks.append(kept)
    return "\n\n".join(blocks)


def choose_code(answer_text: str, pasted: str = "") -> tuple[str, str]:
    """The code to run after an answer, and where it came from ("pasted" or "answer"): code the
    person pasted takes precedence when it contains the #IDE marker (as in Samantha)."""
    if pasted and IDE_MARKER in pasted:
        return pasted, "pasted"
    return answer_code(answer_text), "answer"
