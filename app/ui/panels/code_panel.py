"""The Code tab: turn code execution on, its options, an editor with the last answer's code, runs by
hand, saved .py files, JupyterLab, and "Close Python"."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from app import settings
from app.core.code_blocks import IDE_MARKER, answer_code
from app.core.code_exec import DEFAULT_TIMEOUT_SECONDS, CodeOptions, CodeResult
from app.core.errors import ChainStudioError
from app.core.events import ChainEvent, CodeFinished
from app.execution.sandbox import sandbox_status
from app.services import Services
from app.ui.page import PageHandles, Panel, RunData, session_of
from app.ui.render import code_markdown, escape_markdown

BANNER = ("⚠️ **Code execution is on:** the Python in each answer runs on this computer "
          "(in venvs/jupyter) when the answer ends. Turn it off in the Code tab.")
EMPTY_OUTPUT = "*Outputs of the code appear here.*"
_SAFE_NAME = re.compile(r"[^\w.-]+")
OPEN_URL_JS = "(url) => { if (url) { window.open(url, '_blank', 'noopener'); } return url; }"


@dataclass
class CodePanel(Panel):
    enabled: gr.Checkbox
    stop_condition: gr.Checkbox
    feed_output: gr.Checkbox
    hide_output: gr.Checkbox
    persistent: gr.Checkbox
    offline: gr.Checkbox
    sandbox_note: gr.Markdown
    timeout: gr.Number
    editor: gr.Code
    run: gr.Button
    output: gr.Markdown
    file_name: gr.Textbox
    save: gr.Button
    saved: gr.Dropdown
    run_saved: gr.Button
    open_lab: gr.Button
    lab_link: gr.Markdown
    lab_url: gr.Textbox
    close: gr.Button
    status: gr.Markdown

    def options_components(self) -> list[Any]:
        return [self.enabled, self.stop_condition, self.feed_output, self.hide_output, self.persistent,
                self.timeout, self.editor, self.offline]

    def run_inputs(self) -> list[Any]:
        return self.options_components()

    def run_outputs(self) -> list[Any]:
        return [self.output]

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        return {"code": code_options(*[data[c] for c in self.options_components()])}

    def run_view(self, data: RunData, services: Services) -> CodeRunView | None:
        return CodeRunView(self) if data[self.enabled] else None


class CodeRunView:
    """The tab's output area shows the latest code run of a chain in full (even when the transcript
    hides it)."""

    def __init__(self, panel: CodePanel) -> None:
        self.panel = panel
        self.latest: str | None = None

    def on_event(self, event: ChainEvent) -> None:
        if isinstance(event, CodeFinished):
            self.latest = code_markdown(event.result)

    def values(self, complete: bool) -> dict[Any, Any]:
        latest, self.latest = self.latest, None
        return {self.panel.output: latest} if latest is not None else {}


class _ManualRuns:
    """Runs started with Run / Run saved file, per tab: a second one while the first runs is
    refused with a message instead of being dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}

    def begin(self, session: str) -> float | None:
        """None when the tab may run; else the seconds its current run has taken so far."""
        with self._lock:
            started = self._since.get(session)
            if started is not None:
                return time.monotonic() - started
            self._since[session] = time.monotonic()
            return None

    def end(self, session: str) -> None:
        with self._lock:
            self._since.pop(session, None)


MANUAL_RUNS = _ManualRuns()


def saved_files() -> list[str]:
    """The saved .py files, newest first."""
    files = sorted(settings.saved_code_dir().glob("*.py"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.name for p in files]


def build(services: Services | None = None) -> CodePanel:
    """Lay out the Code tab (wired by `wire`)."""
    enabled = gr.Checkbox(label="Run the code the models write (after each answer, on this computer)", value=False,
                          elem_id="option-run-code")
    with gr.Row():
        stop_condition = gr.Checkbox(label="Stop when the code prints a result", value=False,
                                     elem_id="option-stop-condition")
        feed_output = gr.Checkbox(label="Feed back only the interpreter output", value=False,
                                  info="Off: the answer, then \"Python Interpreter Output:\" and what its code "
                                       "printed (tracebacks too)", elem_id="option-feed-output")
    with gr.Row():
        hide_output = gr.Checkbox(label="Hide output in the transcript", value=False, elem_id="option-hide-output")
        persistent = gr.Checkbox(label="Keep variables between runs", value=False, elem_id="option-persistent")
        timeout = gr.Number(label="Time limit (s)", value=DEFAULT_TIMEOUT_SECONDS, minimum=1, elem_id="code-timeout")
    sandbox = sandbox_status()
    offline = gr.Checkbox(label="Offline code (no network for the code)", value=False, elem_id="option-offline-code",
                          interactive=sandbox.available,
                          info=None if sandbox.available else "needs the sandbox (bubblewrap)")
    sandbox_note = gr.Markdown(("🔒 " if sandbox.available else "⚠️ ") + sandbox.message, elem_id="sandbox-status")
    editor = gr.Code(label="Code: the last answer's, editable. Paste your own with a #IDE line and it replaces "
                           "each answer's code in automatic runs.", language="python", interactive=True,
                     lines=10, elem_id="code-editor")
    with gr.Row():
        run = gr.Button("Run", variant="primary", elem_id="run-code")
        close = gr.Button("Close Python", variant="stop", elem_id="close-python")
        open_lab = gr.Button("Open JupyterLab", elem_id="open-jupyterlab")
    status = gr.Markdown("", elem_id="code-status")
    output = gr.Markdown(EMPTY_OUTPUT, elem_id="code-output")
    with gr.Row():
        file_name = gr.Textbox(label="Save as", placeholder="analysis.py", lines=1, elem_id="code-file-name", scale=3)
        save = gr.Button("Save .py", size="sm", elem_id="save-code", scale=1)
    with gr.Row():
        saved = gr.Dropdown(choices=saved_files(), value=None, label="Saved files", elem_id="saved-code", scale=3)
        run_saved = gr.Button("Run saved file", size="sm", elem_id="run-saved", scale=1)
    lab_link = gr.Markdown("", elem_id="jupyterlab-link")
    lab_url = gr.Textbox(visible=False, elem_id="jupyterlab-url")
    return CodePanel(enabled, stop_condition, feed_output, hide_output, persistent, offline, sandbox_note, timeout,
                     editor, run, output,
                     file_name, save, saved, run_saved, open_lab, lab_link, lab_url, close, status)


def code_options(enabled: bool, stop_condition: bool, feed_output: bool, hide_output: bool, persistent: bool,
                 timeout: float | None, editor: str | None, offline: bool = False) -> CodeOptions:
    """The chain's code options from the tab's values (the editor counts only with #IDE in it)."""
    pasted = editor or ""
    return CodeOptions(run_code=bool(enabled), stop_condition=bool(stop_condition), feed_output=bool(feed_output),
                       hide_output=bool(hide_output), persistent=bool(persistent),
                       timeout=float(timeout or DEFAULT_TIMEOUT_SECONDS),
                       pasted=pasted if IDE_MARKER in pasted else "", offline=bool(offline))


def safe_file_name(name: str) -> str:
    """A file name inside the saved-code folder: no folders, no leading dots, ending in .py."""
    base = Path((name or "").strip()).name
    if base.endswith(".py"):
        base = base[:-3]
    stem = _SAFE_NAME.sub("_", base).strip("._")
    if not stem:
        raise ChainStudioError("give the file a name, e.g. analysis.py")
    return f"{stem}.py"


def wire(panel: CodePanel, services: Services, page: PageHandles) -> None:
    """Connect the tab's controls."""
    last_answer, banner = page.last_answer, page.code_banner

    def show_result(result: CodeResult) -> str:
        apps = services.running_apps()
        lines = [code_markdown(result)]
        if apps:
            listed = ", ".join(f"[{a.url}]({a.url})" if a.url else f"process {a.pid}" for a in apps)
            lines.append(f"<sub>Apps running in the background: {listed} (Close Python stops them)</sub>")
        return "\n\n".join(lines)

    def run_code(code: str | None, timeout: float | None, persistent: bool, offline: bool,
                 source: str, session: str) -> Iterator[tuple]:
        if not (code or "").strip():
            yield gr.update(), "⚠️ There is no code to run: write or paste some, or let a model answer with ```python."
            return
        busy_for = MANUAL_RUNS.begin(session)
        if busy_for is not None:
            gr.Warning("Code is still running")
            yield gr.update(), (f"⚠️ Busy: the code started {busy_for:.0f} s ago is still running. Wait for it, "
                                "or press Close Python to stop it.")
            return
        try:
            yield gr.update(), "▶ Running…"
            try:
                result = services.code().run(code or "", float(timeout or DEFAULT_TIMEOUT_SECONDS),
                                             bool(persistent), offline=bool(offline))
            except ChainStudioError as exc:
                gr.Warning(str(exc))
                yield gr.update(), f"⚠️ {escape_markdown(str(exc))}"
                return
        finally:
            MANUAL_RUNS.end(session)
        services.journal.record_code_run(None, None, source, result)
        yield show_result(result), f"Code: {result.status} in {result.seconds:.2f} s"

    def run_editor(code: str | None, timeout: float | None, persistent: bool, offline: bool,
                   request: gr.Request) -> Iterator[tuple]:
        yield from run_code(code, timeout, persistent, offline, "manual", session_of(request))

    def run_file(name: str | None, timeout: float | None, persistent: bool, offline: bool,
                 request: gr.Request) -> Iterator[tuple]:
        if not name:
            yield gr.update(), "⚠️ Choose a saved file first."
            return
        path = settings.saved_code_dir() / safe_file_name(name)
        if not path.is_file():
            yield gr.update(), f"⚠️ {path.name} is no longer in {path.parent}."
            return
        yield from run_code(path.read_text(encoding="utf-8", errors="replace"), timeout, persistent, offline,
                            f"file {path.name}", session_of(request))

    def save_code(code: str | None, name: str | None) -> tuple[Any, str]:
        try:
            file_name = safe_file_name(name or "")
        except ChainStudioError as exc:
            return gr.update(), f"⚠️ {exc}"
        if not (code or "").strip():
            return gr.update(), "⚠️ The editor is empty: nothing to save."
        path = settings.saved_code_dir() / file_name
        path.write_text(code or "", encoding="utf-8")
        return gr.update(choices=saved_files(), value=file_name), f"Saved {path}."

    def follow_answer(answer: str | None, current: str | None) -> Any:
        if IDE_MARKER in (current or ""):
            return gr.update()  # the person's own #IDE code stays until they change it
        code = answer_code(answer or "")
        return code if code else gr.update()

    def toggled(on: bool, persistent: bool, offline: bool) -> Any:
        if on:
            try:
                services.code().prepare(bool(persistent), bool(offline))  # the first answer's code finds a warm kernel
            except ChainStudioError as exc:
                gr.Warning(str(exc))
        return gr.update(visible=bool(on))

    def open_lab() -> tuple[str, str]:
        try:
            url = services.lab().start()
        except ChainStudioError as exc:
            gr.Warning(str(exc))
            return f"⚠️ {exc}", ""
        return f"JupyterLab runs at [{url}]({url}) (only this computer can reach it).", url

    def close_python() -> tuple[str, str]:
        stopped = services.close_python()
        return (f"Closed Python: {stopped} kernel{'s' if stopped != 1 else ''}, apps or JupyterLab stopped. "
                "The next run starts a fresh kernel."), ""

    panel.enabled.change(toggled, [panel.enabled, panel.persistent, panel.offline], banner)
    # trigger_mode "multiple": a click while code runs reaches the handler, which says it is busy.
    panel.run.click(run_editor, [panel.editor, panel.timeout, panel.persistent, panel.offline],
                    [panel.output, panel.status], concurrency_limit=None, trigger_mode="multiple")
    panel.run_saved.click(run_file, [panel.saved, panel.timeout, panel.persistent, panel.offline],
                          [panel.output, panel.status], concurrency_limit=None, trigger_mode="multiple")
    panel.save.click(save_code, [panel.editor, panel.file_name], [panel.saved, panel.status])
    panel.saved.focus(lambda current: gr.update(choices=saved_files(), value=current), panel.saved, panel.saved)
    last_answer.change(follow_answer, [last_answer, panel.editor], panel.editor)
    panel.open_lab.click(open_lab, None, [panel.lab_link, panel.lab_url]).then(
        None, panel.lab_url, None, js=OPEN_URL_JS)
    panel.close.click(close_python, None, [panel.status, panel.lab_link], queue=False)
