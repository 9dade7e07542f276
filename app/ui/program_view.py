"""The Programs tab's drawing of a run: each context as its exact tokens (prompted ones plain,
sampled ones shaded by their probability, the id on hover); clicking a sampled token shows its
top-K after top-P, and with attention, shades the context by that token's attention (page_js.py
does the clicking). A Markdown mode shows each context's text instead."""

from __future__ import annotations

import html
import json
from typing import Any

from app.programs.transcript import ContextView, ProgramTranscript

OUTCOME_TEXT = {"finished": "✅ finished", "failed": "❌ failed", "stopped": "⏹ stopped",
                "time_limit": "⏱ stopped at its time limit"}


def _token_span(token: dict[str, Any], position: int) -> str:
    text = html.escape(str(token.get("token_str", ""))).replace("\n", "↵\n")
    token_id = token.get("token_id")
    prob = token.get("prob")
    if prob is None:
        return (f'<span class="cs-token cs-prompted" data-pos="{position}" '
                f'title="id {token_id} · prompted">{text}</span>')
    hue = round(120 * max(0.0, min(1.0, float(prob))))
    detail = {"id": token_id, "text": token.get("token_str", ""), "prob": prob,
              "alts": [[a.get("token_str", ""), a.get("token_id"), a.get("prob")] for a in token.get("top_k") or []]}
    attention = token.get("attention")
    if attention is not None:
        detail["attention"] = attention
    return (f'<span class="cs-token cs-sampled" data-pos="{position}" style="background:hsl({hue},70%,80%)" '
            f'title="id {token_id} · p={float(prob):.3f}" '
            f'data-detail="{html.escape(json.dumps(detail, ensure_ascii=False), quote=True)}">{text}</span>')


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    # Model text is not trusted: raw HTML in it is shown as text.
    return MarkdownIt("commonmark", {"html": False}).render(text)


def context_html(context: ContextView, names: dict[int, str], markdown: bool) -> str:
    called_from = f" · called from {html.escape(names.get(context.parent, '?'))}" if context.parent else ""
    model = f" · {html.escape(context.model)}" if context.model else ""
    header = (f'<div class="cs-context-head"><b>{html.escape(context.name or "context")}</b>'
              f" #{context.id}{called_from}{model} · {len(context.tokens)} tokens</div>")
    if markdown:
        body = f'<div class="cs-context-markdown">{_markdown(context.text)}</div>'
    else:
        body = ('<div class="cs-context-tokens">'
                + "".join(_token_span(token, n) for n, token in enumerate(context.tokens)) + "</div>")
    return f'<div class="cs-context" data-context="{context.id}">{header}{body}</div>'


def program_html(transcript: ProgramTranscript, markdown: bool = False) -> str:
    """The whole run: its contexts in the order they were made, empty ones left out."""
    names = {number: view.name or f"#{number}" for number, view in transcript.contexts.items()}
    shown = [view for view in transcript.contexts.values() if view.tokens]
    if not shown:
        return '<div class="cs-program-empty">No tokens yet: run a program to see its contexts here.</div>'
    return '<div class="cs-program">' + "".join(context_html(v, names, markdown) for v in shown) + "</div>"


def status_markdown(transcript: ProgramTranscript, running: bool) -> str:
    """One line: title, state, counts; the error and any note below it."""
    title = f"**{transcript.title}** · " if transcript.title else ""
    if running and not transcript.outcome:
        state = f"⏳ waiting for your answer to “{transcript.asking}”" if transcript.asking else "▶ running"
    else:
        state = OUTCOME_TEXT.get(transcript.outcome, transcript.outcome or "not run yet")
        if transcript.seconds is not None:
            state += f" in {transcript.seconds:.1f} s"
    lines = [f"{title}{state} · {len(transcript.contexts)} context(s), {transcript.samples} sample(s), "
             f"{transcript.sampled_tokens} sampled token(s)"]
    if transcript.error:
        where = f" (line {transcript.error_line})" if transcript.error_line else ""
        lines.append(f"**Error{where}:** `{transcript.error}`")
    lines += [f"_{note}_" for note in transcript.notes]
    return "\n\n".join(lines)
