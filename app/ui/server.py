"""Start the studio's web server with safe defaults.

The studio binds 127.0.0.1 whatever GRADIO_SERVER_NAME or GRADIO_SHARE say; `--listen` (all
interfaces) is refused without a password. Share links, monitoring, MCP and browser-side run
history are off. Every request passes `request_guard.RequestGuard` first (Host/Origin checks,
throttled password attempts); the API (app/api) is served from the same server and asks for its
bearer token.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import socket
from typing import Any, AsyncIterator, Callable, Iterable

import psutil

from app.core.errors import ChainStudioError
from app.services import Services
from app.ui.page_js import PAGE_CSS, PAGE_JS
from app.ui.panels.files_panel import MAX_UPLOAD
from app.ui.request_guard import RequestGuard

LOCAL_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
PASSWORD_ENV = "CHAIN_STUDIO_PASSWORD"
ALLOWED_HOSTS_ENV = "CHAIN_STUDIO_ALLOWED_HOSTS"  # more names the page may be reached by, comma separated
API_ORIGINS_ENV = "CHAIN_STUDIO_API_ORIGINS"  # web apps that may call the API from a browser, comma separated


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


def api_origins(extra: Iterable[str] = ()) -> list[str]:
    """Origins allowed to call the API from a browser: the ones given, then $CHAIN_STUDIO_API_ORIGINS."""
    given = [origin.strip() for origin in extra if origin and origin.strip()]
    given += [o.strip() for o in os.environ.get(API_ORIGINS_ENV, "").split(",") if o.strip()]
    return list(dict.fromkeys(given))


def check_port(host: str, port: int) -> None:
    """A busy port is one clear message, before anything is built."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the server will: a port left in TIME_WAIT by the last run is free, a listening one is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ChainStudioError(f"port {port} cannot be used ({exc.strerror}): choose another with --port") from exc


def guard_outermost(server_app: Any) -> None:
    """Move RequestGuard in front of every middleware Gradio added (its CORS layer would otherwise
    answer preflights and echo foreign origins before the guard sees them). Starlette builds the
    middleware stack on first use; clearing it makes the next request build it in the new order."""
    stack = list(server_app.user_middleware)
    guards = [m for m in stack if m.cls is RequestGuard]
    server_app.user_middleware = guards + [m for m in stack if m.cls is not RequestGuard]
    server_app.middleware_stack = None


def studio_lifespan(services: Services, api_token: str) -> Callable[[Any], Any]:
    """The server's start-up hook: adds the API's routes ahead of the page's and puts the guard
    outermost, before uvicorn accepts the first connection (reordering after launch() returned
    left a moment in which a request could pass Gradio's CORS layer first)."""

    @contextlib.asynccontextmanager
    async def lifespan(server_app: Any) -> AsyncIterator[None]:
        from app.api.app import install

        install(server_app, services, api_token)
        guard_outermost(server_app)
        yield

    return lifespan


def launch(
    services: Services,
    port: int,
    listen: bool = False,
    password: str | None = None,
    open_browser: bool = True,
    extra_hosts: Iterable[str] = (),
    extra_origins: Iterable[str] = (),
) -> None:
    """Serve the studio until interrupted; every request passes `RequestGuard` first."""
    password = password or os.environ.get(PASSWORD_ENV) or None
    host = bind_address(listen, password)
    check_port(host, port)
    from starlette.middleware import Middleware

    from app.api.token import api_token
    from app.ui.app import build_ui  # imports gradio: only when the UI is really started
    from app.ui.i18n import I18N

    services.local_port = port
    page = build_ui(services)
    page.queue(default_concurrency_limit=1)
    guard = Middleware(RequestGuard, port=port, extra_hosts=allowed_hosts(listen, extra_hosts),
                       api_origins=api_origins(extra_origins))
    try:
        page.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=open_browser,
            auth=password_check(password) if password else None,
            enable_monitoring=False,
            mcp_server=False,
            run_history=False,
            ssr_mode=False,
            strict_cors=True,
            footer_links=["settings"],
            js=PAGE_JS,
            css=PAGE_CSS,
            i18n=I18N,
            show_error=True,
            max_file_size=MAX_UPLOAD,
            app_kwargs={"middleware": [guard], "lifespan": studio_lifespan(services, api_token())},
            prevent_thread_lock=True,
        )
        page.block_thread()
    finally:
        services.close()


