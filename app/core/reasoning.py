"""Reasoning ("thinking") in an answer: `<think>…</think>` and the other markers reasoning models
write. It is shown folded, kept in the journal, and left out of what is acted on: not fed back to
the next model (unless asked), no STOP_SAMANTHA, no code run."""

from __future__ import annotations

# (opening, closing) markers of reasoning, as models write them.
MARKERS = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("[THINK]", "[/THINK]"),
    ("<seed:think>", "</seed:think>"),
    ("◁think▷", "◁/think▷"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
)


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a model's text. Reasoning is what stands between a marker pair at the
    start; a closing marker with no opening one (templates that open the reasoning in the prompt)
    makes everything before it reasoning; an opening marker never closed (an answer cut short)
    makes the rest reasoning."""
    stripped = text.lstrip()
    for opening, closing in MARKERS:
        if stripped.startswith(opening):
            body = stripped[len(opening):]
            end = body.find(closing)
            if end < 0:
                return body.strip(), ""
            return body[:end].strip(), body[end + len(closing):].lstrip()
    for opening, closing in MARKERS:
        end = text.find(closing)
        if end >= 0 and opening not in text[:end]:
            return text[:end].strip(), text[end + len(closing):].lstrip()
    return "", text


def with_reasoning(reasoning: str, text: str) -> str:
    """An answer with its reasoning written back in (for "feed back reasoning")."""
    return f"<think>\n{reasoning}\n</think>\n{text}" if reasoning else text
