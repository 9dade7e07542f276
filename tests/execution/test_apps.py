"""Background apps for real: servers started from venvs/jupyter, found through the URL they print,
kept on 127.0.0.1, and stopped with everything they started."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from typing import Iterator

import psutil
import pytest

from app import settings
from app.core.code_apps import AppKind, detect_app
from app.core.errors import CodeExecutionError
from app.execution.apps import BackgroundApps, RunningApp
from app.execution.processes import descendants, pid_alive
from app.execution.sandbox import sandbox_status
from tests.execution.conftest import host_pids

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, bytes]:
    """GET without any proxy (the environment may name one)."""
    with _direct.open(url, timeout=10) as response:
        return response.status, response.read()


def listening_addresses(pid: int) -> set[str]:
    """The local IPs every process of the tree under `pid` listens on (short-lived helpers that end
    while they are being looked at are skipped)."""
    found = set()
    for proc in [psutil.Process(pid), *descendants(pid)]:
        try:
            connections = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            if proc.pid == pid:
                raise
            continue
        found.update(conn.laddr.ip for conn in connections if conn.status == psutil.CONN_LISTEN)
    return found


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """The pids still alive after up to `timeout` seconds (a generous wait, not a speed limit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


@pytest.fixture
def apps() -> Iterator[BackgroundApps]:
    started = BackgroundApps()
    yield started
    started.stop_all()


SERVER_WITH_CHILDREN = '''\
import json, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
child = subprocess.Popen(sleeper)
detached = subprocess.Popen(sleeper, start_new_session=True)
# a daemon: the process that starts it exits at once, so it is no longer below the app
launcher = subprocess.run(
    [sys.executable, "-c",
     "import subprocess as s, sys; print(s.Popen(sys.argv[1:], start_new_session=True, "
     "stdout=s.DEVNULL, stderr=s.DEVNULL).pid)",
     *sleeper],
    capture_output=True, text=True, check=True)
with open("children.json", "w") as f:
    json.dump({"child": child.pid, "detached": detached.pid, "orphan": int(launcher.stdout)}, f)


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = HTTPServer(("", 0), Hello)  # every interface, as models often write
print(f"Serving on http://0.0.0.0:{server.server_port}/")
server.serve_forever()
'''


def test_http_server_is_found_served_on_loopback_and_stopped_with_all_it_started(
        apps: BackgroundApps) -> None:
    kind = detect_app(SERVER_WITH_CHILDREN)
    assert kind is AppKind.HTTP_SERVER
    app = apps.start(SERVER_WITH_CHILDREN, kind)

    assert app.url is not None and app.url.startswith("http://127.0.0.1:") and app.url.endswith("/")
    assert get(app.url) == (200, b"hello from the app")
    assert listening_addresses(app.pid) == {"127.0.0.1"}  # asked for "", got loopback only
    assert app.script_path == settings.code_dir() / "apps" / "app-1.py"
    assert app.script_path.read_text(encoding="utf-8") == SERVER_WITH_CHILDREN
    assert app.log_path == app.script_path.with_suffix(".log")
    assert apps.running() == [app]

    inner = json.loads((settings.code_dir() / "children.json").read_text())
    below = {p.pid for p in descendants(app.pid)}
    child, detached = host_pids([inner["child"], inner["detached"]], app.pid)
    assert {child, detached} <= below
    if sandbox_status().available:
        # in the sandbox the orphan is re-parented to the sandbox's own init, so still below
        (orphan,) = host_pids([inner["orphan"]], app.pid)
    else:
        orphan = inner["orphan"]
        assert orphan not in below
    assert pid_alive(orphan)

    assert apps.stop_all() == 1
    assert wait_gone([app.pid, child, detached, orphan]) == []
    assert apps.running() == []


BINDS_EVERYWHERE = '''\
import json, socket
from http.server import HTTPServer, SimpleHTTPRequestHandler

bound = {}
for host in ["", "0.0.0.0", "10.1.2.3", "127.0.0.2", "localhost"]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    bound[host] = sock.getsockname()[0]
for host in ["::", "::1"]:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind((host, 0, 0, 0))
    bound[host] = sock.getsockname()[0]
print(json.dumps(bound))
server = HTTPServer(("0.0.0.0", 0), SimpleHTTPRequestHandler)
print(f"http://0.0.0.0:{server.server_port}")
server.serve_forever()
'''


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this computer")
def test_every_bind_of_the_app_goes_to_a_loopback_address(apps: BackgroundApps) -> None:
    app = apps.start(BINDS_EVERYWHERE, AppKind.HTTP_SERVER)
    bound = json.loads(app.log_path.read_text().splitlines()[0])
    assert bound == {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "10.1.2.3": "127.0.0.1",
                     "127.0.0.2": "127.0.0.2", "localhost": "127.0.0.1", "::": "::1", "::1": "::1"}


DASH_APP = '''\
from dash import Dash, html

app = Dash(__name__)
app.layout = html.Div([html.H1("Hello from Dash")])

if __name__ == "__main__":
    app.run(host="0.0.0.0", debug=False)
'''


def test_dash_app_serves_its_layout_on_loopback(apps: BackgroundApps) -> None:
    kind = detect_app(DASH_APP)
    assert kind is AppKind.DASH
    app = apps.start(DASH_APP, kind)

    assert app.url is not None and app.url.startswith("http://127.0.0.1:")
    status, body = get(app.url + "_dash-layout")
    assert status == 200
    assert json.loads(body)["props"]["children"][0]["props"]["children"] == "Hello from Dash"
    assert listening_addresses(app.pid) == {"127.0.0.1"}
    assert apps.stop(app.pid) is True
    assert wait_gone([app.pid]) == []


STREAMLIT_APP = '''\
import streamlit as st

st.title("Hello from Streamlit")
'''


def test_streamlit_app_is_started_headless_on_loopback(apps: BackgroundApps) -> None:
    kind = detect_app(STREAMLIT_APP)
    assert kind is AppKind.STREAMLIT
    app = apps.start(STREAMLIT_APP, kind)

    assert app.url is not None and app.url.startswith("http://127.0.0.1:")
    assert get(app.url + "_stcore/health") == (200, b"ok")
    assert listening_addresses(app.pid) == {"127.0.0.1"}
    assert apps.stop_all() == 1
    assert wait_gone([app.pid]) == []


GRADIO_APP = '''\
import gradio as gr

def shout(text):
    return text.upper()

demo = gr.Interface(fn=shout, inputs="text", outputs="text")
demo.launch(server_name="0.0.0.0", share=False)
'''


def test_a_gradio_app_serves_on_a_free_loopback_port(apps: BackgroundApps) -> None:
    app = apps.start(GRADIO_APP, AppKind.GRADIO, wait=120)
    assert app.url is not None and app.url.startswith("http://127.0.0.1:")
    assert app.url != "http://127.0.0.1:7860/"  # not the port the studio itself may hold
    status, body = get(app.url)
    assert status == 200 and b"gradio" in body.lower()


CRASHES_AT_IMPORT = '''\
from flask import Flask
import chain_studio_no_such_module

app = Flask(__name__)
app.run()
'''


def test_app_that_crashes_at_import_raises_with_the_traceback(apps: BackgroundApps) -> None:
    with pytest.raises(CodeExecutionError) as caught:
        apps.start(CRASHES_AT_IMPORT, AppKind.FLASK)
    message = str(caught.value)
    assert message.startswith("the Flask app stopped before serving (exit code 1)")
    assert message.splitlines()[-1] == "ModuleNotFoundError: No module named 'chain_studio_no_such_module'"
    assert apps.running() == []


SILENT_SERVER = '''\
from http.server import HTTPServer, SimpleHTTPRequestHandler
HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler).serve_forever()
'''


def test_app_that_prints_no_url_is_left_running_without_one(apps: BackgroundApps) -> None:
    app = apps.start(SILENT_SERVER, AppKind.HTTP_SERVER, wait=1.0)
    assert app.url is None
    assert app.message == (f"the web server printed no local address within 1 s; it is still running "
                           f"(log: {app.log_path})")
    assert pid_alive(app.pid)
    assert apps.running() == [app]
    assert apps.stop(app.pid) is True
    assert wait_gone([app.pid]) == []
    assert apps.running() == []


def test_stop_refuses_processes_it_did_not_start(apps: BackgroundApps) -> None:
    assert apps.stop(os.getpid()) is False
    assert apps.stop_all() == 0


def test_apps_are_numbered_and_run_in_the_code_folder(apps: BackgroundApps) -> None:
    code = '''\
import os
from http.server import HTTPServer, SimpleHTTPRequestHandler
server = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
print(os.getcwd())
print(f"http://localhost:{server.server_port}")
server.serve_forever()
'''
    first: RunningApp = apps.start(code, AppKind.HTTP_SERVER)
    second = apps.start(code, AppKind.HTTP_SERVER)
    assert [first.script_path.name, second.script_path.name] == ["app-1.py", "app-2.py"]
    assert first.log_path.read_text().splitlines()[0] == str(settings.code_dir())
    assert first.url != second.url and second.url is not None
    assert second.url.startswith("http://127.0.0.1:")  # localhost is reported as 127.0.0.1
    assert [a.pid for a in apps.running()] == [first.pid, second.pid]
    assert apps.stop_all() == 2


def test_apps_end_when_the_studio_is_killed(tmp_path) -> None:
    """A studio killed with SIGKILL cannot stop its apps: they, and the Python processes they
    started (even detached ones), notice and end by themselves."""
    import json
    import signal
    import subprocess
    import sys

    from app.settings import PROJECT_ROOT

    studio = subprocess.Popen(
        [sys.executable, "-c",
         "import time\n"
         "from app.core.code_apps import AppKind\n"
         "from app.execution.apps import BackgroundApps\n"
         "app = BackgroundApps().start(" + repr(SERVER_WITH_CHILDREN) + ", AppKind.HTTP_SERVER)\n"
         "print(app.pid, flush=True)\n"
         "time.sleep(600)\n"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "CHAIN_STUDIO_HOME": str(tmp_path / "home")},
    )
    try:
        app_pid = int(studio.stdout.readline())
        children = json.loads((tmp_path / "home" / "code" / "children.json").read_text())
        if sandbox_status().available:
            pids = [app_pid, *host_pids(list(children.values()), app_pid)]
        else:
            pids = [app_pid, *children.values()]
        assert len(pids) == 4 and all(pid_alive(pid) for pid in pids)
    finally:
        studio.send_signal(signal.SIGKILL)
        studio.wait()
    assert wait_gone(pids) == []
