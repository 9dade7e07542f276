"""Fenced code blocks in model answers."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of `text`, in order (language matched case-insensitively)."""
    wanted = language.lower()
    return [m.group("body").rstrip("\n") for m in _FENCE.finditer(text or "") if m.group("lang").lower() == wanted]
