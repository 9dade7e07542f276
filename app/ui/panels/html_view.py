"""The HTML view: ```html blocks of the last answer rendered as a page, inside the studio."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from app.core.code_blocks import fenced_blocks
from app.services import Services
from app.ui.page import PageHandles, Panel

EMPTY = "<p><em>The last answer has no ```html block to show.</em></p>"


def html_view(answer: str) -> str:
    """An iframe showing the answer's HTML. `sandbox` without allow-same-origin: the page's scripts
    run in an opaque origin and cannot touch the studio, its cookies or its files."""
    blocks = fenced_blocks(answer, "html")
    if not blocks:
        return EMPTY
    document = "\n".join(blocks)
    return (
        '<iframe sandbox="allow-scripts" referrerpolicy="no-referrer" '
        'style="width:100%;height:520px;border:1px solid #444;border-radius:6px;background:#fff" '
        f'srcdoc="{html.escape(document, quote=True)}"></iframe>'
    )


@dataclass
class HtmlPanel(Panel):
    view: gr.HTML


def build(services: Services | None = None) -> HtmlPanel:
    """The tab: the last answer's HTML, rendered."""
    return HtmlPanel(gr.HTML(EMPTY, elem_id="html-view"))


def wire(panel: HtmlPanel, services: Services, page: PageHandles) -> None:
    page.last_answer.change(html_view, page.last_answer, panel.view)
