"""The page remembers, per browser, what the person set: the prompt fields, the model list and every
setting come back after a reload (gr.BrowserState, kept in the browser's local storage), and "Reset
to defaults" puts them back as shipped. Code execution is never remembered as on: turning it on
stays a visible choice each time."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.ui.page import PageHandles

STORAGE_KEY = "chain-studio-settings"
REMEMBERED_KINDS = (gr.Textbox, gr.Number, gr.Slider, gr.Checkbox, gr.Radio, gr.Dropdown)
NEVER_REMEMBERED = {"option-run-code", "code-editor", "stepping", "learning-stage", "tts-voice"}  # a run must never wait for clicks unasked


def remembered(page: PageHandles) -> dict[str, Any]:
    """The components whose values are kept, by elem_id."""
    found: dict[str, Any] = {}
    for panel in page.panels:
        for component in panel.run_inputs():
            key = getattr(component, "elem_id", None)
            if key and key not in NEVER_REMEMBERED and isinstance(component, REMEMBERED_KINDS):
                found[key] = component
    return found


def saved_values(keys: list[str], values: list[Any]) -> dict[str, Any]:
    return dict(zip(keys, values, strict=True))


def restored_values(keys: list[str], saved: Any) -> list[Any]:
    """Each component's saved value, or no change for one that was never saved."""
    saved = saved if isinstance(saved, dict) else {}
    return [saved[key] if key in saved else gr.update() for key in keys]


def wire(page: PageHandles, reset: gr.Button) -> None:
    """Save on every change, restore when the page loads, reset on `reset`."""
    components = remembered(page)
    keys = list(components)
    inputs = list(components.values())
    defaults = [component.value for component in inputs]
    store = gr.BrowserState({}, storage_key=STORAGE_KEY)

    def save(*values: Any) -> dict[str, Any]:
        return saved_values(keys, list(values))

    def restore(saved: Any) -> list[Any]:
        return restored_values(keys, saved)

    def reset_all() -> list[Any]:
        return [*defaults, {}, "Settings, model list and prompt fields are back to their defaults."]

    gr.on([c.change for c in inputs], save, inputs, store, queue=False, show_progress="hidden",
          trigger_mode="always_last")
    page.blocks.load(restore, store, inputs, queue=False, show_progress="hidden")
    reset.click(reset_all, None, [*inputs, store, page.status], queue=False)
