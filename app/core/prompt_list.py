"""The prompt-list language (compatible with Samantha's prompt files).

User prompt field:
- Items are separated by `$$$`; without `$$$`, every non-empty line is an item.
- An item starting with `---` is ignored; empty items are dropped; no items at all means "Hello!".
- An item that is wholly `[text]` is a pre-prompt: `text` is put before every item.
- An item that is wholly `[[text]]` adds a last item: `text` followed by every answer generated so far
  in the run, so a model can judge or summarise them.
- `{temperature=0, top_k=40, stop=["\\n"]}` at the start of an item sets settings for that item only.
  Values are numbers, quoted strings or lists of them; nothing is ever evaluated as code. Each key
  may appear once.

System prompt and previous-response fields: split by `$$$`, the first part not starting with `---`
is used (a field starting with `---` is ignored).

Library files: entries separated by a line `$-$-$`, each a whole prompt list.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import PromptSyntaxError, SettingsError
from app.core.prompt_format import check_format
from app.core.sampling import SAMPLING_SPECS, SamplingParams, shown_number

ITEM_SEPARATOR = "$$$"
LIBRARY_SEPARATOR = "$-$-$"
IGNORE_PREFIX = "---"
DEFAULT_PROMPT = "Hello!"
ANSWERS_PLACEHOLDER = "⟪earlier answers go here⟫"

_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_INTEGER = re.compile(r"[+-]?\s*\d[\d_]*")
_MAX_INTEGER_DIGITS = 60
"""Longer integers are out of every setting's range; Python refuses to read decimal integers of
more than 4,300 digits at all (ValueError), so they are refused by their length."""


@dataclass(frozen=True)
class PromptItem:
    """One prompt of the list. `number` counts the items that are sent, from 1."""

    number: int
    text: str
    overrides: dict[str, Any] = field(default_factory=dict)
    collects_answers: bool = False  # a [[...]] item: the run's answers so far are appended

    def prompt(self, pre_prompt: str, answers: list[str] | None) -> str:
        """The user message for this item; `answers` None shows where earlier answers will go."""
        body = self.text
        if self.collects_answers:
            joined = ANSWERS_PLACEHOLDER if answers is None else "\n\n".join(answers)
            body = f"{body}\n\n{joined}" if body else joined
        return f"{pre_prompt}\n{body}" if pre_prompt else body


@dataclass(frozen=True)
class PromptList:
    """A parsed user prompt field."""

    items: tuple[PromptItem, ...]
    pre_prompt: str = ""


def _raw_items(text: str) -> list[str]:
    if ITEM_SEPARATOR in text:
        return [part.strip() for part in text.split(ITEM_SEPARATOR)]
    return [line.strip() for line in text.splitlines()]


def _split_top_level(body: str) -> list[str]:
    """Split `a=1, stop=["x", "y,z"]` at commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    i = 0
    while i < len(body):
        char = body[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    parts.append(body[start:])
    return [part for part in parts if part.strip()]


def _literal(text: str) -> Any:
    """A number, a quoted string, or a list of those; anything else is refused."""
    stripped = text.strip()
    shown = stripped if len(stripped) <= 60 else stripped[:59] + "…"
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{shown!r} is not a number, a quoted string or a list") from exc
    if isinstance(value, tuple):
        value = list(value)
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{shown!r} is not a number, a quoted string or a list of them")
    return value


def _huge_integer(key: str, text: str) -> str | None:
    """Why an integer too long for any setting is refused (None for other values)."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped) or sum(char.isdigit() for char in stripped) <= _MAX_INTEGER_DIGITS:
        return None
    spec = SAMPLING_SPECS.get(key)
    if spec is not None:
        return str(spec.out_of_range(stripped))
    return f"value of {key}: {shown_number(stripped)} is too large for any setting"


def parse_settings_block(block: str, where: str) -> dict[str, Any]:
    """`temperature=0, top_k=40` -> checked overrides (raises PromptSyntaxError naming `where`)."""
    overrides: dict[str, Any] = {}
    for part in _split_top_level(block):
        match = _KEY.match(part)
        if not match or not part[match.end() :].strip():
            raise PromptSyntaxError(
                f"{where}: malformed settings {{{block}}}: expected key=value pairs, "
                "e.g. {temperature=0.7, top_k=40}"
            )
        key = match.group(1)
        if key in overrides:
            raise PromptSyntaxError(
                f"{where}: {key} is set twice in {{{_preview(block, 60)}}}; give each setting once"
            )
        huge = _huge_integer(key, part[match.end() :])
        if huge:
            raise PromptSyntaxError(f"{where}: {huge}")
        try:
            overrides[key] = _literal(part[match.end() :])
        except ValueError as exc:
            raise PromptSyntaxError(f"{where}: value of {key}: {exc}") from None
    try:
        # names and ranges checked by the same rules as the run's settings; `template` is the
        # item's prompt format (app.core.prompt_format), not a sampling setting
        SamplingParams().with_overrides({k: v for k, v in overrides.items() if k != "template"})
        if "template" in overrides:
            overrides["template"] = check_format(overrides["template"])
    except SettingsError as exc:
        raise PromptSyntaxError(f"{where}: {exc}") from None
    return overrides


def _leading_settings(item: str, where: str) -> tuple[dict[str, Any], str]:
    if not item.startswith("{"):
        return {}, item
    depth, quote = 0, ""
    for index, char in enumerate(item):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return parse_settings_block(item[1:index], where), item[index + 1 :].strip()
    raise PromptSyntaxError(f"{where}: the settings block starting with '{{' is never closed with '}}'")


def parse_prompt_list(text: str) -> PromptList:
    """Parse a user prompt field. Raises PromptSyntaxError naming the item and the problem."""
    pre_prompts: list[str] = []
    plain: list[tuple[str, dict[str, Any]]] = []
    collectors: list[tuple[str, dict[str, Any]]] = []
    for position, raw in enumerate(_raw_items(text or ""), start=1):
        if not raw or raw.startswith(IGNORE_PREFIX):
            continue
        where = f"item {position} ({_preview(raw)})"
        overrides, body = _leading_settings(raw, where)
        if body.startswith("[["):
            if not body.endswith("]]") or len(body) < 4:
                raise PromptSyntaxError(f"{where}: '[[' is never closed: end the item with ']]'")
            collectors.append((body[2:-2].strip(), overrides))
        elif body.startswith("[") and body.endswith("]"):
            if overrides:
                raise PromptSyntaxError(f"{where}: a [pre-prompt] cannot carry settings")
            pre_prompts.append(body[1:-1].strip())
        elif body:
            plain.append((body, overrides))
        elif overrides:
            raise PromptSyntaxError(f"{where}: the settings block is not followed by a prompt")
    if not plain and not collectors:
        plain.append((DEFAULT_PROMPT, {}))
    items = [PromptItem(n, body, ov) for n, (body, ov) in enumerate(plain, start=1)]
    items += [
        PromptItem(len(items) + n, body, ov, collects_answers=True)
        for n, (body, ov) in enumerate(collectors, start=1)
    ]
    return PromptList(tuple(items), "\n".join(p for p in pre_prompts if p))


def parse_single_field(text: str) -> str:
    """System prompt / previous response: the first `$$$` part not starting with `---`."""
    for part in (text or "").split(ITEM_SEPARATOR):
        stripped = part.strip()
        if stripped.startswith(IGNORE_PREFIX):
            continue
        if stripped:
            return stripped
    return ""


@dataclass(frozen=True)
class LibraryEntry:
    """One entry of a prompt library file."""

    index: int
    text: str

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")


def parse_library(text: str) -> list[LibraryEntry]:
    """Split a library file at lines that are exactly `$-$-$`; empty entries are dropped."""
    entries: list[str] = []
    current: list[str] = []
    for line in (text or "").splitlines():
        if line.strip() == LIBRARY_SEPARATOR:
            entries.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current).strip())
    return [LibraryEntry(i, body) for i, body in enumerate((e for e in entries if e), start=1)]


def _preview(text: str, width: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
