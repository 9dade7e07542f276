"""`python -m app serve`: the API without the page, on the same safe defaults as the page (loopback
unless --listen with a password, Host/Origin checked, the bearer token on every route).

Prints one `{"type": "serving", "url", "token_file"}` line on stdout when the server accepts
connections (the token itself is never printed: it is in the token file, 0600)."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, AsyncIterator

from app import settings
from app.cli import emit, warn_if_journal_was_replaced
from app.core.errors import ChainStudioError


def cmd_serve(port: int, listen: bool, password: str | None, models_dir: str | None,
              allowed_hosts: list[str] | None = None, allowed_origins: list[str] | None = None) -> int:
    """Serve the API until interrupted."""
    import uvicorn
    from starlette.middleware import Middleware

    from app.api.app import standalone_app
    from app.api.token import TOKEN_ENV, api_token, token_path
    from app.services import start_services
    from app.ui.request_guard import RequestGuard
    from app.ui.server import allowed_hosts as hosts_for
    from app.ui.server import api_origins, bind_address, check_port

    try:
        host = bind_address(listen, password or None)
        check_port(host, port)
        token = api_token()
        services = start_services(settings.models_dir(models_dir))
    except ChainStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warn_if_journal_was_replaced(services.journal)
    app = standalone_app(services, token)
    app.user_middleware.insert(0, Middleware(RequestGuard, port=port, extra_hosts=hosts_for(listen, allowed_hosts or ()),
                                             api_origins=api_origins(allowed_origins or ())))

    @contextlib.asynccontextmanager
    async def announce(_app: Any) -> AsyncIterator[None]:
        import os

        emit({"type": "serving", "url": f"http://{host}:{port}/v1",
              "token_file": None if os.environ.get(TOKEN_ENV) else str(token_path())})
        sys.stdout.flush()
        yield

    app.router.lifespan_context = announce
    print(f"Chain Studio API on http://{host}:{port} (models folder {services.models_dir}); Ctrl-C stops it",
          file=sys.stderr)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        services.close()
    return 0
