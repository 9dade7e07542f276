"""Load PDFs and text files into the prompt fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from app.core.errors import ChainStudioError
from app.media.pdf import PdfPrompt, pdf_as_one_item, pdf_as_page_items
from app.media.text_files import read_text_file
from app.services import Services
from app.ui.page import PageHandles, Panel
from app.ui.render import escape_markdown

MAX_UPLOAD = "200mb"  # passed to launch(max_file_size=...): larger uploads are refused by the server


@dataclass
class FilesPanel(Panel):
    upload: gr.File
    pdf_pages: gr.Button
    pdf_whole: gr.Button
    text_targets: dict[str, gr.Button]


def build(services: Services | None = None) -> FilesPanel:
    upload = gr.File(label="PDF or text file", file_types=[".pdf", ".txt", ".md", ".csv"], elem_id="file-upload")
    with gr.Row():
        pdf_pages = gr.Button("PDF → one item per page", size="sm", elem_id="pdf-pages")
        pdf_whole = gr.Button("PDF → whole text as one item", size="sm", elem_id="pdf-whole")
    with gr.Row():
        text_targets = {
            "system": gr.Button("Text → System prompt", size="sm", elem_id="text-system"),
            "previous": gr.Button("Text → Previous response", size="sm", elem_id="text-previous"),
            "prompt": gr.Button("Text → User prompt", size="sm", elem_id="text-prompt"),
            "urls": gr.Button("Text → Model URLs", size="sm", elem_id="text-urls"),
        }
    return FilesPanel(upload, pdf_pages, pdf_whole, text_targets)


def _loader(read: Callable[..., str | PdfPrompt], what: str) -> Callable[..., tuple[Any, str]]:
    """A button's handler: `read(path)`, or `read(path, field)` when the handler is given the User
    prompt field too (the PDF buttons keep its pre-prompt and final prompt)."""

    def load(path: str | None, field: str | None = None) -> tuple[Any, str]:
        if not path:
            gr.Warning("Choose a file first.")
            return gr.update(), "⚠️ Choose a file first."
        try:
            loaded = read(path) if field is None else read(path, field)
        except ChainStudioError as exc:
            gr.Warning(str(exc))
            return gr.update(), f"⚠️ {escape_markdown(str(exc))}"
        if isinstance(loaded, PdfPrompt):
            if loaded.note:  # part of the document was left out: say how much was kept
                gr.Warning(loaded.note)
                return loaded.text, f"Loaded {what}. ⚠️ {loaded.note}"
            return loaded.text, f"Loaded {what}."
        return loaded, f"Loaded {what}."

    return load


def wire(panel: FilesPanel, services: Services, page: PageHandles) -> None:
    """Each button loads the chosen file into its field. The PDF buttons read the User prompt field
    first: its pre-prompt and final prompt stay before the pages (Samantha's when it has none)."""
    fields, status = page.prompt_fields(), page.status
    panel.pdf_pages.click(_loader(pdf_as_page_items, "the PDF, one item per page"),
                          [panel.upload, fields["prompt"]], [fields["prompt"], status])
    panel.pdf_whole.click(_loader(pdf_as_one_item, "the PDF as one item"), [panel.upload, fields["prompt"]],
                          [fields["prompt"], status])
    for name, button in panel.text_targets.items():
        button.click(_loader(read_text_file, f"the text into the {name} field"), panel.upload, [fields[name], status])
