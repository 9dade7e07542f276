"""A program run folded from its events: its contexts (each a list of prompted and sampled tokens),
title, printed output, pending question and outcome. The page draws it while the program runs and
again when a journaled run is reopened (the same events, from the journal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

OUTPUT_SHOWN_CHARS = 100_000


@dataclass
class ContextView:
    """One context: its name, the context it was called from, and its tokens in order. Each token
    is a dict: {"token_str", "token_id", "prob" (None when prompted), "top_k", "attention"}."""

    id: int
    name: str
    parent: int | None
    model: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)
    cleared: int = 0  # how many times clear_prompt() emptied it
    text: str = ""  # the context as text: what was prompted and what was sampled into it


@dataclass
class ProgramTranscript:
    contexts: dict[int, ContextView] = field(default_factory=dict)
    title: str = ""
    output: str = ""
    asking: str | None = None  # the label of the user_input the program waits on
    error: str = ""
    error_line: int | None = None
    outcome: str = ""  # "" while running, then finished / failed / stopped / time_limit
    seconds: float | None = None
    samples: int = 0
    sampled_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        """Fold one event in (unknown kinds are ignored: newer programs may send more)."""
        kind = event.get("type")
        number = event.get("context")
        if kind == "context":
            self.contexts[int(event["context"])] = ContextView(int(event["context"]), str(event.get("name") or ""),
                                                               event.get("parent"), event.get("model"))
        elif kind == "model" and number in self.contexts:
            self.contexts[number].model = event.get("model")
        elif kind == "prompt" and number in self.contexts:
            self.contexts[number].tokens += [{"token_str": piece, "token_id": token, "prob": None}
                                             for token, piece in event.get("tokens", [])]
            self.contexts[number].text += str(event.get("text", ""))
        elif kind == "token" and number in self.contexts:
            self.sampled_tokens += 1
            if event.get("added", True):  # a sample not added to its context is not part of it
                self.contexts[number].tokens.append({k: event.get(k) for k in
                                                     ("token_str", "token_id", "prob", "top_k", "attention")})
        elif kind == "sampled":
            self.samples += 1
            if event.get("added", True) and number in self.contexts:
                self.contexts[number].text += str(event.get("text", ""))
            note = event.get("attention_note")
            if note and note not in self.notes:
                self.notes.append(str(note))
        elif kind == "clear" and number in self.contexts:
            self.contexts[number].tokens.clear()
            self.contexts[number].text = ""
            self.contexts[number].cleared += 1
        elif kind == "title":
            self.title = str(event.get("title", ""))
        elif kind == "user_input":
            self.asking = str(event.get("label", ""))
        elif kind == "user_input_answered":
            self.asking = None
        elif kind == "output":
            if len(self.output) < OUTPUT_SHOWN_CHARS:
                self.output += str(event.get("text", ""))[: OUTPUT_SHOWN_CHARS - len(self.output)]
        elif kind == "error":
            self.error = str(event.get("message", ""))
            self.error_line = event.get("line")
        elif kind == "exit":
            self.outcome = str(event.get("reason", ""))
            self.seconds = event.get("seconds")
            self.asking = None

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> "ProgramTranscript":
        transcript = cls()
        for event in events:
            transcript.add(event)
        return transcript
