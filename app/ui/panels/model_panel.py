"""The model in memory: load time, memory in use, and its vocabulary (paged, searchable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.core.errors import ChainStudioError
from app.services import Services
from app.ui.learning_view import visible
from app.ui.page import PageHandles

PAGE_SIZE = 100


@dataclass
class ModelPanel:
    loaded: gr.Markdown
    show_loaded: gr.Button
    search: gr.Textbox
    page: gr.Number
    show_vocab: gr.Button
    vocabulary: gr.Dataframe


def loaded_markdown(services: Services) -> str:
    """The model in memory (the one that is running, whatever the list selects)."""
    info = services.backend.loaded
    if info is None:
        if getattr(services.backend, "loading", False):
            return "*Loading a model…*"
        return "*No model in memory. It is loaded at the next start.*"
    memory = f"{info.memory_bytes / 2**20:,.0f} MiB" if info.memory_bytes else "unknown"
    return (
        f"**In memory:** {info.path.rsplit('/', 1)[-1]} · loaded in {info.load_seconds:.2f} s · "
        f"memory in use {memory} · context {info.n_ctx:,} tokens (trained {info.n_ctx_train:,}) · "
        f"vocabulary {info.n_vocab:,} tokens"
    )


def unload_model(services: Services) -> str:
    """"Unload model": free the memory now (refused while a run generates)."""
    if services.backend.busy:
        return "The model is generating: stop the run first."
    services.backend.unload()
    return "Model unloaded: it loads again at the next start."


def vocabulary_page(vocabulary: list[str], search: str, page: int) -> tuple[list[list[Any]], int, int]:
    """One page of (id, token) rows, filtered by `search`; returns rows, page, page count."""
    rows = [(i, piece) for i, piece in enumerate(vocabulary) if not search or search in piece]
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * PAGE_SIZE
    return [[i, visible(p)] for i, p in rows[start : start + PAGE_SIZE]], page, pages


def build(services: Services) -> ModelPanel:
    loaded = gr.Markdown(loaded_markdown(services), elem_id="loaded-model")
    show_loaded = gr.Button("Update", size="sm", elem_id="loaded-refresh")
    with gr.Accordion("Vocabulary of the model in memory", open=False):
        with gr.Row():
            search = gr.Textbox(label="Search", elem_id="vocab-search", scale=3)
            page = gr.Number(label="Page", value=1, precision=0, minimum=1, elem_id="vocab-page", scale=1)
            show_vocab = gr.Button("Show", size="sm", elem_id="vocab-show", scale=1)
        vocabulary = gr.Dataframe(headers=["id", "token"], value=[], interactive=False, elem_id="vocab-table")
    return ModelPanel(loaded, show_loaded, search, page, show_vocab, vocabulary)


def wire(panel: ModelPanel, services: Services, page: PageHandles) -> None:
    """Connect the vocabulary browser; the in-memory line follows Unload and Stop all."""
    status = page.status
    def show(search: str, page: float) -> tuple[Any, Any, str]:
        if services.backend.loaded is None:
            return gr.update(), gr.update(), "⚠️ No model in memory: press Start once, then show its vocabulary."
        try:
            rows, shown_page, pages = vocabulary_page(services.backend.vocabulary(), search or "", int(page or 1))
        except ChainStudioError as exc:
            return gr.update(), gr.update(), f"⚠️ {exc}"
        return rows, shown_page, f"Vocabulary page {shown_page} of {pages}."

    for trigger in (panel.show_loaded.click, page.model_changed.change, page.run_done.change):
        trigger(lambda: loaded_markdown(services), None, panel.loaded, queue=False)
    page.unload.click(lambda: (unload_model(services), loaded_markdown(services)), None, [page.status, panel.loaded],
                      queue=False)
    panel.show_vocab.click(show, [panel.search, panel.page], [panel.vocabulary, panel.page, status])
    panel.search.submit(show, [panel.search, panel.page], [panel.vocabulary, panel.page, status])
