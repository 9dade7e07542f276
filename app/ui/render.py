"""Turn chain events into the transcript the page shows. Pure Python, no gradio."""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

from app.core.chain import RANDOM_RANGES
from app.core.code_exec import CodeResult
from app.core.events import (
    STOP_REASON_TEXT,
    Answer,
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    ChainEvent,
    CodeFinished,
    CodeStarted,
    Failure,
    ModelDownloading,
    ModelLoaded,
    ModelLoading,
    ModelLoadProgress,
    RunFinished,
    RunStarted,
)

RUN_END_TEXT = {
    "completed": "Run finished.",
    "stop_signal": "Run ended by STOP_SAMANTHA.",
    "stop_condition": "Run ended: the code printed a result (stop condition).",
    "stopped": "Run stopped.",
    "error": "Run ended: every answer failed.",
}
EMPTY_TRANSCRIPT = "*Type a prompt and press Enter. The demo model answers offline.*"


@dataclass(frozen=True)
class Entry:
    """One block of the transcript: an answer, a failure, or a run header."""

    title: str
    text: str = ""
    footer: str = ""
    error: str = ""
    note: str = ""
    kind: str = "answer"  # "answer" | "failure" | "run"
    code: str = ""  # Markdown of the answer's code run, shown under it


def answer_footer(answer: Answer) -> str:
    """Token counts, time and speed of a finished answer."""
    speed = answer.tokens / answer.seconds if answer.seconds > 0 else 0.0
    return (
        f"{answer.prompt_tokens} prompt + {answer.tokens} generated tokens · {answer.seconds:.2f} s · "
        f"{speed:.1f} tok/s · {STOP_REASON_TEXT.get(answer.stop_reason, answer.stop_reason)}"
    )


class TranscriptBuilder:
    """Applies chain events to a list of entries; the answer being written is kept in parts and
    joined only when shown."""

    def __init__(self, entries: list[Entry], show_params: bool = False) -> None:
        self.entries = list(entries)
        self.show_params = show_params
        self.status = ""
        self.last_answer = ""
        self.last_code = ""  # the latest code run, fully shown (the Code tab's output)
        self._current: int | None = None
        self._parts: list[str] = []
        self._answer_entries: dict[int, int] = {}  # answer index -> entry position

    def apply(self, event: ChainEvent) -> bool:
        """Update from `event`; True when an answer began or ended (worth showing at once)."""
        if isinstance(event, AnswerToken):
            self._parts.append(event.text)
            return False
        if isinstance(event, RunStarted):
            self.entries.append(Entry(f"Run {event.run_id}" if event.run_id else "Run",
                                      note=f"{event.planned} answers planned", kind="run"))
            self.status = "Starting…"
        elif isinstance(event, ModelDownloading):
            bar = (f'<br><progress id="download-progress" value="{event.fraction:.3f}" max="1"></progress>'
                   if event.fraction is not None else "")
            self.status = f"{event.text}{bar}"
        elif isinstance(event, ModelLoading):
            self.status = f"Loading {event.model}…"
        elif isinstance(event, ModelLoadProgress):
            self.status = (f"Loading {event.model}… {event.fraction:.0%}"
                           f'<br><progress id="load-progress" value="{event.fraction:.3f}" max="1"></progress>')
        elif isinstance(event, ModelLoaded):
            self.status = f"{event.model} loaded in {event.info.load_seconds:.1f} s"
        elif isinstance(event, AnswerStarted):
            note = ""
            if self.show_params:
                note = ", ".join(f"{name}={getattr(event.params, name)}" for name in RANDOM_RANGES)
            title = f"{event.model} · item {event.item} · response {event.response} · loop {event.loop}"
            self.entries.append(Entry(title, note=note))
            self._current = len(self.entries) - 1
            self._answer_entries[event.index] = self._current
            self._parts = []
            self.status = f"Generating answer {event.index}…"
        elif isinstance(event, AnswerFinished):
            answer = event.answer
            if self._current is not None:
                self.entries[self._current] = replace(
                    self.entries[self._current], text=answer.text, footer=answer_footer(answer)
                )
            self._current, self._parts = None, []
            self.last_answer = answer.text
        elif isinstance(event, CodeStarted):
            self._set_code(event.index, f"<sub>▶ running {'your #IDE code' if event.source == 'pasted' else 'the code'}…</sub>")
            self.status = f"Running the code of answer {event.index}…"
        elif isinstance(event, CodeFinished):
            self.last_code = code_markdown(event.result)
            self._set_code(event.index, code_markdown(event.result, hidden=event.hidden))
        elif isinstance(event, Failure):
            self.entries.append(Entry(event.model, error=event.message, kind="failure"))
        elif isinstance(event, RunFinished):
            self.status = RUN_END_TEXT.get(event.reason, event.reason)
        return True

    def _set_code(self, index: int, text: str) -> None:
        position = self._answer_entries.get(index)
        if position is not None:
            self.entries[position] = replace(self.entries[position], code=text)

    def snapshot(self) -> list[Entry]:
        """The entries with the answer being written filled in so far."""
        if self._current is None:
            return list(self.entries)
        entries = list(self.entries)
        entries[self._current] = replace(entries[self._current], text="".join(self._parts))
        return entries


def _fenced(text: str) -> str:
    fence = "`" * max(4, max((len(run) for run in text.split() if set(run) == {"`"}), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_entry(entry: Entry, raw: bool = False) -> str:
    """Markdown for one entry (raw: the answer text shown exactly, not rendered)."""
    if entry.kind == "run":
        return f"##### {entry.title} · {entry.note}"
    if entry.kind == "failure":
        return f"> ⚠️ **{entry.title}:** {entry.error}"
    parts = [f"#### {entry.title}"]
    if entry.note:
        parts.append(f"<sub>{entry.note}</sub>")
    body = entry.text or "…"
    parts.append(_fenced(body) if raw else body)
    if entry.footer:
        parts.append(f"<sub>{entry.footer}</sub>")
    if entry.code:
        parts.append(entry.code)
    return "\n\n".join(parts)


CODE_STATUS_TEXT = {
    "ok": "ran",
    "error": "raised an error",
    "timeout": "timed out",
    "died": "the kernel died",
    "stopped": "stopped",
    "app": "app started",
}


def code_markdown(result: CodeResult, hidden: bool = False) -> str:
    """A code run under its answer: what it printed, its figures and tables, then its status.
    HTML outputs (pandas tables) go through the page's sanitizer like the rest of the transcript."""
    status = f"{CODE_STATUS_TEXT.get(result.status, result.status)} after {result.seconds:.2f} s"
    if result.message:
        status += f" · {html.escape(result.message)}"
    if result.truncated:
        status += " · output cut to its head and tail"
    if hidden:
        return f'<sub class="code-status">Code: {status} (output hidden)</sub>'
    parts = [f'<sub class="code-status">Code: {status}</sub>']
    if result.app_url:
        parts.append(f"Open the app: [{result.app_url}]({result.app_url})")
    if result.stdout.strip():
        parts.append(_fenced(result.stdout.rstrip("\n")))
    if result.stderr.strip():
        parts.append(_fenced(result.stderr.rstrip("\n")))
    for output in result.outputs:
        if output.mime in ("image/png", "image/jpeg"):
            parts.append(f'<img class="code-figure" alt="figure from the code" '
                         f'src="data:{output.mime};base64,{output.data.strip()}">')
        elif output.mime in ("text/html", "image/svg+xml"):
            parts.append(f'<div class="code-html">{output.data}</div>')
        elif output.mime == "text/markdown":
            parts.append(output.data)
        else:
            parts.append(_fenced(output.data))
    return "\n\n".join(parts)


def render_transcript(entries: list[Entry], raw: bool = False) -> str:
    """The whole transcript as Markdown."""
    if not entries:
        return EMPTY_TRANSCRIPT
    return "\n\n".join(render_entry(entry, raw) for entry in entries)


def plain_transcript(entries: list[Entry]) -> str:
    """Every answer as plain text with its title (for "Copy all")."""
    return "\n\n".join(f"{e.title}\n{e.text}" for e in entries if e.kind == "answer")
