"""The page's controls map onto the engine's settings by name: a renamed field fails here."""

import dataclasses

from app.core.chain import ChainSpec
from app.core.sampling import LOAD_SPECS, SAMPLING_SPECS
from app.ui.app import OPTION_LABELS
from app.ui.sampling_controls import build_load_controls, build_sampling_controls


def test_every_run_option_is_a_chain_setting() -> None:
    fields = {f.name for f in dataclasses.fields(ChainSpec)}
    assert set(OPTION_LABELS) <= fields
    assert {"feedback", "cumulative", "single_response", "shuffle", "reset", "random_params"} == set(OPTION_LABELS)


def test_every_generation_and_loading_setting_has_a_control() -> None:
    import gradio as gr

    with gr.Blocks():
        assert set(build_sampling_controls()) == set(SAMPLING_SPECS) | {"stop", "order"}
        assert set(build_load_controls()) == set(LOAD_SPECS) - {"seed"}
