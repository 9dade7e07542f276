"""The prompt-list language (compatible with Samantha's prompt files).

User prompt field, read as Samantha reads it:
- The first `[[text]]` anywhere in the field is the final prompt: a last item, `text` followed by
  every answer generated so far in the run, so a model can judge or summarise them. It is sent
  without the pre-prompt.
- The first `[text]` anywhere else (outside `[[...]]`) is the pre-prompt, put before every item:
  on a line of its own, inline (`[Be brief] Say hello`) or in the item of the final prompt
  (`[pre]\n[[final]]`).
- Only those two spans are taken out; any other bracketed text (a Python list, a second `[...]`)
  stays in its item as written (Samantha deleted it).
- The rest is split into items by `$$$`; without `$$$`, every line is an item. Items are
  stripped; empty ones and those starting with `---` are dropped. With no item left, the pre-prompt
  alone is the one item, and without one either, "Hello!" is.
- `{temperature=0, top_k=40, stop=["\\n"]}` at the start of an item (or of the final prompt, or
  just before `[[`) sets settings for that item only. Values are numbers, quoted strings or lists
  of them; nothing is ever evaluated as code. Each key may appear once. Besides the sampling
  settings, Samantha's own item settings are read: `n_ctx=512` (the model is loaded with that
  context for the item), `reset_model=True` (a fresh context for the answer), `stop=STOP` (a bare
  word is the stop string itself) and `template=...` (the prompt format). The studio adds
  `escalate_entropy=2.5`: when an answer's mean token entropy (nats) is above it, the item goes on to
  the next model of the list; at or below it, the item is settled and later models skip it.

System prompt and previous-response fields: split by `$$$`, the first part not starting with `---`
is used (a field starting with `---` is ignored).

Library files: entries separated by a line `$-$-$`, each a whole prompt list.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.core.constraints import KINDS as CONSTRAINT_KINDS
from app.core.constraints import Constraint, constraint_in
from app.core.errors import GrammarError, PromptSyntaxError, SettingsError
from app.core.prompt_format import check_format
from app.core.sampling import LOAD_SPECS, SAMPLING_SPECS, SamplingParams, shown_number

ITEM_SEPARATOR = "$$$"
LIBRARY_SEPARATOR = "$-$-$"
IGNORE_PREFIX = "---"
DEFAULT_PROMPT = "Hello!"
ANSWERS_PLACEHOLDER = "⟪earlier answers go here⟫"
ITEM_SETTINGS = ("template", "n_ctx", "reset_model", "escalate_entropy", *CONSTRAINT_KINDS)
"""Item settings that are not sampling settings: the prompt format, the context the model is loaded
with for the item (it reloads when that differs), a fresh context for the answer, the entropy
above which the item goes on to the next model, and what the answer may say (app.core.constraints)."""
MAX_ESCALATE_ENTROPY = 20.0
"""Above ln(vocabulary size) no answer can reach: 12.5 nats for a 262k vocabulary."""

_KNOWN_SETTINGS = frozenset(SAMPLING_SPECS) | {"stop", "order"} | frozenset(ITEM_SETTINGS)
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_FINAL_MARK = "\0"  # where the final prompt was taken out (settings just before it are its own)
_BARE_WORD = re.compile(r"[^\s\"'\[\](){},=]+")
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

    @property
    def constraint(self) -> Constraint | None:
        """What the answer may say: the item's {choices=…}, {regex=…}, {json_schema=…} or
        {grammar=…} (parsed and checked with the item)."""
        return next((value for kind in CONSTRAINT_KINDS
                     if isinstance(value := self.overrides.get(kind), Constraint)), None)

    def prompt(self, pre_prompt: str, answers: list[str] | None) -> str:
        """The user message for this item; `answers` None shows where earlier answers will go.
        The final prompt goes without the pre-prompt, as in Samantha (the pre-prompt instructs the
        items, the final prompt the answers to them)."""
        body = self.text
        if self.collects_answers:
            joined = ANSWERS_PLACEHOLDER if answers is None else "\n\n".join(answers)
            return f"{body}\n\n{joined}" if body else joined
        if not pre_prompt:
            return body
        return f"{pre_prompt}\n{body}" if body else pre_prompt


@dataclass(frozen=True)
class PromptList:
    """A parsed user prompt field."""

    items: tuple[PromptItem, ...]
    pre_prompt: str = ""


def _raw_items(text: str) -> list[str]:
    if ITEM_SEPARATOR in text:
        return text.split(ITEM_SEPARATOR)
    return text.split("\n")


def _span(text: str, opening: str, closing: str, start: int = 0) -> tuple[int, int] | None:
    """Where the first `opening`...`closing` from `start` begins and ends, the shortest one (as
    Samantha's lazy regular expressions find it). Only the first `opening` needs trying: when no
    `closing` follows it, none follows a later one either, so this stays linear in the text."""
    begin = text.find(opening, start)
    if begin < 0:
        return None
    end = text.find(closing, begin + len(opening))
    return None if end < 0 else (begin, end + len(closing))


def _take_final(text: str) -> tuple[str, str | None]:
    """The text without its first `[[...]]` (a mark left in its place), and what it held."""
    found = _span(_blank_settings(text), "[[", "]]")
    if found is None:
        return text, None
    begin, end = found
    return text[:begin] + _FINAL_MARK + text[end:], text[begin + 2 : end - 2].strip()


def _take_pre_prompt(text: str) -> tuple[str, str]:
    """The text without its first `[...]` outside `[[...]]` spans (which stay as they are: Samantha
    deleted them before looking for the pre-prompt, so they never are one), and what it held."""
    blanked = _blank_settings(text)
    masked = list(blanked)
    start = 0
    while (double := _span(blanked, "[[", "]]", start)) is not None:
        masked[double[0] : double[1]] = " " * (double[1] - double[0])  # same length, no brackets
        start = double[1]
    found = _span("".join(masked), "[", "]")
    if found is None:
        return text, ""
    begin, end = found
    return text[:begin] + text[end:], text[begin + 1 : end - 1].replace(_FINAL_MARK, "").strip()


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
        elif char in "[({":
            depth += 1
        elif char in "])}":
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
    spec = SAMPLING_SPECS.get(key) or (LOAD_SPECS["n_ctx"] if key == "n_ctx" else None)
    if spec is not None:
        return str(spec.out_of_range(stripped))
    return f"value of {key}: {shown_number(stripped)} is too large for any setting"


def _value(key: str, text: str) -> Any:
    """A setting's value. Bare words are read only where Samantha documents them: `stop=STOP` (the
    word is the stop string) and `reset_model=True`; they are text, never looked up or evaluated."""
    stripped = text.strip()
    if key == "stop" and _BARE_WORD.fullmatch(stripped):
        return stripped
    if key == "json_schema" and stripped.startswith("{"):
        try:  # an inline schema is JSON (true, false, null), read as data: never evaluated
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the schema is not valid JSON: {exc.msg} at character {exc.pos + 1}") from None
    if key == "reset_model":
        if stripped.lower() not in ("true", "false"):
            raise ValueError(f"{_preview(stripped, 60)!r} is not True or False")
        return stripped.lower() == "true"
    return _literal(stripped)


def _check_item_settings(overrides: dict[str, Any]) -> None:
    """Ranges, by the same rules as the run's settings (raises SettingsError)."""
    SamplingParams().with_overrides({k: v for k, v in overrides.items() if k not in ITEM_SETTINGS})
    if "n_ctx" in overrides:
        overrides["n_ctx"] = LOAD_SPECS["n_ctx"].check(overrides["n_ctx"])
    if "template" in overrides:
        overrides["template"] = check_format(overrides["template"])
    try:
        constraint = constraint_in(overrides)
    except GrammarError as exc:
        raise SettingsError(str(exc)) from None
    if constraint is not None:
        overrides[constraint.kind] = constraint  # the parsed form: its grammar is made once
    if "escalate_entropy" in overrides:
        value = overrides["escalate_entropy"]
        if isinstance(value, str) or isinstance(value, list) or not 0 < value <= MAX_ESCALATE_ENTROPY:
            raise SettingsError(f"escalate_entropy must be a number of nats above 0 and at most "
                                f"{MAX_ESCALATE_ENTROPY:g} (e.g. 2.5), not {_preview(repr(value), 40)}")
        overrides["escalate_entropy"] = float(value)


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
        if key not in _KNOWN_SETTINGS:  # named before its value is read: a typo is the likelier fault
            raise PromptSyntaxError(
                f"{where}: unknown setting {key}; known settings: {', '.join(sorted(_KNOWN_SETTINGS))}"
            )
        if key in overrides:
            raise PromptSyntaxError(
                f"{where}: {key} is set twice in {{{_preview(block, 60)}}}; give each setting once"
            )
        huge = _huge_integer(key, part[match.end() :])
        if huge:
            raise PromptSyntaxError(f"{where}: {huge}")
        try:
            overrides[key] = _value(key, part[match.end() :])
        except ValueError as exc:
            raise PromptSyntaxError(f"{where}: value of {key}: {exc}") from None
    try:
        _check_item_settings(overrides)
    except SettingsError as exc:
        raise PromptSyntaxError(f"{where}: {exc}") from None
    return overrides


def _block_end(text: str, start: int, stop: int) -> int | None:
    """The index of the `}` closing the `{` at `start`, quotes respected, before `stop`; None when
    it is not closed there."""
    depth, quote = 0, ""
    for index in range(start, stop):
        char = text[index]
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
                return index
    return None


def _leading_settings(item: str, where: str) -> tuple[dict[str, Any], str]:
    if not item.startswith("{"):
        return {}, item
    end = _block_end(item, 0, len(item))
    if end is None:
        raise PromptSyntaxError(f"{where}: the settings block starting with '{{' is never closed with '}}'")
    return parse_settings_block(item[1:end], where), item[end + 1 :].strip()


def _blank_settings(text: str) -> str:
    """`text` with the brackets of the `{...}` blocks that start items blanked (same length): a
    list value such as stop=["END"] is neither a [pre-prompt] nor a [[final prompt]]. Each item is
    scanned once, so this stays linear in the length of the field."""
    chars = list(text)
    separator = ITEM_SEPARATOR if ITEM_SEPARATOR in text else "\n"
    start = 0
    while start <= len(text):
        end = text.find(separator, start)
        end = len(text) if end < 0 else end
        first = start
        while first < end and (text[first].isspace() or text[first] == _FINAL_MARK):
            first += 1
        close = _block_end(text, first, end) if first < end and text[first] == "{" else None
        for index in range(first, close if close is not None else first):
            if chars[index] in "[]":
                chars[index] = " "
        start = end + len(separator)
    return "".join(chars)


def _normal(text: str) -> str:
    # line breaks as Samantha reads its files; a NUL is no text, and marks the final prompt
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").replace(_FINAL_MARK, "")


def instruction_spans(text: str) -> tuple[str, str | None]:
    """The pre-prompt ("" when there is none) and the final prompt (None when there is none) of a
    user prompt field, found as `parse_prompt_list` finds them, without reading anything else."""
    rest, final = _take_final(_normal(text))
    return _take_pre_prompt(rest)[1], final


def parse_prompt_list(text: str) -> PromptList:
    """Parse a user prompt field. Raises PromptSyntaxError naming the item and the problem."""
    source = _normal(text)
    rest, final = _take_final(source)
    rest, pre_prompt = _take_pre_prompt(rest)
    plain: list[tuple[str, dict[str, Any]]] = []
    final_overrides: dict[str, Any] = {}
    for position, piece in enumerate(_raw_items(rest), start=1):
        held_final = _FINAL_MARK in piece
        raw = piece.replace(_FINAL_MARK, "").strip()
        if not raw or raw.startswith(IGNORE_PREFIX):
            continue
        where = f"item {position} ({_preview(raw)})"
        overrides, body = _leading_settings(raw, where)
        if body.startswith("[[") and "]]" not in body:
            raise PromptSyntaxError(f"{where}: '[[' is never closed: end the final prompt with ']]'")
        if body:
            plain.append((body, overrides))
        elif held_final:  # `{seed=7} [[Judge:]]`: the settings are the final prompt's
            final_overrides = overrides
        elif overrides:
            raise PromptSyntaxError(f"{where}: the settings block is not followed by a prompt")
    if not plain:
        plain.append(("" if pre_prompt else DEFAULT_PROMPT, {}))  # "" sends the pre-prompt alone
    items = [PromptItem(n, body, ov) for n, (body, ov) in enumerate(plain, start=1)]
    if final is not None:
        where = f"the final prompt ([[{_preview(final)}]])"
        own, body = _leading_settings(final, where)
        twice = sorted(set(own) & set(final_overrides))
        if twice:
            raise PromptSyntaxError(f"{where}: {', '.join(twice)} is set twice; give each setting once")
        items.append(PromptItem(len(items) + 1, body, {**final_overrides, **own}, collects_answers=True))
    return PromptList(tuple(items), pre_prompt)


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
