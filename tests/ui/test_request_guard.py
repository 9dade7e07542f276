"""RequestGuard's rules, on a minimal ASGI app: which Host and Origin headers pass, and how failed
logins are throttled."""

from __future__ import annotations

import socket

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.core.errors import ChainStudioError
from app.ui.request_guard import LoginThrottle, RequestGuard, host_name
from app.ui.server import check_port

PORT = 7860


async def _ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("served")


async def _login(request: Request) -> PlainTextResponse:
    form = await request.form()
    return PlainTextResponse("in" if form.get("password") == "right" else "no",
                             status_code=200 if form.get("password") == "right" else 400)


def _client(extra_hosts: tuple[str, ...] = (), throttle: LoginThrottle | None = None) -> TestClient:
    inner = Starlette(routes=[Route("/", _ok, methods=["GET", "POST"]), Route("/login", _login, methods=["POST"])])
    return TestClient(RequestGuard(inner, port=PORT, extra_hosts=extra_hosts, throttle=throttle),
                      base_url=f"http://127.0.0.1:{PORT}")


def test_host_names_are_read_without_port_or_brackets() -> None:
    assert host_name("127.0.0.1:7860") == "127.0.0.1"
    assert host_name("[::1]:7860") == "::1"
    assert host_name("LocalHost") == "localhost"
    assert host_name("evil.example:7860") == "evil.example"


def test_loopback_names_pass_and_others_do_not() -> None:
    client = _client()
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "127.0.0.1"):
        assert client.get("/", headers={"Host": host}).text == "served", host
    for host in ("evil.example:7860", "127.0.0.1.evil.example", "localhost.evil.example:7860", "0.0.0.0:7860"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 403, host
        assert "--allow-host" in response.text


def test_added_names_pass() -> None:
    client = _client(extra_hosts=("studio.lan", "192.168.1.20"))
    assert client.get("/", headers={"Host": "studio.lan:7860"}).status_code == 200
    assert client.get("/", headers={"Host": "192.168.1.20:7860"}).status_code == 200
    assert client.get("/", headers={"Host": "other.lan:7860"}).status_code == 403


def test_origin_must_be_the_studio_itself() -> None:
    client = _client()
    assert client.post("/", headers={"Origin": "http://127.0.0.1:7860"}).status_code == 200
    assert client.post("/", headers={"Origin": "http://localhost:7860"}).status_code == 200
    for origin in ("http://127.0.0.1:8000", "http://evil.example:7860", "null", "https://127.0.0.1",
                   "chrome-extension://abc"):
        assert client.post("/", headers={"Origin": origin}).status_code == 403, origin


def test_failed_logins_make_an_address_wait_longer_each_time() -> None:
    now = [1000.0]
    throttle = LoginThrottle(free_attempts=3, first_wait=30, longest_wait=100, clock=lambda: now[0])
    client = _client(throttle=throttle)
    for _ in range(3):
        assert client.post("/login", data={"password": "wrong"}).status_code == 400
    waiting = client.post("/login", data={"password": "right"})
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "31"
    now[0] += 31
    assert client.post("/login", data={"password": "wrong"}).status_code == 400  # a fourth failure
    assert throttle.wait_for("testclient") == 60  # the wait doubles
    now[0] += 61
    assert client.post("/login", data={"password": "right"}).text == "in"
    assert throttle.wait_for("testclient") == 0  # a success clears the count


def test_a_busy_port_is_one_clear_message() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(ChainStudioError, match="choose another with --port"):
            check_port("127.0.0.1", busy.getsockname()[1])


def _api_client(api_origins: tuple[str, ...]) -> TestClient:
    async def api(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("api", headers={"Access-Control-Allow-Origin": "*"})  # replaced by the guard's

    inner = Starlette(routes=[Route("/", _ok), Route("/v1/models", api), Route("/api/sample", api, methods=["POST"])])
    return TestClient(RequestGuard(inner, port=PORT, api_origins=api_origins), base_url=f"http://127.0.0.1:{PORT}")


def test_a_listed_origin_may_call_the_api_routes_only() -> None:
    from app.ui.request_guard import origin_of

    assert origin_of("HTTPS://App.Example:443/path") == "https://app.example"
    assert origin_of("http://app.example:8080") == "http://app.example:8080"
    assert origin_of("null") is None and origin_of("file:///x") is None
    client = _api_client(("https://app.example/",))
    listed, other = {"Origin": "https://app.example"}, {"Origin": "https://evil.example"}
    response = client.get("/v1/models", headers=listed)
    assert response.text == "api" and response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers.get_list("access-control-allow-origin") == ["https://app.example"]
    preflight = client.options("/api/sample", headers={**listed, "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert client.post("/api/sample", headers=listed).text == "api"
    # the page stays closed to it, and an origin not listed is refused everywhere
    refused = client.get("/", headers=listed)
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    for path in ("/v1/models", "/"):
        response = client.get(path, headers=other)
        assert response.status_code == 403 and "access-control-allow-origin" not in response.headers
        assert "--allow-origin" in response.text
