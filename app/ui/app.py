"""The studio page: layout first, then every event wired in one place (`build_ui`)."""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the studio is offline

import gradio as gr

from app.core.backend import GenerationRequest, TokenEvent
from app.core.errors import ChainStudioError
from app.models.gguf_file import inspect_gguf
from app.services import Services
from app.ui.render import AnswerView, answer_footer, render_transcript
from app.ui.sampling_controls import (
    build_load_controls,
    build_sampling_controls,
    load_from_values,
    sampling_from_values,
)

UPDATE_INTERVAL_SECONDS = 0.05  # at most ~20 page updates a second while streaming
DEFAULT_PROMPT = "Hello!"


def model_info_markdown(path: str | None) -> str:
    """A table of what the selected model's GGUF header says."""
    if not path:
        return "*No model selected.*"
    try:
        info = inspect_gguf(path)
    except ChainStudioError as exc:
        return f"**Cannot use this file:** {exc}"
    rows = [
        ("File", info.file_name),
        ("Name", info.name),
        ("Architecture", info.architecture),
        ("Size", f"{info.size_label} parameters ({info.parameter_count:,})"),
        ("Quantization", info.quantization),
        ("Trained context", f"{info.context_length:,} tokens" if info.context_length else "unknown"),
        ("Vocabulary", f"{info.vocab_size:,} tokens" if info.vocab_size else "unknown"),
        ("File size", f"{info.file_size / 2**20:,.1f} MiB"),
        ("Chat template", "yes" if info.chat_template else "none (plain transcript format)"),
    ]
    return "| Model | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def build_ui(services: Services) -> gr.Blocks:
    """Build the studio page for `services`."""
    model_choices = [(p.name, str(p)) for p in services.model_files()]
    with gr.Blocks(title="Chain Studio") as page:
        views = gr.State([])
        gr.Markdown("# Chain Studio\nLocal GGUF models, offline. Enter starts; Shift+Enter adds a line.")
        with gr.Row():
            with gr.Column(scale=2):
                system = gr.Textbox(label="System prompt", lines=1, max_lines=8, elem_id="system-prompt")
                prompt = gr.Textbox(
                    label="User prompt",
                    lines=1,  # with lines=1 Gradio submits on Enter and Shift+Enter adds a line
                    max_lines=20,
                    placeholder="Type a prompt and press Enter",
                    elem_id="user-prompt",
                    autofocus=True,
                )
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    stop = gr.Button("Stop", elem_id="stop")
                    clear = gr.Button("Clear history", elem_id="clear")
                    unload = gr.Button("Unload model", elem_id="unload")
                transcript = gr.Markdown(render_transcript([]), elem_id="transcript")
            with gr.Column(scale=1):
                model = gr.Dropdown(
                    choices=model_choices,
                    value=model_choices[0][1] if model_choices else None,
                    label="Models",
                    elem_id="model-select",
                )
                refresh = gr.Button("Refresh model list", size="sm")
                model_info = gr.Markdown(model_info_markdown(model_choices[0][1] if model_choices else None))
                status = gr.Markdown("", elem_id="status")
                with gr.Accordion("Generation settings", open=False):
                    sampling = build_sampling_controls()
                with gr.Accordion("Model loading", open=False):
                    loading = build_load_controls()

        sampling_names = list(sampling)
        loading_names = list(loading)

        def run(chosen: str | None, system_text: str, user_text: str, history: list[AnswerView], *values: Any) -> Iterator[tuple]:
            history = list(history)
            if not chosen:
                gr.Warning("Choose a model first.")
                yield render_transcript(history), history, ""
                return
            name = os.path.basename(chosen)
            try:
                params = sampling_from_values(sampling_names, list(values[: len(sampling_names)]))
                load_params = load_from_values(loading_names, list(values[len(sampling_names) :]))
            except ChainStudioError as exc:
                gr.Warning(str(exc))
                yield render_transcript(history), history, ""
                return
            history.append(AnswerView(model=name, text=""))
            waiting = "Waiting for the model (another run is using it)…" if services.backend.busy else ""
            yield render_transcript(history), history, waiting or f"Loading {name}…"
            text, last_update = "", 0.0
            try:
                services.backend.load(chosen, load_params)
                request = GenerationRequest.chat(user_text.strip() or DEFAULT_PROMPT, system_text.strip(), params)
                for event in services.backend.generate(request):
                    if isinstance(event, TokenEvent):
                        text += event.text
                        now = time.monotonic()
                        if now - last_update >= UPDATE_INTERVAL_SECONDS:
                            last_update = now
                            history[-1] = AnswerView(model=name, text=text)
                            yield render_transcript(history), history, "Generating…"
                    else:
                        history[-1] = AnswerView(model=name, text=event.text, footer=answer_footer(event))
            except ChainStudioError as exc:
                history[-1] = AnswerView(model=name, text=text, error=str(exc))
                gr.Warning(str(exc))
            yield render_transcript(history), history, ""

        def stop_generation() -> None:
            services.backend.stop_current()

        def clear_history() -> tuple[str, list]:
            return render_transcript([]), []

        def unload_model() -> str:
            services.backend.unload()
            return "Model unloaded."

        def refresh_models(current: str | None) -> Any:
            choices = [(p.name, str(p)) for p in services.model_files()]
            values = [value for _, value in choices]
            return gr.update(choices=choices, value=current if current in values else (values[0] if values else None))

        run_inputs = [model, system, prompt, views, *sampling.values(), *loading.values()]
        run_outputs = [transcript, views, status]
        for trigger in (prompt.submit, system.submit, start.click):
            trigger(run, run_inputs, run_outputs)
        stop.click(stop_generation, None, None, queue=False)
        clear.click(clear_history, None, [transcript, views])
        unload.click(unload_model, None, status)
        refresh.click(refresh_models, model, model)
        model.change(model_info_markdown, model, model_info)
    return page
