"""POST /api/sample: the Sampler SDK's `sample()` on a local model, as an NDJSON stream.

Lines, one JSON object each:
    {"type": "start", "model", "seed", "prompt_tokens"}
    {"type": "token", "id", "piece", "text", "prob", "model_prob", "top_k": [{"id", "piece", "prob"}],
     "record": {…}, "attention": [w, …]}  (record: the learning-mode record, when asked; attention:
                                          with return_attention, one weight per position before it)
    {"type": "done", "text", "tokens", "stop_reason", "seed", "reused_tokens", "batch"[, "attention_note"]}
                                          (attention_note: why attention asked for is not there)
                                          (batch: how many samples were decoded together with this one)
    {"type": "error", "error": {…}}        (instead of more lines, when something fails mid-stream)

Semantics follow the seed document: `stop_tokens` are strings that must map to exactly one token
each (others are ignored; token ids are taken too) and end sampling without being included; `stop_strings` end sampling
with the string included (the last token may run past it); `allowed_tokens` or `disallowed_tokens`
(one of them) limit what may be drawn, their invalid entries ignored; `choices`, `regex`, `json_schema`
or `grammar` (one of them, app/core/constraints.py) hold the text to a grammar; with `augment_tokens` each
string in those lists also stands for its leading-whitespace variant; a seed is `rng_seed`, else derived
from `initial_rng_seed` and the call's position `call`, else drawn and reported.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Union

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.api.engine import ApiEngine, ndjson_response, watching
from app.api.errors import ApiError, field_named, from_studio_error, unexpected
from app.api.sample_batcher import SampleBatcher
from app.api.seeds import MAX_SEED, derived_seed
from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.constraints import check_grammar, constraint_in
from app.core.errors import ChainStudioError, GrammarError, SettingsError
from app.core.learning import MAX_CANDIDATES, TokenChoice
from app.core.sampling import SAMPLING_SPECS, SamplingParams

OWN_FIELDS = ("max_tokens", "temperature", "top_p", "seed")  # set by max_len, temperature, nucleus_p, the seed
_END = object()
class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Any = None
    prompt: str = ""
    inputs: list[Union[str, list[int]]] = Field(default_factory=list)
    max_len: int = Field(256, ge=0, le=1_000_000)
    temperature: float = 0.7
    nucleus_p: float = 0.95
    stop_tokens: list[Union[int, str]] | None = None
    stop_strings: list[str] | None = None
    allowed_tokens: list[Union[int, str]] | None = None
    disallowed_tokens: list[Union[int, str]] | None = None
    augment_tokens: bool = True
    return_attention: bool = False
    rng_seed: int | None = Field(None, ge=0, le=MAX_SEED)
    initial_rng_seed: int | None = Field(None, ge=0)
    call: int = Field(0, ge=0)
    alternatives: int = Field(10, ge=0, le=MAX_CANDIDATES)
    record: bool = False
    choices: list[str] | None = None
    regex: str | None = None
    json_schema: Union[dict[str, Any], str, None] = None
    grammar: str | None = None

    def constraint_grammar(self) -> str:
        """The GBNF of the one constraint given (choices, regex, json_schema or grammar), checked by
        llama.cpp's parser; "" without one. A 400 names the field at fault."""
        options = {"choices": self.choices, "regex": self.regex, "json_schema": self.json_schema,
                   "grammar": self.grammar}
        given = next((name for name, value in options.items() if value is not None), None)
        try:
            constraint = constraint_in(options)
            if constraint is None:
                return ""
            check_grammar(constraint.gbnf)
        except GrammarError as exc:
            raise ApiError(400, str(exc), given) from exc
        return constraint.gbnf

    def seed(self) -> int:
        if self.rng_seed is not None:
            return self.rng_seed
        if self.initial_rng_seed is not None:
            return derived_seed(self.initial_rng_seed, self.call)
        return random.SystemRandom().randrange(MAX_SEED)

    def params(self, seed: int) -> SamplingParams:
        extra = self.model_extra or {}
        if self.allowed_tokens is not None and self.disallowed_tokens is not None:
            raise ApiError(400, "only one of allowed_tokens and disallowed_tokens may be set", "disallowed_tokens")
        studio = {name: extra[name] for name in SAMPLING_SPECS if name in extra and name not in OWN_FIELDS}
        try:
            return SamplingParams(max_tokens=self.max_len, temperature=self.temperature, top_p=self.nucleus_p,
                                  seed=seed, **studio)
        except SettingsError as exc:
            shown = {"max_tokens": "max_len", "top_p": "nucleus_p"}
            name = field_named(str(exc))
            raise ApiError(400, str(exc), shown.get(name or "", name)) from exc


def token_line(event: TokenEvent, alternatives: int, record: bool) -> dict[str, Any]:
    """One sampled token: its id and text, its probability when it was drawn (after every stage)
    and under the model alone, and the alternatives that survived the stages, most likely first."""
    choice: TokenChoice = event.choice
    chosen = next(c for c in choice.candidates if c.token_id == choice.chosen)
    final = chosen.stage_probs[-1] if chosen.stage_probs else chosen.prob
    def final_prob(candidate: Any) -> float:
        return candidate.stage_probs[-1] if candidate.stage_probs else candidate.prob

    # A token with no chance (masked by allowed/disallowed_tokens) is no alternative.
    kept = sorted((c for c in choice.candidates if c.removed_by is None and final_prob(c) > 0),
                  key=final_prob, reverse=True)
    line: dict[str, Any] = {
        "type": "token", "id": event.token_id, "piece": chosen.piece, "text": event.text,
        "prob": final, "model_prob": chosen.prob,
        "top_k": [{"id": c.token_id, "piece": c.piece, "prob": final_prob(c)} for c in kept[:alternatives]],
    }
    if record:
        line["record"] = choice.to_record()
    return line


def build(engine: ApiEngine) -> APIRouter:
    router = APIRouter(prefix="/api")
    batcher = SampleBatcher(engine.services)

    @router.post("/sample")
    async def sample(body: SampleRequest, request: Request) -> Any:
        seed = body.seed()
        params = body.params(seed)
        path = await run_in_threadpool(engine.model_path, body.model)
        gbnf = await run_in_threadpool(body.constraint_grammar)
        call = SampleCall(engine, path, body, params, seed, gbnf)
        batcher.submit(call)
        try:
            first = await watching(asyncio.ensure_future(call.next_line()), request.is_disconnected)
        except BaseException:
            call.cancelled.set()
            raise
        if isinstance(first, BaseException):
            raise first

        async def lines() -> AsyncIterator[dict[str, Any]]:
            try:
                if first is not None:
                    yield first
                    while (line := await call.next_line()) is not None:
                        if isinstance(line, BaseException):
                            raise line
                        yield line
            finally:
                call.cancelled.set()

        return ndjson_response(lines())

    return router


class SampleCall:
    """One /api/sample call as the batcher runs it (app/api/sample_batcher.Call): its lines go to a
    queue the response reads."""

    def __init__(self, engine: ApiEngine, path: Path, body: SampleRequest, params: SamplingParams, seed: int,
                 gbnf: str = "") -> None:
        self.engine, self.path, self.body, self.params, self.seed = engine, path, body, params, seed
        self.gbnf = gbnf  # the constraint's grammar ("" = none)
        self.cancelled = threading.Event()
        self.started = False
        self.batch_size = 1
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stop_strings = [s for s in body.stop_strings or [] if s]
        self._longest_stop = max(map(len, self._stop_strings), default=0)
        self._text = ""
        self._count = 0
        self._reason = "max_tokens"
        self._saw_attention = False
        self._attention_note = ""

    async def next_line(self) -> Any:
        """The next line, an exception to raise, or None at the end."""
        return await asyncio.to_thread(self._next)

    def _next(self) -> Any:
        while True:
            try:
                item = self._lines.get(timeout=0.25)
            except queue.Empty:
                if self.cancelled.is_set():
                    return None
                continue
            return None if item is _END else item

    def prepare(self) -> GenerationRequest:
        engine, body = self.engine, self.body
        loaded = engine.services.backend.loaded
        n_vocab = loaded.n_vocab if loaded is not None else 0
        try:
            prompt = _prompt_tokens(engine, body, n_vocab)
            augment = body.augment_tokens
            stop_ids = _single_tokens(engine, body.stop_tokens, n_vocab, augment, "stop_tokens", True)
            allowed = _single_tokens(engine, body.allowed_tokens, n_vocab, augment, "allowed_tokens", False)
            disallowed = _single_tokens(engine, body.disallowed_tokens, n_vocab, augment, "disallowed_tokens", False)
        except ChainStudioError as exc:
            raise from_studio_error(exc) from exc
        if body.allowed_tokens is not None and not allowed:
            raise ApiError(400, "none of allowed_tokens is a token of this model: nothing could be sampled",
                           "allowed_tokens")
        if not self.started:
            self.started = True
            self._lines.put({"type": "start", "model": self.path.name, "seed": self.seed, "prompt_tokens": len(prompt)})
        return GenerationRequest(prompt_tokens=tuple(prompt), params=self.params, learning_top=max(body.alternatives, 1),
                                 allowed_tokens=tuple(sorted(allowed)), disallowed_tokens=tuple(sorted(disallowed)),
                                 stop_tokens=tuple(sorted(stop_ids)), attention=body.return_attention,
                                 grammar=self.gbnf)

    def token(self, event: TokenEvent) -> bool:
        self._count += 1
        self._text += event.text
        line = token_line(event, self.body.alternatives, self.body.record)
        if event.attention is not None:
            self._saw_attention = True
            line["attention"] = [round(weight, 6) for weight in event.attention]
        self._lines.put(line)
        # Only the text this token added (and the longest stop string before it) can hold a new match.
        window = self._text[-(len(event.text) + self._longest_stop):]
        if any(stop in window for stop in self._stop_strings):
            self._reason = "stop_string"
            return True
        return False

    def finish(self, result: GenerationResult | None) -> None:
        reused = None
        if result is None and self.body.return_attention and self._count and not self._saw_attention:
            self._attention_note = "attention not available for this model"
        if result is not None:
            self._text, self._reason, reused = result.text, result.stop_reason, result.reused_tokens
        elif self.cancelled.is_set() and self._reason != "stop_string":
            self._reason = "stopped"
        done: dict[str, Any] = {"type": "done", "text": self._text, "tokens": self._count,
                                "stop_reason": self._reason, "seed": self.seed, "reused_tokens": reused,
                                "batch": self.batch_size}
        if self.body.return_attention:
            note = result.attention_note if result is not None else self._attention_note
            if note:
                done["attention_note"] = note
        self._lines.put(done)
        self._lines.put(_END)

    def fail(self, error: BaseException) -> None:
        if isinstance(error, ChainStudioError):
            error = from_studio_error(error)
        elif not isinstance(error, ApiError):
            error = unexpected(error)
        self._lines.put(error)
        self._lines.put(_END)


def _prompt_tokens(engine: ApiEngine, body: SampleRequest, n_vocab: int) -> list[int]:
    """`prompt` then each of `inputs`: text is tokenized (the first piece with the model's BOS),
    token ids are taken as they are once they are known to be in the vocabulary."""
    pieces: list[Union[str, list[int]]] = ([body.prompt] if body.prompt else []) + list(body.inputs)
    tokens: list[int] = []
    for number, piece in enumerate(pieces):
        if isinstance(piece, str):
            tokens += engine.services.backend.tokenize(piece, add_special=number == 0)
            continue
        outside = [t for t in piece if not 0 <= t < n_vocab]
        if outside:
            raise ApiError(400, f"token id {outside[0]} is outside the vocabulary (0 to {n_vocab - 1})",
                           f"inputs[{number - bool(body.prompt)}]")
        tokens += piece
    if not tokens:
        tokens = engine.services.backend.tokenize("", add_special=True)
    if not tokens:
        raise ApiError(400, "there is nothing to continue: give a prompt or inputs", "inputs")
    return tokens


def _variants(text: str, augment: bool) -> list[str]:
    """`text`, and with `augment` its leading-whitespace variant (most words are two vocabulary
    entries: " word" and "word")."""
    return [text, " " + text] if augment and text and not text[0].isspace() else [text]


def _single_tokens(engine: ApiEngine, items: list[Union[str, int]] | None, n_vocab: int, augment: bool,
                   field: str, strict_ids: bool) -> set[int]:
    """The token ids `items` name: an id as given, a string that the tokenizer makes one token or
    that is exactly one token's text; any other string is ignored (as the seed document says). An id
    outside the vocabulary is a 400 when `strict_ids`, else ignored too."""
    found: set[int] = set()
    pieces: dict[str, int] | None = None
    for item in items or []:
        if isinstance(item, int):
            if 0 <= item < n_vocab:
                found.add(item)
            elif strict_ids:
                raise ApiError(400, f"token id {item} is outside the vocabulary (0 to {n_vocab - 1})", field)
            continue
        for text in _variants(item, augment):
            ids = engine.services.backend.tokenize(text, add_special=False)
            if len(ids) == 1:
                found.add(ids[0])
                continue
            if pieces is None:
                pieces = {piece: token for token, piece in enumerate(engine.services.backend.vocabulary())}
            if text in pieces:
                found.add(pieces[text])
    return found
