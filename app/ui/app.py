"""The studio page: panels laid out, the shared handles gathered, each panel wired.

Each panel lives in `app/ui/panels/` with `build(services)` (its layout) and
`wire(panel, services, page)` (its events); a panel that feeds runs contributes its inputs, its
ChainSpec fields and its view of a run (`app/ui/page.py`). Adding a tab is one new panel module and
one line in `MAIN_TABS` or `SIDE_TABS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.services import Services
from app.ui import persistence
from app.ui.i18n import t
from app.ui.page import PageHandles, Panel
from app.ui.panels import (
    api_panel,
    chain_panel,
    code_panel,
    compare_panel,
    files_panel,
    history_panel,
    html_view,
    learning_panel,
    library_panel,
    models_panel,
    programs_panel,
    settings_panel,
    voice_panel,
)

# (tab title in app/ui/i18n.py, tab id, panel module), in the order shown.
MAIN_TABS = (("tab_learning", "learning", learning_panel), ("tab_compare", "compare", compare_panel),
             ("tab_code", "code", code_panel),
             ("tab_programs", "programs", programs_panel), ("tab_voice", "voice", voice_panel),
             ("tab_html", "html", html_view))
SIDE_TABS = (("tab_models", "models", models_panel), ("tab_settings", "settings", settings_panel),
             ("tab_library", "library", library_panel), ("tab_files", "files", files_panel),
             ("tab_history", "history", history_panel), ("tab_api", "api", api_panel))
TITLE = "### Chain Studio · chain local GGUF models, offline"


@dataclass
class StudioPage:
    """The assembled page: its Blocks, the shared handles and every panel by tab id."""

    blocks: gr.Blocks
    handles: PageHandles
    panels: dict[str, Any]


def build_ui(services: Services) -> gr.Blocks:
    """Build the studio page for `services`."""
    return assemble(services).blocks


def assemble(services: Services) -> StudioPage:
    """Lay out every panel, gather the shared handles, then wire each panel."""
    panels: dict[str, Any] = {}
    with gr.Blocks(title="Chain Studio") as blocks:
        gr.Markdown(TITLE, elem_id="page-title")
        notice = history_panel.build_notice(services)  # a damaged journal was replaced at start
        with gr.Row():
            with gr.Column(scale=3):
                chain = chain_panel.build()
                with gr.Tabs():
                    with gr.Tab(t("tab_transcript"), id="transcript-tab"):
                        transcript = chain_panel.build_transcript()
                    _tabs(MAIN_TABS, services, panels)
                gr.Markdown(chain_panel.SHORTCUTS, elem_id="keyboard-shortcuts")
            with gr.Column(scale=2):
                with gr.Tabs():
                    _tabs(SIDE_TABS, services, panels)
        models: models_panel.ModelsPanel = panels["models"]
        settings: settings_panel.SettingsPanel = panels["settings"]
        page = PageHandles(
            system=chain.system, previous=chain.previous, prompt=chain.prompt, models=models.models,
            urls=models.urls, status=chain.status, transcript=transcript, entries=chain.entries, raw=chain.raw,
            fast=settings.fast, last_answer=chain.last_answer, all_answers=chain.all_answers, start=chain.start,
            stop_next=chain.stop_next, stop_all=chain.stop_all, next_token=chain.next_token, unload=chain.unload,
            code_banner=chain.code_banner, run_done=chain.run_done, model_changed=chain.model_changed,
            reopened_run=chain.reopened_run, last_run_store=chain.last_run_store, journal_notice=notice,
            blocks=blocks,
            panels=[chain, *panels.values()],
        )
        chain_panel.wire(chain, services, page)
        for _title, tab_id, module in (*MAIN_TABS, *SIDE_TABS):
            module.wire(panels[tab_id], services, page)
        persistence.wire(page, reset=settings.reset)
    return StudioPage(blocks, page, {"chain": chain, **panels})


def _tabs(tabs: tuple[tuple[str, str, Any], ...], services: Services, panels: dict[str, Any]) -> None:
    for title, tab_id, module in tabs:
        with gr.Tab(t(title), id=tab_id) as tab:
            panel: Panel = module.build(services)
        panel.tab = tab
        panels[tab_id] = panel
