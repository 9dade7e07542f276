"""The Models tab: the chain's model list, the models folder, Hugging Face links, the selected file's
header and the model in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.core.errors import ChainStudioError
from app.core.events import ChainEvent, ModelLoaded, RunFinished
from app.core.hub_links import links_from_text, looks_like_link
from app.core.prompt_format import split_model_line
from app.core.prompt_list import IGNORE_PREFIX
from app.core.runner import ModelSource
from app.services import Services
from app.ui.i18n import t
from app.ui.page import PageHandles, Panel, RunData
from app.ui.panels import engines_panel, model_panel
from app.ui.render import escape_markdown

BROWSE_MARKDOWN = """### Where to find GGUF models
Copy a file's link from any of these (Files and versions → the file → copy the download link),
paste it into **Model URLs** and press Enter. Choose a size that fits your memory: Q4_K_M is a good
start.

**Publishers that quantize many models:**
[bartowski](https://huggingface.co/bartowski) ·
[unsloth](https://huggingface.co/unsloth) ·
[lmstudio-community](https://huggingface.co/lmstudio-community) ·
[ggml-org](https://huggingface.co/ggml-org) ·
[mradermacher](https://huggingface.co/mradermacher) ·
[MaziyarPanahi](https://huggingface.co/MaziyarPanahi) ·
[QuantFactory](https://huggingface.co/QuantFactory) ·
[NousResearch](https://huggingface.co/NousResearch) ·
[Qwen](https://huggingface.co/Qwen) ·
[TheBloke](https://huggingface.co/TheBloke) (older models)

**Search by family:**
[Llama](https://huggingface.co/models?library=gguf&search=llama) ·
[Qwen](https://huggingface.co/models?library=gguf&search=qwen) ·
[Gemma](https://huggingface.co/models?library=gguf&search=gemma) ·
[Mistral](https://huggingface.co/models?library=gguf&search=mistral) ·
[Phi](https://huggingface.co/models?library=gguf&search=phi) ·
[DeepSeek](https://huggingface.co/models?library=gguf&search=deepseek) ·
[SmolLM](https://huggingface.co/models?library=gguf&search=smollm) ·
[code models](https://huggingface.co/models?library=gguf&search=coder) ·
[Portuguese](https://huggingface.co/models?library=gguf&search=portuguese)
"""


@dataclass
class ModelsPanel(Panel):
    models: gr.Textbox
    pick: gr.Dropdown
    add: gr.Button
    refresh: gr.Button
    urls: gr.Textbox
    testing: gr.Checkbox
    folder_box: gr.Textbox
    use_folder: gr.Button
    folder: gr.State
    model_info: gr.Markdown
    in_memory: model_panel.ModelPanel
    engines: engines_panel.EnginesSection
    default_models: str = ""  # what "Models" holds when the page opens (the demo model)
    services: Services | None = None  # which Models lines name remote engines

    def run_inputs(self) -> list[Any]:
        return [self.models, self.urls, self.testing, self.folder]

    def run_outputs(self) -> list[Any]:
        return [self.in_memory.loaded]

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        # Links pasted into Model URLs run when "Models" is empty or still the untouched default
        # (pasting a link and pressing Enter must run that model, not the demo); a list the person
        # wrote wins, and a link can join it as a line of its own.
        links = tuple(link.url for link in links_from_text(data[self.urls] or ""))
        untouched = (data[self.models] or "").strip() == self.default_models.strip()
        listed = [] if links and untouched else model_lines(data[self.models], data[self.folder], self.services)
        if listed:
            return {"models": tuple(path for path, _format in listed),
                    "model_templates": tuple((path, name) for path, name in listed if name)}
        return {"models": links}

    def model_source(self, data: RunData, services: Services) -> ModelSource | None:
        return services.model_source(str(data[self.folder]), bool(data[self.testing]))

    def run_view(self, data: RunData, services: Services) -> InMemoryView:
        return InMemoryView(self, services)


class InMemoryView:
    """Keeps "the model in memory" current while a run loads and uses models."""

    def __init__(self, panel: ModelsPanel, services: Services) -> None:
        self.panel = panel
        self.services = services
        self.changed = True

    def on_event(self, event: ChainEvent) -> None:
        self.changed = self.changed or isinstance(event, (ModelLoaded, RunFinished))

    def values(self, complete: bool) -> dict[Any, Any]:
        if not self.changed:
            return {}
        self.changed = False
        return {self.panel.in_memory.loaded: model_panel.loaded_markdown(self.services)}


def model_choice(services: Services, path: Path) -> tuple[str, str]:
    """A model of the folder as the list shows it: name, architecture, size, quantization, trained
    context and file size, read from its header (the value is the file name)."""
    described = services.model_file(path)
    info = described.info
    if info is None:  # listed with its problem, so one bad file never breaks the list
        problem = described.problem if len(described.problem) <= 120 else described.problem[:119] + "…"
        return f"{path.name} (not usable: {problem})", path.name
    context = f"ctx {info.context_length:,}" if info.context_length else "ctx ?"
    label = (f"{path.name} · {info.architecture} · {info.size_label} · {info.quantization} · {context} · "
             f"{info.file_size / 1e6:,.1f} MB")
    return label, path.name


def model_lines(models_text: str, folder: str, services: Services | None = None) -> list[tuple[str, str | None]]:
    """The "Models" field: one file name (looked up in the folder), path, Hugging Face link or saved
    engine's `NAME/model-id` per line, optionally followed by that model's prompt format
    (`{template="chatml"}`); `---` ignores a line; order and repeats are kept."""
    found: list[tuple[str, str | None]] = []
    for line in (models_text or "").splitlines():
        if not line.strip() or line.strip().startswith(IGNORE_PREFIX):
            continue
        name, template = split_model_line(line)
        if looks_like_link(name) or (services is not None and services.engines.member(name) is not None):
            found.append((name, template))
            continue
        candidate = Path(name).expanduser()
        found.append((str(candidate if candidate.is_absolute() else Path(folder) / candidate), template))
    return found


def model_info_markdown(services: Services, path: str | None) -> str:
    """A table of what the selected file's header says."""
    if not path:
        return "*No model selected.*"
    try:
        info = services.model_header(path)
    except ChainStudioError as exc:
        return f"**Cannot use this file:** {escape_markdown(str(exc))}"
    rows = [
        ("File", info.file_name),
        ("Name", info.name),
        ("Architecture", info.architecture),
        ("Size", f"{info.size_label} parameters ({info.parameter_count:,})"),
        ("Quantization", info.quantization),
        ("Trained context", f"{info.context_length:,} tokens" if info.context_length else "unknown"),
        ("Vocabulary", f"{info.vocab_size:,} tokens" if info.vocab_size else "unknown"),
        ("File size", f"{info.file_size / 2**20:,.1f} MiB"),
        ("Chat template", "yes" if info.chat_template else "none (plain transcript format)"),
        ("Memory needed", services.memory_needed(info, 4096).describe()),
    ]
    return ("| Selected file | |\n|---|---|\n"
            + "\n".join(f"| {k} | {escape_markdown(str(v))} |" for k, v in rows))


def add_model(current: str, name: str | None) -> str:
    """The Models field with `name` (a file of the folder, or an engine's `NAME/model-id`) as a line
    of its own at the end."""
    if not name:
        return current
    lines = [line for line in (current or "").splitlines() if line.strip()]
    return "\n".join(lines + [name])


def refresh_models(services: Services, folder_path: str, chosen: str | None) -> Any:
    found = [model_choice(services, p) for p in services.model_files(Path(folder_path))]
    values = [value for _, value in found]
    return gr.update(choices=found, value=chosen if chosen in values else (values[0] if values else None))


def choose_folder(services: Services, path_text: str) -> tuple[Any, Any, str]:
    path = Path(path_text or "").expanduser()
    if not path.is_dir():
        gr.Warning(f"{path} is not a folder")
        return gr.update(), gr.update(), f"⚠️ {escape_markdown(str(path))} is not a folder"
    found = [model_choice(services, p) for p in services.model_files(path)]
    first = found[0][1] if found else None
    return str(path.resolve()), gr.update(choices=found, value=first), \
        f"Models folder: {escape_markdown(str(path))} ({len(found)} GGUF files)"


def build(services: Services) -> ModelsPanel:
    """Lay out the Models tab (wired by `wire`)."""
    files = services.model_files()
    names = [p.name for p in files]
    models = gr.Textbox(label=t("models"), value=names[0] if names else "", lines=2, max_lines=12, elem_id="models",
                        info='One per line, in order; repeats allowed; --- skips a line; NAME/model-id runs on a saved engine; {template="chatml"} after a '
                             "name sets that model's prompt format")
    # The dropdown has the whole width: its labels (name · architecture · size · quantization ·
    # context · file size) are long.
    pick = gr.Dropdown(choices=[model_choice(services, p) for p in files], value=names[0] if names else None,
                       label=t("model_pick"), elem_id="model-pick")
    with gr.Row():
        add = gr.Button(t("add_model"), size="sm", elem_id="add-model", min_width=60)
        refresh = gr.Button(t("refresh_models"), size="sm", elem_id="refresh-models", min_width=60)
    urls = gr.Textbox(
        label=t("model_urls"), lines=1, max_lines=10, elem_id="model-urls",
        info="Hugging Face GGUF links, one per line (--- skips a line), or the text of a repo's Files and "
             "versions page. They run instead of the default model; to chain them with your own list, "
             "add them to Models. Enter starts.",
    )
    testing = gr.Checkbox(label=t("testing"), value=False,
                          elem_id="option-testing")
    with gr.Row():
        folder_box = gr.Textbox(label=t("models_folder"), value=str(services.models_dir), elem_id="models-folder", scale=4)
        use_folder = gr.Button(t("use_folder"), size="sm", elem_id="use-folder", scale=1, min_width=60)
    model_info = gr.Markdown(model_info_markdown(services, str(files[0]) if files else None), elem_id="model-info")
    in_memory = model_panel.build(services)
    engines = engines_panel.build(services)
    with gr.Accordion("Where to find GGUF models", open=False):
        gr.Markdown(BROWSE_MARKDOWN, elem_id="browse")
    return ModelsPanel(models, pick, add, refresh, urls, testing, folder_box, use_folder,
                       gr.State(str(services.models_dir)), model_info, in_memory, engines,
                       default_models=models.value or "", services=services)


def wire(panel: ModelsPanel, services: Services, page: PageHandles) -> None:
    """Connect the tab's controls."""
    panel.add.click(add_model, [panel.models, panel.pick], panel.models)
    for trigger in (panel.refresh.click, page.run_done.change):  # downloaded models join the list
        trigger(lambda folder, chosen: refresh_models(services, folder, chosen), [panel.folder, panel.pick],
                panel.pick)
    panel.use_folder.click(lambda path: choose_folder(services, path), panel.folder_box,
                           [panel.folder, panel.pick, page.status])
    panel.pick.change(lambda folder, name: model_info_markdown(services, str(Path(folder) / name) if name else None),
                      [panel.folder, panel.pick], panel.model_info)
    model_panel.wire(panel.in_memory, services, page)
    engines_panel.wire(panel.engines, services)
    panel.engines.add.click(add_model, [panel.models, panel.engines.models], panel.models)
