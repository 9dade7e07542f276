"""One remote engine (`RemoteEngine`: its client, its concurrency limit, what it lists) and one
answer streamed from it (`EngineAnswer`).

An answer runs on a thread of its own that holds one of the engine's concurrency slots while its
request is open; the chain reads its events from a queue, so answers that do not depend on each
other can be sent ahead and read in plan order. Stop/Next closes the stream and keeps the text
received; a stream cut after the first token is a partial answer, not an error."""

from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any, Callable, Iterator

from app.core.backend import GenerationEvent, GenerationRequest, GenerationResult, TokenEvent
from app.core.errors import EngineError
from app.core.prompt_format import AUTO, ENGINE, MODEL, RAW, raw_completion
from app.engines.client import EngineClient, EngineModel, StreamCut
from app.engines.config import EngineConfig
from app.engines.logprobs import PieceIds, remote_choice
from app.engines.params import kind_from_owner, request_fields

MAX_TOP_LOGPROBS = 20  # the most alternatives the OpenAI API (and vLLM by default) report per token
LOCAL_ONLY = ("prompt_tokens", "forced_tokens", "allowed_tokens", "disallowed_tokens", "stop_tokens")
FINISH = {"stop": "eos", "length": "max_tokens", "content_filter": "stopped"}


class RemoteEngine:
    """An engine as the studio uses it; shared by every run so its concurrency limit holds across
    browser tabs and the CLI's runs alike."""

    def __init__(self, config: EngineConfig, key: str = "") -> None:
        self.config = config
        self.client = EngineClient(config, key)
        self.slots = threading.BoundedSemaphore(config.concurrency)
        self._listed: list[EngineModel] | None = None
        self._lock = threading.Lock()

    def models(self, refresh: bool = False) -> list[EngineModel]:
        """The engine's models (listed once, then remembered until `refresh`)."""
        with self._lock:
            if self._listed is None or refresh:
                self._listed = self.client.models()
            return list(self._listed)

    @property
    def kind(self) -> str:
        """Which sampling fields the engine takes: the saved kind, else the one its list points at."""
        if self.config.kind != "auto":
            return self.config.kind
        listed = self._listed or []
        return kind_from_owner(listed[0].owned_by) if listed else "openai"

    def check_model(self, model_id: str) -> None:
        """Raise EngineError unless the engine answers and lists `model_id` (an engine listing nothing
        accepts any). Asked afresh each time: a run learns at its start that an engine went away."""
        listed = self.models(refresh=True)
        if listed and model_id not in {m.id for m in listed}:
            shown = ", ".join(m.id for m in listed[:8]) + (" …" if len(listed) > 8 else "")
            raise EngineError(f"engine {self.config.name} has no model {model_id!r} (it lists: {shown})")

    def start(self, model_id: str, request: GenerationRequest, rng: random.Random | None = None,
              on_done: Callable[[], None] | None = None) -> "EngineAnswer":
        """Begin one answer (it waits for a free slot on its own thread); `on_done` is called on that
        thread once the request is over and its slot free again."""
        return EngineAnswer(self, model_id, request, rng, on_done)

    def close(self) -> None:
        self.client.close()


class EngineAnswer:
    """One answer from an engine. `events()` streams `TokenEvent`s, then one `GenerationResult`, and
    raises EngineError when the engine failed before the first token."""

    def __init__(self, engine: RemoteEngine, model_id: str, request: GenerationRequest,
                 rng: random.Random | None = None, on_done: Callable[[], None] | None = None) -> None:
        for name in LOCAL_ONLY:
            if getattr(request, name):
                raise EngineError(f"engine {engine.config.name}: {name.replace('_', ' ')} work only with local models")
        self.engine = engine
        self.model_id = model_id
        self.request = request
        self._on_done = on_done
        self._queue: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self._stepped = threading.Semaphore(0)
        self._body, self._path, self.seed, self.notes, self.prompt_text, self.prompt_format = \
            self._build(request, rng)
        self.started = time.monotonic()
        threading.Thread(target=self._work, name=f"engine {engine.config.name}", daemon=True).start()

    def cancel(self) -> None:
        """Stop/Next: close the stream; the text received so far is the answer."""
        self.cancelled.set()

    def step(self) -> None:
        """Manual stepping: show one more token."""
        self._stepped.release()

    def _build(self, request: GenerationRequest, rng: random.Random | None
               ) -> tuple[dict[str, Any], str, int, list[str], str, str]:
        engine = self.engine
        fields = request_fields(request.params, engine.kind, rng)
        notes = [f"not sent to {engine.config.name} (it does not take them): {', '.join(fields.not_sent)}"] \
            if fields.not_sent else []
        body: dict[str, Any] = {"model": self.model_id, **fields.fields, "stream": True,
                                "stream_options": {"include_usage": True}}
        top = min(request.learning_top, MAX_TOP_LOGPROBS)
        if request.learning_top > MAX_TOP_LOGPROBS:
            notes.append(f"learning mode: an engine reports at most {MAX_TOP_LOGPROBS} candidates per token "
                         f"({request.learning_top} asked for)")
        if request.grammar or request.json_schema:
            notes.append(f"not sent to {engine.config.name}: the grammar or JSON schema (local models only)")
        raw = request.template == RAW or request.prompt is not None
        if raw:
            prompt = request.prompt if request.prompt is not None else raw_completion(request.messages)
            body["prompt"] = prompt
            if top:
                body["logprobs"] = top
            return body, "/completions", fields.seed, notes, prompt, RAW
        if request.template not in (AUTO, MODEL):
            notes.append(f"the {request.template} prompt format is not sent: the engine applies its own chat template")
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        if top:
            body["logprobs"] = True
            body["top_logprobs"] = top
        shown = "\n\n".join(f"[{m.role}] {m.content}" for m in request.messages)
        return body, "/chat/completions", fields.seed, notes, shown, ENGINE

    def _work(self) -> None:
        """Hold a slot, send the request and queue what comes back (the end marker last)."""
        put = self._queue.put
        acquired = False
        try:
            while not (acquired := self.engine.slots.acquire(timeout=0.2)):
                if self.cancelled.is_set():
                    put(("end", None))
                    return
            put(("sent", time.monotonic()))
            for event in self.engine.client.stream(self._path, self._body, self.cancelled):
                put(("event", event))
            put(("end", None))
        except StreamCut as exc:
            put(("cut", str(exc)))
        except EngineError as exc:
            put(("error", exc))
        except Exception as exc:  # never a traceback: the chain reports it and goes on
            put(("error", EngineError(f"engine {self.engine.config.name} failed: {type(exc).__name__}: {exc}")))
        finally:
            if acquired:
                self.engine.slots.release()
            if self._on_done is not None:
                self._on_done()

    def events(self) -> Iterator[GenerationEvent]:
        """The answer's tokens, then its result."""
        ids = PieceIds()
        texts: list[str] = []
        token_ids: list[int] = []
        usage: dict[str, Any] = {}
        finish: str | None = None
        first_token_at: float | None = None
        stop_reason = "eos"
        notes = list(self.notes)
        while True:
            try:
                kind, value = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.cancelled.is_set():
                    stop_reason = "stopped"
                    break
                continue
            if kind == "sent":
                continue
            if kind == "end":
                if self.cancelled.is_set():
                    stop_reason = "stopped"
                elif token_ids and finish is None:
                    # The end marker without a finish reason: llama-cpp-python's server ends a
                    # request that way when a newer one interrupts it.
                    notes.append(f"engine {self.engine.config.name} ended the answer without a finish reason "
                                 "(interrupted by another request?); the text received is kept")
                    stop_reason = "cut"
                break
            if kind == "error":
                if not token_ids:
                    raise value
                notes.append(str(value))
                stop_reason = "cut"
                break
            if kind == "cut":
                if not texts and not token_ids:
                    raise EngineError(str(value))
                notes.append(f"{value}; {len(token_ids)} tokens were received and are kept")
                stop_reason = "cut"
                break
            if value.get("usage"):
                usage = value["usage"]
            for choice in value.get("choices") or []:
                finish = choice.get("finish_reason") or finish
                for token in self._tokens(choice, ids, len(token_ids)):
                    if first_token_at is None:
                        first_token_at = time.monotonic()
                    self._pace()
                    if self.cancelled.is_set():
                        break
                    texts.append(token.text)
                    token_ids.append(token.token_id)
                    yield token
            if self.cancelled.is_set():
                stop_reason = "stopped"
                break
        if stop_reason == "eos" and finish:
            stop_reason = FINISH.get(finish, "eos")
        counted = usage.get("completion_tokens")
        if stop_reason in ("stopped", "cut"):
            counted = None  # the engine's count, if any, is of what it meant to send
        elif not isinstance(counted, int):
            counted = None
            if token_ids and not self.request.learning_top:
                notes.append("token count: the engine sent no usage; counted from the stream's pieces")
        now = time.monotonic()
        prompt_tokens = usage.get("prompt_tokens")
        yield GenerationResult(
            text="".join(texts), token_ids=tuple(token_ids),
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0, stop_reason=stop_reason,  # type: ignore[arg-type]
            seconds=now - self.started, prompt_seconds=(first_token_at or now) - self.started, seed=self.seed,
            prompt_text=self.prompt_text, prompt_format=self.prompt_format, token_count=counted, notes=tuple(notes))

    def _tokens(self, choice: dict[str, Any], ids: PieceIds, position: int) -> Iterator[TokenEvent]:
        """The tokens of one streamed choice: one per log-probability entry when the engine sent them,
        else the chunk's text as one piece."""
        text = choice.get("text")
        if text is None:
            text = (choice.get("delta") or {}).get("content")
        logprobs = choice.get("logprobs") or {}
        entries = logprobs.get("content") if isinstance(logprobs, dict) else None
        if entries:  # chat: [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]
            for at, entry in enumerate(entries):
                piece = str(entry.get("token", ""))
                tops = [(str(t.get("token", "")), t.get("logprob")) for t in entry.get("top_logprobs") or []]
                choice_ = remote_choice(position + at, piece, entry.get("logprob"), tops, ids)
                yield TokenEvent(choice_.chosen, piece, choice_)
            return
        tokens = logprobs.get("tokens") if isinstance(logprobs, dict) else None
        if tokens:  # completions: {"tokens", "token_logprobs", "top_logprobs": [{piece: logprob}]}
            chosen = logprobs.get("token_logprobs") or []
            tops = logprobs.get("top_logprobs") or []
            for at, piece in enumerate(tokens):
                top = tops[at] if at < len(tops) else None
                alternatives = list(top.items()) if isinstance(top, dict) else []
                choice_ = remote_choice(position + at, str(piece), chosen[at] if at < len(chosen) else None,
                                        alternatives, ids)
                yield TokenEvent(choice_.chosen, str(piece), choice_)
            return
        if text:
            yield TokenEvent(-1, text)

    def _pace(self) -> None:
        """Stepping: the engine streams at its own pace; the studio shows one token per step."""
        if self.request.stepping == "delay" and self.request.step_delay > 0:
            self.cancelled.wait(self.request.step_delay)
        elif self.request.stepping == "manual":
            while not self.cancelled.is_set() and not self._stepped.acquire(timeout=0.1):
                pass
