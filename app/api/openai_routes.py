"""OpenAI-compatible routes: GET /v1/models, POST /v1/chat/completions and /v1/completions, streamed
(server-sent events) or not, with logprobs from the learning-mode record of each token."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.engine import ApiEngine, Job
from app.api.errors import ApiError, from_studio_error
from app.api.schemas import ChatRequest, CompletionRequest, SamplingFields
from app.core.backend import ChatMessage, GenerationRequest, GenerationResult, TokenEvent
from app.core.errors import ChainStudioError

log = logging.getLogger("chain_studio.api")
FINISH_REASONS = {"eos": "stop", "stop_string": "stop", "stop_token": "stop", "stopped": "stop", "max_tokens": "length",
                  "context_full": "length"}
FINGERPRINT = "chain-studio"

Tagged = tuple[int, Any]  # (choice index, TokenEvent | GenerationResult)


def choice_job(engine: ApiEngine, path: Path, requests: list[GenerationRequest]) -> Job[Tagged]:
    """Load the model and generate each choice in turn, tagging events with the choice's index.
    A client that goes away stops the generation (said on the studio's log with the token count)."""

    def job(stop: threading.Event) -> Iterator[Tagged]:
        try:
            engine.ensure_loaded(path)
            for index, request in enumerate(requests):
                tokens = 0
                with contextlib.closing(engine.services.backend.generate(request)) as events:
                    for event in events:
                        tokens += isinstance(event, TokenEvent)
                        try:
                            yield index, event
                        except GeneratorExit:  # the client went away: closing `events` stops the worker
                            log.warning("API request: the client went away after %d tokens of choice %d; "
                                        "its generation was stopped", tokens, index)
                            raise
        except ChainStudioError as exc:
            raise from_studio_error(exc) from exc

    return job


def logprob(prob: float) -> float:
    return math.log(prob) if prob > 0 else -9999.0


def token_logprobs(event: TokenEvent, top: int) -> dict[str, Any] | None:
    """OpenAI's chat logprobs entry for one token: its text, log-probability under the model (the
    softmax of the raw logits), and the `top` most likely alternatives."""
    choice = event.choice
    if choice is None:
        return None
    chosen = next((c for c in choice.candidates if c.token_id == choice.chosen), None)
    piece = chosen.piece if chosen is not None else event.text
    return {
        "token": piece, "logprob": logprob(chosen.prob if chosen is not None else 0.0),
        "bytes": list(piece.encode("utf-8")),
        "top_logprobs": [{"token": c.piece, "logprob": logprob(c.prob), "bytes": list(c.piece.encode("utf-8"))}
                         for c in choice.candidates[:top]],
    }


def usage(results: list[GenerationResult]) -> dict[str, int]:
    prompt = results[0].prompt_tokens if results else 0
    completion = sum(r.generated_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def respond(engine: ApiEngine, path: Path, requests: list[GenerationRequest], answer: "_Answer",
                  body: SamplingFields, request: Request) -> Any:
    """Generate `requests` and answer as server-sent events or as one JSON body."""
    job = choice_job(engine, path, requests)
    if body.stream:
        events = await engine.started(job, request.is_disconnected)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(answer.stream(events, include_usage), media_type="text/event-stream")
    return JSONResponse(answer.whole(await engine.collect(job, request.is_disconnected)))


def build(engine: ApiEngine) -> APIRouter:
    """The /v1 routes."""
    router = APIRouter(prefix="/v1")

    @router.get("/models")
    async def list_models() -> dict[str, Any]:
        files = await run_in_threadpool(engine.model_files)
        return {"object": "list", "data": [
            {"id": path.name, "object": "model", "created": int(path.stat().st_mtime), "owned_by": "local"}
            for path in files]}

    @router.post("/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        body.refuse_unsupported()
        schema = body.response_format.schema_text() if body.response_format is not None else ""
        messages = tuple(ChatMessage("system" if m.role == "developer" else m.role, m.text(i))
                         for i, m in enumerate(body.messages))
        top = (body.top_logprobs or 0) if body.logprobs else 0
        learning_top = max(top, 1) if body.logprobs else 0
        requests = [GenerationRequest(messages=messages, params=body.sampling(i), learning_top=learning_top,
                                      json_schema=schema) for i in range(body.n)]
        if schema and (learning_top or requests[0].params.needs_pipeline):
            raise ApiError(400, "response_format cannot be combined with logprobs, tfs_z, XTC, DRY, top_n_sigma "
                                "or a sampler order yet (those are drawn by the studio's own sampler)",
                           "response_format", "unsupported_parameter")
        path = await run_in_threadpool(engine.model_path, body.model)
        answer = _Answer("chat.completion", path.name, body.n, body.logprobs, top, chat=True)
        return await respond(engine, path, requests, answer, body, request)

    @router.post("/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        body.refuse_unsupported()
        if body.suffix:
            raise ApiError(400, "suffix (fill-in-the-middle) is not supported", "suffix", "unsupported_parameter")
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts:
            raise ApiError(400, "prompt must not be empty", "prompt")
        top = body.logprobs or 0
        learning_top = max(top, 1) if body.logprobs is not None else 0
        requests = [GenerationRequest(prompt=text, params=body.sampling(i), learning_top=learning_top)
                    for text in prompts for i in range(body.n)]
        path = await run_in_threadpool(engine.model_path, body.model)
        echoes = [text for text in prompts for _ in range(body.n)] if body.echo else None
        answer = _Answer("text_completion", path.name, len(requests), body.logprobs is not None, top, chat=False,
                         echoes=echoes)
        return await respond(engine, path, requests, answer, body, request)

    return router


class _Answer:
    """Builds one response (whole or as chunks) from tagged generation events."""

    def __init__(self, kind: str, model: str, choices: int, logprobs: bool, top: int, chat: bool,
                 echoes: list[str] | None = None) -> None:
        self.kind, self.model, self.count, self.logprobs, self.top, self.chat = kind, model, choices, logprobs, top, chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.echoes = echoes

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT}

    def _legacy_logprobs(self, events: list[TokenEvent]) -> dict[str, Any]:
        tokens: list[str] = []
        chosen: list[float] = []
        tops: list[dict[str, float]] = []
        offsets: list[int] = []
        offset = 0
        for event in events:
            entry = token_logprobs(event, self.top)
            if entry is None:
                continue
            tokens.append(entry["token"])
            chosen.append(entry["logprob"])
            tops.append({alt["token"]: alt["logprob"] for alt in entry["top_logprobs"]})
            offsets.append(offset)
            offset += len(entry["token"])
        return {"tokens": tokens, "token_logprobs": chosen, "top_logprobs": tops, "text_offset": offsets}

    def whole(self, events: list[Tagged]) -> dict[str, Any]:
        tokens: dict[int, list[TokenEvent]] = {i: [] for i in range(self.count)}
        results: dict[int, GenerationResult] = {}
        for index, event in events:
            if isinstance(event, TokenEvent):
                tokens[index].append(event)
            else:
                results[index] = event
        choices = []
        for index in range(self.count):
            result = results.get(index)
            text = result.text if result is not None else "".join(e.text for e in tokens[index])
            finish = FINISH_REASONS.get(result.stop_reason, "stop") if result is not None else "stop"
            if self.chat:
                logprobs = ({"content": [e for e in (token_logprobs(t, self.top) for t in tokens[index]) if e]}
                            if self.logprobs else None)
                choices.append({"index": index, "message": {"role": "assistant", "content": text},
                                "logprobs": logprobs, "finish_reason": finish})
            else:
                if self.echoes is not None:
                    text = self.echoes[index] + text
                choices.append({"index": index, "text": text, "finish_reason": finish,
                                "logprobs": self._legacy_logprobs(tokens[index]) if self.logprobs else None})
        ordered = [results[i] for i in sorted(results)]
        return {**self._head(self.kind), "choices": choices, "usage": usage(ordered)}

    async def stream(self, events: AsyncIterator[Tagged], include_usage: bool) -> AsyncIterator[bytes]:
        chunk_kind = "chat.completion.chunk" if self.chat else "text_completion"
        sent: dict[int, str] = {}
        results: list[GenerationResult] = []
        try:
            async for index, event in events:
                if index not in sent:
                    sent[index] = ""
                    if self.chat:
                        yield sse({**self._head(chunk_kind), "choices": [
                            {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None}]})
                    elif self.echoes is not None:
                        yield sse({**self._head(chunk_kind), "choices": [
                            {"index": index, "text": self.echoes[index], "logprobs": None, "finish_reason": None}]})
                if isinstance(event, TokenEvent):
                    if not event.text and not self.logprobs:
                        continue
                    sent[index] += event.text
                    yield sse(self._piece(chunk_kind, index, event.text, event))
                    continue
                results.append(event)
                rest = event.text[len(sent[index]):] if event.text.startswith(sent[index]) else ""
                if rest:  # text held back until the end (a stop string's start that never completed)
                    yield sse(self._piece(chunk_kind, index, rest, None))
                finish = FINISH_REASONS.get(event.stop_reason, "stop")
                if self.chat:
                    yield sse({**self._head(chunk_kind), "choices": [
                        {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}]})
                else:
                    yield sse({**self._head(chunk_kind), "choices": [
                        {"index": index, "text": "", "logprobs": None, "finish_reason": finish}]})
            if include_usage:
                yield sse({**self._head(chunk_kind), "choices": [], "usage": usage(results)})
        except ApiError as exc:
            yield sse(exc.body())
        yield b"data: [DONE]\n\n"

    def _piece(self, kind: str, index: int, text: str, event: TokenEvent | None) -> dict[str, Any]:
        if self.chat:
            entry = token_logprobs(event, self.top) if (event is not None and self.logprobs) else None
            return {**self._head(kind), "choices": [
                {"index": index, "delta": {"content": text}, "logprobs": {"content": [entry]} if entry else None,
                 "finish_reason": None}]}
        legacy = self._legacy_logprobs([event]) if (event is not None and self.logprobs) else None
        return {**self._head(kind), "choices": [{"index": index, "text": text, "logprobs": legacy,
                                                 "finish_reason": None}]}
