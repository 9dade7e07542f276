"""JupyterLab on the code folder, from venvs/jupyter: one server per studio process, on 127.0.0.1,
behind a random token, and quiet (no news feed, no update check, no extension searches on PyPI).

Option names are those of jupyter_server 2 / JupyterLab 4 (`--help-all` of jupyterlab 4.6.6): the
token is `IdentityProvider.token` (`ServerApp.token` is deprecated), and the news feed is switched
off by `LabApp.news_url=None`, which also tells the page not to ask about news.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

from app import settings
from app.core.errors import CodeExecutionError
from app.execution.apps import background_environment, free_local_port, http_status, log_tail, sandboxed_command
from app.execution.kernel import code_python
from app.execution.processes import kill_tree, new_session_kwargs
from app.spawn import on_spawner_thread

POLL_SECONDS = 0.25
LOG_NAME = "jupyterlab.log"


class JupyterLab:
    """The studio's JupyterLab server: start it (once), give its URL, stop it with its kernels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._url: str | None = None

    @property
    def running(self) -> bool:
        """True while the server process runs."""
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str | None:
        """The URL to open (token included) while the server runs, else None."""
        return self._url if self.running else None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def log_path(self) -> Path:
        """Where the server's output goes (the token is masked there by jupyter_server)."""
        return settings.logs_dir() / LOG_NAME

    def start(self, workdir: Path | None = None, wait: float = 60.0) -> str:
        """Start JupyterLab on `workdir` (the code folder by default) and return its URL once the
        server answers; when it already runs, return the same URL. Raises CodeExecutionError when it
        exits or does not answer within `wait` seconds (it is stopped then)."""
        with self._lock:
            if self.running and self._url:
                return self._url
            self._process, self._url = None, None
            port, token = free_local_port(), secrets.token_urlsafe(24)
            command = [
                str(code_python()), "-m", "jupyterlab", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",  # the port we checked, or a clear failure
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={workdir or settings.code_dir()}",
                "--ServerApp.open_browser=False",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                # jupyter_server refuses root; the studio (and so the code) already runs as root here
                command.append("--allow-root")
            with open(self.log_path, "wb") as log:
                process = on_spawner_thread(
                    subprocess.Popen, sandboxed_command(command, workdir or settings.code_dir()), cwd=str(workdir or settings.code_dir()),
                    env=background_environment(workdir or settings.code_dir()),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    **new_session_kwargs(),
                )
            status_url = f"http://127.0.0.1:{port}/api/status?token={token}"
            try:
                self._wait_until_answering(process, status_url, wait)
            except BaseException:
                kill_tree(process.pid)
                process.wait(timeout=5)
                raise
            self._process = process
            self._url = f"http://127.0.0.1:{port}/lab?token={token}"
            return self._url

    def stop(self) -> bool:
        """Stop the server and everything it started (kernels, terminals); False when none ran."""
        with self._lock:
            process, self._process, self._url = self._process, None, None
        if process is None:
            return False
        alive = process.poll() is None
        kill_tree(process.pid)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return alive

    def _wait_until_answering(self, process: subprocess.Popen, status_url: str, wait: float) -> None:
        deadline = time.monotonic() + wait
        while http_status(status_url) != 200:
            if process.poll() is not None:
                raise CodeExecutionError(
                    f"JupyterLab stopped while starting (exit code {process.returncode}); "
                    f"end of its output:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() >= deadline:
                raise CodeExecutionError(
                    f"JupyterLab did not answer within {wait:g} s; end of its output:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(POLL_SECONDS)
