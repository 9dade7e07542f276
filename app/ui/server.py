"""Start the studio's web server with safe defaults.

The studio binds 127.0.0.1 whatever GRADIO_SERVER_NAME or GRADIO_SHARE say; `--listen` (all
interfaces) is refused without a password. Share links, monitoring, MCP and browser-side run
history are off.
"""

from __future__ import annotations

import hmac
import os
from typing import Callable

from app.core.errors import ChainStudioError
from app.services import Services
from app.ui.page_js import PAGE_JS
from app.ui.panels.files_panel import MAX_UPLOAD

LOCAL_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
PASSWORD_ENV = "CHAIN_STUDIO_PASSWORD"


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


def launch(
    services: Services,
    port: int,
    listen: bool = False,
    password: str | None = None,
    open_browser: bool = True,
) -> None:
    """Serve the studio until interrupted."""
    password = password or os.environ.get(PASSWORD_ENV) or None
    host = bind_address(listen, password)
    from app.ui.app import build_ui  # imports gradio: only when the UI is really started

    page = build_ui(services)
    page.queue(default_concurrency_limit=1)
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
            show_error=True,
            max_file_size=MAX_UPLOAD,
        )
    finally:
        services.close()
