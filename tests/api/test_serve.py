"""`python -m app serve`: its safe defaults (no network without a password) and origins listed for
the API answered by the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from app.settings import PROJECT_ROOT
from tests.api.conftest import TOKEN, serve_api


def test_listen_without_a_password_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHAIN_STUDIO_PASSWORD"}
    done = subprocess.run([sys.executable, "-m", "app", "serve", "--listen", "--port", "1"], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, env=dict(env, CHAIN_STUDIO_HOME=str(tmp_path)), timeout=120)
    assert done.returncode == 2 and "--listen" in done.stderr and "--password" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_a_listed_origin_gets_cors_from_the_api_and_the_token_is_still_needed(tmp_path: Path) -> None:
    with serve_api(tmp_path / "home", extra_env={"CHAIN_STUDIO_API_ORIGINS": "https://app.example"}) as api:
        origin = {"Origin": "https://app.example"}
        preflight = httpx.options(f"{api.v1}/chat/completions", headers={
            **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        without = httpx.get(f"{api.v1}/models", headers=origin)
        assert without.status_code == 401 and without.headers["access-control-allow-origin"] == "https://app.example"
        with_token = httpx.get(f"{api.v1}/models", headers={**origin, "Authorization": f"Bearer {TOKEN}"})
        assert with_token.status_code == 200 and json.loads(with_token.text)["object"] == "list"
        other = httpx.get(f"{api.v1}/models", headers={"Origin": "https://evil.example",
                                                        "Authorization": f"Bearer {TOKEN}"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_a_hugging_face_link_as_model_is_downloaded_with_the_pages_checks(tmp_path: Path) -> None:
    from app.models.demo_model import write_demo_model
    from tests.hub_standin import StandInHub

    hub = StandInHub().start()
    hub.add("studio-tests/demo-GGUF", "demo-from-hub.gguf", write_demo_model(tmp_path / "demo.gguf").read_bytes())
    hub.add("studio-tests/demo-GGUF", "broken.gguf", b"GGUF" + b"\0" * 64, behaviour="wrong")
    link = "https://huggingface.co/studio-tests/demo-GGUF/resolve/main/demo-from-hub.gguf"
    try:
        with serve_api(tmp_path / "home", extra_env={"HF_ENDPOINT": hub.endpoint}) as api:
            reply = api.client().chat.completions.create(model=link, temperature=0,
                                                         messages=[{"role": "user", "content": "hi"}])
            assert reply.model == "demo-from-hub.gguf" and reply.choices[0].message.content == "Hello from the demo model."
            assert (api.home / "models" / "demo-from-hub.gguf").is_file()
            status, refused = api.call("POST", "/v1/completions", {
                "model": "https://huggingface.co/studio-tests/demo-GGUF/resolve/main/broken.gguf", "prompt": "hi"})
            assert status == 502 and refused["error"]["param"] == "model", refused
            assert not (api.home / "models" / "broken.gguf").exists()
            status, refused = api.call("POST", "/v1/completions", {
                "model": "http://huggingface.co/studio-tests/demo-GGUF/resolve/main/demo-from-hub.gguf", "prompt": "hi"})
            assert status == 400 and "plain http is refused" in refused["error"]["message"]
    finally:
        hub.stop()
