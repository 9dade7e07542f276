"""What every API route does with the model: name → file, a turn on the one worker, and a
generation streamed to an async caller that can go away at any moment.

    route (async) --job--> producer thread: turn on the model --> load --> backend.generate
          ^                                   | items via the event loop
          +------------- asyncio.Queue <------+
    the client goes away --> stop is set --> the producer leaves the queue, or closes the
    generation (the worker stops within one token), and releases the turn
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

from fastapi.responses import StreamingResponse

from app.api.errors import ApiError, from_studio_error
from app.api.turns import API_HOLDER
from app.core.backend import LoadedModel
from app.core.errors import ChainStudioError
from app.core.hub_links import looks_like_link
from app.core.sampling import LoadParams
from app.services import Services

T = TypeVar("T")
Job = Callable[[threading.Event], Iterator[T]]
_END = object()
QUEUE_SIZE = 16


class ApiEngine:
    """The API's access to the studio's services (the same backend, journal and turn queue as the
    page's)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # -- models ---------------------------------------------------------------------------------

    def model_files(self) -> list[Path]:
        return self.services.model_files()

    def model_path(self, name: Any, stop: threading.Event | None = None) -> Path:
        """The file a request's `model` names: a GGUF file in the models folder (".gguf" may be left
        out), or a Hugging Face link (downloaded first, with the page's checks). ApiError otherwise."""
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "model is required: the name of a GGUF file in the models folder "
                                "(GET /v1/models lists them) or a Hugging Face link", "model", "model_not_found")
        name = name.strip()
        if looks_like_link(name):
            source = self.services.model_source(self.services.models_dir)
            try:
                return Path(source.resolve(name, lambda _text, _fraction: None,
                                           should_stop=stop.is_set if stop is not None else None))
            except ChainStudioError as exc:
                raise from_studio_error(exc, "model") from exc
        by_name = {path.name: path for path in self.model_files()}
        found = by_name.get(name) or by_name.get(f"{name}.gguf")
        if found is None:
            raise ApiError(404, f"no model named {name!r} in the models folder: GET /v1/models lists them",
                           "model", "model_not_found")
        return found

    def ensure_loaded(self, path: Path) -> LoadedModel:
        """The model at `path` in the worker: kept as it is when it is the loaded one (whatever the
        page loaded it with), else loaded with the default settings (the previous one is released)."""
        backend = self.services.backend
        loaded = backend.loaded
        if loaded is not None and Path(loaded.path) == path.resolve():
            return loaded
        return backend.load(str(path), LoadParams())

    # -- turns ------------------------------------------------------------------------------------

    async def stream(self, job: Job[T]) -> AsyncIterator[T]:
        """Run `job(stop)` on a thread during a turn on the model and yield what it yields. When
        the caller stops iterating (the client went away), `stop` is set: a job still waiting for
        its turn leaves the queue, a running one is closed (and must stop its generation)."""
        loop = asyncio.get_running_loop()
        # Bounded: a client that reads slowly slows the generation down instead of letting it run
        # ahead (and a client that went away is noticed within this many tokens).
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_SIZE)
        stop = threading.Event()

        def put(item: Any) -> None:
            waiting = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    waiting.result(timeout=0.1)
                    return
                except concurrent.futures.TimeoutError:
                    if stop.is_set():  # nobody reads any more
                        waiting.cancel()
                        return

        def produce() -> None:
            try:
                with self.services.run_lock.turn(API_HOLDER, stop.is_set):
                    with contextlib.closing(job(stop)) as items:  # type: ignore[type-var]
                        for item in items:
                            if stop.is_set():
                                break
                            put(item)
            except BaseException as exc:  # noqa: BLE001 (handed to the route, which answers with it)
                put(exc)
            finally:
                put(_END)

        producer = threading.Thread(target=produce, name="api-request", daemon=True)
        producer.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    async def collect(self, job: Job[T], disconnected: Callable[[], Any]) -> list[T]:
        """Everything `job` yields, for a non-streaming answer; stops the job when the client goes
        away (`disconnected`: the request's is_disconnected)."""
        items: list[T] = []

        async def consume() -> None:
            async for item in self.stream(job):
                items.append(item)

        await watching(asyncio.ensure_future(consume()), disconnected)
        return items


    async def started(self, job: Job[T], disconnected: Callable[[], Any]) -> AsyncIterator[T]:
        """Start `job` and wait for its first item, watching the connection meanwhile (a request
        still waiting for its turn leaves the line when its client goes away). Errors before the
        first item are raised here, so a route can still answer them with a status; the returned
        iterator yields the first item and the rest."""
        stream = self.stream(job)
        try:
            head: list[T] = [await watching(asyncio.ensure_future(stream.__anext__()), disconnected)]
        except StopAsyncIteration:
            head = []
        except BaseException:
            await stream.aclose()
            raise

        async def rest() -> AsyncIterator[T]:
            try:
                for item in head:
                    yield item
                if head:
                    async for item in stream:
                        yield item
            finally:
                await stream.aclose()

        return rest()


async def watching(task: "asyncio.Future[T]", disconnected: Callable[[], Any]) -> T:
    """`task`'s result, looking at the connection a few times a second meanwhile: when the client
    goes away (or this request is cancelled) the task is cancelled too, and ApiError 499 raised."""
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            if not task.done() and await disconnected():
                raise ApiError(499, "the client closed the connection", code="client_closed")
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def ndjson_response(lines: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """A streamed answer of one JSON object per line; an ApiError raised mid-stream (after the
    status was sent) becomes a last {"type": "error", "error": {…}} line."""
    async def encoded() -> AsyncIterator[bytes]:
        try:
            async for line in lines:
                yield (json.dumps(line, ensure_ascii=False) + "\n").encode()
        except ApiError as exc:
            yield (json.dumps({"type": "error", **exc.body()}) + "\n").encode()

    return StreamingResponse(encoded(), media_type="application/x-ndjson")
