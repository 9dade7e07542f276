"""The panel contract: what every panel of the page shares and how a panel takes part in a run.

A panel module has `build(...) -> ThePanel` (its layout, called inside the page's Blocks where it is
placed) and `wire(panel, services, page)` (its events). `PageHandles` holds the components several
panels use (the prompt fields, the status line, the transcript); `app.py` builds it once every panel
is laid out, then wires each panel. A panel that feeds a run subclasses `Panel` and contributes run
inputs, ChainSpec fields and a `RunView` (what it shows while the run streams), so the run handler
never needs to know a panel's insides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gradio as gr

from app.core.events import ChainEvent
from app.core.runner import ModelSource
from app.services import Services

Component = Any  # a gradio component (gradio's own type names change between versions)
RunData = dict[Component, Any]  # a handler's inputs, keyed by component (gradio passes a set as a dict)


class RunView(Protocol):
    """What a panel shows of one run: it sees every event and gives its components' values."""

    def on_event(self, event: ChainEvent) -> None: ...

    def values(self, complete: bool) -> dict[Component, Any]:
        """Its components' new values (`complete`: an answer or the run just ended)."""
        ...


class Panel:
    """A panel's part in a run; the defaults contribute nothing."""

    tab: Any = None  # the gr.Tab the page placed it in (set by the assembly), for "when the tab opens"

    def run_inputs(self) -> list[Component]:
        """Components whose values a run reads."""
        return []

    def run_outputs(self) -> list[Component]:
        """Components its `RunView` writes."""
        return []

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        """ChainSpec fields from the panel's values (raise ChainStudioError for a bad value)."""
        return {}

    def model_source(self, data: RunData, services: Services) -> ModelSource | None:
        """Where links in the model list are downloaded from (the Models panel gives one)."""
        return None

    def run_view(self, data: RunData, services: Services) -> RunView | None:
        """A view of the run about to start, or None."""
        return None


@dataclass
class PageHandles:
    """Components shared by the page's panels."""

    system: gr.Textbox
    previous: gr.Textbox
    prompt: gr.Textbox
    models: gr.Textbox
    urls: gr.Textbox
    status: gr.Markdown
    transcript: gr.Markdown
    entries: gr.State  # the transcript's entries (render.Entry), per tab
    raw: gr.Checkbox
    fast: gr.Checkbox
    last_answer: gr.Textbox  # hidden: the newest answer's text (copy, HTML view, code editor)
    all_answers: gr.Textbox  # hidden: every answer as plain text (copy all)
    start: gr.Button
    stop_next: gr.Button
    stop_all: gr.Button
    next_token: gr.Button
    unload: gr.Button
    code_banner: gr.Markdown
    run_done: gr.Number  # hidden: counts this tab's finished runs (panels refresh on its change)
    model_changed: gr.Number  # hidden: bumped when a button may have changed the model in memory
    reopened_run: gr.Number  # hidden: the journal id of a run reopened into the transcript (History, reload)
    last_run_store: gr.BrowserState  # this browser's newest run (its transcript comes back after a reload)
    journal_notice: gr.Markdown  # top of the page: a damaged journal was set aside at start
    blocks: gr.Blocks  # the page itself (for its load event)
    panels: list[Panel] = field(default_factory=list)  # the panels that take part in runs

    def prompt_fields(self) -> dict[str, gr.Textbox]:
        """The fields a file or a library entry can fill, by name."""
        return {"system": self.system, "previous": self.previous, "prompt": self.prompt, "urls": self.urls}


def session_of(request: gr.Request | None) -> str:
    """The browser tab's session key."""
    return (request.session_hash if request is not None else None) or "anonymous"
