"""JupyterLab for real: on 127.0.0.1 behind a token, on the code folder, quiet (no news, no update
check, no question about either, no build dialog), offering the chains' kernel only, and stopped
with its kernels. The tests that only look at it share one server."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest

from app.execution import jupyterlab
from app.execution.jupyterlab import LAB_KERNEL_NAME, JupyterLab
from app.execution.kernel import BOOT_SCRIPT, FILE_LIMIT_BYTES, code_python
from app.execution.processes import descendants
from app.execution.sandbox import SandboxStatus, sandbox_status
from tests.execution.test_apps import listening_addresses, wait_gone

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(url: str, method: str = "GET") -> tuple[int, bytes]:
    """Status and body of a request made without any proxy; an HTTP error is a status too."""
    try:
        with _direct.open(urllib.request.Request(url, method=method), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class SharedLab:
    server: JupyterLab
    url: str
    home: Path
    api: httpx.Client  # the server's base URL, its token in the Authorization header, no proxy


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    """One JupyterLab, started as the studio starts it, on a data folder of its own (with
    hello.txt in its code folder), for the tests that do not stop it."""
    home = tmp_path_factory.mktemp("lab-home")
    server = JupyterLab()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHAIN_STUDIO_HOME", str(home))
        env.delenv("CHAIN_STUDIO_MODELS_DIR", raising=False)
        (home / "code").mkdir()
        (home / "code" / "hello.txt").write_text("hi")
        url = server.start()
    base, token = url.split("/lab?token=")
    with httpx.Client(base_url=base, headers={"Authorization": f"token {token}"}, trust_env=False,
                      timeout=30) as api:
        try:
            yield SharedLab(server, url, home, api)
        finally:
            server.stop()


@pytest.fixture
def lab() -> Iterator[JupyterLab]:
    server = JupyterLab()
    yield server
    server.stop()


def page_config(page: str) -> dict[str, Any]:
    """The page config JupyterLab's HTML hands to its front end."""
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert found, page[:500]
    return json.loads(found.group(1))


def test_jupyterlab_listens_on_loopback_behind_a_token(shared: SharedLab) -> None:
    url = shared.url
    parts = urlsplit(url)
    token = parse_qs(parts.query)["token"][0]
    assert (parts.scheme, parts.hostname, parts.path) == ("http", "127.0.0.1", "/lab")
    assert len(token) >= 32
    base = f"http://127.0.0.1:{parts.port}"
    assert request(f"{base}/api/status")[0] == 403
    assert request(f"{base}/api/status?token=wrong-{token}")[0] == 403
    assert request(f"{base}/api/status?token={token}")[0] == 200
    assert request(url)[0] == 200
    assert shared.server.running and shared.server.url == url
    assert listening_addresses(shared.server.pid) == {"127.0.0.1"}

    # the code folder is its root
    status, body = request(f"{base}/api/contents?token={token}")
    assert status == 200
    assert [item["name"] for item in json.loads(body)["content"]] == ["hello.txt"]


def test_jupyterlab_fetches_no_news_and_checks_no_updates(shared: SharedLab) -> None:
    base, token = shared.url.split("/lab?token=")
    assert request(f"{base}/lab/api/news?token={token}") == (200, b'{"news": []}')
    assert request(f"{base}/lab/api/update?token={token}") == (200, b'{"notification": null}')
    page = request(shared.url)[1].decode()
    assert '"news": {"disabled": true}' in page


def test_jupyterlab_asks_nothing_about_news_updates_or_a_build(shared: SharedLab) -> None:
    response = shared.api.get("/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert response.status_code == 200, response.text
    defaults = {name: prop.get("default") for name, prop in response.json()["schema"]["properties"].items()}
    # "none" would make the page ask "Would you like to get notified about official Jupyter news?"
    assert defaults["fetchNews"] == "false"
    assert defaults["checkForUpdates"] is False
    config = page_config(shared.api.get("/lab").text)
    assert (config["buildCheck"], config["buildAvailable"]) == (False, False)  # no "Build Recommended"
    assert (shared.home / "runtime" / "jupyterlab" / "config" / "labconfig").is_dir()  # the data folder's


def test_jupyterlab_offers_only_the_chains_kernel_named_for_what_it_is(shared: SharedLab) -> None:
    specs = shared.api.get("/api/kernelspecs").json()
    assert specs["default"] == LAB_KERNEL_NAME
    assert list(specs["kernelspecs"]) == [LAB_KERNEL_NAME]  # no plain python3, no look-alikes
    spec = specs["kernelspecs"][LAB_KERNEL_NAME]["spec"]
    sandboxed = sandbox_status().available
    assert spec["display_name"] == ("Python 3 (Chain Studio sandbox, like the chains' code)" if sandboxed
                                    else "Python 3 (Chain Studio, unsandboxed)")
    assert spec["argv"][:2] == [str(code_python()), str(BOOT_SCRIPT)]

    # a kernel started as the launcher starts one (no name: the default) is the chains' kernel:
    # kernel_boot.py with their limits, inside the server's sandbox when there is one
    response = shared.api.post("/api/kernels", json={})
    assert response.status_code == 201, response.text
    kernel = response.json()
    assert kernel["name"] == LAB_KERNEL_NAME
    try:
        if sys.platform.startswith("linux"):
            boot = wait_for_kernel_boot(shared.server.pid)
            assert boot.rlimit(psutil.RLIMIT_FSIZE) == (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES)
            own_namespace = os.readlink(f"/proc/{boot.pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
            assert own_namespace == sandboxed
    finally:
        assert shared.api.delete(f"/api/kernels/{kernel['id']}").status_code == 204


def wait_for_kernel_boot(server_pid: int, timeout: float = 30.0) -> psutil.Process:
    """The kernel_boot.py process below the server, once it has set its file-size limit (it sets
    its limits before ipykernel starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in descendants(server_pid):
            try:
                if str(BOOT_SCRIPT) in proc.cmdline() and proc.rlimit(psutil.RLIMIT_FSIZE)[0] != psutil.RLIM_INFINITY:
                    return proc
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no kernel_boot.py with its limits below the server within {timeout:g} s")


def test_without_the_sandbox_the_kernel_says_it_is_unsandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jupyterlab, "sandbox_status", lambda: SandboxStatus(False, "no bubblewrap"))
    assert jupyterlab.lab_kernelspec()["display_name"] == "Python 3 (Chain Studio, unsandboxed)"


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
