"""The studio's front door: every HTTP request and websocket passes here before any route.

Two checks, both in front of the page, the queue, uploads, file routes and any API:

* **Host and Origin (DNS rebinding).** A web page on a name that resolves to 127.0.0.1 reaches the
  studio from the visitor's own browser. Its requests carry that name in `Host` (and in `Origin`),
  so only requests whose `Host` is one of the studio's own names are served: 127.0.0.1, localhost,
  [::1], with `--listen` this computer's addresses and name, plus names the person adds
  (`--allow-host`). An `Origin`, when present, must be the studio itself (an allowed name with the
  studio's port); "null" and other sites are refused. Refusals never carry CORS headers.
* **Origins listed for the API.** A web app the person trusts (`--allow-origin URL`) may call the
  API routes (/v1/…, /api/…) from a browser: its requests pass, get CORS headers naming it, and its
  preflights are answered here. The page, the queue and every other route still refuse it, and
  the API still asks for its token.
* **Password attempts.** With `--listen` the page asks for a password; failed logins from one
  address are counted and, past a few, that address waits before it may try again (the wait
  doubles with each further failure).

Pure ASGI and standard library only, so it wraps whatever app serves the routes.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
LOGIN_PATHS = ("/login", "/login/")
API_PATHS = ("/v1/", "/api/")
CORS_ALLOWED_HEADERS = b"authorization, content-type"
CORS_ALLOWED_METHODS = b"GET, POST, OPTIONS"
FREE_ATTEMPTS = 5  # failed logins from one address before it has to wait
FIRST_WAIT_SECONDS = 30.0
LONGEST_WAIT_SECONDS = 15 * 60.0
FORGET_AFTER_SECONDS = 60 * 60.0  # an address that stopped failing for this long starts afresh


def host_name(value: str) -> str:
    """The name part of a Host header or a URL's netloc, lower case, IPv6 without brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") > 1:  # a bare IPv6 address (no port can be told apart)
        return value
    return value.rsplit(":", 1)[0] if ":" in value else value


def _port_of(netloc: str, default: int | None) -> int | None:
    tail = netloc.rsplit("]", 1)[-1] if netloc.startswith("[") else netloc
    if ":" in tail and tail.count(":") == 1:
        try:
            return int(tail.rsplit(":", 1)[1])
        except ValueError:
            return -1
    return default


def origin_of(text: str) -> str | None:
    """`scheme://host[:port]` of a URL or Origin, lower-case, without a default port; None for
    anything that is not an http(s) origin."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host.lower()}" + ("" if port == default else f":{port}")


def _normal(name: str) -> str:
    """A bare host name or address in one spelling (IPv6 compressed, lower case, no final dot)."""
    name = name.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


@dataclass
class LoginThrottle:
    """Failed password attempts per client address, and how long each must wait."""

    free_attempts: int = FREE_ATTEMPTS
    first_wait: float = FIRST_WAIT_SECONDS
    longest_wait: float = LONGEST_WAIT_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # address -> (count, last)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, address: str) -> float:
        """Seconds `address` must still wait before its next attempt (0: it may try now)."""
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
            now = self.clock()
            if count and now - last > FORGET_AFTER_SECONDS:
                del self._failures[address]
                return 0.0
            if count < self.free_attempts:
                return 0.0
            wait = min(self.longest_wait, self.first_wait * 2 ** (count - self.free_attempts))
            return max(0.0, last + wait - now)

    def failed(self, address: str) -> None:
        with self._lock:
            count, _last = self._failures.get(address, (0, 0.0))
            self._failures[address] = (count + 1, self.clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class RequestGuard:
    """ASGI middleware refusing foreign Host/Origin headers and throttling failed logins."""

    def __init__(self, app: ASGIApp, port: int, extra_hosts: Iterable[str] = (),
                 throttle: LoginThrottle | None = None, api_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.port = port
        self.hosts = {_normal(name) for name in (*LOOPBACK_NAMES, *extra_hosts) if name.strip()}
        self.throttle = throttle or LoginThrottle()
        self.api_origins = {found for found in map(origin_of, api_origins) if found}

    def listed_api_origin(self, headers: dict[str, str], path: str) -> str | None:
        """The request's Origin when it is one listed for the API and the path is an API route."""
        origin = origin_of(headers.get("origin", ""))
        return origin if origin in self.api_origins and path.startswith(API_PATHS) else None

    def refusal(self, headers: dict[str, str], path: str = "/") -> str | None:
        """Why a request with these (lower-case) headers is refused, or None when it is served."""
        host = headers.get("host", "")
        if not host or _normal(host_name(host)) not in self.hosts:
            shown = host or "(none)"
            return (f"Chain Studio refused this request: its Host {shown!r} is not one of the studio's own "
                    f"names (protection against DNS rebinding). Open http://127.0.0.1:{self.port}/ "
                    "instead, or start the studio with --allow-host NAME to accept another name.")
        origin = headers.get("origin")
        if origin is not None and not self._is_own_origin(origin) and not self.listed_api_origin(headers, path):
            return (f"Chain Studio refused this request: it came from another site ({origin!r}); "
                    "only the studio's own page may use it (--allow-origin URL lets a web app you trust call the API).")
        return None

    def _is_own_origin(self, origin: str) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, files) and anything odd
        default = 443 if parts.scheme == "https" else 80
        return (_normal(host_name(parts.netloc)) in self.hosts
                and _port_of(parts.netloc, default) == self.port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        reason = self.refusal(headers, path)
        if reason is not None:
            await _refuse(scope, receive, send, 403, reason)
            return
        listed = self.listed_api_origin(headers, path) if scope["type"] == "http" else None
        if listed is not None:
            await self._cross_origin(listed, scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in LOGIN_PATHS:
            await self._login(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _cross_origin(self, origin: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A listed origin's API request: its preflight answered here, its response given CORS headers."""
        cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if scope.get("method") == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [
                *cors, (b"access-control-allow-headers", CORS_ALLOWED_HEADERS),
                (b"access-control-allow-methods", CORS_ALLOWED_METHODS), (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": [*kept, *cors]}
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait_for(address)
        if wait > 0:
            await _refuse(scope, receive, send, 429,
                          f"Too many wrong passwords: try again in {wait:.0f} s.",
                          extra_headers=[(b"retry-after", str(int(wait) + 1).encode())])
            return
        status: dict[str, int] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        code = status.get("code", 0)
        if 200 <= code < 400:
            self.throttle.succeeded(address)
        elif code in (400, 401, 403):
            self.throttle.failed(address)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str,
                  extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await receive()  # the websocket.connect message
        await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
        return
    body = (text + "\n").encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()), *(extra_headers or [])],
    })
    await send({"type": "http.response.body", "body": body})
