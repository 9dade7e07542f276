"""The model backend protocol and the values that cross it.

The core and the UI talk to models only through `Backend`; `app.models.local_backend` implements it
with llama.cpp running in a worker process. Everything here is plain data so that it can cross a
process boundary (pickle) and be journaled (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Protocol, Union

from app.core.sampling import LoadParams, SamplingParams

Role = Literal["system", "user", "assistant"]

StopReason = Literal["eos", "stop_string", "stop_token", "max_tokens", "context_full", "stopped", "cut"]
"""Why a generation ended: the model's end token, a stop string, the token limit, a full context
window, a stop request from the person, or (a remote engine) a stream cut or gone silent."""


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation sent to a chat model."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate from: chat `messages` (rendered with the model's chat template), a raw
    `prompt` sent as is, or `prompt_tokens` (token ids, used exactly: no BOS is added). Exactly one
    of the three is set."""

    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    fresh_context: bool = False  # clear the model's state first (no prompt prefix reused)
    learning_top: int = 0  # learning mode: record this many candidates per token (0 = off)
    stepping: str = "off"  # "off" | "delay": wait step_delay seconds per token | "manual": wait for step()
    step_delay: float = 0.0
    forced_tokens: tuple[int, ...] = ()  # branching: the answer starts with these tokens, then goes on
    template: str = "auto"  # prompt format of `messages`: app.core.prompt_format (auto, model, raw, a built-in)
    prompt_tokens: tuple[int, ...] = ()
    grammar: str = ""  # a GBNF grammar the answer must follow (app/models/grammar_mask.py); "" = none
    json_schema: str = ""  # or a JSON schema (as JSON text) its answer must be valid for; "" = none
    allowed_tokens: tuple[int, ...] = ()  # only these token ids may be sampled (() = any)
    disallowed_tokens: tuple[int, ...] = ()  # these token ids may not be sampled
    stop_tokens: tuple[int, ...] = ()  # sampling one of these ends the answer without it ("stop_token")
    attention: bool = False  # give each token's attention over the context (app/models/attention.py)

    def __post_init__(self) -> None:
        if sum((self.prompt is not None, bool(self.messages), bool(self.prompt_tokens))) != 1:
            raise ValueError("a GenerationRequest needs exactly one of messages, a raw prompt or prompt tokens")
        if self.allowed_tokens and self.disallowed_tokens:
            raise ValueError("a GenerationRequest takes allowed_tokens or disallowed_tokens, not both")

    @classmethod
    def chat(
        cls, user: str, system: str = "", params: SamplingParams | None = None, previous: str = ""
    ) -> "GenerationRequest":
        """A chat request: optional system prompt, optional previous answer (as the assistant's
        turn, after an empty user turn), then the user's message.

        The empty user turn keeps the roles alternating user/assistant/user after the system
        prompt, as Samantha sends them: templates such as Gemma's and Mistral's refuse an assistant
        turn that does not follow a user turn. Raw completion leaves empty texts out."""
        messages: tuple[ChatMessage, ...] = ((ChatMessage("system", system),) if system else ())
        if previous:
            messages += (ChatMessage("user", ""), ChatMessage("assistant", previous))
        messages += (ChatMessage("user", user),)
        return cls(messages=messages, params=params or SamplingParams())


@dataclass(frozen=True)
class TokenEvent:
    """One generated token. `text` is the text it completes (may be empty while a multi-byte
    character or a possible stop string is still being held back). In learning mode, `choice`
    (an `app.core.learning.TokenChoice`) tells how the token was picked."""

    token_id: int
    text: str
    choice: Any = None
    attention: tuple[float, ...] | None = None  # over the positions before it, when asked for and available


@dataclass(frozen=True)
class GenerationResult:
    """The end of one generation: the full text and how it went."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    stop_reason: StopReason
    seconds: float
    prompt_seconds: float
    seed: int
    prompt_text: str = ""  # exactly the text the model read (the messages in their prompt format)
    prompt_format: str = ""  # the format used: "model", "raw" or a built-in template's name
    reused_tokens: int = 0  # prompt tokens whose evaluation was kept from the previous generation
    attention_note: str = ""  # why attention asked for is not there ("attention not available …")
    peak_rss_bytes: int | None = None  # the worker's peak resident memory while it generated
    cpu_seconds: float | None = None  # the worker's CPU time while it generated
    entropy_mean: float | None = None  # mean entropy (nats) of the token distributions (app.core.metrics)
    token_count: int | None = None  # a remote engine's own count (its usage), when it differs from token_ids
    notes: tuple[str, ...] = ()  # what the answer's footer must say (settings an engine was not sent, a cut)

    @property
    def generated_tokens(self) -> int:
        """How many tokens were generated."""
        return len(self.token_ids) if self.token_count is None else self.token_count

    @property
    def tokens_per_second(self) -> float:
        """Generation speed after the prompt was evaluated."""
        gen_seconds = self.seconds - self.prompt_seconds
        return self.generated_tokens / gen_seconds if gen_seconds > 0 else 0.0


GenerationEvent = Union[TokenEvent, GenerationResult]


@dataclass(frozen=True)
class LoadedModel:
    """What loading a model reports."""

    path: str
    load: LoadParams
    n_ctx: int
    n_vocab: int
    n_ctx_train: int
    chat_template: str | None
    load_seconds: float
    memory_bytes: int | None  # resident memory of the worker after loading, when the OS tells it


class Backend(Protocol):
    """A place where one model at a time is loaded and generates text."""

    def load(self, path: str, params: LoadParams | None = None,
             progress: Callable[[float], None] | None = None) -> LoadedModel:
        """Load `path`, releasing any other model first. A no-op when it is already loaded alike.
        `progress`, when given, is called on the loading thread with the fraction done (0 to 1,
        rising); a backend that cannot tell may never call it."""

    def unload(self) -> None:
        """Release the loaded model and its memory."""

    @property
    def loaded(self) -> LoadedModel | None:
        """The model in memory, if any."""

    def generate(self, request: GenerationRequest) -> Iterator[GenerationEvent]:
        """Stream `TokenEvent`s for the loaded model, then one final `GenerationResult`."""

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of `text` in the loaded model's vocabulary."""

    def detokenize(self, tokens: list[int]) -> str:
        """The text of `tokens` in the loaded model's vocabulary."""

    def vocabulary(self) -> list[str]:
        """Every token's text, indexed by token id."""

    def metadata(self) -> dict[str, str]:
        """The loaded model's GGUF metadata as llama.cpp reports it."""

    def step(self) -> None:
        """With manual stepping: let the running generation produce one more token."""

    def stop_current(self) -> None:
        """Ask the running generation to end after its current token."""

    def stop_all(self) -> None:
        """Stop the running generation; kill the worker if it does not answer within a second."""
