"""Start the studio's web server with safe defaults.

The studio binds 127.0.0.1 whatever GRADIO_SERVER_NAME or GRADIO_SHARE say; `--listen` (all
interfaces) is refused without a password. Share links, monitoring, MCP and browser-side run
history are off. Every request passes `request_guard.RequestGuard` first (Host/Origin checks,
throttled password attempts).
"""

from __future__ import annotations

import hmac
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable

import psutil

from app.core.errors import ChainStudioError
from app.services import Services
from app.ui.page_js import PAGE_JS
from app.ui.panels.files_panel import MAX_UPLOAD
from app.ui.request_guard import RequestGuard

if TYPE_CHECKING:
    import uvicorn

LOCAL_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
PASSWORD_ENV = "CHAIN_STUDIO_PASSWORD"
ALLOWED_HOSTS_ENV = "CHAIN_STUDIO_ALLOWED_HOSTS"  # more names the page may be reached by, comma separated


def bind_address(listen: bool, password: str | None) -> str:
    """The address to bind; refuses to listen on the network without a password."""
    if not listen:
        return LOCAL_HOST
    if not password:
        raise ChainStudioError(
            f"--listen makes the studio reachable from other machines: give --password "
            f"(or set {PASSWORD_ENV})"
        )
    return ALL_INTERFACES


def password_check(password: str) -> Callable[[str, str], bool]:
    """Gradio auth callback accepting any user name with the right password."""

    def check(_username: str, given: str) -> bool:
        return hmac.compare_digest(given.encode(), password.encode())

    return check


def allowed_hosts(listen: bool, extra: Iterable[str] = ()) -> list[str]:
    """Host names the studio answers to besides the loopback ones: the names the person added, and
    with `--listen` this computer's name and addresses (how other machines reach it)."""
    names = [name.strip() for name in extra if name and name.strip()]
    names += [n.strip() for n in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if n.strip()]
    if listen:
        names += [socket.gethostname(), socket.getfqdn()]
        for addresses in psutil.net_if_addrs().values():
            names += [a.address.split("%")[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6)]
    return list(dict.fromkeys(names))


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind the port before anything is served, so a busy port is one clear message."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ChainStudioError(f"port {port} cannot be used ({exc.strerror}): choose another with --port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def launch(
    services: Services,
    port: int,
    listen: bool = False,
    password: str | None = None,
    open_browser: bool = True,
    extra_hosts: Iterable[str] = (),
) -> None:
    """Serve the studio until interrupted.

    The page is mounted on the studio's own ASGI app so that `RequestGuard` stands in front of
    every route Gradio adds (page, queue, uploads, files) and of any route the studio adds."""
    password = password or os.environ.get(PASSWORD_ENV) or None
    host = bind_address(listen, password)
    sock = _listening_socket(host, port)
    import gradio as gr  # imports gradio: only when the UI is really started
    import uvicorn
    from fastapi import FastAPI
    from starlette.middleware import Middleware

    from app.ui.app import build_ui

    page = build_ui(services)
    page.queue(default_concurrency_limit=1)
    server_app = FastAPI(
        middleware=[Middleware(RequestGuard, port=port, extra_hosts=allowed_hosts(listen, extra_hosts))],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    gr.mount_gradio_app(
        server_app,
        page,
        path="",
        server_name=host,
        server_port=port,
        auth=password_check(password) if password else None,
        enable_monitoring=False,
        mcp_server=False,
        run_history=False,
        ssr_mode=False,
        footer_links=["settings"],
        js=PAGE_JS,
        show_error=True,
        max_file_size=MAX_UPLOAD,
    )
    url = f"http://{LOCAL_HOST}:{port}/"
    server = uvicorn.Server(uvicorn.Config(server_app, log_level="warning", timeout_graceful_shutdown=2))
    if open_browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    print(f"Chain Studio is at {url}" + (" (and on this computer's network addresses)" if listen else ""),
          file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        services.close()


def _open_when_ready(server: "uvicorn.Server", url: str) -> None:
    import webbrowser

    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if server.started:
        webbrowser.open(url)
