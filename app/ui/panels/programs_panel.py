"""The Programs tab: prompts as programs (PromptIDE-style) on the studio's models.

An editor with examples; Run / Stop; the run drawn as its contexts' exact tokens while it runs
(click a sampled token for its alternatives after top-P, and its attention where the model gives
it), or as Markdown; a box that appears while the program waits on user_input; files for
read_file; programs saved with versions; every run journaled, reopenable and comparable side by
side; export and import of a program with its runs as one file.

The program is a separate process (app/programs/process.py) that reaches the model through this
page's own API with its token."""

from __future__ import annotations

import html
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from app.core.errors import ChainStudioError, SettingsError
from app.programs import library
from app.programs.process import DEFAULT_TIME_LIMIT_SECONDS, ProgramLaunch
from app.programs.session import ProgramRun
from app.programs.transcript import ProgramTranscript
from app.services import Services
from app.ui.page import PageHandles, Panel
from app.ui.program_view import program_html, status_markdown

REFRESH_SECONDS = 0.25
AUTO_MODEL = "(the model in memory, else the demo model)"
NO_RUN = "No program has run yet."

_runs: dict[str, ProgramRun] = {}  # the running program of each browser tab
_runs_lock = threading.Lock()


@dataclass
class ProgramsPanel(Panel):
    example: gr.Dropdown
    name: gr.Textbox
    save: gr.Button
    saved: gr.Dropdown
    versions: gr.Dropdown
    editor: gr.Code
    model: gr.Dropdown
    seed: gr.Textbox
    time_limit: gr.Number
    run: gr.Button
    stop: gr.Button
    markdown: gr.Checkbox
    files: gr.File
    ask_row: gr.Row
    ask_label: gr.Markdown
    answer: gr.Textbox
    send: gr.Button
    status: gr.Markdown
    view: gr.HTML
    output: gr.Textbox
    events: gr.State
    runs: gr.Dropdown
    reopen: gr.Button
    compare_with: gr.Dropdown
    compare: gr.Button
    side_by_side: gr.HTML
    export: gr.Button
    export_file: gr.File
    import_file: gr.UploadButton
    note: gr.Markdown


def build(services: Services | None = None) -> ProgramsPanel:
    gr.Markdown("A **program** is Python whose top level may `await`: `prompt()`, `sample()`, `@prompt_fn`, "
                "`user_input()`, `read_file()`… are already imported (README, Programs). It runs in its own "
                "process and reaches the model through this page's API.")
    with gr.Row():
        example = gr.Dropdown(["", *library.EXAMPLES], value="", label="Load an example", elem_id="program-example",
                              scale=2)
        name = gr.Textbox(label="Program name", placeholder="my program", elem_id="program-name", scale=2)
        save = gr.Button("Save version", elem_id="program-save", scale=1)
    with gr.Row():
        saved = gr.Dropdown([], label="Saved programs", elem_id="program-saved", scale=2)
        versions = gr.Dropdown([], label="Versions", elem_id="program-versions", scale=2)
    editor = gr.Code(library.example_source("chatbot.py"), language="python", label="Program", interactive=True,
                     elem_id="program-editor", lines=14)
    with gr.Row():
        model = gr.Dropdown([AUTO_MODEL], value=AUTO_MODEL, label="Model", allow_custom_value=True,
                            elem_id="program-model", scale=3)
        seed = gr.Textbox("", label="Seed (empty: random)", placeholder="random", elem_id="program-seed", scale=1)
        time_limit = gr.Number(DEFAULT_TIME_LIMIT_SECONDS, label="Time limit (s)", precision=0,
                               elem_id="program-time-limit", scale=1)
    files = gr.File(label="Files for read_file() (5 MiB each, 50 MiB in all)", file_count="multiple",
                    elem_id="program-files", height=90)
    with gr.Row():
        run = gr.Button("▶ Run program", variant="primary", elem_id="program-run")
        stop = gr.Button("⏹ Stop", interactive=False, elem_id="program-stop")
        markdown = gr.Checkbox(False, label="Show as Markdown", elem_id="program-markdown")
    with gr.Row(visible=False, elem_id="program-ask") as ask_row:
        ask_label = gr.Markdown(elem_id="program-ask-label")
        answer = gr.Textbox(show_label=False, placeholder="Your answer (empty answers too)",
                            elem_id="program-answer", scale=3)
        send = gr.Button("Send", elem_id="program-send", scale=1)
    status = gr.Markdown(NO_RUN, elem_id="program-status")
    view = gr.HTML(program_html(ProgramTranscript()), elem_id="program-view")
    output = gr.Textbox(label="What the program printed", lines=4, max_lines=14, interactive=False,
                        elem_id="program-output")
    events = gr.State([])
    with gr.Accordion("Runs: reopen, compare, export", open=False):
        with gr.Row():
            runs = gr.Dropdown([], label="Journaled runs", elem_id="program-runs", scale=3)
            reopen = gr.Button("Reopen", elem_id="program-reopen", scale=1)
        with gr.Row():
            compare_with = gr.Dropdown([], label="Compare with", elem_id="program-compare-with", scale=3)
            compare = gr.Button("Side by side", elem_id="program-compare", scale=1)
        side_by_side = gr.HTML(elem_id="program-side-by-side")
        with gr.Row():
            export = gr.Button("Export program with its runs", elem_id="program-export")
            import_file = gr.UploadButton("Import a program", file_types=[".json"], elem_id="program-import")
        export_file = gr.File(label="Exported program", visible=False, elem_id="program-export-file")
    note = gr.Markdown(elem_id="program-note")
    return ProgramsPanel(example, name, save, saved, versions, editor, model, seed, time_limit, run, stop, markdown,
                         files, ask_row, ask_label, answer, send, status, view, output, events, runs, reopen,
                         compare_with, compare, side_by_side, export, export_file, import_file, note)


# -- handlers (module-level: tests call them without a browser) ---------------------------------------


def run_choices(services: Services) -> list[tuple[str, int]]:
    """The journaled program runs, newest first, as dropdown choices."""
    choices = []
    for run in services.journal.program_runs(limit=100):
        label = run["title"] or run["name"] or "untitled"
        choices.append((f"#{run['id']} · {label} · {run['outcome'] or 'running'} · {run['started_at'][:19]}",
                        run["id"]))
    return choices


def api_address(services: Services, request: gr.Request | None) -> str:
    """Where the program reaches this page's API: loopback, on the page's port."""
    port = getattr(services, "local_port", None)
    if not port and request is not None:
        host = request.headers.get("host", "")
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
    return f"http://127.0.0.1:{port or 7860}"


def parse_seed(text: str | None) -> int | None:
    """The seed field: empty for a random one, else a whole number from 0 to 2**32 - 1."""
    cleaned = (text or "").strip()
    if not cleaned:
        return None
    if not cleaned.isdigit() or int(cleaned) > 2**32 - 1:
        raise SettingsError(f"the seed must be a whole number from 0 to {2**32 - 1}, or empty for a random one "
                            f"(got {cleaned!r})")
    return int(cleaned)


def start_run(services: Services, session: str, source: str, model: str | None, seed: str | None,
              time_limit: float | None, files: list[str] | None, name: str, base: str) -> ProgramRun:
    from app.api.token import api_token

    if not (source or "").strip():
        raise ChainStudioError("the program is empty: write one, or load an example")
    launch = ProgramLaunch(
        source=source, api_url=base, token=api_token(),
        model=None if not model or model == AUTO_MODEL else model,
        files=tuple(Path(f) for f in files or ()), seed=parse_seed(seed),
        time_limit=float(time_limit or DEFAULT_TIME_LIMIT_SECONDS))
    run = ProgramRun(services.journal, launch, name=(name or "").strip(), origin="page")
    with _runs_lock:
        _runs[session] = run
    return run


def stop_run(session: str) -> None:
    with _runs_lock:
        run = _runs.get(session)
    if run is not None:
        run.stop()


def send_answer(session: str, text: str) -> tuple[Any, Any]:
    with _runs_lock:
        run = _runs.get(session)
    if run is not None:
        run.answer(text or "")
    return gr.update(value=""), gr.update(visible=False)


def wire(panel: ProgramsPanel, services: Services, page: PageHandles) -> None:
    def run_program(source: str, model: str, seed: str | None, time_limit: float | None, files: list[str] | None,
                    name: str, markdown: bool, request: gr.Request) -> Iterator[tuple[Any, ...]]:
        session = request.session_hash or "default"
        try:
            run = start_run(services, session, source, model, seed, time_limit, files, name,
                            api_address(services, request))
        except ChainStudioError as exc:
            yield (f"**Not started:** {exc}", gr.update(), gr.update(), gr.update(visible=False), gr.update(),
                   gr.update(interactive=True), gr.update(interactive=False), gr.update(), gr.update())
            return
        transcript = ProgramTranscript()
        events: list[dict[str, Any]] = []
        last = 0.0
        asked_before: str | None = None
        for event in run.events():
            transcript.add(event)
            events.append(event)
            asking_changed = transcript.asking != asked_before
            if not asking_changed and event["type"] != "exit" and time.monotonic() - last < REFRESH_SECONDS:
                continue
            asked_before = transcript.asking
            last = time.monotonic()
            yield _running_update(transcript, events, markdown, running=event["type"] != "exit")
        with _runs_lock:
            if _runs.get(session) is run:
                del _runs[session]
        yield _running_update(transcript, events, markdown, running=False)

    run_outputs = [panel.status, panel.view, panel.output, panel.ask_row, panel.ask_label, panel.run, panel.stop,
                   panel.events, panel.answer]
    started = panel.run.click(
        lambda: (gr.update(interactive=False), gr.update(interactive=True), "▶ starting…"), None,
        [panel.run, panel.stop, panel.status], queue=False, show_progress="hidden",
    ).then(run_program, [panel.editor, panel.model, panel.seed, panel.time_limit, panel.files, panel.name,
                         panel.markdown], run_outputs, show_progress="hidden", concurrency_limit=None,
           concurrency_id="programs")
    started.then(lambda: _runs_update(services), None, [panel.runs, panel.compare_with], queue=False)

    def stop(request: gr.Request) -> Any:
        stop_run(request.session_hash or "default")
        return gr.update(interactive=False)

    panel.stop.click(stop, None, panel.stop, queue=False, show_progress="hidden")

    def answer(text: str, request: gr.Request) -> tuple[Any, Any]:
        return send_answer(request.session_hash or "default", text)

    for trigger in (panel.send.click, panel.answer.submit):
        trigger(answer, panel.answer, [panel.answer, panel.ask_row], queue=False, show_progress="hidden")

    def redraw(events: list[dict[str, Any]], markdown: bool) -> str:
        return program_html(ProgramTranscript.of(events), markdown)

    panel.markdown.change(redraw, [panel.events, panel.markdown], panel.view, queue=False, show_progress="hidden")

    def load_example(choice: str) -> tuple[Any, Any, Any]:
        if not choice:
            return gr.update(), gr.update(), gr.update()
        file_name = library.EXAMPLES[choice]
        shipped = [library.example_file_path(f) for f in library.EXAMPLE_FILES.get(file_name, ())]
        return library.example_source(file_name), Path(file_name).stem, shipped or None

    panel.example.change(load_example, panel.example, [panel.editor, panel.name, panel.files], queue=False)

    def save(name: str, source: str) -> tuple[str, Any, Any]:
        try:
            added = library.save_program(services.journal, name, source)
        except ChainStudioError as exc:
            return f"**Not saved:** {exc}", gr.update(), gr.update()
        cleaned = name.strip()
        return ("Saved a new version of **%s**." % cleaned if added else "No change since the last saved version.",
                gr.update(choices=library.saved_programs(services.journal), value=cleaned),
                _versions_update(services, cleaned))

    panel.save.click(save, [panel.name, panel.editor], [panel.note, panel.saved, panel.versions], queue=False)

    def open_saved(name: str) -> tuple[Any, Any, Any]:
        if not name:
            return gr.update(), gr.update(), gr.update()
        versions = library.program_versions(services.journal, name)
        return name, versions[0][1] if versions else gr.update(), _versions_update(services, name)

    panel.saved.input(open_saved, panel.saved, [panel.name, panel.editor, panel.versions], queue=False)

    def open_version(name: str, chosen: int | None) -> Any:
        versions = library.program_versions(services.journal, name or "")
        if chosen is None or not 0 <= int(chosen) < len(versions):
            return gr.update()
        return versions[int(chosen)][1]

    panel.versions.input(open_version, [panel.name, panel.versions], panel.editor, queue=False)

    def reopen(run_id: int | None, markdown: bool) -> tuple[Any, ...]:
        found = services.journal.program_run(int(run_id)) if run_id is not None else None
        if found is None:
            return "Choose a run to reopen.", gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        run, events = found
        transcript = ProgramTranscript.of(events)
        return (status_markdown(transcript, running=False) + f"\n\n_Reopened run #{run['id']} from the journal._",
                program_html(transcript, markdown), transcript.output, events, run["source"], run["name"] or "")

    panel.reopen.click(reopen, [panel.runs, panel.markdown],
                       [panel.status, panel.view, panel.output, panel.events, panel.editor, panel.name], queue=False)

    def side_by_side(first: int | None, second: int | None, markdown: bool) -> str:
        columns = []
        for run_id in (first, second):
            found = services.journal.program_run(int(run_id)) if run_id is not None else None
            if found is None:
                return "<p>Choose a run in <b>Journaled runs</b> and another in <b>Compare with</b>.</p>"
            run, events = found
            transcript = ProgramTranscript.of(events)
            columns.append(f'<div class="cs-compare-column"><h4>Run #{run["id"]} · '
                           f'{html.escape(run["title"] or run["name"] or "untitled")}</h4>'
                           f"{program_html(transcript, markdown)}</div>")
        return '<div class="cs-compare" style="display:flex;gap:1em">' + "".join(
            f'<div style="flex:1;min-width:0">{c}</div>' for c in columns) + "</div>"

    panel.compare.click(side_by_side, [panel.runs, panel.compare_with, panel.markdown], panel.side_by_side,
                        queue=False)

    def export(name: str, source: str, run_id: int | None) -> tuple[Any, str]:
        cleaned = (name or "").strip()
        run_ids = [r["id"] for r in services.journal.program_runs(limit=1000, name=cleaned)] if cleaned else []
        if run_id is not None and int(run_id) not in run_ids:
            run_ids.append(int(run_id))
        shared = library.export_program(services.journal, cleaned, source, run_ids)
        folder = Path(tempfile.mkdtemp(prefix="chain-studio-export-"))
        path = folder / f"{(cleaned or 'program').replace('/', '_')}.program.json"
        path.write_text(json.dumps(shared, ensure_ascii=False, indent=1), encoding="utf-8")
        return (gr.update(value=str(path), visible=True),
                f"Exported **{cleaned or 'the program'}** with {len(shared['runs'])} run(s).")

    panel.export.click(export, [panel.name, panel.editor, panel.runs], [panel.export_file, panel.note], queue=False)

    def import_program(upload: Any) -> tuple[Any, ...]:
        path = getattr(upload, "name", upload)
        try:
            name, versions, runs = library.import_program(services.journal, Path(path).read_bytes())
        except (ChainStudioError, OSError) as exc:
            return (f"**Not imported:** {exc}",) + (gr.update(),) * 5
        newest = library.program_versions(services.journal, name)
        runs_update, compare_update = _runs_update(services)
        return (f"Imported **{name}**: {versions} new version(s), {runs} run(s).", name,
                newest[0][1] if newest else gr.update(),
                gr.update(choices=library.saved_programs(services.journal), value=name), runs_update, compare_update)

    panel.import_file.upload(import_program, panel.import_file,
                             [panel.note, panel.name, panel.editor, panel.saved, panel.runs, panel.compare_with],
                             queue=False)

    def fill() -> tuple[Any, ...]:
        runs_update, compare_update = _runs_update(services)
        models = [AUTO_MODEL, *(path.name for path in services.model_files())]
        return (gr.update(choices=library.saved_programs(services.journal)), runs_update, compare_update,
                gr.update(choices=models))

    page.blocks.load(fill, None, [panel.saved, panel.runs, panel.compare_with, panel.model], queue=False,
                     show_progress="hidden")
    services.on_session_close(stop_run)


def _versions_update(services: Services, name: str) -> Any:
    versions = library.program_versions(services.journal, name)
    return gr.update(choices=[(f"{at[:19]} ({len(text)} characters)", n) for n, (at, text) in enumerate(versions)],
                     value=0 if versions else None)


def _runs_update(services: Services) -> tuple[Any, Any]:
    choices = run_choices(services)
    newest = choices[0][1] if choices else None
    return (gr.update(choices=choices, value=newest),
            gr.update(choices=choices, value=choices[1][1] if len(choices) > 1 else None))


def _running_update(transcript: ProgramTranscript, events: list[dict[str, Any]], markdown: bool,
                    running: bool) -> tuple[Any, ...]:
    asking = transcript.asking if running else None
    return (
        status_markdown(transcript, running),
        program_html(transcript, markdown),
        transcript.output,
        gr.update(visible=asking is not None),
        f"**{asking}**" if asking is not None else "",
        gr.update(interactive=not running),
        gr.update(interactive=running),
        list(events),
        gr.update(),
    )
