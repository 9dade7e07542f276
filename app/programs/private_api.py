"""The local API served for one headless program run (`python -m app program`): on a free
loopback port, with a token made for this run only (so the saved API token never reaches the
program), Host/Origin checked like every studio server. Stopped when the run ends."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from typing import Any

from app.core.errors import ChainStudioError
from app.services import Services

LOOPBACK = "127.0.0.1"


class PrivateApi:
    """`with PrivateApi(services) as api:` serves the API at `api.url` with `api.token`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.token = "cs-run-" + secrets.token_urlsafe(32)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((LOOPBACK, 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PrivateApi":
        import uvicorn
        from starlette.middleware import Middleware

        from app.api.app import standalone_app
        from app.ui.request_guard import RequestGuard

        app = standalone_app(self.services, self.token)
        app.user_middleware.insert(0, Middleware(RequestGuard, port=self.port))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
                                        name="program-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ChainStudioError("the studio's API for the program could not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
