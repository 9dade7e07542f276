"""HTTP to one OpenAI-compatible engine (httpx): its model list and streamed completions, with
every failure turned into one `EngineError` sentence that names the engine and never its key.

Redirects are followed only within the engine's own scheme, host and port: the key goes to its
engine and nowhere else. A 429 is retried once, after the Retry-After the server asked for (capped);
a stream that sends nothing for the engine's idle timeout is dead."""

from __future__ import annotations

import email.utils
import json
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urljoin, urlsplit

import httpx

from app.core.errors import EngineError
from app.engines.config import EngineConfig

CONNECT_TIMEOUT = 10.0
LIST_TIMEOUT = 30.0
MAX_REDIRECTS = 3
MAX_RETRY_AFTER = 60.0
DEFAULT_RETRY_AFTER = 1.0
SHOWN_ERROR_CHARS = 300


@dataclass(frozen=True)
class EngineModel:
    """One model an engine lists."""

    id: str
    owned_by: str = ""


class StreamCut(EngineError):
    """The stream ended without its end marker (the connection dropped, or the idle timeout passed)."""


class EngineClient:
    """Talks to one engine. Thread-safe: concurrent answers share the connection pool."""

    def __init__(self, config: EngineConfig, key: str = "") -> None:
        self.config = config
        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(connect=CONNECT_TIMEOUT, read=config.idle_timeout, write=30.0, pool=None)
        self._http = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def models(self) -> list[EngineModel]:
        """The engine's models (`GET /models`)."""
        with self._open("GET", "/models", None, LIST_TIMEOUT, None) as response:
            try:
                data = json.loads(response.read())
                entries = data["data"] if isinstance(data, dict) else data
                return [EngineModel(str(e["id"]), str(e.get("owned_by") or "")) for e in entries]
            except (ValueError, KeyError, TypeError) as exc:
                raise EngineError(f"engine {self.config.name}: its model list is not an OpenAI model list "
                                  f"({type(exc).__name__}); is {self.config.url} the /v1 address?") from None

    def stream(self, path: str, body: dict[str, Any], cancelled: threading.Event) -> Iterator[dict[str, Any]]:
        """POST `body` to `path` with `stream: true` and yield each server-sent event's JSON; ends at
        `[DONE]`. Raises StreamCut when the stream ends early or goes silent; returns quietly when
        `cancelled` is set (the response is closed)."""
        with self._open("POST", path, body, None, cancelled) as response:
            try:
                for line in response.iter_lines():
                    if cancelled.is_set():
                        return
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    try:
                        event = json.loads(payload)
                    except ValueError:
                        raise EngineError(f"engine {self.config.name} sent a stream line that is not JSON: "
                                          f"{payload[:80]!r}") from None
                    if isinstance(event, dict) and event.get("error"):
                        raise EngineError(f"engine {self.config.name} reported an error mid-answer: "
                                          f"{_error_text(event)}")
                    yield event
            except httpx.ReadTimeout:
                raise StreamCut(f"engine {self.config.name} sent nothing for {self.config.idle_timeout:g} s "
                                "(its idle timeout); the answer was cut") from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.StreamError) as exc:
                if cancelled.is_set():
                    return
                raise StreamCut(f"the stream from engine {self.config.name} was cut mid-answer "
                                f"({_reason(exc)})") from None
        if not cancelled.is_set():
            raise StreamCut(f"the stream from engine {self.config.name} ended without its end marker")

    def _open(self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None,
              cancelled: threading.Event | None) -> "_Response":
        """Send a request, following same-origin redirects and one 429; raise EngineError for any
        status but 2xx."""
        url = self.config.url + path
        retried = False
        for _ in range(MAX_REDIRECTS + 2):
            response = self._send(method, url, body, timeout)
            status = response.status_code
            if 300 <= status < 400 and response.headers.get("location"):
                response.close()
                target = urljoin(url, response.headers["location"])
                if not _same_origin(url, target):
                    raise EngineError(f"engine {self.config.name} redirected to {urlsplit(target).netloc or target!r}, "
                                      "another host: refused (the key is sent only to its engine)")
                url = target
                continue
            if status == 429 and not retried:
                wait = _retry_after(response.headers.get("retry-after"))
                response.close()
                retried = True
                if cancelled is not None and cancelled.wait(wait):
                    raise EngineError(f"engine {self.config.name}: stopped while waiting to retry")
                if cancelled is None:
                    time.sleep(wait)
                continue
            if status >= 400:
                raise self._status_error(response, retried, body)
            return _Response(response)
        raise EngineError(f"engine {self.config.name} redirected more than {MAX_REDIRECTS} times")

    def _send(self, method: str, url: str, body: dict[str, Any] | None, timeout: float | None) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)}
        try:
            request = self._http.build_request(method, url, json=body, **extra)
            return self._http.send(request, stream=True)
        except httpx.ConnectTimeout:
            raise EngineError(f"engine {self.config.name} ({self.config.url}) is unreachable: no answer to the "
                              f"connection within {CONNECT_TIMEOUT:g} s") from None
        except httpx.ConnectError as exc:
            if _is_tls(exc):
                raise EngineError(f"TLS failure talking to engine {self.config.name} ({self.config.url}): "
                                  f"{_reason(exc)}") from None
            raise EngineError(f"engine {self.config.name} ({self.config.url}) is unreachable: {_reason(exc)}") from None
        except httpx.TimeoutException:
            raise EngineError(f"engine {self.config.name} did not answer within {timeout or self.config.idle_timeout:g} s"
                              ) from None
        except httpx.HTTPError as exc:
            raise EngineError(f"engine {self.config.name}: {_reason(exc)}") from None

    def _status_error(self, response: httpx.Response, retried: bool, body: dict[str, Any] | None) -> EngineError:
        try:
            detail = _error_text(json.loads(response.read()))
        except (ValueError, httpx.HTTPError):
            detail = ""
        finally:
            response.close()
        status = response.status_code
        said = f": {detail}" if detail else ""
        name = self.config.name
        model = (body or {}).get("model")
        if status in (401, 403):
            return EngineError(f"engine {name} refused the request (HTTP {status}{said}); check its API key")
        if status == 404 and model:
            return EngineError(f"engine {name} has no model {model!r} (HTTP 404{said})")
        if status == 404:
            return EngineError(f"engine {name}: {response.request.url.path} not found (HTTP 404); "
                               "the URL must go up to and including /v1")
        if status == 429:
            return EngineError(f"engine {name} is rate limiting (HTTP 429{said}), still after one retry")
        if status >= 500:
            return EngineError(f"engine {name} failed (HTTP {status}{said})")
        return EngineError(f"engine {name} refused the request (HTTP {status}{said})")


class _Response:
    """A streamed response, closed on leaving the `with` block (also when its reader stops early)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> httpx.Response:
        return self.response

    def __exit__(self, *exc: object) -> None:
        self.response.close()


def _same_origin(a: str, b: str) -> bool:
    first, second = urlsplit(a), urlsplit(b)
    return (first.scheme, first.hostname, first.port) == (second.scheme, second.hostname, second.port)


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), within bounds."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        seconds = parsed.timestamp() - time.time() if parsed else DEFAULT_RETRY_AFTER
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _error_text(data: Any) -> str:
    """The message in an error body ({"error": {"message"}}, {"error": "…"}, {"detail": …})."""
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = str(error) if error is not None else ""
    else:
        text = str(data)
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_ERROR_CHARS else text[: SHOWN_ERROR_CHARS - 1] + "…"


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "CERTIFICATE" in str(seen).upper():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    """The innermost readable reason of a network error."""
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not text:
        text = str(cause).strip()
        cause = cause.__cause__ or cause.__context__
    return (text or type(exc).__name__)[:SHOWN_ERROR_CHARS]
