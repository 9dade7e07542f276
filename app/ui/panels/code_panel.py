"""The Code tab: turn code execution on, its options, an editor with the last answer's code, runs by
hand, saved .py files, JupyterLab, "Close Python", installing a missing package into venvs/jupyter
(offered when code ends with ModuleNotFoundError) and opening a DataFrame in D-Tale.

It also gives the page its code frames (`frames_js`): printed HTML and script-bearing outputs
(Plotly figures) come in the transcript as placeholders (render.code_frame), which the page's
sanitizer keeps; the script lays a sandboxed iframe over each one. The frames live beside the
rendered Markdown, not inside it, so the transcript's many updates while a later answer streams
do not reload them."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import gradio as gr

from app import settings
from app.core.code_blocks import IDE_MARKER, answer_code
from app.core.code_exec import DEFAULT_TIMEOUT_SECONDS, CodeOptions, CodeResult
from app.core.errors import ChainStudioError
from app.core.events import ChainEvent, CodeFinished
from app.execution.packages import check_package_name, install_package, missing_module, not_from_pip, package_for
from app.execution.printed import PLOTLY_SRC, plotly_js_path
from app.execution.sandbox import sandbox_status
from app.installer import VENVS
from app.services import Services
from app.ui.page import PageHandles, Panel, RunData, session_of
from app.ui.render import code_markdown, escape_markdown, fenced

BANNER = ("⚠️ **Code execution is on:** the Python in each answer runs on this computer "
          "(in venvs/jupyter) when the answer ends. Turn it off in the Code tab.")
EMPTY_OUTPUT = "*Outputs of the code appear here.*"
_SAFE_NAME = re.compile(r"[^\w.-]+")
OPEN_URL_JS = "(url) => { if (url) { window.open(url, '_blank', 'noopener'); } return url; }"
INSTALL_LOG_CHARS = 20_000  # the end of pip's output shown under the button (the journal keeps it all)
FRAME_MIN_HEIGHT = 40
FRAME_MAX_HEIGHT = 720  # a taller document scrolls inside its frame

# Runs once per page (see the module docstring). Each placeholder `.code-frame` carries its document
# base64-encoded in a hidden span; its frame is an absolutely placed iframe in the same Gradio block,
# matched to the placeholder by that text each time the Markdown is rendered again. The document
# reports its height by postMessage (only a frame of ours is listened to, and the height is
# clamped); Plotly's library is fetched once from the studio and put inline.
FRAMES_JS = r"""
() => {
  if (window.chainStudioFrames) return;
  const PLOTLY_SRC = __PLOTLY_SRC__, PLOTLY_URL = __PLOTLY_URL__;
  const MIN_HEIGHT = __MIN__, MAX_HEIGHT = __MAX__;
  let records = [], counter = 0, plotly = null, scheduled = false;
  const plotlyText = () => {
    if (!plotly) {
      plotly = PLOTLY_URL ? fetch(PLOTLY_URL).then((r) => (r.ok ? r.text() : '')).catch(() => '')
                          : Promise.resolve('');
    }
    return plotly;
  };
  const decode = (payload) => new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0)));
  // The document's height: the lowest bottom of its elements (floats and overflow included; the
  // viewport's own height is not, so a frame can shrink to a short table), the first 5,000 only.
  const sizer = (id) => '<script>(function(){var last=0;function send(){var b=document.body,h=0;'
    + 'if(b){var all=b.getElementsByTagName("*"),n=Math.min(all.length,5000);'
    + 'for(var i=0;i<n;i++){var r=all[i].getBoundingClientRect();'
    + 'if(r.height>0){h=Math.max(h,r.bottom+window.scrollY);}}'
    + 'if(all.length>5000){h=Math.max(h,b.scrollHeight);}'
    + 'h+=parseFloat(getComputedStyle(b).marginBottom)||0;}'
    + 'if(!h){h=document.documentElement.scrollHeight;}'
    + 'if(document.documentElement.scrollWidth>document.documentElement.clientWidth){h+=18;}'
    + 'h=Math.ceil(h);if(h!==last){last=h;parent.postMessage({chainStudioFrame:"' + id + '",height:h},"*");}}'
    + 'addEventListener("load",send);if(window.ResizeObserver){new ResizeObserver(send).observe(document.documentElement);}'
    + 'setTimeout(send,30);setTimeout(send,500);})();</script>';
  const withPlotly = (doc, js) => {
    const tag = new RegExp('<script[^>]*src="' + PLOTLY_SRC.replace(/[.]/g, '[.]') + '"[^>]*>\\s*</script>');
    return js ? doc.replace(tag, () => '<script>' + js + '</script>') : doc;
  };
  const resizes = new ResizeObserver(() => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; place(); });
  });
  const watched = new WeakSet();
  const watch = (element) => { if (element && !watched.has(element)) { watched.add(element); resizes.observe(element); } };
  const create = (block, key, holder) => {
    const frame = document.createElement('iframe');
    const id = 'code-frame-' + (++counter);
    frame.className = 'code-frame-view';
    frame.setAttribute('sandbox', 'allow-scripts');
    frame.setAttribute('referrerpolicy', 'no-referrer');
    frame.title = holder.title || 'output of the code';
    frame.style.cssText = 'position:absolute;display:none;margin:0;border:1px solid #8886;border-radius:6px;'
      + 'background:#fff;color-scheme:light;';
    if (getComputedStyle(block).position === 'static') block.style.position = 'relative';
    block.appendChild(frame);
    const record = { id, key, frame, block, holder, height: parseInt(holder.style.height, 10) || 120 };
    const doc = decode(key);
    const show = (text) => { frame.srcdoc = text + sizer(id); };
    if (doc.includes(PLOTLY_SRC)) plotlyText().then((js) => show(withPlotly(doc, js))); else show(doc);
    return record;
  };
  const place = () => {
    for (const r of records) r.holder.style.height = r.height + 'px';
    for (const r of records) {
      const block = r.block, holder = r.holder;
      if (!holder.isConnected || holder.offsetParent === null) { r.frame.style.display = 'none'; continue; }
      const outer = block.getBoundingClientRect(), inner = holder.getBoundingClientRect();
      const style = r.frame.style;
      style.display = 'block';
      style.top = (inner.top - outer.top + block.scrollTop - block.clientTop) + 'px';
      style.left = (inner.left - outer.left + block.scrollLeft - block.clientLeft) + 'px';
      style.width = inner.width + 'px';
      style.height = r.height + 'px';
    }
  };
  const update = () => {
    const holders = document.querySelectorAll('.code-frame');
    if (!holders.length && !records.length) return;
    const kept = [];
    for (const holder of holders) {
      const span = holder.querySelector('span[hidden]');
      if (!span) continue;
      const key = span.textContent.trim();
      const block = holder.closest('.block') || holder.parentElement;
      let record = records.find((r) => !kept.includes(r) && r.block === block && r.key === key);
      if (!record) record = create(block, key, holder);
      record.holder = holder;
      kept.push(record);
      watch(block);
      watch(holder.parentElement);
    }
    for (const r of records) if (!kept.includes(r)) r.frame.remove();
    records = kept;
    place();
  };
  window.addEventListener('message', (event) => {
    const data = event.data;
    if (!data || typeof data.chainStudioFrame !== 'string') return;
    const record = records.find((r) => r.id === data.chainStudioFrame && r.frame.contentWindow === event.source);
    if (!record) return;
    const height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(Number(data.height) || 0)));
    if (height !== record.height) { record.height = height; place(); }
  });
  const mutations = new MutationObserver(() => { update(); mutations.takeRecords(); });
  mutations.observe(document.body, { childList: true, subtree: true, characterData: true });
  window.chainStudioFrames = { update, records: () => records };
  update();
}
"""


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
    install: gr.Button  # "Install NAME into venvs/jupyter", shown after a ModuleNotFoundError
    install_package: gr.Textbox  # hidden: the package that button installs
    install_log: gr.Markdown
    dtale_name: gr.Textbox
    open_dtale: gr.Button
    dtale_link: gr.Markdown
    dtale_url: gr.Textbox  # hidden: the D-Tale page to open in a new browser tab

    def options_components(self) -> list[Any]:
        return [self.enabled, self.stop_condition, self.feed_output, self.hide_output, self.persistent,
                self.timeout, self.editor, self.offline]

    def run_inputs(self) -> list[Any]:
        return self.options_components()

    def run_outputs(self) -> list[Any]:
        return [self.output, self.install, self.install_package]

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
        self.offer: tuple[Any, str] | None = None

    def on_event(self, event: ChainEvent) -> None:
        if isinstance(event, CodeFinished):
            self.latest = code_markdown(event.result)
            self.offer = install_offer(event.result)

    def values(self, complete: bool) -> dict[Any, Any]:
        latest, self.latest = self.latest, None
        offer, self.offer = self.offer, None
        shown: dict[Any, Any] = {self.panel.output: latest} if latest is not None else {}
        if offer is not None:
            shown[self.panel.install], shown[self.panel.install_package] = offer
        return shown


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


_INSTALLING = threading.Lock()  # one pip at a time: two would fight over venvs/jupyter


def install_label(package: str) -> str:
    """The missing-package button's text."""
    return f"Install {package} into venvs/jupyter"


def install_offer(result: CodeResult) -> tuple[Any, str]:
    """The install button (shown, naming the package, or hidden) and the package it installs,
    for the latest code run: offered only when it ended with a ModuleNotFoundError pip can fix."""
    module = missing_module(result)
    if module is None or not_from_pip(module):
        return gr.update(visible=False), ""
    package = package_for(module)
    return gr.update(visible=True, value=install_label(package), interactive=True), package


def install_log_markdown(package: str, result: CodeResult | None, output: str) -> str:
    """pip's output under the button: what ran, how it ended, the end of what it printed."""
    shown = output[-INSTALL_LOG_CHARS:]
    if result is None:
        head = f"▶ Installing **{escape_markdown(package)}** into venvs/jupyter…"
    elif result.status == "ok":
        head = (f"✅ Installed **{escape_markdown(package)}** into venvs/jupyter in {result.seconds:.1f} s: run the "
                "code again.")
    else:
        head = (f"⚠️ pip could not install **{escape_markdown(package)}** ({escape_markdown(result.message)}): "
                "see its output below.")
    return f"{head}\n\n{fenced(shown.rstrip())}" if shown.strip() else head


def plotly_url() -> str:
    """Where the page fetches plotly.js for Plotly figures: venvs/jupyter's own copy, served by the
    studio (registered as a Gradio static file: that one file, nothing else of the environment);
    empty when plotly is not installed there."""
    path = plotly_js_path(VENVS / "jupyter")
    if path is None:
        return ""
    gr.set_static_paths([path])
    return "/gradio_api/file=" + quote(str(path))


def frames_js() -> str:
    """The page's code-frames script, with the studio's plotly.js address in it."""
    values = {"__PLOTLY_SRC__": json.dumps(PLOTLY_SRC), "__PLOTLY_URL__": json.dumps(plotly_url()),
              "__MIN__": str(FRAME_MIN_HEIGHT), "__MAX__": str(FRAME_MAX_HEIGHT)}
    script = FRAMES_JS
    for name, value in values.items():
        script = script.replace(name, value)
    return script


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
    install = gr.Button(install_label("a package"), visible=False, variant="secondary", elem_id="install-package")
    install_package = gr.Textbox(visible=False, elem_id="missing-package")
    install_log = gr.Markdown("", elem_id="install-output")
    with gr.Row():
        file_name = gr.Textbox(label="Save as", placeholder="analysis.py", lines=1, elem_id="code-file-name", scale=3)
        save = gr.Button("Save .py", size="sm", elem_id="save-code", scale=1)
    with gr.Row():
        saved = gr.Dropdown(choices=saved_files(), value=None, label="Saved files", elem_id="saved-code", scale=3)
        run_saved = gr.Button("Run saved file", size="sm", elem_id="run-saved", scale=1)
    lab_link = gr.Markdown("", elem_id="jupyterlab-link")
    lab_url = gr.Textbox(visible=False, elem_id="jupyterlab-url")
    with gr.Row():
        dtale_name = gr.Textbox(label="DataFrame (blank: the newest one)", placeholder="df", lines=1,
                                elem_id="dtale-name", scale=3,
                                info="needs \"Keep variables between runs\": D-Tale shows a variable of that kernel")
        open_dtale = gr.Button("Open a DataFrame in D-Tale", size="sm", elem_id="open-dtale", scale=1)
    dtale_link = gr.Markdown("", elem_id="dtale-link")
    dtale_url = gr.Textbox(visible=False, elem_id="dtale-url")
    return CodePanel(enabled, stop_condition, feed_output, hide_output, persistent, offline, sandbox_note, timeout,
                     editor, run, output,
                     file_name, save, saved, run_saved, open_lab, lab_link, lab_url, close, status,
                     install, install_package, install_log, dtale_name, open_dtale, dtale_link, dtale_url)


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


def install_missing(services: Services, package: str | None,
                    install: Callable[..., CodeResult] = install_package) -> Iterator[tuple[Any, str]]:
    """The install button's handler: pip for `package` into venvs/jupyter, its output streamed as
    (button, log) values, the run kept in the journal. The button hides once the package is in."""
    try:
        package = check_package_name((package or "").strip())
    except ValueError:
        yield gr.update(visible=False), "⚠️ There is no missing package to install."
        return
    if not _INSTALLING.acquire(blocking=False):
        yield gr.update(), "⚠️ pip is already installing a package: wait for it to finish."
        return
    try:
        output: list[str] = [""]
        done: list[CodeResult] = []

        def work() -> None:
            try:
                done.append(install(package, on_output=lambda text: output.__setitem__(0, text)))
            except Exception as exc:  # reported below like a failed pip
                done.append(CodeResult(code=f"pip install {package}", status="error", stderr=f"{exc}\n",
                                       message=str(exc)))

        worker = threading.Thread(target=work, name="pip install", daemon=True)
        worker.start()
        yield gr.update(interactive=False), install_log_markdown(package, None, "")
        shown = ""
        while worker.is_alive():
            worker.join(0.5)
            if output[0] != shown:
                shown = output[0]
                yield gr.update(interactive=False), install_log_markdown(package, None, shown)
        result = done[0]
        services.journal.record_code_run(None, None, f"pip install {package}", result)
        log = install_log_markdown(package, result, result.stdout + result.stderr)
        if result.status == "ok":
            yield gr.update(visible=False, interactive=True), log
        else:
            yield gr.update(visible=True, interactive=True), log
    finally:
        _INSTALLING.release()


def open_dtale(services: Services, name: str | None) -> tuple[str, str]:
    """"Open a DataFrame in D-Tale": (the link, or what to do instead; the URL the page opens)."""
    from app.execution.dtale_view import open_in_dtale  # starts kernels: imported when first used

    try:
        view = open_in_dtale(services.code(), name,
                             record=lambda result: services.journal.record_code_run(None, None, "D-Tale", result))
    except ChainStudioError as exc:
        gr.Warning(str(exc))
        return f"⚠️ {escape_markdown(str(exc))}", ""
    return (f"D-Tale shows **{escape_markdown(view.name)}** ({view.rows:,} rows × {view.columns:,} columns) at "
            f"[{view.url}]({view.url}) (only this computer can reach it; Close Python stops it)."), view.url


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
        # yields (output, status, install button, its package)
        same = (gr.update(), gr.update())
        if not (code or "").strip():
            yield gr.update(), "⚠️ There is no code to run: write or paste some, or let a model answer with ```python.", \
                *same
            return
        busy_for = MANUAL_RUNS.begin(session)
        if busy_for is not None:
            gr.Warning("Code is still running")
            yield gr.update(), (f"⚠️ Busy: the code started {busy_for:.0f} s ago is still running. Wait for it, "
                                "or press Close Python to stop it."), *same
            return
        try:
            yield gr.update(), "▶ Running…", *same
            try:
                result = services.code().run(code or "", float(timeout or DEFAULT_TIMEOUT_SECONDS),
                                             bool(persistent), offline=bool(offline))
            except ChainStudioError as exc:
                gr.Warning(str(exc))
                yield gr.update(), f"⚠️ {escape_markdown(str(exc))}", *same
                return
        finally:
            MANUAL_RUNS.end(session)
        services.journal.record_code_run(None, None, source, result)
        yield show_result(result), f"Code: {result.status} in {result.seconds:.2f} s", *install_offer(result)

    def run_editor(code: str | None, timeout: float | None, persistent: bool, offline: bool,
                   request: gr.Request) -> Iterator[tuple]:
        yield from run_code(code, timeout, persistent, offline, "manual", session_of(request))

    def run_file(name: str | None, timeout: float | None, persistent: bool, offline: bool,
                 request: gr.Request) -> Iterator[tuple]:
        if not name:
            yield gr.update(), "⚠️ Choose a saved file first.", gr.update(), gr.update()
            return
        path = settings.saved_code_dir() / safe_file_name(name)
        if not path.is_file():
            yield gr.update(), f"⚠️ {path.name} is no longer in {path.parent}.", gr.update(), gr.update()
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
    run_outputs = [panel.output, panel.status, panel.install, panel.install_package]
    panel.run.click(run_editor, [panel.editor, panel.timeout, panel.persistent, panel.offline],
                    run_outputs, concurrency_limit=None, trigger_mode="multiple")
    panel.run_saved.click(run_file, [panel.saved, panel.timeout, panel.persistent, panel.offline],
                          run_outputs, concurrency_limit=None, trigger_mode="multiple")
    panel.save.click(save_code, [panel.editor, panel.file_name], [panel.saved, panel.status])
    panel.saved.focus(lambda current: gr.update(choices=saved_files(), value=current), panel.saved, panel.saved)
    # A pure function: it must not wait in the one-at-a-time queue behind slower handlers (a CI run
    # saw the editor stay "pending" for two minutes after a run).
    last_answer.change(follow_answer, [last_answer, panel.editor], panel.editor, queue=False)
    panel.open_lab.click(open_lab, None, [panel.lab_link, panel.lab_url]).then(
        None, panel.lab_url, None, js=OPEN_URL_JS)
    panel.close.click(close_python, None, [panel.status, panel.lab_link], queue=False)
    # Opt-in, one click per package: pip's output streams under the button.
    def install(package: str | None) -> Iterator[tuple[Any, str]]:
        yield from install_missing(services, package)

    panel.install.click(install, panel.install_package, [panel.install, panel.install_log], concurrency_limit=None)
    panel.open_dtale.click(lambda name: open_dtale(services, name), panel.dtale_name,
                           [panel.dtale_link, panel.dtale_url], concurrency_limit=None).then(
        None, panel.dtale_url, None, js=OPEN_URL_JS)
    page.blocks.load(None, None, None, js=frames_js())
