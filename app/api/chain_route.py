"""POST /api/chain: a chain run described in JSON (the fields of the page and of `chain`), its events
streamed as NDJSON, journaled like a page run with "api" as its origin (History shows it).

Lines are the CLI's `--jsonl` lines (app/core/event_lines.py), plus "answer_started", "token" and
"model_downloading" lines unless `tokens` is false. Code execution is not offered here: a run
that should execute the models' code is started from the page or the CLI, where it is a visible
opt-in.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.api.engine import ApiEngine, ndjson_response
from app.api.errors import ApiError, field_named, from_studio_error
from app.core.chain import ChainSpec
from app.core.errors import ChainStudioError, SettingsError
from app.core.event_lines import EventLines
from app.core.hub_links import looks_like_link
from app.core.runner import ChainRunner
from app.core.sampling import LoadParams, SamplingParams

MAX_REPEATS = 100


class ChainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1, max_length=100)
    prompts: str = Field(min_length=1)
    system: str = ""
    previous: str = ""
    responses: int = Field(1, ge=1, le=MAX_REPEATS)
    loops: int = Field(1, ge=1, le=MAX_REPEATS)
    single_response: bool = False
    shuffle: bool = False
    feedback: bool = False
    cumulative: bool = False
    reset: bool = False
    random_params: bool = False
    feed_reasoning: bool = False
    learning_top: int = Field(0, ge=0, le=100)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    template: str = "auto"
    sampling: dict[str, Any] = Field(default_factory=dict)
    load: dict[str, Any] = Field(default_factory=dict)
    tokens: bool = True


def _settings(kind: type, values: dict[str, Any], where: str) -> Any:
    """SamplingParams or LoadParams from a JSON object; ApiError naming `where.<setting>`."""
    try:
        return kind(**values)
    except SettingsError as exc:
        name = field_named(str(exc))
        raise ApiError(400, f"{where}: {exc}", f"{where}.{name}" if name else where) from exc
    except TypeError as exc:  # a name the dataclass does not have
        unknown = sorted(set(values) - set(kind.__dataclass_fields__))
        known = ", ".join(kind.__dataclass_fields__)
        raise ApiError(400, f"{where}: unknown setting {', '.join(map(repr, unknown)) or exc}; known: {known}",
                       where) from exc


def build_spec(engine: ApiEngine, body: ChainRequest) -> ChainSpec:
    """The run's ChainSpec: model names become files of the models folder (links stay links and are
    downloaded by the run, with the page's checks; `NAME/model-id` of a saved engine stays remote)."""
    remote = engine.services.engines
    models = tuple(name if looks_like_link(name) or remote.member(name) is not None else str(engine.model_path(name))
                   for name in body.models)
    sampling = _settings(SamplingParams, body.sampling, "sampling")
    load = _settings(LoadParams, body.load, "load")
    fields = body.model_dump(exclude={"models", "sampling", "load", "tokens"})
    try:
        return ChainSpec(models=models, sampling=sampling, load=load, **fields)
    except SettingsError as exc:
        raise ApiError(400, str(exc), field_named(str(exc))) from exc


def build(engine: ApiEngine) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.post("/chain")
    async def chain(body: ChainRequest, request: Request) -> Any:
        spec = await run_in_threadpool(build_spec, engine, body)
        services = engine.services
        runner = ChainRunner(services.backend, services.journal, origin="api", engines=services.engines)
        try:
            # A prompt-list mistake or an unusable grammar is a 400 before anything runs (the grammar
            # check starts a process: not on the event loop).
            await run_in_threadpool(runner.plan, spec)
        except ChainStudioError as exc:
            raise from_studio_error(exc, "prompts") from exc
        source = services.model_source(services.models_dir)

        def job(_stop: threading.Event) -> Iterator[dict[str, Any]]:
            lines = EventLines(tokens=body.tokens)
            try:
                with contextlib.closing(runner.run(spec, source)) as events:  # closed: the run stops
                    for event in events:
                        yield from lines.lines(event)
                yield from lines.finish()
            except ChainStudioError as exc:
                raise from_studio_error(exc) from exc

        started = await engine.started(job, request.is_disconnected)
        return ndjson_response(started)

    return router

