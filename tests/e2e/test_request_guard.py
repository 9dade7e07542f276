"""The running studio refuses requests for foreign host names and from other sites (DNS rebinding),
on every route, and throttles wrong passwords with --listen. Real server, real HTTP client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.e2e.conftest import RunningStudio, launch_studio

ROUTES = [
    ("GET", "/"),
    ("GET", "/config"),
    ("POST", "/gradio_api/queue/join"),
    ("POST", "/gradio_api/upload"),
    ("GET", "/gradio_api/file=/etc/hostname"),
    ("GET", "/gradio_api/info"),
]


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStudio]:
    with launch_studio(tmp_path_factory.mktemp("studio-home")) as running:
        yield running


def _send(studio: RunningStudio, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=f"http://127.0.0.1:{studio.port}", timeout=30) as client:
        return client.request(method, path, headers=headers, json={} if method == "POST" else None)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_rebinding_host_is_refused_on_every_route(studio: RunningStudio, method: str, path: str) -> None:
    evil = f"evil.example:{studio.port}"
    response = _send(studio, method, path, {"Host": evil, "Origin": f"http://{evil}"})
    assert response.status_code == 403
    assert "DNS rebinding" in response.text
    assert "access-control-allow-origin" not in response.headers


def test_the_guard_is_outermost_from_the_first_request(tmp_path: Path) -> None:
    """Requests sent from the moment the port opens are refused without CORS headers (the guard
    was once moved in front of Gradio's CORS layer only after the server had started)."""
    import subprocess
    import sys
    import time

    from tests.e2e.conftest import PROJECT_ROOT, free_port, stop_process_group

    port = free_port()
    evil = f"evil.example:{port}"
    env = dict(os.environ, CHAIN_STUDIO_HOME=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-m", "app", "ui", "--port", str(port), "--no-browser"],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    answers: list[httpx.Response] = []
    try:
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while len(answers) < 20 and time.monotonic() < deadline and process.poll() is None:
                try:
                    answers.append(client.get("/", headers={"Host": evil, "Origin": f"http://{evil}"}))
                except httpx.TransportError:
                    time.sleep(0.01)
    finally:
        stop_process_group(process)
    assert len(answers) == 20
    assert all(a.status_code == 403 and "access-control-allow-origin" not in a.headers for a in answers)


def test_a_preflight_from_a_rebinding_page_gets_no_cors_grant(studio: RunningStudio) -> None:
    evil = f"evil.example:{studio.port}"
    response = _send(studio, "OPTIONS", "/gradio_api/queue/join", {
        "Host": evil, "Origin": f"http://{evil}", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "file://"])
def test_a_foreign_origin_is_refused_even_with_the_right_host(studio: RunningStudio, origin: str) -> None:
    response = _send(studio, "POST", "/gradio_api/queue/join", {"Origin": origin})
    assert response.status_code == 403
    assert "another site" in response.text
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_studio_s_own_names_and_origin_are_served(studio: RunningStudio, host: str) -> None:
    own = f"{host}:{studio.port}"
    assert _send(studio, "GET", "/", {"Host": own}).status_code == 200
    assert _send(studio, "GET", "/config", {"Host": own, "Origin": f"http://{own}"}).status_code == 200


def test_allow_host_adds_a_name(tmp_path: Path) -> None:
    with launch_studio(tmp_path, extra_args=("--allow-host", "studio.lan")) as running:
        named = _send(running, "GET", "/", {"Host": f"studio.lan:{running.port}"})
        other = _send(running, "GET", "/", {"Host": f"other.lan:{running.port}"})
    assert named.status_code == 200
    assert other.status_code == 403


def test_wrong_passwords_are_throttled_with_listen(tmp_path: Path) -> None:
    with launch_studio(tmp_path, extra_args=("--listen", "--password", "right-one")) as running:
        with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=30) as client:
            wrong = [client.post("/login", data={"username": "me", "password": f"guess-{i}"}).status_code
                     for i in range(5)]
            locked = client.post("/login", data={"username": "me", "password": "guess-6"})
            right_while_locked = client.post("/login", data={"username": "me", "password": "right-one"})
    assert all(code in (400, 401) for code in wrong), wrong
    assert locked.status_code == 429 and "try again in" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert right_while_locked.status_code == 429  # no guessing goes on during the wait
