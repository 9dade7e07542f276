"""Turn generation events into what the page shows (Markdown text). Pure functions, no gradio."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.backend import GenerationResult

STOP_REASON_TEXT = {
    "eos": "finished",
    "stop_string": "stop string reached",
    "max_tokens": "max_tokens reached",
    "context_full": "context window full",
    "stopped": "stopped",
}


@dataclass(frozen=True)
class AnswerView:
    """One answer in the transcript."""

    model: str
    text: str
    footer: str = ""
    error: str = ""


def answer_footer(result: GenerationResult) -> str:
    """Token counts, time and speed of a finished answer."""
    return (
        f"{result.prompt_tokens} prompt + {result.generated_tokens} generated tokens · "
        f"{result.seconds:.2f} s · {result.tokens_per_second:.1f} tok/s · "
        f"{STOP_REASON_TEXT.get(result.stop_reason, result.stop_reason)}"
    )


def render_answer(view: AnswerView) -> str:
    """Markdown for one answer: a header with the model, the text, then the footer or the error."""
    parts = [f"#### {view.model}", view.text or ("" if view.error else "…")]
    if view.error:
        parts.append(f"> **Error:** {view.error}")
    if view.footer:
        parts.append(f"<sub>{view.footer}</sub>")
    return "\n\n".join(part for part in parts if part)


def render_transcript(views: list[AnswerView]) -> str:
    """The whole transcript as Markdown, answers separated by rules."""
    if not views:
        return "*Type a prompt and press Enter. The demo model answers offline.*"
    return "\n\n---\n\n".join(render_answer(view) for view in views)
