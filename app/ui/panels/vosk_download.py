"""The Voice tab's "Download a Vosk model" row: a verified download of the small English or
Portuguese model (app/media/vosk_models.py), only when the button is pressed, with progress, and
a Cancel that deletes what was received. When it is done the model folder field points at it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr

from app import settings
from app.core.errors import ChainStudioError
from app.media.vosk_models import CATALOG, catalog_entry, download_model, installed

POLL_SECONDS = 0.5


@dataclass
class VoskDownloadRow:
    language: gr.Dropdown
    download: gr.Button
    cancel: gr.Button
    status: gr.Markdown


def choices() -> list[tuple[str, str]]:
    """The dropdown's entries: what each model is, its name and its download size."""
    return [(f"{entry.label}: {entry.name} ({entry.size_text})", code) for code, entry in CATALOG.items()]


def build() -> VoskDownloadRow:
    """Lay out the row (wired by `wire`)."""
    with gr.Row():
        language = gr.Dropdown(choices=choices(), value="en", label="Download a Vosk model", scale=3,
                               elem_id="vosk-download-language",
                               info="Only when you press Download; checked against its pinned size and sha256")
        download = gr.Button("Download", size="sm", scale=1, elem_id="vosk-download")
        cancel = gr.Button("Cancel download", size="sm", scale=1, elem_id="vosk-download-cancel")
    status = gr.Markdown("", elem_id="vosk-download-status")
    return VoskDownloadRow(language, download, cancel, status)


def download_steps(language: str, root: Path, *, base_url: str | None = None, poll: float = POLL_SECONDS,
                   stop: threading.Event | None = None) -> Iterator[tuple[str, str | None]]:
    """Run one download on a thread and yield (status text, folder) as it goes: the folder is None
    until the verified model is in place. Setting `stop` (Cancel) or closing the iterator (a closed
    tab) stops the download within one chunk and deletes what was received."""
    try:
        entry = catalog_entry(language)
    except ChainStudioError as exc:
        yield f"⚠️ {exc}", None
        return
    already = installed(entry, root)
    if already is not None:
        yield f"✅ {entry.name} is already here: {already}", str(already)
        return
    progress = {"received": 0}
    outcome: dict[str, Any] = {}
    stop = stop or threading.Event()

    def work() -> None:
        try:
            outcome["folder"] = download_model(entry, root, base_url=base_url, should_stop=stop.is_set,
                                               on_progress=lambda got, _total: progress.update(received=got))
        except ChainStudioError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 (a bug must become a message on the page, not a hung button)
            outcome["error"] = f"the download failed unexpectedly: {exc!r}"

    worker = threading.Thread(target=work, name=f"vosk-download-{entry.name}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(poll)
            got = progress["received"]
            yield (f"⬇️ Downloading {entry.name}: {got / 1_048_576:.1f} of {entry.size_text} "
                   f"({100 * got // entry.size}%)", None)
    finally:
        stop.set()  # the iterator was closed: the worker stops at its next chunk and cleans up
    if "error" in outcome:
        yield f"⚠️ {outcome['error']}", None
        return
    folder = outcome["folder"]
    yield f"✅ {entry.name} downloaded, its sha256 verified, and unpacked into {folder}", str(folder)


def wire(row: VoskDownloadRow, model_folder: gr.Textbox, listen_status: gr.Markdown,
         describe_folder: Callable[[str], str]) -> None:
    """Download on click (streaming progress into the row's status); on success the model folder
    field shows the new folder and the listening status says whether voice can start now."""

    running: dict[str, threading.Event] = {}  # per browser tab: what Cancel sets

    def run(language: str, request: gr.Request) -> Iterator[tuple[Any, Any, Any]]:
        stop = running[request.session_hash or ""] = threading.Event()
        try:
            for text, folder in download_steps(language, settings.vosk_models_dir(), stop=stop):
                if folder is None:
                    yield text, gr.update(), gr.update()
                else:
                    yield text, folder, describe_folder(folder)
        finally:
            running.pop(request.session_hash or "", None)

    def cancel(request: gr.Request) -> Any:
        stop = running.get(request.session_hash or "")
        if stop is None:
            return "No download is running."
        stop.set()
        return gr.update()  # the download's own status says it stopped and kept nothing

    row.download.click(run, row.language, [row.status, model_folder, listen_status], show_progress="hidden",
                       concurrency_limit=None)
    row.cancel.click(cancel, None, row.status, queue=False)
