"""Prompt libraries: click an entry to fill a field; save the user prompt to a library file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app import settings
from app.core.errors import ChainStudioError
from app.services import Services
from app.store.library import entry_label, library_entries, save_prompt
from app.ui.page import PageHandles, Panel
from app.ui.render import escape_markdown


@dataclass
class LibraryPanel(Panel):
    file: gr.Dropdown
    examples: gr.Dataset
    save_name: gr.Textbox
    save: gr.Button


def _choices() -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in settings.library_files()]


def _samples(path: str | None) -> list[list[str]]:
    if not path:
        return []
    try:
        return [[entry_label(e)] for e in library_entries(Path(path))]
    except ChainStudioError:
        return []


def build(services: Services | None = None) -> LibraryPanel:
    choices = _choices()
    first = choices[0][1] if choices else None
    file = gr.Dropdown(choices=choices, value=first, label="Prompt library", elem_id="library-file")
    examples = gr.Dataset(
        components=[gr.Textbox(visible=False)], samples=_samples(first), type="index",
        label="Click an entry to use it", elem_id="library-examples", samples_per_page=12,
    )
    with gr.Row():
        save_name = gr.Textbox(label="Save the user prompt as", placeholder="my_prompts", elem_id="save-name", scale=3)
        save = gr.Button("Save user prompt", size="sm", elem_id="save-prompt", scale=1)
    return LibraryPanel(file, examples, save_name, save)


def wire(panel: LibraryPanel, services: Services, page: PageHandles) -> None:
    """Clicking an entry fills the system prompt or the prompt list; Save appends the prompt list."""
    system, prompt, status = page.system, page.prompt, page.status
    def show_file(path: str | None) -> Any:
        return gr.Dataset(samples=_samples(path))

    def use_entry(path: str | None, index: int | None) -> tuple[Any, Any, str]:
        if not path or index is None:
            return gr.update(), gr.update(), ""
        entries = library_entries(Path(path))
        if not 0 <= index < len(entries):
            return gr.update(), gr.update(), ""
        text = entries[index].text
        # System prompt libraries fill the system prompt; every other library, the prompt list.
        if Path(path).name == "system_prompts.txt":
            return text, gr.update(), f"System prompt from {Path(path).name}, entry {index + 1}."
        return gr.update(), text, f"User prompt from {Path(path).name}, entry {index + 1}."

    def save_current(name: str, text: str, current: str | None) -> tuple[Any, str]:
        try:
            saved = save_prompt(settings.prompts_dir(), name, text or "")
        except ChainStudioError as exc:
            gr.Warning(str(exc))
            return gr.update(), f"⚠️ {escape_markdown(str(exc))}"
        return gr.update(choices=_choices(), value=str(saved)), f"Saved to {escape_markdown(str(saved))}"

    panel.file.change(show_file, panel.file, panel.examples)
    panel.examples.click(use_entry, [panel.file, panel.examples], [system, prompt, status])
    panel.save.click(save_current, [panel.save_name, prompt, panel.file], [panel.file, status])
