"""The SDK in a real notebook kernel (ipykernel from venvs/jupyter, as JupyterLab runs it): cells
await prompt() and sample() at their top level, the context lasts from cell to cell, and a
SampleResult and a context display as the token view (text/html from _repr_html_, no widget)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from app.execution.sandbox import code_environment
from app.installer import venv_python
from app.settings import PROJECT_ROOT
from tests.api.conftest import RunningApi


def reply_of(messages: Callable[[], dict[str, Any]], message_id: str) -> dict[str, Any]:
    """Read kernel messages until the request `message_id` is done: its execute_result data, or
    its error."""
    found: dict[str, Any] = {}
    while True:
        message = messages()
        if message.get("parent_header", {}).get("msg_id") != message_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "execute_result":
            found = content["data"]
        elif kind == "error":
            found = {"error": "\n".join(content["traceback"])}
        elif kind == "status" and content["execution_state"] == "idle":
            return found


def run_cell(client: Any, code: str) -> dict[str, Any]:
    """Execute `code` through a jupyter_client kernel client."""
    return reply_of(lambda: client.get_iopub_msg(timeout=120), client.execute(code))


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


def execute_over_websocket(base: str, token: str, kernel_id: str, code: str) -> dict[str, Any]:
    """Run `code` in a JupyterLab kernel as the notebook page does (the kernel's websocket);
    its execute_result data, or its error."""
    import uuid

    from websockets.sync.client import connect

    ws_base = base.replace("http://", "ws://")
    with connect(f"{ws_base}/api/kernels/{kernel_id}/channels?token={token}", open_timeout=60) as channel:
        message_id = uuid.uuid4().hex
        channel.send(json.dumps({
            "header": {"msg_id": message_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        return reply_of(lambda: json.loads(channel.recv(timeout=120)), message_id)


def test_jupyterlab_from_the_code_tab_has_the_sdk_ready(api: RunningApi, tmp_path: Path,
                                                        monkeypatch: Any) -> None:
    import httpx

    from app.execution.jupyterlab import JupyterLab

    monkeypatch.setenv("CHAIN_STUDIO_HOME", str(tmp_path / "lab-home"))
    lab = JupyterLab(sdk_environment=lambda: {"CHAIN_STUDIO_API_URL": api.base,
                                              "CHAIN_STUDIO_API_TOKEN": api.token})
    try:
        base, token = lab.start(wait=120).split("/lab?token=")
        with httpx.Client(base_url=base, headers={"Authorization": f"token {token}"}, trust_env=False,
                          timeout=60) as server:
            kernel = server.post("/api/kernels", json={}).json()
            shown = execute_over_websocket(base, token, kernel["id"], (
                "from app.sdk import *\nselect_model('chain-studio-demo')\nawait prompt('hi')\n"
                "await sample(temperature=0, max_len=3)"))
        assert "error" not in shown, shown.get("error")
        assert "cs-token" in shown["text/html"] and "Hello" in shown["text/html"]
    finally:
        lab.stop()
