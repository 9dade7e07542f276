"""How the SDK reaches the studio: its local API over HTTP, with the bearer token.

Standard library only, so the SDK works in any Python on this computer (a program's process, a
notebook's kernel) without installing anything. Blocking HTTP runs in worker threads; streams
arrive as an async iterator of JSON lines.

Where the API is: `CHAIN_STUDIO_API_URL` (set for programs the studio starts), else the page's
default address. The token: `CHAIN_STUDIO_API_TOKEN`, else the `api_token` file in the studio's
data folder (readable by its owner only)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any, AsyncIterator, Sequence, Union

URL_ENV = "CHAIN_STUDIO_API_URL"
TOKEN_ENV = "CHAIN_STUDIO_API_TOKEN"
DEFAULT_URL = "http://127.0.0.1:7860"
DEMO_MODEL_FILE = "chain-studio-demo.gguf"
STREAM_TIMEOUT_SECONDS = 600.0


def sample_fields(max_len: int, temperature: float, nucleus_p: float, stop_tokens: Sequence[Any] | None,
                  stop_strings: Sequence[str] | None, return_attention: bool,
                  allowed_tokens: Sequence[Union[int, str]] | None, disallowed_tokens: Sequence[Union[int, str]] | None,
                  augment_tokens: bool, constraint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sampling fields of an /api/sample body, as both SDK shapes send them; `constraint` holds
    the given ones of choices, regex, json_schema and grammar."""
    return {
        **{name: value for name, value in (constraint or {}).items() if value is not None},
        "max_len": max_len, "temperature": temperature, "nucleus_p": nucleus_p,
        "stop_tokens": list(stop_tokens) if stop_tokens is not None else None,
        "stop_strings": list(stop_strings) if stop_strings is not None else None,
        "return_attention": return_attention,
        "allowed_tokens": list(allowed_tokens) if allowed_tokens is not None else None,
        "disallowed_tokens": list(disallowed_tokens) if disallowed_tokens is not None else None,
        "augment_tokens": augment_tokens,
    }


class SdkError(RuntimeError):
    """The studio refused a request or could not be reached; the message says why."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _token_from_data_folder() -> str:
    try:
        from app.api.token import TOKEN_FILE
        from app.settings import data_dir
    except ImportError:
        return ""
    try:
        return (data_dir() / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class Connection:
    """The studio's API at `base_url` (no trailing /v1), with `token`."""

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.base_url = url[: -len("/v1")] if url.endswith("/v1") else url
        self._token = token or os.environ.get(TOKEN_ENV, "").strip() or _token_from_data_folder()

    def __repr__(self) -> str:  # never the token
        return f"Connection({self.base_url!r})"

    def _request(self, path: str, body: dict[str, Any] | None) -> urllib.request.Request:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method="GET" if body is None else "POST")
        request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        return request

    def _open(self, path: str, body: dict[str, Any] | None) -> Any:
        request = self._request(path, body)
        try:
            return urllib.request.urlopen(request, timeout=STREAM_TIMEOUT_SECONDS)
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SdkError(f"the studio's API at {self.base_url} cannot be reached ({reason}): is the studio "
                           f"running? (set {URL_ENV} to its address)") from None

    def get(self, path: str) -> Any:
        """One GET and its parsed JSON answer (blocking)."""
        with self._open(path, None) as response:
            return json.loads(response.read() or b"null")

    def default_model(self) -> str:
        """The model to use when none is named: the loaded one, else the demo model."""
        listed = self.get("/api/models")
        if listed.get("loaded"):
            return str(listed["loaded"]["id"])
        names = [entry["id"] for entry in listed.get("data", [])]
        if DEMO_MODEL_FILE in names:
            return DEMO_MODEL_FILE
        raise SdkError("no model is loaded and none was named: call select_model(NAME) (or pass model_name); "
                       f"the models folder holds: {', '.join(names) or 'nothing'}", "model")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """One JSON request and its parsed answer (blocking)."""
        with self._open(path, body) as response:
            return json.loads(response.read() or b"null")

    async def apost(self, path: str, body: dict[str, Any]) -> Any:
        """`post` without blocking the event loop."""
        return await asyncio.to_thread(self.post, path, body)

    async def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The JSON lines of a streamed answer, as they come. Leaving the loop early (or cancelling
        the task) closes the connection, which ends the generation on the studio's side."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        closed = threading.Event()
        holder: dict[str, Any] = {}

        def read() -> None:
            try:
                response = self._open(path, body)
                holder["response"] = response
                with response:
                    for raw in response:
                        if closed.is_set():
                            break
                        if raw.strip():
                            loop.call_soon_threadsafe(queue.put_nowait, json.loads(raw))
            except BaseException as error:  # handed to the reader, who raises it
                if not closed.is_set():
                    loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, StopAsyncIteration())

        thread = threading.Thread(target=read, name="chain-studio-sdk-stream", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, StopAsyncIteration):
                    return
                if isinstance(item, BaseException):
                    raise item
                if item.get("type") == "error":
                    error = item.get("error") or {}
                    raise SdkError(str(error.get("message", "the studio reported an error")), error.get("param"))
                yield item
        finally:
            closed.set()
            response = holder.get("response")
            if response is not None:
                try:
                    response.close()  # the studio sees the disconnect and stops generating
                except Exception:  # already closed by the reader thread
                    pass


def _refusal(error: urllib.error.HTTPError) -> SdkError:
    try:
        body = json.loads(error.read() or b"null")
        detail = body["error"]
        return SdkError(str(detail.get("message")), detail.get("param"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return SdkError(f"the studio answered HTTP {error.code}")

