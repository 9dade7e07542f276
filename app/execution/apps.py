"""Web apps the generated code starts (Streamlit, Dash, Gradio, Flask, http.server), run in the
background with venvs/jupyter's python instead of blocking the kernel forever.

Each app gets its own script and log under `<code_dir>/apps/`, its own session (so one kill reaches
everything it started) and a marker in its environment, inherited by every process it starts, so
"Close Python" also finds the ones that left its process tree (a daemon that forked twice).

Servers listen on this computer only, whatever the code asks: a `sitecustomize` module placed first
on the app's PYTHONPATH rewrites every socket bind to a non-loopback address ("", "0.0.0.0", "::",
a LAN address) to the loopback one. Code commonly writes `app.run(host="0.0.0.0")` or
`HTTPServer(("", 8000), ...)`, and the studio promises a local-only default.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

import psutil

from app import settings
from app.core.code_apps import AppKind
from app.core.errors import CodeExecutionError
from app.execution.kernel import ANSI_CODES, code_python, kernel_environment
from app.execution.processes import kill_tree, new_session_kwargs, pid_alive
from app.execution.sandbox import sandbox_command, sandbox_status
from app.spawn import on_spawner_thread

MARKER_ENV = "CHAIN_STUDIO_APP_ID"
STUDIO_PID_ENV = "CHAIN_STUDIO_STUDIO_PID"  # read by the sitecustomize below
POLL_SECONDS = 0.2
LOG_TAIL_LINES = 20
# The local addresses a server prints when it is up; 0.0.0.0 is reported as 127.0.0.1 (the bind is
# forced to loopback anyway). ANSI colours are removed before matching.
_LOCAL_URL = re.compile(r"http://(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d{1,5})(/[^\s'\"<>\x1b]*)?")
_SCRIPT_NAME = re.compile(r"app-(\d+)\.py")

LOOPBACK_SITE = '''\
"""Written by Chain Studio (app/execution/apps.py): sockets bind to loopback addresses only."""
import ipaddress as _ipaddress
import socket as _socket

_LOOPBACK = {_socket.AF_INET: "127.0.0.1"}
if hasattr(_socket, "AF_INET6"):
    _LOOPBACK[_socket.AF_INET6] = "::1"
_original_bind = _socket.socket.bind


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return _ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _loopback_bind(self, address):
    loopback = _LOOPBACK.get(self.family)
    if loopback and isinstance(address, tuple) and address and isinstance(address[0], str) \\
            and not _is_loopback(address[0]):
        # IPv6 keeps its flow info; a scope id belongs to the old address, not to ::1
        address = (loopback, address[1]) + tuple(address[2:3]) + ((0,) if len(address) > 3 else ())
    return _original_bind(self, address)


_socket.socket.bind = _loopback_bind


def _watch_studio(pid):
    """End this process when the studio that started it is gone (killed, crashed): nothing the
    code started outlives the studio."""
    import os
    import time

    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except OSError:
            pass


def _start_watch():
    import os
    import threading

    pid = os.environ.get("CHAIN_STUDIO_STUDIO_PID", "")
    if os.name == "posix" and pid.isdigit():  # on Windows os.kill(pid, 0) would kill, not probe
        threading.Thread(target=_watch_studio, args=(int(pid),), daemon=True, name="studio watch").start()


_start_watch()
'''


@dataclass(frozen=True)
class RunningApp:
    """One app started in the background. `url` is None when it printed no local URL that answered
    in time (it may still be starting, or serve on a port it never prints); `message` says why."""

    kind: AppKind
    pid: int
    url: str | None
    log_path: Path
    script_path: Path
    started_at: float
    message: str = ""


@dataclass
class _Entry:
    app: RunningApp
    process: subprocess.Popen
    marker: str


class BackgroundApps:
    """The apps started by this studio process: start them, list the living ones, stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        # markers of every app ever started: an app whose first process ended may have left others
        self._markers: set[str] = set()

    def start(self, code: str, kind: AppKind, workdir: Path | None = None,
              env: dict[str, str] | None = None, wait: float = 60.0) -> RunningApp:
        """Start `code` as a `kind` app and wait up to `wait` seconds until a local URL it prints
        answers. Raises CodeExecutionError (with the end of its log) when the app exits before that;
        after `wait` the app keeps running and is returned with url=None."""
        python = code_python()
        folder = settings.code_dir() / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            number = 1 + max((int(m.group(1)) for p in folder.iterdir()
                              if (m := _SCRIPT_NAME.fullmatch(p.name))), default=0)
            script = folder / f"app-{number}.py"
            script.write_text(code, encoding="utf-8")
        log_path = script.with_suffix(".log")
        marker = uuid.uuid4().hex
        command, app_env = _launch(kind, python, script)
        cwd = workdir or settings.code_dir()
        full_env = background_environment(cwd)
        full_env.update(app_env)
        full_env.update(env or {})
        full_env[MARKER_ENV] = marker
        command = sandboxed_command(command, cwd)
        with open(log_path, "wb") as log:
            process = on_spawner_thread(
                subprocess.Popen, command, cwd=str(cwd), env=full_env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **new_session_kwargs(),
            )
        started = RunningApp(kind, process.pid, None, log_path, script, time.time())
        with self._lock:
            self._entries[process.pid] = _Entry(started, process, marker)
            self._markers.add(marker)
        try:
            url, message = _wait_until_served(process, log_path, wait, kind.label)
        except BaseException:
            # a crash, or an interrupted start: either way nothing of it may stay behind
            self.stop(process.pid)
            raise
        app = RunningApp(kind, process.pid, url, log_path, script, started.started_at, message)
        with self._lock:
            if process.pid in self._entries:
                self._entries[process.pid].app = app
        return app

    def running(self) -> list[RunningApp]:
        """The apps whose process still runs, oldest first."""
        with self._lock:
            for pid, entry in list(self._entries.items()):
                if entry.process.poll() is not None or not pid_alive(pid):
                    del self._entries[pid]
            return [entry.app for entry in self._entries.values()]

    def stop(self, pid: int) -> bool:
        """Stop the app started as `pid` and everything it started; False when `pid` is not one
        of this object's apps (other processes are never touched)."""
        with self._lock:
            entry = self._entries.pop(pid, None)
        if entry is None:
            return False
        alive = entry.process.poll() is None
        _end(entry.process, {entry.marker})
        return alive

    def stop_all(self) -> int:
        """Stop every app (and whatever any of them left behind); returns how many were running."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            markers = set(self._markers)
        stopped = 0
        for entry in entries:
            stopped += entry.process.poll() is None
            kill_tree(entry.process.pid)
            _reap(entry.process)
        _kill_marked(markers)
        with self._lock:
            self._markers -= markers
        return stopped


def _launch(kind: AppKind, python: Path, script: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment for one kind of app."""
    if kind is AppKind.STREAMLIT:
        return [str(python), "-m", "streamlit", "run", str(script),
                "--server.address", "127.0.0.1", "--server.port", str(free_local_port()),
                "--server.headless", "true", "--browser.gatherUsageStats", "false"], {}
    if kind is AppKind.GRADIO:
        return [str(python), str(script)], {
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(free_local_port()),
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
    if kind is AppKind.DASH:
        # Dash's run() defaults to these variables: a free port instead of a busy 8050
        return [str(python), str(script)], {"HOST": "127.0.0.1", "PORT": str(free_local_port())}
    return [str(python), str(script)], {}


def background_environment(cwd: Path) -> dict[str, str]:
    """The environment of programs the studio starts for the code (apps, JupyterLab): the kernel's,
    plus the sitecustomize that keeps servers on loopback and ends them with the studio, and the
    working folder on the import path (as in the kernel: the code may import its own files)."""
    env = kernel_environment()
    site_dir = _loopback_site(settings.data_dir() / "runtime")  # outside the code folder people browse
    env["PYTHONPATH"] = os.pathsep.join([str(site_dir), str(cwd)])
    if not sandbox_status().available:
        # In the sandbox the studio's process cannot be seen (and bubblewrap ends everything in
        # the sandbox when the studio dies); outside it, the sitecustomize watches the studio.
        env[STUDIO_PID_ENV] = str(os.getpid())
    return env


def sandboxed_command(command: list[str], cwd: Path, readable: Sequence[Path] = ()) -> list[str]:
    """`command` inside the sandbox where there is one (with the network: a browser must reach an
    app), the code folder and `cwd` writable, `readable` folders (e.g. in the hidden data folder)
    read-only; unchanged where there is none."""
    if not sandbox_status().available:
        return command
    site_dir = settings.data_dir() / "runtime" / ".site"
    return sandbox_command(command, writable=[settings.code_dir(), cwd], readable=[site_dir, *readable], workdir=cwd)


def _loopback_site(folder: Path) -> Path:
    """The folder holding the loopback-only sitecustomize module (written when missing or stale)."""
    site_dir = folder / ".site"
    path = site_dir / "sitecustomize.py"
    if not path.exists() or path.read_text(encoding="utf-8") != LOOPBACK_SITE:
        site_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(LOOPBACK_SITE, encoding="utf-8")
    return site_dir


def _wait_until_served(process: subprocess.Popen, log_path: Path, wait: float,
                       label: str) -> tuple[str | None, str]:
    """Poll the log for local URLs and ask each until one answers; raise when the process ends."""
    deadline = time.monotonic() + wait
    offset, carry = 0, ""
    candidates: dict[str, None] = {}  # printed URLs in order, without repeats
    while True:
        with open(log_path, "rb") as log:
            log.seek(offset)
            chunk = log.read()
        offset += len(chunk)
        # the end of the last chunk is kept so a URL split across two reads is still found
        text = carry + ANSI_CODES.sub("", chunk.decode("utf-8", errors="replace"))
        carry = text[-300:]
        for match in _LOCAL_URL.finditer(text):
            candidates[f"http://127.0.0.1:{match.group(1)}{match.group(2) or '/'}"] = None
        for url in candidates:
            if http_status(url) is not None:
                return url, ""
        if process.poll() is not None:
            raise CodeExecutionError(
                f"the {label} stopped before serving (exit code {process.returncode}); "
                f"end of its output:\n{log_tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            if candidates:
                return None, (f"the {label} printed {next(iter(candidates))} but it did not answer "
                              f"within {wait:g} s; it is still running (log: {log_path})")
            return None, (f"the {label} printed no local address within {wait:g} s; it is still "
                          f"running (log: {log_path})")
        time.sleep(POLL_SECONDS)


def _end(process: subprocess.Popen, markers: set[str]) -> None:
    kill_tree(process.pid)
    _reap(process)
    _kill_marked(markers)


def _reap(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _kill_marked(markers: set[str]) -> None:
    """Kill every process of ours whose environment carries one of `markers` (orphans included)."""
    if not markers:
        return
    for proc in psutil.process_iter():
        try:
            marked = proc.environ().get(MARKER_ENV) in markers
        except (psutil.Error, OSError):
            continue  # gone, or another user's process
        if marked:
            kill_tree(proc.pid)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, without ANSI colours (empty when it does not exist)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - 16_384))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(ANSI_CODES.sub("", text).rstrip().splitlines()[-lines:])


def free_local_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; a race with another program that
    takes it before our server does is possible but rare, and shows as a clear start error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer; following it could lead off this computer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's API
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status a GET of `url` gets (any status counts: the server answered), or None when
    nothing answers. Only http://127.0.0.1 URLs are asked, never through a proxy."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise ValueError(f"only http://127.0.0.1 URLs are checked, not {url}")
    try:
        with _opener.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, HTTPException, OSError):
        return None

