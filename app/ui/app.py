"""The studio page: layout first, then every event wired in one place (`build_ui`).

Handlers stay thin: they build a `ChainSpec` from the fields, run it with the tab's own runner and
turn the events into component values (`render.TranscriptBuilder`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from app.core.branching import BranchPoint, grow_branch
from app.core.chain import ChainSpec
from app.core.errors import ChainStudioError
from app.core.events import (
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    CodeFinished,
    CodeStarted,
    Failure,
    RunFinished,
    RunStarted,
)
from app.core.hub_links import links_from_text, looks_like_link
from app.core.prompt_list import IGNORE_PREFIX
from app.core.sampler_pipeline import ALL_STAGES
from app.models.gguf_file import inspect_gguf
from app.models.hub import HubModelSource
from app.models.memory import estimate_memory
from app.models.model_folder import describe_model_file
from app.services import Services
from app.ui import learning_view
from app.ui.page_js import COPY_JS, SOUND_END_JS, SOUND_START_JS
from app.ui.panels import code_panel, files_panel, history_panel, library_panel, model_panel, voice_panel
from app.ui.panels.html_view import EMPTY as EMPTY_HTML
from app.ui.panels.html_view import html_view
from app.ui.render import Entry, TranscriptBuilder, plain_transcript, render_transcript
from app.ui.sampling_controls import (
    DETERMINISTIC_PRESET,
    STOCHASTIC_PRESET,
    build_load_controls,
    build_sampling_controls,
    load_from_values,
    preset_values,
    sampling_from_values,
)

UPDATE_INTERVAL_SECONDS = 0.05  # at most ~20 page updates a second while streaming
OPTION_LABELS = {
    "feedback": "Feedback loop",
    "cumulative": "Cumulative response",
    "single_response": "Single response per model",
    "shuffle": "Shuffle models",
    "reset": "Reset model before each answer",
    "random_params": "Random hyperparameters",
}


def model_info_markdown(path: str | None) -> str:
    """A table of what a model's GGUF header says."""
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
        ("Memory needed", estimate_memory(info, 4096).describe()),
    ]
    return "| Model | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


BROWSE_MARKDOWN = """### Where to find GGUF models
Copy a file's link from any of these (Files and versions → the file → copy the download link),
paste it into **Model URLs** and press Enter. Choose a size that fits your memory: Q4_K_M is a good
start.

**Publishers that quantize many models:**
[bartowski](https://huggingface.co/bartowski) ·
[unsloth](https://huggingface.co/unsloth) ·
[lmstudio-community](https://huggingface.co/lmstudio-community) ·
[ggml-org](https://huggingface.co/ggml-org) ·
[mradermacher](https://huggingface.co/mradermacher) ·
[MaziyarPanahi](https://huggingface.co/MaziyarPanahi) ·
[QuantFactory](https://huggingface.co/QuantFactory) ·
[NousResearch](https://huggingface.co/NousResearch) ·
[Qwen](https://huggingface.co/Qwen) ·
[TheBloke](https://huggingface.co/TheBloke) (older models)

**Search by family:**
[Llama](https://huggingface.co/models?library=gguf&search=llama) ·
[Qwen](https://huggingface.co/models?library=gguf&search=qwen) ·
[Gemma](https://huggingface.co/models?library=gguf&search=gemma) ·
[Mistral](https://huggingface.co/models?library=gguf&search=mistral) ·
[Phi](https://huggingface.co/models?library=gguf&search=phi) ·
[DeepSeek](https://huggingface.co/models?library=gguf&search=deepseek) ·
[SmolLM](https://huggingface.co/models?library=gguf&search=smollm) ·
[code models](https://huggingface.co/models?library=gguf&search=coder) ·
[Portuguese](https://huggingface.co/models?library=gguf&search=portuguese)
"""


def model_choice(path: Path) -> tuple[str, str]:
    """A model of the folder as the list shows it: name, architecture, size, quantization, trained
    context and file size, read from its header (the value is the file name)."""
    described = describe_model_file(path)
    info = described.info
    if info is None:  # listed with its problem, so one bad file never breaks the list
        problem = described.problem if len(described.problem) <= 120 else described.problem[:119] + "…"
        return f"{path.name} (not usable: {problem})", path.name
    context = f"ctx {info.context_length:,}" if info.context_length else "ctx ?"
    label = (f"{path.name} · {info.architecture} · {info.size_label} · {info.quantization} · {context} · "
             f"{info.file_size / 1e6:,.1f} MB")
    return label, path.name


def model_paths(models_text: str, folder: str) -> tuple[str, ...]:
    """The "Models" field: one file name (looked up in the folder), path or Hugging Face link per
    line; `---` ignores a line; order and repeats are kept."""
    paths = []
    for line in (models_text or "").splitlines():
        name = line.strip()
        if not name or name.startswith(IGNORE_PREFIX):
            continue
        if looks_like_link(name):
            paths.append(name)
            continue
        candidate = Path(name).expanduser()
        paths.append(str(candidate if candidate.is_absolute() else Path(folder) / candidate))
    return tuple(paths)


def read_aloud(text: str, voice: str | None, rate: float | None) -> str | None:
    """An answer as a WAV for the page's speech queue; None (with a notice) when it cannot be read."""
    try:
        return str(voice_panel.speak(text, voice, rate))
    except ChainStudioError as exc:
        gr.Warning(f"Reading aloud: {exc}")
        return None


def build_ui(services: Services) -> gr.Blocks:
    """Build the studio page for `services`."""
    files = services.model_files()
    names = [p.name for p in files]
    choices = [model_choice(p) for p in files]
    with gr.Blocks(title="Chain Studio") as page:
        entries = gr.State([])
        folder = gr.State(str(services.models_dir))
        gr.Markdown("# Chain Studio\nChain local GGUF models, offline. Enter starts; Shift+Enter adds a line.")
        journal_notice = history_panel.build_notice(services)  # a damaged journal was replaced at start
        with gr.Row():
            with gr.Column(scale=3):
                system = gr.Textbox(label="System prompt", lines=1, max_lines=8, elem_id="system-prompt")
                previous = gr.Textbox(label="Previous response", lines=1, max_lines=8, elem_id="previous-response")
                # lines=1 (growing to max_lines): Gradio submits on Enter and adds a line on Shift+Enter.
                prompt = gr.Textbox(
                    label="User prompt", lines=1, max_lines=20, elem_id="user-prompt", autofocus=True,
                    placeholder="One prompt per line, or items separated by $$$ — press Enter to start",
                )
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    stop_next = gr.Button("Stop / Next", elem_id="stop-next")
                    stop_all = gr.Button("Stop all & reset", variant="stop", elem_id="stop-all")
                    # Used with Learning → Stepping "next token": one more token per click.
                    next_token = gr.Button("Next token", elem_id="next-token")
                with gr.Row():
                    clear = gr.Button("Clear history", size="sm", elem_id="clear")
                    unload = gr.Button("Unload model", size="sm", elem_id="unload")
                    use_last = gr.Button("Use last answer as previous response", size="sm", elem_id="use-last")
                status = gr.Markdown("", elem_id="status")
                code_banner = gr.Markdown(code_panel.BANNER, visible=False, elem_id="code-on-banner")
                gr.HTML(voice_panel.PLAYER_HTML, elem_id="speech-player-box")
                with gr.Row():
                    raw = gr.Checkbox(label="Raw text", value=False, elem_id="raw")
                    copy_last = gr.Button("Copy last answer", size="sm", elem_id="copy-last")
                    copy_all = gr.Button("Copy all", size="sm", elem_id="copy-all")
                with gr.Tabs():
                    with gr.Tab("Transcript", id="transcript-tab"):
                        transcript = gr.Markdown(render_transcript([]), elem_id="transcript")
                    with gr.Tab("Learning", id="learning"):
                        learning_on = gr.Checkbox(label="Learning mode: see how every token is chosen", value=False,
                                                  elem_id="option-learning")
                        learning_top = gr.Slider(1, 100, value=10, step=1, label="Candidates per token",
                                                 elem_id="learning-top")
                        with gr.Row():
                            stepping = gr.Radio(["off", "delay", "next token"], value="off", label="Stepping",
                                                elem_id="stepping", scale=3)
                            step_delay = gr.Number(label="Delay (s)", value=0.5, minimum=0, maximum=60,
                                                   elem_id="step-delay", scale=1)
                        gr.Markdown("**Last tokens** (probability before sampling)")
                        learning_last = gr.Markdown(learning_view.last_tokens([]), elem_id="learning-last")
                        gr.Markdown(learning_view.STAGES_NOTE)
                        learning_table = gr.Dataframe(headers=learning_view.TABLE_HEADERS, value=[], interactive=False,
                                                      wrap=True, elem_id="learning-table", label="Current token")
                        learning_stage = gr.Dropdown(choices=[learning_view.BEFORE, *ALL_STAGES], value=learning_view.BEFORE,
                                                     label="Plot the probabilities", elem_id="learning-stage")
                        learning_bars = gr.BarPlot(x="token", y="probability", color="pick", elem_id="learning-bars",
                                                   label="Candidates of the last token", sort="-y")
                        gr.Markdown("**Unlikely picks** (tokens chosen at rank 2 or lower)")
                        learning_unlikely = gr.Markdown(learning_view.unlikely_picks([]), elem_id="learning-unlikely")
                        learning_ranks = gr.LinePlot(x="position", y="rank", elem_id="learning-ranks",
                                                     label="Rank of each pick over the answer")
                        gr.Markdown("**The answer as tokens** (hover a token for its id and alternatives)")
                        learning_tokens = gr.HTML(learning_view.token_view([]), elem_id="token-view")
                        gr.Markdown("**Branches**: take another candidate at a position and let the model go on")
                        branch_pick = gr.Radio(choices=[], label="Branches of the last answer", elem_id="branches")
                        with gr.Row():
                            branch_position = gr.Number(label="Position", value=0, precision=0, minimum=0,
                                                        elem_id="branch-position", scale=1)
                            branch_token = gr.Dropdown(choices=[], label="Candidate", elem_id="branch-token", scale=3)
                            branch_button = gr.Button("Branch here", elem_id="branch-button", scale=1)
                        branch_text = gr.Markdown("", elem_id="branch-text")
                        learning_branches = gr.State([])
                        learning_records = gr.State([])
                    with gr.Tab("Code", id="code"):
                        code = code_panel.build()
                    with gr.Tab("Voice", id="voice"):
                        voice = voice_panel.build()
                    with gr.Tab("HTML view", id="html"):
                        html_panel = gr.HTML(EMPTY_HTML, elem_id="html-view")
                last_answer = gr.Textbox(visible=False, elem_id="last-answer")
                all_answers = gr.Textbox(visible=False, elem_id="all-answers")
            with gr.Column(scale=2):
                with gr.Tab("Models"):
                    models = gr.Textbox(
                        label="Models", value=names[0] if names else "", lines=2, max_lines=12, elem_id="models",
                        info="One per line, in order; repeats allowed; --- skips a line",
                    )
                    with gr.Row():
                        pick = gr.Dropdown(choices=choices, value=names[0] if names else None,
                                           label="Models in the folder", elem_id="model-pick", scale=3)
                        add = gr.Button("Add", size="sm", elem_id="add-model", scale=1)
                        refresh = gr.Button("Refresh", size="sm", elem_id="refresh-models", scale=1)
                    urls = gr.Textbox(
                        label="Model URLs", lines=1, max_lines=10, elem_id="model-urls",
                        info="Hugging Face GGUF links, one per line (--- skips a line), or the text of a "
                             "repo's Files and versions page. Used when Models is empty.",
                    )
                    testing = gr.Checkbox(label="Testing mode: keep only the last downloaded model",
                                          value=False, elem_id="option-testing")
                    with gr.Row():
                        folder_box = gr.Textbox(label="Models folder", value=str(services.models_dir),
                                                elem_id="models-folder", scale=4)
                        use_folder = gr.Button("Use folder", size="sm", elem_id="use-folder", scale=1)
                    model_info = gr.Markdown(model_info_markdown(str(files[0]) if files else None))
                    in_memory = model_panel.build(services)
                    with gr.Accordion("Where to find GGUF models", open=False):
                        gr.Markdown(BROWSE_MARKDOWN, elem_id="browse")
                with gr.Tab("Settings"):
                    with gr.Row():
                        deterministic = gr.Button("Deterministic preset", size="sm", elem_id="preset-deterministic")
                        stochastic = gr.Button("Stochastic preset", size="sm", elem_id="preset-stochastic")
                    options = {
                        name: gr.Checkbox(label=label, value=False, elem_id=f"option-{name.replace('_', '-')}")
                        for name, label in OPTION_LABELS.items()
                    }
                    fast = gr.Checkbox(label="Fast mode (show each answer when it is complete)", value=False,
                                       elem_id="option-fast")
                    # Read by the page's own script (page_js.PAGE_JS), which plays the sounds.
                    gr.Checkbox(label="Sounds at start and end", value=True, elem_id="sounds", interactive=True)
                    with gr.Row():
                        responses = gr.Number(label="Responses per model", value=1, minimum=1, precision=0,
                                              elem_id="responses")
                        loops = gr.Number(label="Loops", value=1, minimum=1, precision=0, elem_id="loops")
                    with gr.Accordion("Generation settings", open=True):
                        sampling = build_sampling_controls()
                    with gr.Accordion("Model loading", open=False):
                        loading = build_load_controls()
                with gr.Tab("Library"):
                    library = library_panel.build()
                with gr.Tab("Files"):
                    file_loader = files_panel.build()
                with gr.Tab("History"):
                    history = history_panel.build(services)
        sampling_names = list(sampling)
        loading_names = list(loading)

        def learning_outputs(records: list[dict], stage: str, complete: bool) -> dict:
            """Learning tab values: the live parts always, the plots once an answer is complete."""
            values: dict[Any, Any] = {
                learning_last: learning_view.last_tokens(records),
                learning_table: learning_view.candidate_rows(records[-1]) if records else [],
                learning_unlikely: learning_view.unlikely_picks(records),
                learning_records: records,
            }
            if complete:
                values[learning_bars] = pd.DataFrame(learning_view.probability_rows(records[-1], stage)) \
                    if records else None
                values[learning_ranks] = pd.DataFrame(learning_view.rank_rows(records)) if records else None
                values[learning_tokens] = learning_view.token_view(records)
            return values

        def run(data: dict[Any, Any], request: gr.Request) -> Iterator[dict]:
            session = request.session_hash or "anonymous"
            runner = services.runner_for(session)
            shown: list[Entry] = data[entries]
            raw_mode, fast_mode = bool(data[raw]), bool(data[fast])
            learning = int(data[learning_top] or 10) if data[learning_on] else 0
            try:
                # A local model list wins; the URL list is used when it is empty.
                chosen = model_paths(data[models], data[folder]) or tuple(
                    link.url for link in links_from_text(data[urls] or "")
                )
                if not chosen:
                    raise ChainStudioError("choose a model in Models, or paste a Hugging Face link in Model URLs")
                spec = ChainSpec(
                    models=chosen,
                    prompts=data[prompt] or "",
                    system=data[system] or "",
                    previous=data[previous] or "",
                    responses=int(data[responses] or 1),
                    loops=int(data[loops] or 1),
                    sampling=sampling_from_values(sampling_names, [data[c] for c in sampling.values()]),
                    load=load_from_values(loading_names, [data[c] for c in loading.values()]),
                    learning_top=learning,
                    stepping={"off": "off", "delay": "delay", "next token": "manual"}[data[stepping] or "off"],
                    step_delay=float(data[step_delay] or 0),
                    code=code_panel.code_options(*[data[c] for c in code.options_components()]),
                    **{name: bool(data[box]) for name, box in options.items()},
                )
                runner.plan(spec)  # prompt-list syntax errors: a message, and nothing runs
            except ChainStudioError as exc:
                gr.Warning(str(exc))
                yield {transcript: render_transcript(shown, raw_mode), status: f"⚠️ {exc}"}
                return
            if services.run_lock.locked():
                yield {status: "Waiting for the model: another tab is running a chain…"}
            with services.run_lock:
                if services.is_closed(session):
                    return
                builder = TranscriptBuilder(shown, show_params=spec.random_params)
                records: list[dict] = []
                branches: list[dict] = []
                run_number: int | None = None
                last_update = 0.0

                speech: str | None = None  # the newest answer read aloud (auto-read)

                def update(complete: bool) -> dict:
                    nonlocal speech
                    snapshot = builder.snapshot()
                    values = {transcript: render_transcript(snapshot, raw_mode), entries: snapshot,
                              status: builder.status, last_answer: builder.last_answer,
                              all_answers: plain_transcript(snapshot)}
                    if builder.last_code:
                        values[code.output] = builder.last_code
                    if speech is not None:
                        values[voice.speech_file], speech = speech, None
                    if learning:
                        values.update(learning_outputs(records, data[learning_stage], complete))
                        if complete and branches:
                            values[learning_branches] = branches
                            values[branch_pick] = gr.update(choices=[b["label"] for b in branches],
                                                            value=branches[0]["label"])
                            values[branch_text] = branches[0]["text"]
                    return values

                try:
                    source = HubModelSource(services.downloader(Path(data[folder])), testing=bool(data[testing]))
                    for event in runner.run(spec, source):
                        if isinstance(event, AnswerToken) and event.choice is not None:
                            records.append(event.choice.to_record())
                        elif learning and isinstance(event, AnswerStarted):
                            records = []
                        elif isinstance(event, RunStarted):
                            run_number = event.run_id
                        elif learning and isinstance(event, AnswerFinished) and run_number is not None:
                            a = event.answer
                            point = BranchPoint(run_number, a.index, a.model_path, a.item, a.response, a.loop,
                                                a.messages, a.params, tuple(c.chosen for c in a.choices))
                            branches = [{"label": "original answer", "point": point, "records": list(records),
                                         "text": a.text}]
                        if data[voice.auto_read] and isinstance(event, AnswerFinished) and event.answer.text.strip():
                            speech = read_aloud(event.answer.text, data[voice.voice], data[voice.rate])
                        boundary = builder.apply(event)
                        now = time.monotonic()
                        final = isinstance(event, (AnswerFinished, Failure, RunFinished))
                        code_event = isinstance(event, (CodeStarted, CodeFinished))
                        if final or code_event or (not fast_mode and (boundary or now - last_update >= UPDATE_INTERVAL_SECONDS)):
                            last_update = now
                            yield update(complete=final)
                except ChainStudioError as exc:
                    gr.Warning(str(exc))
                    values = update(complete=True)
                    values[status] = f"⚠️ {exc}"
                    yield values

        def stop_current(request: gr.Request) -> None:
            services.runner_for(request.session_hash or "anonymous").control.stop_current()

        def stop_everything(request: gr.Request) -> str:
            runner = services.runner_for(request.session_hash or "anonymous")
            runner.control.stop_all()
            if services.backend.busy:
                return "Run stopped. The model is busy with another tab, so it stays loaded."
            services.backend.unload()
            return "Run stopped and the model reset: it loads again at the next start."

        def clear_history() -> tuple[str, list, str, str]:
            return render_transcript([]), [], "", ""

        def unload_model() -> str:
            if services.backend.busy:
                return "The model is generating: stop the run first."
            services.backend.unload()
            return "Model unloaded: it loads again at the next start."

        def rerender(shown: list[Entry], raw_mode: bool) -> str:
            return render_transcript(shown, raw_mode)

        def add_model(current: str, name: str | None) -> str:
            if not name:
                return current
            lines = [line for line in (current or "").splitlines() if line.strip()]
            return "\n".join(lines + [name])

        def refresh_models(folder_path: str, chosen: str | None) -> Any:
            found = [model_choice(p) for p in services.model_files(Path(folder_path))]
            values = [value for _, value in found]
            return gr.update(choices=found, value=chosen if chosen in values else (values[0] if values else None))

        def choose_folder(path_text: str, chosen: str | None) -> tuple[Any, Any, str]:
            path = Path(path_text or "").expanduser()
            if not path.is_dir():
                gr.Warning(f"{path} is not a folder")
                return gr.update(), gr.update(), f"⚠️ {path} is not a folder"
            found = [model_choice(p) for p in services.model_files(path)]
            message = f"Models folder: {path} ({len(found)} GGUF files)"
            first = found[0][1] if found else None
            return str(path.resolve()), gr.update(choices=found, value=first), message

        def show_model(folder_path: str, name: str | None) -> str:
            return model_info_markdown(str(Path(folder_path) / name) if name else None)

        def n_ctx_changed(value: float) -> str:
            loaded = services.backend.loaded
            if loaded is not None and int(value or 0) != loaded.load.n_ctx:
                return f"n_ctx is now {int(value or 0)}: the model reloads at the next start."
            return ""

        # -- wiring ------------------------------------------------------------------------------
        run_inputs = {models, urls, testing, folder, system, previous, prompt, entries, raw, fast, responses, loops,
                      learning_on, learning_top, learning_stage, stepping, step_delay,
                      *code.options_components(), voice.auto_read, voice.voice, voice.rate,
                      *options.values(), *sampling.values(), *loading.values()}
        run_outputs = {transcript, entries, status, last_answer, all_answers, learning_last, learning_table,
                       learning_unlikely, learning_records, learning_bars, learning_ranks, learning_tokens,
                       learning_branches, branch_pick, branch_text, code.output, voice.speech_file}
        for trigger in (start.click, prompt.submit, system.submit, previous.submit):
            trigger(None, None, None, js=SOUND_START_JS)
            trigger(run, run_inputs, run_outputs, concurrency_limit=None, show_progress="hidden").then(
                None, None, None, js=SOUND_END_JS
            ).then(lambda: model_panel.loaded_markdown(services), None, in_memory.loaded).then(
                refresh_models, [folder, pick], pick  # downloaded models join the folder's list
            )
        stop_next.click(stop_current, None, None, queue=False)

        def one_more_token(request: gr.Request) -> None:
            services.runner_for(request.session_hash or "anonymous").control.step()

        next_token.click(one_more_token, None, None, queue=False)
        stop_all.click(stop_everything, None, status, queue=False)
        clear.click(clear_history, None, [transcript, entries, last_answer, all_answers])
        unload.click(unload_model, None, status, queue=False)
        use_last.click(lambda text: text, last_answer, previous)
        raw.change(rerender, [entries, raw], transcript)
        copy_last.click(None, last_answer, None, js=COPY_JS)
        copy_all.click(None, all_answers, None, js=COPY_JS)
        add.click(add_model, [models, pick], models)
        refresh.click(refresh_models, [folder, pick], pick)
        use_folder.click(choose_folder, [folder_box, pick], [folder, pick, status])
        pick.change(show_model, [folder, pick], model_info)
        deterministic.click(lambda: preset_values(sampling_names, DETERMINISTIC_PRESET), None, list(sampling.values()))
        stochastic.click(lambda: preset_values(sampling_names, STOCHASTIC_PRESET), None, list(sampling.values()))
        loading["n_ctx"].change(n_ctx_changed, loading["n_ctx"], status)
        def tab_closed(request: gr.Request) -> None:
            services.close_session(request.session_hash or "anonymous")

        page.unload(tab_closed)
        last_answer.change(html_view, last_answer, html_panel)

        def replot(records: list[dict], stage: str) -> Any:
            return pd.DataFrame(learning_view.probability_rows(records[-1], stage)) if records else None

        learning_stage.change(replot, [learning_records, learning_stage], learning_bars)

        def selected(branches: list[dict], label: str | None) -> dict | None:
            return next((b for b in branches if b["label"] == label), branches[0] if branches else None)

        def candidates_at(branches: list[dict], label: str | None, position: float | None) -> Any:
            branch = selected(branches, label)
            index = int(position or 0)
            if branch is None or not 0 <= index < len(branch["records"]):
                return gr.update(choices=[], value=None)
            record = branch["records"][index]
            choices = [(f"{learning_view.visible(piece)} (id {token}, {prob:.1%})", token)
                       for token, piece, _logit, prob, _stages, _removed in record["candidates"]
                       if token != record["chosen"]]
            return gr.update(choices=choices, value=choices[0][1] if choices else None)

        def show_branch(branches: list[dict], label: str | None, stage: str) -> tuple:
            branch = selected(branches, label)
            records = branch["records"] if branch else []
            values = learning_outputs(records, stage, complete=True)
            return (branch["text"] if branch else "", records,
                    *[values[c] for c in (learning_last, learning_table, learning_unlikely, learning_bars,
                                          learning_ranks, learning_tokens)])

        def branch_here(branches: list[dict], label: str | None, position: float | None, token: int | None,
                        top: float) -> tuple:
            branch = selected(branches, label)
            if branch is None or token is None:
                return gr.update(), gr.update(), "⚠️ Run in learning mode, then choose a position and a candidate."
            base: BranchPoint = branch["point"]
            at = int(position or 0)
            with services.run_lock:
                seq = services.journal.next_answer_seq(base.run_id)
                try:
                    events = list(grow_branch(services.backend, base, at, int(token), seq, int(top or 10)))
                except (ChainStudioError, ValueError) as exc:
                    return gr.update(), gr.update(), f"⚠️ {exc}"
            answer = events[-1]
            services.journal.record_branch(base.run_id, answer, base.seq, at, int(token))
            point = BranchPoint(base.run_id, answer.index, answer.model_path, answer.item, answer.response,
                                answer.loop, answer.messages, answer.params, tuple(c.chosen for c in answer.choices))
            taken = next(c.piece for c in answer.choices[at].candidates if c.token_id == int(token))
            piece = learning_view.visible(taken)
            new = {"label": f"branch {len(branches)}: {branch['label'].split(':')[0]} → position {at} takes {piece}",
                   "point": point, "records": [c.to_record() for c in answer.choices], "text": answer.text}
            updated = branches + [new]
            return updated, gr.update(choices=[b["label"] for b in updated], value=new["label"]), \
                f"Branch {len(branches)} saved as answer {answer.index} of run {base.run_id}."

        branch_outputs = [branch_text, learning_records, learning_last, learning_table, learning_unlikely,
                          learning_bars, learning_ranks, learning_tokens]
        branch_pick.change(show_branch, [learning_branches, branch_pick, learning_stage], branch_outputs)
        branch_pick.change(candidates_at, [learning_branches, branch_pick, branch_position], branch_token)
        branch_position.change(candidates_at, [learning_branches, branch_pick, branch_position], branch_token)
        branch_button.click(branch_here, [learning_branches, branch_pick, branch_position, branch_token, learning_top],
                            [learning_branches, branch_pick, status])
        fields = {"system": system, "previous": previous, "prompt": prompt, "urls": urls}
        library_panel.wire(library, system, prompt, status)
        files_panel.wire(file_loader, fields, status)
        reopened = history_panel.wire(history, services, fields, models, transcript, entries, status, raw,
                                      learning_records, notice=journal_notice)

        def show_learning(records: list[dict], stage: str) -> tuple:
            values = learning_outputs(records, stage, complete=True)
            return tuple(values[c] for c in (learning_last, learning_table, learning_unlikely, learning_bars,
                                               learning_ranks, learning_tokens))

        reopened.then(show_learning, [learning_records, learning_stage],
                      [learning_last, learning_table, learning_unlikely, learning_bars, learning_ranks, learning_tokens])
        model_panel.wire(in_memory, services, status)
        code_panel.wire(code, services, last_answer, code_banner)
        voice_panel.wire(voice, services, prompt, last_answer, entries, [stop_next, stop_all])
    return page
