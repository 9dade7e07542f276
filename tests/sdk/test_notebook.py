"""The SDK in a real notebook kernel (ipykernel from venvs/jupyter, as JupyterLab runs it): cells
await prompt() and sample() at their top level, the context lasts from cell to cell, and a
SampleResult and a context display as the token view (text/html from _repr_html_, no widget)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app.execution.sandbox import code_environment
from app.installer import venv_python
from app.settings import PROJECT_ROOT
from tests.api.conftest import RunningApi


def run_cell(client: Any, code: str) -> dict[str, Any]:
    """Execute `code`; its execute_result data, or its error."""
    message_id = client.execute(code)
    found: dict[str, Any] = {}
    while True:
        message = client.get_iopub_msg(timeout=120)
        if message["parent_header"].get("msg_id") != message_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "execute_result":
            found = content["data"]
        elif kind == "error":
            found = {"error": "\n".join(content["traceback"])}
        elif kind == "status" and content["execution_state"] == "idle":
            return found


def test_a_notebook_shows_samples_and_contexts_as_the_token_view(api: RunningApi, tmp_path: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = tmp_path / "kernels" / "sdk-notebook"
    spec.mkdir(parents=True)
    env = code_environment({"CHAIN_STUDIO_API_URL": api.base, "CHAIN_STUDIO_API_TOKEN": api.token,
                            "PYTHONPATH": str(PROJECT_ROOT)})
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [str(venv_python("jupyter")), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "SDK test", "language": "python", "env": env}), encoding="utf-8")
    manager = KernelManager(kernel_name="sdk-notebook",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        assert run_cell(client, "from app.sdk import *\nselect_model('chain-studio-demo')\nawait prompt('hi')") != {
            "error": ""}
        shown = run_cell(client, "result = await sample(temperature=0)\nresult")
        assert "error" not in shown, shown.get("error")
        html = shown["text/html"]
        sampled = re.findall(r'data-id="(\d+)">([^<]*)</span>', html)
        assert "".join(text for _, text in sampled) == "Hello from the demo model."
        assert shown["text/plain"].startswith("SampleResult(text='Hello from the demo model.'")
        # the context lasts from cell to cell: prompted tokens (grey) then the sampled ones
        context = run_cell(client, "get_context()")["text/html"]
        assert context.count("background:#e8e8e8") == 3 and "id 107 · prompted" in context
        assert "Hello" in context and "hsl(" in context
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
