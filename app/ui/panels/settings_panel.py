"""The Settings tab: the chain options, responses and loops, every generation and loading setting,
presets, display options (fast mode, sounds, theme) and "reset to defaults"."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.core.events import AnswerFinished, AnswerToken, ChainEvent
from app.core.prompt_format import AUTO, FORMATS
from app.services import Services
from app.ui.i18n import t
from app.ui.page import PageHandles, Panel, RunData
from app.ui.page_js import SOUND_CUES_JS, THEME_TOGGLE_JS
from app.ui.sampling_controls import (
    DETERMINISTIC_PRESET,
    STOCHASTIC_PRESET,
    build_load_controls,
    build_sampling_controls,
    load_from_values,
    preset_values,
    sampling_from_values,
)

OPTION_LABELS = {
    "feedback": "Feedback loop",
    "cumulative": "Cumulative response",
    "single_response": "Single response per model",
    "shuffle": "Shuffle models",
    "reset": "Reset model before each answer",
    "random_params": "Random hyperparameters",
    "feed_reasoning": "Feed back reasoning (<think>…</think>) too",
}


@dataclass
class SettingsPanel(Panel):
    deterministic: gr.Button
    stochastic: gr.Button
    options: dict[str, gr.Checkbox]
    fast: gr.Checkbox
    sounds: gr.Checkbox
    theme: gr.Button
    responses: gr.Number
    loops: gr.Number
    sampling: dict[str, Any]
    loading: dict[str, Any]
    reset: gr.Button
    template: gr.Dropdown
    sound_cue: gr.Textbox  # hidden: the run's sound cues, played by the page (SOUND_CUES_JS)
    load_anyway: gr.Checkbox

    def run_inputs(self) -> list[Any]:
        return [*self.options.values(), self.responses, self.loops, self.template, *self.sampling.values(),
                *self.loading.values(), self.load_anyway]

    def run_outputs(self) -> list[Any]:
        return [self.sound_cue]

    def run_view(self, data: RunData, services: Services) -> SoundCues:
        return SoundCues(self.sound_cue)

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        return {
            "responses": int(data[self.responses] or 1),
            "loops": int(data[self.loops] or 1),
            "template": str(data[self.template] or AUTO),
            "sampling": sampling_from_values(list(self.sampling), [data[c] for c in self.sampling.values()]),
            "load": dataclasses.replace(load_from_values(list(self.loading), [data[c] for c in self.loading.values()]),
                                        load_anyway=bool(data[self.load_anyway])),
            **{name: bool(data[box]) for name, box in self.options.items()},
        }


class SoundCues:
    """A beep at each answer's first token and a chime at its end, as the original played them (the
    page plays them, unless "Sounds" is off)."""

    def __init__(self, cue: gr.Textbox) -> None:
        self.cue = cue
        self.pending: list[str] = []
        self.started: set[int] = set()
        self.count = 0

    def on_event(self, event: ChainEvent) -> None:
        if isinstance(event, AnswerToken) and event.index not in self.started:
            self.started.add(event.index)
            self.pending.append(f"token:{event.index}")
        elif isinstance(event, AnswerFinished):
            self.pending.append(f"end:{event.answer.index}")

    def values(self, complete: bool) -> dict[Any, Any]:
        if not self.pending:
            return {}
        self.count += 1  # a new value each time, so the page hears the same cue twice
        cues, self.pending = ",".join(self.pending), []
        return {self.cue: f"{cues},#{self.count}"}


def build(services: Services) -> SettingsPanel:
    """Lay out the Settings tab (wired by `wire`)."""
    with gr.Row():
        deterministic = gr.Button(t("preset_deterministic"), size="sm", elem_id="preset-deterministic")
        stochastic = gr.Button(t("preset_stochastic"), size="sm", elem_id="preset-stochastic")
        reset = gr.Button(t("reset_defaults"), size="sm", elem_id="reset-defaults")
    options = {name: gr.Checkbox(label=label, value=False, elem_id=f"option-{name.replace('_', '-')}")
               for name, label in OPTION_LABELS.items()}
    fast = gr.Checkbox(label=t("fast"), value=False, elem_id="option-fast")
    with gr.Row():
        # Read by the page's own script (page_js.PAGE_JS), which plays the sounds.
        sounds = gr.Checkbox(label="Sounds: a beep at each answer's first token, a chime at its end", value=True,
                             elem_id="sounds", interactive=True)
        theme = gr.Button(t("theme"), size="sm", elem_id="theme-toggle")
    sound_cue = gr.Textbox(visible=False, elem_id="sound-cue")
    template = gr.Dropdown(choices=list(FORMATS), value=AUTO, label=t("prompt_format"), elem_id="prompt-format",
                           info="auto: the model's own chat template, or raw completion when its file has none; "
                                "raw: plain text the model continues; or one of llama.cpp's templates. "
                                'An item\'s {template="…"} wins.')
    with gr.Row():
        responses = gr.Number(label="Responses per model", value=1, minimum=1, precision=0, elem_id="responses")
        loops = gr.Number(label="Loops", value=1, minimum=1, precision=0, elem_id="loops")
    with gr.Accordion("Generation settings", open=True):
        sampling = build_sampling_controls()
    with gr.Accordion("Model loading", open=False):
        loading = build_load_controls(gpu_offload=services.gpu_offload_supported())
        load_anyway = gr.Checkbox(label=t("load_anyway"), value=False,
                                  elem_id="load-anyway",
                                  info="The system then swaps to disk: loading and answers become very slow, "
                                       "and other programs too. Off: such a load is refused with what would fit.")
    return SettingsPanel(deterministic, stochastic, options, fast, sounds, theme, responses, loops, sampling,
                         loading, reset, template, sound_cue, load_anyway)


def n_ctx_changed(services: Services, value: float | None) -> Any:
    """The status note for a new n_ctx: the loaded model reloads at the next start. With nothing to
    say the status is left as it is (an empty note arriving late erased a run's last status)."""
    loaded = services.backend.loaded
    if loaded is not None and int(value or 0) != loaded.load.n_ctx:
        return f"n_ctx is now {int(value or 0)}: the model reloads at the next start."
    return gr.update()


def wire(panel: SettingsPanel, services: Services, page: PageHandles) -> None:
    """Connect the presets, the theme switch and the n_ctx note ("reset to defaults" is wired with
    the page's memory of settings, in `persistence`)."""
    names = list(panel.sampling)
    controls = list(panel.sampling.values())
    panel.deterministic.click(lambda: preset_values(names, DETERMINISTIC_PRESET), None, controls)
    panel.stochastic.click(lambda: preset_values(names, STOCHASTIC_PRESET), None, controls)
    panel.theme.click(None, None, None, js=THEME_TOGGLE_JS)
    panel.sound_cue.change(None, panel.sound_cue, None, js=SOUND_CUES_JS)
    panel.loading["n_ctx"].change(lambda value: n_ctx_changed(services, value), panel.loading["n_ctx"], page.status)
