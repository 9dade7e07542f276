"""PromptIDE-style prompting: every call works on an implicit context, a sequence of tokens.

`prompt()` appends text (tokenized by the model's tokenizer), `sample()` lets the model add tokens,
`@prompt_fn` runs a function in a fresh context of its own (nested as deep as wanted; concurrent
ones under `asyncio.gather` each keep their own, because the current context is a context
variable, copied into every task)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import os
import random
from typing import Any, Awaitable, Callable, Optional, ParamSpec, Sequence, TypeVar, Union

from app.sdk.connection import Connection, SdkError, sample_fields
from app.sdk.host import host, read_file_bytes
from app.sdk.tokens import SampleResult, Token, token_view_html

MODEL_ENV = "CHAIN_STUDIO_PROGRAM_MODEL"
SEED_ENV = "CHAIN_STUDIO_PROGRAM_SEED"
MAX_SEED = 2**32 - 1

P = ParamSpec("P")
R = TypeVar("R")

_numbers = itertools.count(1)
_connection: Connection | None = None


def connection() -> Connection:
    """The API connection every context shares (made on first use)."""
    global _connection
    if _connection is None:
        _connection = Connection()
    return _connection


class _Seeds:
    """Each sample's seed: given, else derived from the program's initial seed in call order (so a
    run repeats exactly), else random."""

    def __init__(self) -> None:
        given = os.environ.get(SEED_ENV, "")
        self.initial: int | None = int(given) if given.isdigit() else None
        self.calls = 0

    def next(self, explicit: int | None) -> dict[str, int]:
        call = self.calls
        self.calls += 1
        if explicit is not None:
            return {"rng_seed": explicit}
        if self.initial is not None:
            return {"initial_rng_seed": self.initial, "call": call}
        return {"rng_seed": random.SystemRandom().randrange(MAX_SEED)}


_seeds = _Seeds()


class Context:
    """A sequence of tokens the model continues; `parent` is the context a prompt_fn was called
    from (None for the program's own)."""

    def __init__(self, model: str | None = None, parent: "Context | None" = None, name: str = "") -> None:
        self.id = next(_numbers)
        self.model = model
        self.parent = parent
        self.name = name
        self.tokens: list[Token] = []
        self.text = ""
        host().emit({"type": "context", "context": self.id, "parent": parent.id if parent else None,
                     "name": name, "model": model})

    def __repr__(self) -> str:
        return f"Context(id={self.id}, name={self.name!r}, tokens={len(self.tokens)})"

    def as_string(self) -> str:
        """The context's text."""
        return self.text

    def _repr_html_(self) -> str:
        return token_view_html(self.tokens)

    def add(self, tokens: Sequence[Token], text: str) -> None:
        self.tokens.extend(tokens)
        self.text += text


# Inside a prompt_fn, the context is this variable's (every task has its own copy); elsewhere it is
# the one root context of the process (a notebook runs each cell in a task of its own: a context
# kept only in the variable would be lost between cells).
_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar("chain_studio_context", default=None)
_root: Context | None = None


def get_context() -> Context:
    """The current context (the program's own one unless inside a prompt_fn)."""
    global _root
    current = _current.get()
    if current is not None:
        return current
    if _root is None:
        _root = Context(model=os.environ.get(MODEL_ENV) or None, name="main")
    return _root


def clear_prompt() -> None:
    """Empty the current context: what follows starts a new sequence (with the model's BOS)."""
    context = get_context()
    context.tokens.clear()
    context.text = ""
    host().emit({"type": "clear", "context": context.id})


def select_model(name: str) -> None:
    """Sample from model `name` (a file in the studio's models folder, or a Hugging Face link) in
    the current context and the prompt_fns it calls. Tokens already in the context were made by
    the previous model's tokenizer: switch before prompting."""
    context = get_context()
    context.model = name
    host().emit({"type": "model", "context": context.id, "model": name})


def set_title(title: str) -> None:
    """Name this run (shown in the Programs tab and the journal)."""
    host().emit({"type": "title", "title": str(title)})


async def user_input(label: str) -> str:
    """Ask the person running the program; their answer (the page shows a textbox, the CLI reads
    standard input)."""
    return await host().user_input(str(label))


def read_file(name: str) -> bytes:
    """A file given to the program (uploaded in the Programs tab, `--file` on the CLI)."""
    return read_file_bytes(name)


async def _model_of(context: Context) -> str:
    """The context's model; the first time none was chosen, the studio's loaded one (or the demo)."""
    if context.model is None:
        context.model = await asyncio.to_thread(connection().default_model)
        host().emit({"type": "model", "context": context.id, "model": context.model})
    return context.model


async def prompt(text: str) -> Sequence[Token]:
    """Append `text` to the current context; returns its tokens."""
    context = get_context()
    await _model_of(context)
    answer = await connection().apost("/api/tokenize", {"model": context.model, "text": str(text),
                                                        "add_special": not context.tokens})
    tokens = [Token(piece, token) for token, piece in zip(answer["tokens"], answer["pieces"], strict=True)]
    context.add(tokens, str(text))
    host().emit({"type": "prompt", "context": context.id, "text": str(text),
                 "tokens": [[t.token_id, t.token_str] for t in tokens]})
    return tokens


async def sample(
    max_len: int = 256,
    temperature: float = 1.0,
    nucleus_p: float = 0.7,
    stop_tokens: Optional[list[str]] = None,
    stop_strings: Optional[list[str]] = None,
    rng_seed: Optional[int] = None,
    add_to_context: bool = True,
    return_attention: bool = False,
    allowed_tokens: Optional[Sequence[Union[int, str]]] = None,
    disallowed_tokens: Optional[Sequence[Union[int, str]]] = None,
    augment_tokens: bool = True,
    choices: Optional[Sequence[str]] = None,
    regex: Optional[str] = None,
    json_schema: Optional[Union[dict[str, Any], str]] = None,
    grammar: Optional[str] = None,
) -> SampleResult:
    """Let the model continue the current context (the semantics are the Sampler SDK's: see
    app/api/sample_route.py): stop tokens end it without being included, a stop string is included
    and the answer may run past it within its last token, only one of allowed/disallowed tokens.
    `choices` (a list of texts), `regex`, `json_schema` (a dict, or JSON text) or `grammar` (GBNF
    with a root rule), one of them, hold the answer to it: each token is drawn from those the
    constraint allows, and its record shows the "constraint" stage."""
    if allowed_tokens is not None and disallowed_tokens is not None:
        raise ValueError("only one of allowed_tokens and disallowed_tokens may be set")
    context = get_context()
    await _model_of(context)
    body: dict[str, Any] = {
        "model": context.model, "inputs": [[t.token_id for t in context.tokens]] if context.tokens else [],
        **sample_fields(max_len, temperature, nucleus_p, stop_tokens, stop_strings, return_attention,
                        allowed_tokens, disallowed_tokens, augment_tokens,
                            {"choices": list(choices) if choices is not None else None, "regex": regex,
                             "json_schema": json_schema, "grammar": grammar}),
        **_seeds.next(rng_seed),
    }
    tokens: list[Token] = []
    done: dict[str, Any] = {}
    emit = host().emit
    emit({"type": "sample", "context": context.id})
    async for line in connection().stream("/api/sample", body):
        if line["type"] == "token":
            token = Token.from_line(line)
            tokens.append(token)
            emit({"type": "token", "context": context.id, "added": add_to_context, **token.to_dict()})
            if add_to_context:
                context.tokens.append(token)
        elif line["type"] == "done":
            done = line
    text = str(done.get("text", "".join(t.token_str for t in tokens)))
    if add_to_context:
        context.text += text
    result = SampleResult(text=text, tokens=tuple(tokens), stop_reason=str(done.get("stop_reason", "")),
                          seed=done.get("seed"), attention_note=str(done.get("attention_note") or ""),
                          extra={"reused_tokens": done.get("reused_tokens"), "batch": done.get("batch")})
    emit({"type": "sampled", "context": context.id, "text": text, "stop_reason": result.stop_reason,
          "seed": result.seed, "added": add_to_context, "attention_note": result.attention_note})
    return result


def prompt_fn(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run `function` in a fresh context of its own (the caller's model, no tokens); what it
    returns goes back to the caller, whose context is untouched."""
    if not asyncio.iscoroutinefunction(function):
        raise TypeError(f"@prompt_fn needs an async function (async def {getattr(function, '__name__', '')})")

    @functools.wraps(function)
    async def in_fresh_context(*args: P.args, **kwargs: P.kwargs) -> R:
        parent = get_context()
        reset = _current.set(Context(model=parent.model, parent=parent, name=function.__name__))
        try:
            return await function(*args, **kwargs)
        finally:
            _current.reset(reset)

    return in_fresh_context


__all__ = ["Context", "SdkError", "clear_prompt", "get_context", "prompt", "prompt_fn", "read_file", "sample",
           "select_model", "set_title", "user_input"]
