"""The Engines section of the Models tab: remote OpenAI-compatible servers saved for the page and
the CLI, their models listed from `/v1/models`, and a button that puts one in the chain as a Models
line `NAME/model-id`. A key typed here is kept in the data folder (0600) and never shown again:
the field is emptied on save and the table says only where the key comes from."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.core.errors import ChainStudioError
from app.engines.config import DEFAULT_IDLE_TIMEOUT, KINDS, EngineConfig
from app.services import Services
from app.ui.i18n import t


@dataclass
class EnginesSection:
    table: gr.HTML
    name: gr.Textbox
    url: gr.Textbox
    key: gr.Textbox
    key_env: gr.Textbox
    concurrency: gr.Number
    idle_timeout: gr.Number
    kind: gr.Dropdown
    save: gr.Button
    remove: gr.Button
    list_models: gr.Button
    models: gr.Dropdown
    add: gr.Button
    status: gr.Markdown


def engines_table(services: Services) -> str:
    """The saved engines as an HTML table (where each key comes from, never the key)."""
    configs = services.engines.store.engines() if services.engines.store else []
    if not configs:
        return ('<p class="engines-empty"><em>No engines yet. Add one below: llama-server, vLLM, Ollama, '
                "LM Studio or another Chain Studio, by its /v1 address.</em></p>")
    rows = []
    for c in configs:
        key = f"from ${c.key_env}" if c.key_env else ("saved" if c.has_key else "none")
        cells = [c.name, c.url, key, str(c.concurrency), f"{c.idle_timeout:g} s", c.kind]
        rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
        if c.warning:  # on a row of its own: the table stays narrow enough for the tab
            rows.append(f'<tr class="engine-warning"><td colspan="6">⚠️ {html.escape(c.warning)}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("name", "URL", "key", "at once", "idle", "kind"))
    return (f'<div style="overflow-x:auto"><table id="engines-table" class="engines-table" '
            f'style="font-size:0.85em;width:100%"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def save_engine(services: Services, name: str, url: str, key: str, key_env: str, concurrency: float | None,
                idle_timeout: float | None, kind: str) -> tuple[str, str, str]:
    """Save (or replace) an engine; returns the table, the emptied key field and a status line. An
    empty key field keeps a key saved before."""
    try:
        config = EngineConfig(name, url, key_env=(key_env or "").strip(),
                              concurrency=int(concurrency) if concurrency is not None else 1,
                              idle_timeout=float(idle_timeout) if idle_timeout is not None else DEFAULT_IDLE_TIMEOUT,
                              kind=kind or "auto")
        store = services.engines.store
        assert store is not None
        saved = store.save(config, key.strip() if (key or "").strip() else None)
        services.engines.forget(saved.name)
    except ChainStudioError as exc:
        return engines_table(services), "", f"⚠️ {html.escape(str(exc))}"
    said = f"Saved engine **{html.escape(saved.name)}**. List its models to add one to the chain."
    if saved.warning:
        said += f"\n\n⚠️ {html.escape(saved.warning)}"
    return engines_table(services), "", said


def remove_engine(services: Services, name: str) -> tuple[str, str]:
    """Forget an engine and its key; returns the table and a status line."""
    try:
        store = services.engines.store
        assert store is not None
        removed = store.remove(name)
        services.engines.forget((name or "").strip())
    except ChainStudioError as exc:
        return engines_table(services), f"⚠️ {html.escape(str(exc))}"
    said = f"Removed engine **{html.escape(name)}**." if removed else f"No saved engine is called {html.escape(name)!r}."
    return engines_table(services), said


def list_engine_models(services: Services, name: str) -> tuple[Any, str]:
    """The models engine `name` lists, as `NAME/model-id` choices; or why they cannot be listed."""
    config = services.engines.config((name or "").strip())
    if config is None:
        return gr.update(choices=[], value=None), f"⚠️ No saved engine is called {html.escape(name or '')!r}: save it first."
    try:
        listed = services.engines.engine(config).models(refresh=True)
    except ChainStudioError as exc:
        return gr.update(choices=[], value=None), f"⚠️ {html.escape(str(exc))}"
    members = [f"{config.name}/{m.id}" for m in listed]
    said = f"{config.name} lists {len(members)} model{'s' if len(members) != 1 else ''}."
    if config.warning:
        said += f"\n\n⚠️ {html.escape(config.warning)}"
    return gr.update(choices=members, value=members[0] if members else None), said


def build(services: Services) -> EnginesSection:
    """Lay out the section (inside the Models tab; wired by `wire`)."""
    with gr.Accordion(t("engines"), open=False, elem_id="engines"):
        table = gr.HTML(engines_table(services), elem_id="engines-list")
        with gr.Row():
            name = gr.Textbox(label=t("engine_name"), elem_id="engine-name", scale=1)
            url = gr.Textbox(label=t("engine_url"), elem_id="engine-url", scale=3,
                             placeholder="http://127.0.0.1:8080/v1")
        with gr.Row():
            key = gr.Textbox(label=t("engine_key"), type="password", elem_id="engine-key", scale=2)
            key_env = gr.Textbox(label=t("engine_key_env"), elem_id="engine-key-env", scale=2,
                                 placeholder="OPENAI_API_KEY")
        with gr.Row():
            concurrency = gr.Number(label=t("engine_concurrency"), value=1, precision=0, minimum=1, maximum=64,
                                    elem_id="engine-concurrency")
            idle_timeout = gr.Number(label=t("engine_idle"), value=DEFAULT_IDLE_TIMEOUT, minimum=1, maximum=3600,
                                     elem_id="engine-idle")
            kind = gr.Dropdown(choices=list(KINDS), value="auto", label=t("engine_kind"), elem_id="engine-kind")
        with gr.Row():
            save = gr.Button(t("engine_save"), size="sm", elem_id="engine-save")
            remove = gr.Button(t("engine_remove"), size="sm", elem_id="engine-remove")
            list_models = gr.Button(t("engine_list_models"), size="sm", elem_id="engine-list-models")
        with gr.Row():
            models = gr.Dropdown(choices=[], label=t("engine_models"), elem_id="engine-models", scale=3)
            add = gr.Button(t("engine_add_model"), size="sm", elem_id="engine-add-model", scale=1, min_width=60)
        status = gr.Markdown("", elem_id="engine-status")
    return EnginesSection(table, name, url, key, key_env, concurrency, idle_timeout, kind, save, remove, list_models,
                          models, add, status)


def wire(section: EnginesSection, services: Services) -> None:
    """Connect the section's buttons (Add to Models is wired by the Models tab, which owns that field)."""
    section.save.click(lambda *values: save_engine(services, *values),
                       [section.name, section.url, section.key, section.key_env, section.concurrency,
                        section.idle_timeout, section.kind],
                       [section.table, section.key, section.status])
    section.remove.click(lambda name: remove_engine(services, name), section.name, [section.table, section.status])
    section.list_models.click(lambda name: list_engine_models(services, name), section.name,
                              [section.models, section.status])
