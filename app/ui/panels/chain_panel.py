"""The main column: the prompt fields, the run buttons, the status line and the transcript. Its
`wire` connects Start (and Enter in any prompt field) to the run handler in `chain_run`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from app.services import Services
from app.ui import chain_run
from app.ui.i18n import t
from app.ui.page import PageHandles, Panel, RunData, session_of
from app.ui.page_js import COPY_JS
from app.ui.panels import code_panel, voice_panel
from app.ui.render import Entry, render_transcript

SHORTCUTS = ("Enter starts · Shift+Enter adds a line · Esc: Stop/Next · Shift+Esc: Stop all · "
             "Alt+N: next token (learning mode, manual stepping)")


@dataclass
class ChainPanel(Panel):
    system: gr.Textbox
    previous: gr.Textbox
    prompt: gr.Textbox
    preview: gr.Markdown
    start: gr.Button
    stop_next: gr.Button
    stop_all: gr.Button
    next_token: gr.Button
    clear: gr.Button
    unload: gr.Button
    use_last: gr.Button
    status: gr.Markdown
    code_banner: gr.Markdown
    raw: gr.Checkbox
    copy_last: gr.Button
    copy_all: gr.Button
    last_answer: gr.Textbox
    all_answers: gr.Textbox
    entries: gr.State
    run_done: gr.Number
    model_changed: gr.Number
    reopened_run: gr.Number
    last_run_store: gr.BrowserState

    def run_inputs(self) -> list[Any]:
        return [self.system, self.previous, self.prompt]

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        return {"prompts": data[self.prompt] or "", "system": data[self.system] or "",
                "previous": data[self.previous] or ""}


def build() -> ChainPanel:
    """Lay out the fields, buttons and status line (the transcript goes in its tab: `build_transcript`)."""
    with gr.Row(equal_height=True):
        system = gr.Textbox(label=t("system"), lines=1, max_lines=8, elem_id="system-prompt", scale=1)
        previous = gr.Textbox(label=t("previous"), lines=1, max_lines=8, elem_id="previous-response", scale=1)
    # lines=1 (growing to max_lines): Gradio submits on Enter and adds a line on Shift+Enter.
    prompt = gr.Textbox(
        label=t("prompt"), lines=1, max_lines=12, elem_id="user-prompt", autofocus=True,
        placeholder=t("prompt_placeholder"),
    )
    preview = gr.Markdown("", elem_id="plan-preview", elem_classes=["small-note"])
    with gr.Row(elem_id="run-buttons"):
        start = gr.Button(t("start"), variant="primary", elem_id="start", min_width=90)
        stop_next = gr.Button(t("stop_next"), elem_id="stop-next", min_width=90)
        stop_all = gr.Button(t("stop_all"), variant="stop", elem_id="stop-all", min_width=110)
        # Used with Learning → Stepping "next token": one more token per click.
        next_token = gr.Button(t("next_token"), elem_id="next-token", min_width=90)
    status = gr.Markdown("", elem_id="status")
    code_banner = gr.Markdown(code_panel.BANNER, visible=False, elem_id="code-on-banner")
    gr.HTML(voice_panel.PLAYER_HTML, elem_id="speech-player-box")
    with gr.Row(elem_id="transcript-tools", equal_height=True):
        raw = gr.Checkbox(label=t("raw"), value=False, elem_id="raw", container=False, min_width=90, scale=0)
        copy_last = gr.Button(t("copy_last"), size="sm", elem_id="copy-last", min_width=80, scale=0)
        copy_all = gr.Button(t("copy_all"), size="sm", elem_id="copy-all", min_width=60, scale=0)
        use_last = gr.Button(t("use_last"), size="sm", elem_id="use-last", min_width=80, scale=0)
        clear = gr.Button(t("clear"), size="sm", elem_id="clear", min_width=50, scale=0)
        unload = gr.Button(t("unload"), size="sm", elem_id="unload", min_width=80, scale=0)
    last_answer = gr.Textbox(visible=False, elem_id="last-answer")
    all_answers = gr.Textbox(visible=False, elem_id="all-answers")
    run_done = gr.Number(visible=False, value=0, elem_id="run-done")
    model_changed = gr.Number(visible=False, value=0, elem_id="model-changed")
    reopened_run = gr.Number(visible=False, value=None, elem_id="reopened-run")
    last_run_store = gr.BrowserState(None, storage_key="chain-studio-last-run")
    return ChainPanel(system, previous, prompt, preview, start, stop_next, stop_all, next_token, clear, unload,
                      use_last, status, code_banner, raw, copy_last, copy_all, last_answer, all_answers,
                      gr.State([]), run_done, model_changed, reopened_run, last_run_store)


def build_transcript() -> gr.Markdown:
    """The transcript (in the first tab). Single line breaks are kept, as chat UIs do."""
    return gr.Markdown(render_transcript([]), elem_id="transcript", line_breaks=True)


def clear_history() -> tuple[str, list, str, str]:
    return render_transcript([]), [], "", ""


def rerender(shown: list[Entry], raw_mode: bool) -> str:
    return render_transcript(shown, raw_mode)


def wire(panel: ChainPanel, services: Services, page: PageHandles) -> None:
    """Start, Enter in a prompt field and the run's buttons."""
    inputs = chain_run.run_inputs(page) | {page.run_done}
    outputs = chain_run.run_outputs(page)

    def refuse_second_start(request: gr.Request) -> None:
        chain_run.check_idle(services, session_of(request))

    def run(data: dict[Any, Any], request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from chain_run.run_chain(services, page, data, session_of(request), int(data[page.run_done] or 0))

    def on_stop_current(request: gr.Request) -> None:
        chain_run.stop_current(services, session_of(request))

    def on_stop_all(changes: float | None, request: gr.Request) -> tuple[str, float]:
        return chain_run.stop_everything(services, session_of(request)), (changes or 0) + 1

    def preview(data: dict[Any, Any]) -> str:
        return chain_run.plan_preview(services, page, data)

    for trigger in (page.start.click, page.prompt.submit, page.system.submit, page.previous.submit, page.urls.submit):
        # A second start while this tab runs is refused with a message; the first run keeps streaming.
        # (queued: Gradio shows the error of a queued event as a notice; concurrency_limit None: it
        # never waits behind other events)
        trigger(refuse_second_start, None, None, concurrency_limit=None, show_progress="hidden").success(
            run, inputs, outputs, concurrency_limit=None, show_progress="hidden"
        ).then(lambda: gr.update(interactive=True, value=t("start")), None, page.start)  # also after an error
    page.stop_next.click(on_stop_current, None, None, queue=False)
    page.stop_all.click(on_stop_all, page.model_changed, [page.status, page.model_changed], queue=False)
    panel.clear.click(clear_history, None, [page.transcript, page.entries, page.last_answer, page.all_answers])
    panel.use_last.click(lambda text: text, page.last_answer, page.previous)
    page.raw.change(rerender, [page.entries, page.raw], page.transcript)
    panel.copy_last.click(None, page.last_answer, None, js=COPY_JS)
    panel.copy_all.click(None, page.all_answers, None, js=COPY_JS)
    preview_inputs = chain_run.run_inputs(page)
    triggers = [c.change for c in preview_inputs if hasattr(c, "change") and c not in (page.entries,)]
    gr.on(triggers, preview, preview_inputs, panel.preview, queue=False, show_progress="hidden",
          trigger_mode="always_last")
