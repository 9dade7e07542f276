"""Controls for every generation setting, built from the same specs the engine validates with."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.core.sampling import LOAD_SPECS, SAMPLING_SPECS, LoadParams, SamplingParams


def name_range_errors(component_class: Any) -> None:
    """Make the out-of-range message of every `component_class` name its field (Gradio's own says
    only "Value 7 is greater than maximum value 5"). Patched on the class: Gradio rebuilds a
    component from each update, so an instance-level wrapper would not last, and a subclass would
    make Gradio write a .pyi file next to this module."""
    check = component_class.preprocess
    if getattr(check, "names_its_field", False):
        return

    def preprocess(self: Any, payload: Any) -> Any:
        try:
            return check(self, payload)
        except gr.Error as exc:
            raise gr.Error(f"{self.label}: {exc.message}" if self.label else exc.message) from None

    preprocess.names_its_field = True  # type: ignore[attr-defined]
    component_class.preprocess = preprocess


name_range_errors(gr.Number)
name_range_errors(gr.Slider)


def _control(name: str, default: Any, spec_kind: type, minimum: float, maximum: float, info: str) -> gr.components.Component:
    # The slider spans the setting's whole valid range, so its number box and the slider agree.
    if spec_kind is float:
        return gr.Slider(minimum=minimum, maximum=maximum, value=default, step=0.01, label=name, info=info,
                           elem_id=f"setting-{name}")
    return gr.Number(value=default, minimum=minimum, maximum=maximum, precision=0, label=name, info=info,
                       elem_id=f"setting-{name}")


def build_sampling_controls() -> dict[str, gr.components.Component]:
    """One control per sampling setting (deterministic preset values) plus the stop strings."""
    defaults = SamplingParams()
    controls = {
        name: _control(name, getattr(defaults, name), spec.kind, spec.minimum, spec.maximum, spec.description)
        for name, spec in SAMPLING_SPECS.items()
    }
    controls["stop"] = gr.Textbox(
        label="stop", lines=2, info=r"stop strings, one per line (\n means a line break)", elem_id="setting-stop"
    )
    controls["order"] = gr.Textbox(
        label="order", value=", ".join(defaults.order), elem_id="sampler-order",
        info="order of the filter stages (each once)",
    )
    return controls


# The original Samantha's presets. Its deterministic one also sets tfs_z=0, top_p=0, min_p=1,
# typical_p=0 and resets the model: with temperature 0 the pick is the most likely token whatever
# the filters say, so the studio keeps neutral filter values (the learning view then shows no
# stage removing candidates for nothing).
DETERMINISTIC_PRESET = SamplingParams(max_tokens=4000, temperature=0.0, top_k=40, presence_penalty=0.0,
                                      frequency_penalty=0.0, repeat_penalty=1.0)
STOCHASTIC_PRESET = SamplingParams(max_tokens=4000, temperature=0.8, tfs_z=1.0, top_p=0.95, min_p=0.05,
                                   typical_p=1.0, top_k=40, presence_penalty=0.0, frequency_penalty=0.0,
                                   repeat_penalty=1.1)


def preset_values(names: list[str], preset: SamplingParams) -> list[Any]:
    """Control values (in `names` order) that show `preset`; stop strings are left as they are."""
    return [gr.update() if name == "stop" else
            ", ".join(preset.order) if name == "order" else getattr(preset, name) for name in names]


def build_load_controls(gpu_offload: bool = False) -> dict[str, gr.components.Component]:
    """Controls for the settings that take effect when a model loads (GPU offload only when the
    installed llama.cpp can offload)."""
    defaults = LoadParams()
    return {
        name: _control(name, getattr(defaults, name), spec.kind, spec.minimum, spec.maximum, spec.description)
        for name, spec in LOAD_SPECS.items()
        if name != "seed" and (gpu_offload or name != "n_gpu_layers")
    }


def parse_stop_lines(text: str) -> tuple[str, ...]:
    """Stop strings from a textbox, one per line, with \\n and \\t escapes (never evaluated)."""
    out = []
    for line in (text or "").splitlines():
        if line:
            out.append(line.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\"))
    return tuple(out)


def sampling_from_values(names: list[str], values: list[Any]) -> SamplingParams:
    """SamplingParams from control values in `names` order (raises SettingsError when invalid)."""
    raw = dict(zip(names, values, strict=False))
    raw["stop"] = parse_stop_lines(raw.get("stop", ""))
    for name, spec in SAMPLING_SPECS.items():
        if raw.get(name) is None:
            raw.pop(name, None)
        elif spec.kind is int:
            raw[name] = int(raw[name])
    return SamplingParams().with_overrides(raw)


def load_from_values(names: list[str], values: list[Any]) -> LoadParams:
    """LoadParams from control values in `names` order."""
    raw = {name: int(value) for name, value in zip(names, values, strict=False) if value is not None}
    return LoadParams(**raw)
