"""The API served by `python -m app serve` on a fresh data folder, and the real clients that call it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from app.settings import PROJECT_ROOT
from tests.e2e.conftest import free_port, stop_process_group

TOKEN = "cs-test-token-0123456789"


@dataclass
class RunningApi:
    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path
    home: Path
    token: str = TOKEN

    @property
    def v1(self) -> str:
        return f"{self.base}/v1"

    def client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.v1, api_key=self.token, max_retries=0, **kwargs)

    def call(self, method: str, path: str, body: Any = None, token: str | None = TOKEN,
             raw: bytes | None = None) -> tuple[int, Any]:
        """One HTTP request; (status, parsed JSON body)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve_api(home: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningApi]:
    """`python -m app serve` with a known token, stopped afterwards."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "serve.log"
    env = dict(os.environ, CHAIN_STUDIO_HOME=str(home), CHAIN_STUDIO_API_TOKEN=TOKEN, **(extra_env or {}))
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = RunningApi(f"http://127.0.0.1:{port}", process, log, home)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}:\n{running.log_text()[-3000:]}")
            try:
                if running.call("GET", "/v1/models")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer:\n{running.log_text()[-3000:]}")
            time.sleep(0.3)
        yield running
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with serve_api(tmp_path_factory.mktemp("api-home")) as running:
        yield running
