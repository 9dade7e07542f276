"""JupyterLab for real: on 127.0.0.1 behind a token, on the code folder, quiet, and stopped with its
kernels."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from app import settings
from app.execution.jupyterlab import JupyterLab
from app.execution.processes import descendants
from tests.execution.test_apps import listening_addresses, wait_gone

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(url: str, method: str = "GET") -> tuple[int, bytes]:
    """Status and body of a request made without any proxy; an HTTP error is a status too."""
    try:
        with _direct.open(urllib.request.Request(url, method=method), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def lab() -> Iterator[JupyterLab]:
    server = JupyterLab()
    yield server
    server.stop()


def test_jupyterlab_listens_on_loopback_behind_a_token(lab: JupyterLab) -> None:
    (settings.code_dir() / "hello.txt").write_text("hi")
    url = lab.start()

    parts = urlsplit(url)
    token = parse_qs(parts.query)["token"][0]
    assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/lab")
    assert len(token) >= 32
    base = f"http://127.0.0.1:{parts.port}"
    assert request(f"{base}/api/status")[0] == 403
    assert request(f"{base}/api/status?token=wrong-{token}")[0] == 403
    assert request(f"{base}/api/status?token={token}")[0] == 200
    assert request(url)[0] == 200
    assert lab.running and lab.url == url
    assert listening_addresses(lab.pid) == {"127.0.0.1"}

    # the code folder is its root
    status, body = request(f"{base}/api/contents?token={token}")
    assert status == 200
    assert [item["name"] for item in json.loads(body)["content"]] == ["hello.txt"]


def test_jupyterlab_fetches_no_news_and_checks_no_updates(lab: JupyterLab) -> None:
    url = lab.start()
    base, token = url.split("/lab?token=")
    assert request(f"{base}/lab/api/news?token={token}") == (200, b'{"news": []}')
    assert request(f"{base}/lab/api/update?token={token}") == (200, b'{"notification": null}')
    page = request(url)[1].decode()
    assert '"news": {"disabled": true}' in page


def test_starting_twice_gives_the_same_server_and_stop_ends_it_with_its_kernels(lab: JupyterLab) -> None:
    url = lab.start()
    pid = lab.pid
    assert lab.start() == url and lab.pid == pid

    base, token = url.split("/lab?token=")
    status, body = request(f"{base}/api/kernels?token={token}", method="POST")
    assert status == 201, body
    below = [p.pid for p in descendants(pid)]
    assert below, "the kernel runs below the server"

    assert lab.stop() is True
    assert wait_gone([pid, *below]) == []
    assert not lab.running and lab.url is None and lab.pid is None
    assert lab.stop() is False
