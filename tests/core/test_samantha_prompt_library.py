"""Samantha's 43 shipped user-prompt entries plan in the studio what they plan in Samantha.

`samantha_plan` below restates Samantha's prompt-list rules (read from its app.py) as simply as
possible, without the studio's parser; every entry of its `user_prompts.txt` (tests/data/samantha)
must give the same pre-prompt, items and final prompt in both.

Where Samantha destroyed text, the studio keeps it, and so does the statement below:
- Samantha deleted every bracketed span after taking the first `[[...]]` and the first `[...]`
  (entry 3 loses its Portuguese `[CONTEXTO: ...]`, which the studio keeps in its item);
- with no item left, Samantha sent "Hello!" and dropped the pre-prompt (entries 7 and 31); the
  studio sends the pre-prompt alone, as Samantha does for entries 23 and 43, where a trailing `$$$`
  leaves an empty item.
Samantha also joined the lines of the pre-prompt and the final prompt into one; the studio keeps
their line breaks (the comparison of the messages ignores that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.prompt_list import parse_library, parse_prompt_list

LIBRARY = Path(__file__).resolve().parent.parent / "data" / "samantha" / "user_prompts.txt"


def samantha_entries() -> list[str]:
    """Samantha's reading of its library: the file (universal newlines) split at every `$-$-$`,
    each entry stripped."""
    text = LIBRARY.read_text(encoding="utf-8")
    return [entry.strip() for entry in text.split("$-$-$") if entry.strip()]


@dataclass(frozen=True)
class Plan:
    pre_prompt: str
    items: list[str]  # each item's own text
    final: str | None  # the [[...]] text, sent with the answers so far


def samantha_plan(field: str) -> Plan:
    """Samantha's rules for a user prompt field (minus its deletions):
    1. the first `[[...]]` anywhere is the final prompt, and is taken out;
    2. then the first `[...]` anywhere is the pre-prompt, and is taken out;
    3. the rest splits by `$$$` when it holds one, else by lines; items are stripped, and empty ones
       and those starting with `---` are dropped;
    4. with no item left, the pre-prompt alone is the item (without one, "Hello!");
    5. each item is sent after the pre-prompt; the final prompt comes last, without it."""
    final = None
    found = re.search(r"\[\[(.*?)\]\]", field, re.DOTALL)
    if found:
        final = found.group(1).strip()
        field = field[: found.start()] + field[found.end() :]
    pre_prompt = ""
    found = re.search(r"\[(.*?)\]", field, re.DOTALL)
    if found:
        pre_prompt = found.group(1).strip()
        field = field[: found.start()] + field[found.end() :]
    parts = field.split("$$$") if "$$$" in field else field.split("\n")
    items = [part.strip() for part in parts]
    items = [item for item in items if item and not item.startswith("---")]
    if not items:
        items = [""] if pre_prompt else ["Hello!"]
    return Plan(pre_prompt, items, final)


def flat(text: str) -> str:
    return " ".join(text.split())


ENTRIES = samantha_entries()


def test_the_library_has_43_entries_and_the_studio_reads_the_same() -> None:
    assert len(ENTRIES) == 43
    assert [entry.text for entry in parse_library(LIBRARY.read_text(encoding="utf-8"))] == ENTRIES
    # the statement above takes the first [[...]] and then any [...]: no entry has a second [[...]]
    assert all(entry.count("[[") <= 1 for entry in ENTRIES)
    assert not any("{" in entry for entry in ENTRIES)  # no inline settings in these entries


@pytest.mark.parametrize("number", range(1, len(ENTRIES) + 1))
def test_each_entry_plans_what_samantha_plans(number: int) -> None:
    entry = ENTRIES[number - 1]
    expected = samantha_plan(entry)
    parsed = parse_prompt_list(entry)
    items = [item for item in parsed.items if not item.collects_answers]
    finals = [item for item in parsed.items if item.collects_answers]
    assert parsed.pre_prompt == expected.pre_prompt
    assert [item.text for item in items] == expected.items
    assert [item.text for item in finals] == ([] if expected.final is None else [expected.final])
    assert all(not item.overrides for item in parsed.items)
    # the messages sent: the pre-prompt before each item, the final prompt with the answers, alone
    for item, own in zip(items, expected.items, strict=True):
        assert flat(item.prompt(parsed.pre_prompt, None)) == flat(f"{expected.pre_prompt} {own}")
    for item in finals:
        assert item.prompt(parsed.pre_prompt, ["A1", "A2"]) == f"{expected.final}\n\nA1\n\nA2"


def test_the_variables_of_entry_17_reach_every_task() -> None:
    """The entry that lost its variable definitions for every item after the first."""
    parsed = parse_prompt_list(ENTRIES[16])
    assert parsed.pre_prompt.startswith("Variables:\n<question> = From the perspective")
    assert [item.text.split("\n")[0] for item in parsed.items] == [f"Task {n}:" for n in range(1, 6)]
    assert all(item.prompt(parsed.pre_prompt, None).startswith("Variables:\n") for item in parsed.items)
