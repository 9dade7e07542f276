"""HTML for the Compare tab: several models' next tokens side by side (where their continuations
part marked), and two answers' differences (a text diff and both answers as tokens)."""

from __future__ import annotations

import html

from app.core.events import Answer
from app.core.grid import Grid
from app.core.next_tokens import NextTokenComparison
from app.core.replay import AnswerPair
from app.ui.learning_view import visible


def next_tokens_html(comparison: NextTokenComparison) -> str:
    """A column per model: its most likely next tokens with their probabilities; then each model's
    greedy continuation as tokens, the token where they part marked."""
    sides = comparison.sides
    header = "".join(f"<th>{html.escape(side.model)}</th>" for side in sides)
    rows = []
    for rank in range(max((len(side.candidates) for side in sides), default=0)):
        cells = []
        for side in sides:
            if rank >= len(side.candidates):
                cells.append("<td></td>")
                continue
            token_id, piece, prob = side.candidates[rank]
            bar = f'<span class="prob-bar" style="display:inline-block;width:{max(prob * 80, 1):.0f}px"></span>'
            cells.append(f'<td title="id {token_id}"><code>{html.escape(visible(piece))}</code> '
                         f"{prob:.1%} {bar}</td>")
        rows.append(f"<tr><td>{rank + 1}</td>{''.join(cells)}</tr>")
    table = (f'<table class="next-tokens"><thead><tr><th>rank</th>{header}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    lines = []
    for side in sides:
        if side.error:
            lines.append(f'<p class="compare-error"><b>{html.escape(side.model)}</b>: ⚠️ {html.escape(side.error)}</p>')
            continue
        parting = side.token_at(comparison.parts_at)
        spans = "".join(token_span(piece, index == parting) for index, piece in enumerate(side.continuation))
        lines.append(f'<p class="continuation"><b>{html.escape(side.model)}</b>: {spans}</p>')
    verdict = ("The greedy continuations are the same." if comparison.parts_at is None
               else f"The greedy continuations part at character {comparison.parts_at} (marked).")
    prefix = comparison.prefix if len(comparison.prefix) <= 300 else "…" + comparison.prefix[-299:]
    return (f'<div id="next-tokens-result"><p class="compare-prefix">At <code>{html.escape(prefix)}</code>'
            f'{" (raw text)" if comparison.raw else " (each model in its own prompt format)"}:</p>{table}'
            f'{"".join(lines)}<p class="compare-verdict">{verdict}</p></div>')


def answer_diff_html(pair: AnswerPair, a_name: str, b_name: str, lines: list[str]) -> str:
    """Two answers: where they part, a line diff of their texts, and each as tokens with the
    parting token marked."""
    difference = pair.difference
    if pair.a is None or pair.b is None:
        missing = a_name if pair.a is None else b_name
        return f'<div id="answer-diff"><p>⚠️ There is no answer {html.escape(missing)}.</p></div>'
    if difference is None:
        verdict = "The two answers are identical, token for token."
    else:
        unit = "token" if difference.by == "tokens" else "character"
        verdict = (f"They part at {unit} {difference.position}: {html.escape(repr(difference.a.text))} in "
                   f"{html.escape(a_name)}, {html.escape(repr(difference.b.text))} in {html.escape(b_name)}.")
    diff = "".join(f'<div class="diff-line {_line_kind(line)}">{html.escape(line)}</div>' for line in lines)
    position = difference.position if difference is not None and difference.by == "tokens" else None
    return (f'<div id="answer-diff"><p class="compare-verdict">{verdict}</p>'
            f'<pre class="text-diff">{diff or "(no line differs)"}</pre>'
            f"{_tokens(pair.a, a_name, position)}{_tokens(pair.b, b_name, position)}</div>")


def _tokens(answer: Answer, name: str, parting: int | None) -> str:
    if not answer.pieces:
        return f'<p class="diff-tokens"><b>{html.escape(name)}</b>: {html.escape(answer.text)}</p>'
    spans = "".join(token_span(text, index == parting) for index, (_token, text) in enumerate(answer.pieces))
    return f'<p class="diff-tokens"><b>{html.escape(name)}</b>: {spans}</p>'


def token_span(piece: str, parts: bool) -> str:
    """One token; `parts` marks the token where two texts part."""
    if not parts:
        return f'<span class="token">{html.escape(piece)}</span>'
    return f'<span class="token parts" title="they part here">{html.escape(piece)}</span>'


def _line_kind(line: str) -> str:
    """A unified diff line's kind, for its colour: the file headers and hunk marks are "meta"."""
    if line.startswith(("---", "+++", "@@")):
        return "meta"
    return "added" if line.startswith("+") else "removed" if line.startswith("-") else "same"


def grid_html(grid: Grid, order: list[str]) -> str:
    """The models x items table: each cell the answer (the whole text on hover), its metrics and
    its score; a last column with the model's mean score."""
    heads = "".join(f'<th title="{html.escape(prompt, quote=True)}">item {number}<br>'
                    f"<small>{html.escape(_short(prompt, 40))}</small></th>" for number, prompt in grid.items)
    rows = []
    for model in order:
        cells = []
        for number, _prompt in grid.items:
            cell = grid.cell(model, number)
            if cell is None:
                cells.append('<td class="grid-cell missing">—</td>')
                continue
            answer = cell.answer
            metrics = answer.metrics
            figures = [f"{answer.tokens} tok"]
            if metrics is not None and metrics.decode_tok_s:
                figures.append(f"{metrics.decode_tok_s:.1f} tok/s")
            if metrics is not None and metrics.ttft_s is not None:
                figures.append(f"first {metrics.ttft_s * 1000:.0f} ms")
            score = (f'<span class="grid-score">★ {cell.score:g} <small>({html.escape(cell.source)})</small></span>'
                     if cell.score is not None else '<span class="grid-score unrated">not rated</span>')
            cells.append(f'<td class="grid-cell" data-model="{html.escape(model, quote=True)}" data-item="{number}" '
                         f'title="{html.escape(answer.text, quote=True)}"><div class="grid-answer">'
                         f"{html.escape(_short(answer.text, 160))}</div><div class=\"grid-metrics\">"
                         f"{html.escape(' · '.join(figures))}</div>{score}</td>")
        mean = grid.mean_score(model)
        rows.append(f'<tr><th class="grid-model">{html.escape(model)}</th>{"".join(cells)}'
                    f'<td class="grid-mean">{f"{mean:.2f}" if mean is not None else "—"}</td></tr>')
    return (f'<div id="grid-view"><p>Run {grid.run_id}: {len(grid.models)} models × {len(grid.items)} items.</p>'
            f'<table class="grid"><thead><tr><th>model</th>{heads}<th>mean score</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
