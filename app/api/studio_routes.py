"""The studio's own routes under /api: tokenize, detokenize, and the models (header info, load,
unload). Each takes a turn on the model like any other request."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.api.engine import ApiEngine
from app.api.errors import ApiError, from_studio_error
from app.api.schemas import DetokenizeRequest, TokenizeRequest
from app.core.errors import ChainStudioError


class ModelAction(BaseModel):
    action: str
    model: Any = None


def build(engine: ApiEngine) -> APIRouter:
    """The /api routes."""
    router = APIRouter(prefix="/api")

    async def in_turn(request: Request, work: Any) -> Any:
        """`work()` during a turn on the model; a studio error becomes its API error."""

        def job(_stop: threading.Event) -> Iterator[Any]:
            try:
                yield work()
            except ChainStudioError as exc:
                raise from_studio_error(exc) from exc

        items = await engine.collect(job, request.is_disconnected)
        return items[0]

    @router.post("/tokenize")
    async def tokenize(body: TokenizeRequest, request: Request) -> dict[str, Any]:
        path = await run_in_threadpool(engine.model_path, body.model)

        def work() -> dict[str, Any]:
            engine.ensure_loaded(path)
            tokens = engine.services.backend.tokenize(body.text, body.add_special)
            vocabulary = engine.services.backend.vocabulary()
            return {"model": path.name, "tokens": tokens, "pieces": [vocabulary[t] for t in tokens]}

        return await in_turn(request, work)

    @router.post("/detokenize")
    async def detokenize(body: DetokenizeRequest, request: Request) -> dict[str, Any]:
        path = await run_in_threadpool(engine.model_path, body.model)

        def work() -> dict[str, Any]:
            loaded = engine.ensure_loaded(path)
            outside = [t for t in body.tokens if not 0 <= t < loaded.n_vocab]
            if outside:
                raise ApiError(400, f"token id {outside[0]} is outside the vocabulary (0 to {loaded.n_vocab - 1})",
                               "tokens")
            return {"model": path.name, "text": engine.services.backend.detokenize(body.tokens)}

        return await in_turn(request, work)

    @router.get("/models")
    async def models() -> dict[str, Any]:
        def describe() -> dict[str, Any]:
            loaded = engine.services.backend.loaded
            listed = []
            for path in engine.model_files():
                entry = engine.services.model_file(path)
                listed.append({"id": path.name, "size_bytes": path.stat().st_size,
                               "header": entry.info.to_dict() if entry.info is not None else None,
                               "problem": entry.problem,
                               "loaded": loaded is not None and loaded.path == str(path.resolve())})
            return {"object": "list", "data": listed,
                    "loaded": {"id": Path(loaded.path).name, "n_ctx": loaded.n_ctx, "n_vocab": loaded.n_vocab}
                    if loaded is not None else None}

        return await run_in_threadpool(describe)

    @router.post("/models")
    async def model_action(body: ModelAction, request: Request) -> dict[str, Any]:
        if body.action == "unload":
            def unload() -> dict[str, Any]:
                engine.services.backend.unload()
                return {"loaded": None}

            return await in_turn(request, unload)
        if body.action != "load":
            raise ApiError(400, f"action must be \"load\" or \"unload\", got {body.action!r}", "action")
        path = await run_in_threadpool(engine.model_path, body.model)

        def load() -> dict[str, Any]:
            loaded = engine.ensure_loaded(path)
            return {"loaded": {"id": path.name, "n_ctx": loaded.n_ctx, "n_vocab": loaded.n_vocab,
                               "load_seconds": round(loaded.load_seconds, 3)}}

        return await in_turn(request, load)

    return router

