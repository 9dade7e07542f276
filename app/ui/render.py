"""Turn chain events into the transcript the page shows. Pure Python, no gradio."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, replace

from app.core import prompt_format
from app.core.chain import RANDOM_RANGES
from app.core.code_exec import CodeResult
from app.core.events import (
    STOP_REASON_TEXT,
    Answer,
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    BranchFinished,
    ChainEvent,
    CodeFinished,
    CodeStarted,
    EngineConnected,
    Failure,
    ModelDownloading,
    ModelLoaded,
    ModelLoading,
    ModelLoadProgress,
    RunFinished,
    RunStarted,
)
from app.core.metrics import AnswerMetrics, RunMetrics
from app.core.reasoning import MARKERS as REASONING_MARKERS
from app.core.reasoning import split_reasoning
from app.execution.packages import missing_module, not_from_pip, package_for
from app.execution.printed import HTML, MARKDOWN, PLOTLY_SRC, closed_fences, needs_frame, printed_kind

RUN_END_TEXT = {
    "completed": "Run finished.",
    "stop_signal": "Run ended by STOP_SAMANTHA.",
    "stop_condition": "Run ended: the code printed a result (stop condition).",
    "stopped": "Run stopped.",
    "error": "Run ended: every answer failed.",
}
EMPTY_TRANSCRIPT = "*Type a prompt and press Enter. The demo model answers offline.*"
PROMPT_SHOWN_CHARS = 160  # a longer prompt item is shown folded under its first line
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")  # what can start emphasis, code, links, HTML


def escape_markdown(text: str) -> str:
    """`text` shown literally in Markdown (a message quoting user input must not turn into bold,
    links or HTML)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def plural(count: int, word: str) -> str:
    """"1 answer", "2 answers"."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


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
    prompt: str = ""  # what was asked (the prompt item as sent)
    reasoning: str = ""  # the answer's reasoning, shown folded
    thinking: bool = False  # the reasoning is still being written


def answer_title(model: str, item: int, response: int, loop: int) -> str:
    return f"{model} · item {item} · response {response} · loop {loop}"


def answer_entry(answer: Answer, code: str = "", note: str = "") -> Entry:
    """A finished answer as the transcript shows it (live, or replayed from the journal)."""
    return Entry(finished_title(answer), text=answer.text, footer=answer_footer(answer), code=code, note=note,
                 prompt=answer.prompt, reasoning=answer.reasoning)


def finished_title(answer: Answer) -> str:
    """The header of a finished answer: who, which item, and the prompt format it was sent in when
    that is not the model's own template (raw completion, or one of llama.cpp's templates)."""
    title = answer_title(answer.model, answer.item, answer.response, answer.loop)
    if answer.prompt_format in ("", prompt_format.MODEL):
        return title
    return f"{title} · {prompt_format.describe(answer.prompt_format)}"


def answer_footer(answer: Answer) -> str:
    """Token counts, time and speed of a finished answer, its metrics, why its item went on to the
    next model or stopped here ({escalate_entropy=…}), then its notes (settings a remote engine was
    not sent, a cut stream), each on a line of its own."""
    speed = answer.tokens / answer.seconds if answer.seconds > 0 else 0.0
    footer = (
        f"{answer.prompt_tokens} prompt + {answer.tokens} generated tokens · {answer.seconds:.2f} s · "
        f"{speed:.1f} tok/s · {STOP_REASON_TEXT.get(answer.stop_reason, answer.stop_reason)}"
    )
    if answer.metrics is not None:
        footer += f'<br><span class="answer-metrics">{html.escape(answer.metrics.describe())}</span>'
    if answer.escalation is not None:
        footer += f'<br><span class="answer-escalation">{html.escape(answer.escalation.describe(answer.item))}</span>'
    return footer + "".join(f'<br><span class="answer-note">⚠️ {html.escape(note)}</span>' for note in answer.notes)


class TranscriptBuilder:
    """Applies chain events to a list of entries; the answer being written is kept in parts and
    joined only when shown."""

    def __init__(self, entries: list[Entry], show_params: bool = False) -> None:
        self.entries = list(entries)
        self.show_params = show_params
        self.status = ""
        self.last_answer = ""
        self.last_failure = ""
        self._current: int | None = None
        self._parts: list[str] = []
        self._answer_entries: dict[int, int] = {}  # answer index -> entry position
        self._run_entry: int | None = None  # the run header's position: its metrics bar grows with each answer
        self._run_metrics: list[tuple[AnswerMetrics, float]] = []

    def apply(self, event: ChainEvent) -> bool:
        """Update from `event`; True when an answer began or ended (worth showing at once)."""
        if isinstance(event, AnswerToken):
            self._parts.append(event.text)
            return False
        if isinstance(event, RunStarted):
            self._run_entry, self._run_metrics = len(self.entries), []
            self.entries.append(Entry(f"Run {event.run_id}" if event.run_id else "Run",
                                      note=f"{plural(event.planned, 'answer')} planned", kind="run"))
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
        elif isinstance(event, EngineConnected):
            self.status = f"{html.escape(event.model)} answers at {html.escape(event.url)} ({html.escape(event.kind)})"
            if event.warning:
                self.entries.append(Entry(event.model, note=f"⚠️ {html.escape(event.warning)}", kind="run"))
        elif isinstance(event, AnswerStarted):
            note = ""
            if self.show_params:
                note = ", ".join(f"{name}={getattr(event.params, name)}" for name in RANDOM_RANGES)
            title = answer_title(event.model, event.item, event.response, event.loop)
            self.entries.append(Entry(title, note=note, prompt=event.prompt))
            self._current = len(self.entries) - 1
            self._answer_entries[event.index] = self._current
            self._parts = []
            self.status = f"Generating answer {event.index}…"
        elif isinstance(event, AnswerFinished):
            answer = event.answer
            if self._current is not None:
                self.entries[self._current] = replace(
                    self.entries[self._current], title=finished_title(answer), text=answer.text,
                    footer=answer_footer(answer), reasoning=answer.reasoning, thinking=False,
                )
            self._current, self._parts = None, []
            self.last_answer = answer.text
            if answer.metrics is not None and self._run_entry is not None:
                self._run_metrics.append((answer.metrics, answer.seconds))
                self._show_run_metrics(RunMetrics.of(self._run_metrics))
        elif isinstance(event, CodeStarted):
            self._set_code(event.index, f"<sub>▶ running {'your #IDE code' if event.source == 'pasted' else 'the code'}…</sub>")
            self.status = f"Running the code of answer {event.index}…"
        elif isinstance(event, CodeFinished):
            self._set_code(event.index, code_markdown(event.result, hidden=event.hidden))
        elif isinstance(event, BranchFinished):
            self.last_answer = event.answer.text
        elif isinstance(event, Failure):
            self.entries.append(Entry(event.model, error=event.message, kind="failure"))
            self.last_failure = f"{event.model}: {event.message}"
        elif isinstance(event, RunFinished):
            if event.metrics is not None:
                self._show_run_metrics(event.metrics)
            self.status = RUN_END_TEXT.get(event.reason, event.reason)
            if event.reason == "error" and self.last_failure:  # say why, not only that it failed
                self.status += f" ⚠️ {escape_markdown(self.last_failure)}"
        return True

    def _show_run_metrics(self, metrics: RunMetrics) -> None:
        """The metrics bar above the run's answers."""
        if self._run_entry is not None and self._run_entry < len(self.entries):
            self.entries[self._run_entry] = replace(self.entries[self._run_entry],
                                                    footer=html.escape(metrics.describe()))

    def _set_code(self, index: int, text: str) -> None:
        position = self._answer_entries.get(index)
        if position is not None:
            self.entries[position] = replace(self.entries[position], code=text)

    def snapshot(self) -> list[Entry]:
        """The entries with the answer being written filled in so far."""
        if self._current is None:
            return list(self.entries)
        entries = list(self.entries)
        written = "".join(self._parts)
        reasoning, text = split_reasoning(written)
        thinking = bool(reasoning) and not text and not any(c in written for _o, c in REASONING_MARKERS)
        entries[self._current] = replace(entries[self._current], text=text, reasoning=reasoning, thinking=thinking)
        return entries


def fenced(text: str) -> str:
    """`text` as a plain-text code block, fenced with more backticks than it holds in a row."""
    fence = "`" * max(4, max((len(run) for run in text.split() if set(run) == {"`"}), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_entry(entry: Entry, raw: bool = False) -> str:
    """Markdown for one entry (raw: the answer text shown exactly, not rendered)."""
    if entry.kind == "run":
        bar = f'\n\n<div class="run-metrics"><sub>📊 {entry.footer}</sub></div>' if entry.footer else ""
        return f"##### {entry.title} · {entry.note}{bar}"
    if entry.kind == "failure":
        return f"> ⚠️ **{escape_markdown(entry.title)}:** {escape_markdown(entry.error)}"
    parts = [f"#### {entry.title}"]
    if entry.prompt:
        parts.append(asked(entry.prompt))
    if entry.note:
        parts.append(f"<sub>{entry.note}</sub>")
    if entry.reasoning:
        label = "Reasoning…" if entry.thinking else "Reasoning"
        parts.append(f'<details class="reasoning"><summary>{label}</summary>'
                     f'<div class="reasoning-text">{html.escape(entry.reasoning)}</div></details>')
    body = entry.text or ("" if entry.reasoning and not entry.thinking else "…")
    parts.append(fenced(body) if raw else body)
    if entry.footer:
        parts.append(f"<sub>{entry.footer}</sub>")
    if entry.code:
        parts.append(entry.code)
    return "\n\n".join(parts)


def asked(prompt: str) -> str:
    """The prompt item above its answer: whole when short, else folded under its first line."""
    text = prompt.strip()
    first = next((line for line in text.splitlines() if line.strip()), "")
    if len(text) <= PROMPT_SHOWN_CHARS and "\n" not in text:
        return f'<div class="asked">› {html.escape(text)}</div>'
    summary = first if len(first) <= PROMPT_SHOWN_CHARS else first[: PROMPT_SHOWN_CHARS - 1] + "…"
    return (f'<details class="asked"><summary>› {html.escape(summary)}</summary>'
            f'<div class="asked-full">{html.escape(text)}</div></details>')


CODE_STATUS_TEXT = {
    "ok": "ran",
    "error": "raised an error",
    "timeout": "timed out",
    "died": "the kernel died",
    "stopped": "stopped",
    "app": "app started",
}


def code_frame(document: str, label: str) -> str:
    """A placeholder the page turns into a sandboxed frame showing `document` (printed HTML, a
    Plotly figure): the page's sanitizer removes frames, so the document travels base64-encoded in a
    hidden span and the page's code_frames script (app/ui/panels/code_panel.py) lays the frame over
    the placeholder. The frame gets sandbox="allow-scripts" without allow-same-origin."""
    payload = base64.b64encode(document.encode("utf-8")).decode("ascii")
    height = 500 if PLOTLY_SRC in document else 120  # a first guess; the frame then says its height
    return (f'<div class="code-frame" title="{html.escape(label, quote=True)}" style="height:{height}px">'
            f"<span hidden>{payload}</span></div>")


def _printed(stdout: str) -> str:
    """What the code printed: HTML in a frame, Markdown as Markdown, anything else as it is."""
    kind = printed_kind(stdout)
    if kind == HTML:
        return code_frame(stdout, "HTML printed by the code")
    if kind == MARKDOWN:
        return closed_fences(stdout.strip("\n"))
    return fenced(stdout.rstrip("\n"))


def code_markdown(result: CodeResult, hidden: bool = False) -> str:
    """A code run under its answer: what it printed (printed HTML in a sandboxed frame, printed
    Markdown rendered), its figures and tables, then its status. Script-less HTML outputs (pandas
    tables) go through the page's sanitizer like the rest of the transcript; HTML that needs its
    scripts (Plotly, Bokeh) gets a sandboxed frame."""
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
        parts.append(_printed(result.stdout))
    if result.stderr.strip():
        parts.append(fenced(result.stderr.rstrip("\n")))
    missing = missing_module(result)
    if missing:
        reason = not_from_pip(missing)
        parts.append(f"<sub class=\"code-missing\">{html.escape(reason)}</sub>" if reason else
                     f'<sub class="code-missing">The module {html.escape(missing)} is missing: the Code tab offers '
                     f"to install {html.escape(package_for(missing))} into venvs/jupyter.</sub>")
    for output in result.outputs:
        if output.mime in ("image/png", "image/jpeg"):
            parts.append(f'<img class="code-figure" alt="figure from the code" '
                         f'src="data:{output.mime};base64,{output.data.strip()}">')
        elif output.mime == "text/html" and needs_frame(output.data):
            parts.append(code_frame(output.data, "output of the code"))
        elif output.mime in ("text/html", "image/svg+xml"):
            parts.append(f'<div class="code-html">{output.data}</div>')
        elif output.mime == "text/markdown":
            parts.append(closed_fences(output.data))
        else:
            parts.append(fenced(output.data))
    return "\n\n".join(parts)


def render_transcript(entries: list[Entry], raw: bool = False) -> str:
    """The whole transcript as Markdown."""
    if not entries:
        return EMPTY_TRANSCRIPT
    return "\n\n".join(render_entry(entry, raw) for entry in entries)


def plain_transcript(entries: list[Entry]) -> str:
    """Every answer as plain text with its title (for "Copy all")."""
    return "\n\n".join(f"{e.title}\n{e.text}" for e in entries if e.kind == "answer")
