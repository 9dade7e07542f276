"""JupyterLab on the code folder, from venvs/jupyter: one server per studio process, on 127.0.0.1,
behind a random token, and quiet (no news feed, no update check, no extension searches on PyPI, no
question about news and no "Build Recommended" dialog).

Option names are those of jupyter_server 2 / JupyterLab 4 (`--help-all` of jupyterlab 4.6.6): the
token is `IdentityProvider.token` (`ServerApp.token` is deprecated), and the news feed is switched
off on the server by `LabApp.news_url=None`. The page's own questions come from elsewhere, so they
are answered in a Jupyter config folder the studio writes (`lab_folder()`, on JUPYTER_CONFIG_PATH):

* "Would you like to get notified about official Jupyter news?" is asked while the setting
  `@jupyterlab/apputils-extension:notification` `fetchNews` is "none" (its default), whatever the
  server does; `labconfig/default_setting_overrides.json` makes the default "false" and
  `checkForUpdates` false (a person can still change both under Settings).
* "Build Recommended" is offered when the page config says a build is available and should be
  checked (`buildAvailable`, `buildCheck`) and the app folder holds a source extension the build
  lacks (dash installs one, `dash-jupyterlab.tgz`). This JupyterLab is never rebuilt (offline, no
  Node.js; its extensions are prebuilt), so `labconfig/page_config.json` turns both off.

Notebooks can use the studio's SDK at once (`from app.sdk import *`): the server, and so its kernels,
get the API's address and token and the studio's code on the import path (read-only in the sandbox).

Kernels: JupyterLab offers one, `chain-studio-lab`, the default, started by kernel_boot.py with the
environment and limits of the chains' kernels (`KernelSpecManager.allowed_kernelspecs` hides the
plain `python3` and the studio's two internal kernelspecs, which would all look alike). Its display
name says whether it runs in the sandbox: the whole server runs in it where there is one, so every
kernel it starts does, with the network (a browser must reach the server), as the chains' code
does when "offline code" is off. Where there is none (no bubblewrap, macOS, Windows), it is as
unsandboxed as the chains' code is there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from app import settings
from app.core.errors import CodeExecutionError
from app.execution.apps import background_environment, free_local_port, http_status, log_tail, sandboxed_command
from app.execution.kernel import BOOT_SCRIPT, code_python
from app.execution.processes import kill_tree, new_session_kwargs
from app.execution.sandbox import sandbox_status
from app.spawn import on_spawner_thread

POLL_SECONDS = 0.25
LOG_NAME = "jupyterlab.log"
LAB_KERNEL_NAME = "chain-studio-lab"
SANDBOXED_DISPLAY_NAME = "Python 3 (Chain Studio sandbox, like the chains' code)"
UNSANDBOXED_DISPLAY_NAME = "Python 3 (Chain Studio, unsandboxed)"
# Defaults of JupyterLab settings, by plugin (see the module docstring).
SETTING_DEFAULTS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
PAGE_CONFIG = {"buildAvailable": False, "buildCheck": False}


def lab_folder() -> Path:
    """The studio's Jupyter folders for JupyterLab, in the data folder (not in the install, which
    may be read-only): `config/` (on JUPYTER_CONFIG_PATH) and `data/` (on JUPYTER_PATH)."""
    return settings.data_dir() / "runtime" / "jupyterlab"


def lab_kernelspec() -> dict[str, object]:
    """JupyterLab's kernel: the chains' kernel (kernel_boot.py in venvs/jupyter), interrupted by a
    signal (the server starts it directly, inside the sandbox when there is one), named for what it
    is here."""
    return {
        "argv": [str(code_python()), str(BOOT_SCRIPT), "-f", "{connection_file}"],
        "display_name": SANDBOXED_DISPLAY_NAME if sandbox_status().available else UNSANDBOXED_DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def write_lab_folder() -> Path:
    """Write (or refresh) the settings, page config and kernelspec in `lab_folder()`; returns it."""
    folder = lab_folder()
    for relative, content in (
        ("config/labconfig/default_setting_overrides.json", SETTING_DEFAULTS),
        ("config/labconfig/page_config.json", PAGE_CONFIG),
        (f"data/kernels/{LAB_KERNEL_NAME}/kernel.json", lab_kernelspec()),
    ):
        path = folder / relative
        text = json.dumps(content, indent=2)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return folder


class JupyterLab:
    """The studio's JupyterLab server: start it (once), give its URL, stop it with its kernels."""

    def __init__(self, sdk_environment: Callable[[], dict[str, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._url: str | None = None
        # The studio's API address and token, so notebooks can use the SDK (app/sdk) at once.
        self._sdk_environment = sdk_environment

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
            folder, cwd = write_lab_folder(), workdir or settings.code_dir()
            command = [
                str(code_python()), "-m", "jupyterlab", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",  # the port we checked, or a clear failure
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={cwd}",
                "--ServerApp.open_browser=False",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
                f"--KernelSpecManager.allowed_kernelspecs={LAB_KERNEL_NAME}",
                f"--MappingKernelManager.default_kernel_name={LAB_KERNEL_NAME}",
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                # jupyter_server refuses root; the studio (and so the code) already runs as root here
                command.append("--allow-root")
            env = background_environment(cwd)
            env["JUPYTER_CONFIG_PATH"] = str(folder / "config")
            env["JUPYTER_PATH"] = str(folder / "data")
            readable = [folder]
            sdk = self._sdk_environment() if self._sdk_environment is not None else {}
            if sdk:
                # Notebooks are the person's own code (the chains' code runs in other kernels):
                # they get the API's address and token, and the studio's code (read-only) to import
                # the SDK from.
                env.update(sdk)
                env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(settings.PROJECT_ROOT)])
                readable.append(settings.PROJECT_ROOT / "app")
            with open(self.log_path, "wb") as log:
                process = on_spawner_thread(
                    subprocess.Popen, sandboxed_command(command, cwd, readable=readable), cwd=str(cwd), env=env,
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
