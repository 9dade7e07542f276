"""The page's controls map onto the engine's settings by name: a renamed field fails here."""

import dataclasses

from app.core.chain import ChainSpec
from app.core.sampling import LOAD_SPECS, SAMPLING_SPECS
from app.ui.panels.settings_panel import OPTION_LABELS
from app.ui.sampling_controls import build_load_controls, build_sampling_controls


def test_every_run_option_is_a_chain_setting() -> None:
    fields = {f.name for f in dataclasses.fields(ChainSpec)}
    assert set(OPTION_LABELS) <= fields
    assert {"feedback", "cumulative", "single_response", "shuffle", "reset", "random_params",
            "feed_reasoning"} == set(OPTION_LABELS)


def test_every_generation_and_loading_setting_has_a_control() -> None:
    import gradio as gr

    with gr.Blocks():
        assert set(build_sampling_controls()) == set(SAMPLING_SPECS) | {"stop", "order"}
        assert set(build_load_controls()) == set(LOAD_SPECS) - {"seed", "n_gpu_layers"}
        assert set(build_load_controls(gpu_offload=True)) == set(LOAD_SPECS) - {"seed"}


def test_the_gpu_offload_setting_stays_hidden_on_a_cpu_build(studio_home) -> None:
    """This machine's llama.cpp is a CPU build: no "offload layers" control on the page."""
    from app.models.capabilities import gpu_offload_supported
    from app.services import Services
    from app.ui.app import build_ui

    assert gpu_offload_supported() is False
    services = Services(models_dir=studio_home / "models")
    try:
        page = build_ui(services)
    finally:
        services.close()
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    assert "setting-n_ctx" in ids and "setting-n_gpu_layers" not in ids


def test_building_the_page_writes_nothing_into_the_install_folder(studio_home) -> None:
    """Gradio writes a .pyi next to the module of any component subclass: the page must have none."""
    from app.services import Services
    from app.settings import PROJECT_ROOT
    from app.ui.app import build_ui

    services = Services(models_dir=studio_home / "models")
    try:
        build_ui(services)
    finally:
        services.close()
    assert sorted(PROJECT_ROOT.glob("app/**/*.pyi")) == []


def test_a_new_n_ctx_with_no_model_loaded_leaves_the_status_as_it_is(tmp_path) -> None:
    """The note used to be "" then, and when it arrived after a quick run it erased the run's last status."""
    from types import SimpleNamespace

    from app.core.sampling import LoadParams
    from app.ui.panels.settings_panel import n_ctx_changed

    nothing = SimpleNamespace(backend=SimpleNamespace(loaded=None))
    assert n_ctx_changed(nothing, 1_000_000) == {"__type__": "update"}  # type: ignore[arg-type]
    loaded = SimpleNamespace(backend=SimpleNamespace(loaded=SimpleNamespace(load=LoadParams(n_ctx=4096))))
    assert n_ctx_changed(loaded, 8192) == "n_ctx is now 8192: the model reloads at the next start."  # type: ignore[arg-type]
    assert n_ctx_changed(loaded, 4096) == {"__type__": "update"}  # type: ignore[arg-type]
