"""The Compare tab: the Models list's models side by side at one prefix (their most likely next
tokens, and where their greedy continuations part), and the differences between two journaled runs
or answers (where they part, a text diff, both as tokens)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from app.core.errors import ChainStudioError
from app.core.hub_links import looks_like_link
from app.core.next_tokens import DEFAULT_TOKENS, DEFAULT_TOP, MAX_TOKENS, compare_next_tokens
from app.core.prompt_list import parse_prompt_list
from app.core.replay import AnswerPair, compare_answers, pair_answers, text_diff
from app.services import Services
from app.ui import chain_run, compare_view
from app.ui.page import PageHandles, Panel, RunData, session_of

FIRST_ITEM = "the first prompt item"
THIS_TEXT = "this text (raw)"
LAST_ANSWER = "the last answer, up to a token"
SOURCES = (FIRST_ITEM, THIS_TEXT, LAST_ANSWER)


@dataclass
class ComparePanel(Panel):
    source: gr.Radio
    text: gr.Textbox
    position: gr.Number
    top: gr.Slider
    tokens: gr.Number
    compare: gr.Button
    result: gr.HTML
    diff_a: gr.Textbox
    diff_b: gr.Textbox
    diff_button: gr.Button
    diff_result: gr.HTML


def build(services: Services | None = None) -> ComparePanel:
    """Lay out the Compare tab (wired by `wire`)."""
    gr.Markdown("**Next tokens, model by model**: every model of the Models list at one prefix (local "
                "models, one in memory at a time), their most likely next tokens and their greedy "
                "continuations, the token where those part marked.")
    with gr.Row():
        source = gr.Radio(list(SOURCES), value=FIRST_ITEM, label="Prefix", elem_id="compare-source", scale=3)
        position = gr.Number(label="Tokens of the last answer", value=0, precision=0, minimum=0,
                             elem_id="compare-position", scale=1)
    text = gr.Textbox(label="Text (sent as is)", lines=2, elem_id="compare-text")
    with gr.Row():
        top = gr.Slider(1, 50, value=DEFAULT_TOP, step=1, label="Next tokens per model", elem_id="compare-top")
        tokens = gr.Number(label="Continuation compared (tokens)", value=DEFAULT_TOKENS, precision=0, minimum=1,
                           maximum=MAX_TOKENS, elem_id="compare-tokens")
    compare = gr.Button("Compare next tokens", elem_id="compare-next")
    result = gr.HTML("", elem_id="next-tokens")
    gr.Markdown("**Diff two runs or answers** from the journal: a run id (`12`) or an answer (`12:3`, "
                "answer 3 of run 12). `python -m app replay RUN_ID` runs a run again with its seeds.")
    with gr.Row():
        diff_a = gr.Textbox(label="A", placeholder="12 or 12:3", elem_id="diff-a", scale=2)
        diff_b = gr.Textbox(label="B", placeholder="13 or 13:3", elem_id="diff-b", scale=2)
        diff_button = gr.Button("Diff", elem_id="diff-button", scale=1)
    diff_result = gr.HTML("", elem_id="diff-result")
    return ComparePanel(source, text, position, top, tokens, compare, result, diff_a, diff_b, diff_button,
                        diff_result)


def _prefix(services: Services, data: RunData, panel: ComparePanel, page: PageHandles,
            last_run: int | None) -> tuple[str, bool, str]:
    """The prefix the tab's choice gives: (text, raw, system prompt)."""
    source = data[panel.source]
    if source == THIS_TEXT:
        text = str(data[panel.text] or "")
        if not text:
            raise ChainStudioError("type the text to compare the models at")
        return text, True, ""
    if source == LAST_ANSWER:
        if not last_run:
            raise ChainStudioError("run a chain first: its last answer is the prefix")
        stored = services.journal.stored_run(int(last_run))
        answers = [a for a in stored.answers if stored.branch_of(a.index) is None] if stored else []
        if not answers or not answers[-1].sent:
            raise ChainStudioError(f"run {last_run} has no answer to compare at")
        answer = answers[-1]
        position = int(data[panel.position] or 0)
        if not 0 <= position <= len(answer.pieces):
            raise ChainStudioError(f"the last answer has {len(answer.pieces)} tokens: choose 0 to that")
        return answer.sent + "".join(piece for _token, piece in answer.pieces[:position]), True, ""
    prompts = parse_prompt_list(str(data[page.prompt] or ""))
    return prompts.items[0].prompt(prompts.pre_prompt, None), False, str(data[page.system] or "")


def next_tokens(services: Services, page: PageHandles, panel: ComparePanel, data: RunData, session: str,
                last_run: int | None) -> Iterator[dict[Any, Any]]:
    """Compare the Models list's local models at the chosen prefix, one loaded at a time."""
    try:
        if services.runner_for(session).running:
            raise ChainStudioError("a run is going in this tab: compare when it ends")
        spec = chain_run.build_spec(page, data)
        prefix, raw, system = _prefix(services, data, panel, page, last_run)
    except ChainStudioError as exc:
        yield {panel.result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'}
        return
    local = [m for m in dict.fromkeys(spec.models) if services.engines.member(m) is None and not looks_like_link(m)]
    left_out = [m for m in spec.models if m not in local]
    if not local:
        yield {panel.result: '<p class="compare-error">⚠️ Put local models in the Models list: engines and '
                             "links are not compared (download a link first).</p>"}
        return
    yield {page.status: f"Comparing {len(local)} models…" if not services.run_lock.locked()
           else f"Waiting for the model: {chain_run.waiting_for(services)}…"}
    try:
        with services.run_lock:
            comparison = compare_next_tokens(services.backend, local, prefix, raw=raw, top=int(data[panel.top] or 10),
                                             tokens=int(data[panel.tokens] or DEFAULT_TOKENS), system=system,
                                             load=spec.load)
    except ChainStudioError as exc:
        yield {panel.result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>', page.status: ""}
        return
    note = (f'<p class="compare-note">Not compared (engines and links): {html.escape(", ".join(left_out))}</p>'
            if left_out else "")
    changed = int(data.get(page.model_changed) or 0) + 1  # the model in memory is the last one compared
    yield {panel.result: compare_view.next_tokens_html(comparison) + note,
           page.status: f"Compared {len(local)} models.", page.model_changed: changed}


def diff(services: Services, first: str, second: str) -> str:
    """The Diff button: two answers, or two runs answer by answer."""
    from app.cli_replay import parse_reference

    try:
        (run_a, seq_a), (run_b, seq_b) = parse_reference(first or ""), parse_reference(second or "")
    except ValueError as exc:
        return f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'
    if (seq_a is None) != (seq_b is None):
        return '<p class="compare-error">⚠️ Compare a run with a run (12 and 13) or an answer with an answer (12:1 and 13:1).</p>'
    stored = {run: services.journal.stored_run(run) for run in (run_a, run_b)}
    missing = [str(run) for run, kept in stored.items() if kept is None]
    if missing:
        return f'<p class="compare-error">⚠️ Run {html.escape(", ".join(missing))} is not in the journal.</p>'
    if seq_a is not None and seq_b is not None:
        a = next((x for x in stored[run_a].answers if x.index == seq_a), None)  # type: ignore[union-attr]
        b = next((x for x in stored[run_b].answers if x.index == seq_b), None)  # type: ignore[union-attr]
        pair = AnswerPair(seq_a, a, b, compare_answers(a, b) if a is not None and b is not None else None)
        return compare_view.answer_diff_html(pair, first, second,
                                             text_diff(a.text if a else "", b.text if b else "", first, second))
    pairs = pair_answers(*(list(stored[run].answers) for run in (run_a, run_b)))  # type: ignore[union-attr]
    differing = [pair for pair in pairs if not pair.identical]
    head = (f"<p>Runs {run_a} and {run_b}: {len(pairs)} answers paired by their place in the plan, "
            f"{len(differing)} differ.</p>")
    parts = []
    for pair in pairs:
        known = pair.a or pair.b
        label = f"answer {pair.index} · {known.model} · item {known.item}" if known else f"answer {pair.index}"
        body = compare_view.answer_diff_html(pair, f"{run_a}:{pair.index}", f"{run_b}:{pair.index}", text_diff(
            pair.a.text if pair.a else "", pair.b.text if pair.b else "", str(run_a), str(run_b)))
        opened = " open" if pair is (differing[0] if differing else None) else ""
        parts.append(f"<details{opened}><summary>{html.escape(label)}: "
                     f"{'identical' if pair.identical else 'differs'}</summary>{body}</details>")
    return f'<div id="run-diff">{head}{"".join(parts)}</div>'


def wire(panel: ComparePanel, services: Services, page: PageHandles) -> None:
    """Connect the tab's controls."""
    inputs = chain_run.run_inputs(page) | {panel.source, panel.text, panel.position, panel.top, panel.tokens,
                                           page.last_run_store, page.prompt, page.system, page.model_changed}

    def on_compare(data: RunData, request: gr.Request) -> Iterator[dict[Any, Any]]:
        last = data.get(page.last_run_store)
        yield from next_tokens(services, page, panel, data, session_of(request), int(last) if last else None)

    panel.compare.click(on_compare, inputs, [panel.result, page.status, page.model_changed], concurrency_limit=None)
    panel.diff_button.click(lambda a, b: diff(services, a, b), [panel.diff_a, panel.diff_b], panel.diff_result)

