"""Events a chain run yields. The UI, the CLI, the journal and the tests consume the same stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from app.core.backend import ChatMessage, LoadedModel
from app.core.metrics import AnswerMetrics, RunMetrics
from app.core.sampling import SamplingParams

if TYPE_CHECKING:  # code_exec imports STOP_SIGNAL from here
    from app.core.code_exec import CodeResult

RunEndReason = str  # "completed" | "stop_signal" | "stop_condition" | "stopped" | "error"
STOP_SIGNAL = "STOP_SAMANTHA"
STOP_REASON_TEXT = {
    "eos": "finished",
    "stop_string": "stop string reached",
    "stop_token": "stop token reached",
    "max_tokens": "max_tokens reached",
    "context_full": "context window full",
    "stopped": "stopped",
    "cut": "the engine's stream was cut",
}


@dataclass(frozen=True)
class RunStarted:
    run_id: int | None
    planned: int
    items: int
    models: tuple[str, ...]
    engines: tuple[str, ...] = ()  # the members of `models` that are on remote engines (NAME/model-id)


@dataclass(frozen=True)
class ModelDownloading:
    """Progress of a model being downloaded (`fraction` None while the size is unknown)."""

    model: str
    text: str
    fraction: float | None


@dataclass(frozen=True)
class ModelLoading:
    model: str


@dataclass(frozen=True)
class ModelLoadProgress:
    """Progress of the model being loaded: `fraction` from 0 to 1, rising, 1.0 when llama.cpp is
    done (ModelLoaded follows). At most about ten a second."""

    model: str
    fraction: float


@dataclass(frozen=True)
class ModelLoaded:
    model: str
    info: LoadedModel


@dataclass(frozen=True)
class EngineConnected:
    """A remote engine answered and lists `model` (`NAME/model-id`); `kind` is what its sampling
    fields are sent as (app.engines.params)."""

    model: str
    url: str
    kind: str
    seconds: float
    warning: str = ""  # plain http to another computer


@dataclass(frozen=True)
class AnswerStarted:
    index: int
    model: str
    item: int
    response: int
    loop: int
    prompt: str
    params: SamplingParams


@dataclass(frozen=True)
class AnswerToken:
    index: int
    text: str
    token_id: int = -1
    choice: Any = None  # learning mode: the token's app.core.learning.TokenChoice


@dataclass(frozen=True)
class Escalation:
    """What an item's `{escalate_entropy=…}` made of one answer. Above the threshold (or with no
    entropy measured, as for an engine's answer) the item goes on to `next_model`; at or below it,
    the item is settled and later models skip it. `next_model` is None for the list's last model."""

    threshold: float
    entropy: float | None
    escalated: bool
    next_model: str | None = None

    @classmethod
    def decide(cls, threshold: float, entropy: float | None, next_model: str | None) -> "Escalation":
        """The gate: unsure (or not known to be sure) goes on."""
        return cls(threshold, entropy, entropy is None or entropy > threshold, next_model)

    def describe(self, item: int) -> str:
        """Why the item went on, or stopped here, in a sentence."""
        if self.entropy is None:
            measured = "entropy not measured (an engine's answer), so not known to be sure"
        else:
            sign = ">" if self.escalated else "≤"
            measured = f"mean entropy {self.entropy:.2f} nats {sign} escalate_entropy {self.threshold:g}"
        if self.escalated:
            where = f"item {item} goes on to {self.next_model}" if self.next_model else \
                f"no model is left to take item {item}"
            return f"⤴️ {measured}: {where}"
        skips = f"; {self.next_model} and later models skip it" if self.next_model else ""
        return f"✅ {measured}: item {item} is settled here{skips}"

    def to_dict(self) -> dict[str, Any]:
        entropy = round(self.entropy, 4) if self.entropy is not None else None  # as in the metrics
        return {"threshold": self.threshold, "entropy": entropy, "escalated": self.escalated,
                "next_model": self.next_model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Escalation":
        return cls(float(data["threshold"]), data.get("entropy"), bool(data["escalated"]), data.get("next_model"))


@dataclass(frozen=True)
class Answer:
    """A finished answer, as the journal keeps it."""

    index: int
    model: str
    model_path: str
    item: int
    response: int
    loop: int
    prompt: str
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    text: str
    prompt_tokens: int
    tokens: int
    seconds: float
    stop_reason: str
    seed: int
    choices: tuple[Any, ...] = ()  # learning mode: one TokenChoice per generated token
    prompt_format: str = ""  # "model", "raw" or a llama.cpp template's name
    sent: str = ""  # exactly the text the model read
    reasoning: str = ""  # the answer's reasoning (<think>…</think>), kept apart from `text`
    notes: tuple[str, ...] = ()  # said in the footer: settings a remote engine was not sent, a cut stream
    metrics: AnswerMetrics | None = None  # speeds, memory, CPU, entropy (app.core.metrics)
    escalation: Escalation | None = None  # the item's {escalate_entropy=…} gate, when it has one
    pieces: tuple[tuple[int, str], ...] = ()  # (token id, text) of each generated token: replay compares them

    def to_record(self) -> dict[str, Any]:
        """The public JSON form (the CLI's "answer" line)."""
        return {
            "index": self.index,
            "model": self.model,
            "item": self.item,
            "response": self.response,
            "loop": self.loop,
            "prompt": self.prompt,
            "params": self.params.to_dict(),
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 4),
            "stop_reason": self.stop_reason,
            "prompt_format": self.prompt_format,
            "reasoning": self.reasoning,
            "notes": list(self.notes),
            "metrics": self.metrics.to_dict() if self.metrics is not None else None,
            "escalation": self.escalation.to_dict() if self.escalation is not None else None,
        }


@dataclass(frozen=True)
class AnswerFinished:
    answer: Answer


@dataclass(frozen=True)
class BranchFinished:
    """A branch grown in learning mode: `answer` starts like answer `parent_seq` up to `position`,
    where it took `token`."""

    answer: Answer
    parent_seq: int
    position: int
    token: int


@dataclass(frozen=True)
class CodeStarted:
    """The code of answer `index` starts running (`source`: "answer", or "pasted" for #IDE code)."""

    index: int
    code: str
    source: str


@dataclass(frozen=True)
class CodeFinished:
    """The code of answer `index` ran; `hidden` when the person chose to keep outputs out of the
    transcript."""

    index: int
    result: "CodeResult"
    source: str
    hidden: bool = False


@dataclass(frozen=True)
class Failure:
    """A model that could not load or crashed, or an answer that could not be generated; the run
    goes on. `index` is None when the whole model failed (its answers were skipped)."""

    model: str
    message: str
    loop: int
    index: int | None = None
    item: int | None = None
    response: int | None = None
    skipped: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "message": self.message,
            "loop": self.loop,
            "index": self.index,
            "item": self.item,
            "response": self.response,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class RunFinished:
    run_id: int | None
    reason: RunEndReason
    answers: int
    failures: int
    metrics: RunMetrics | None = None  # totals over the run's answers


ChainEvent = Union[RunStarted, ModelDownloading, ModelLoading, ModelLoadProgress, ModelLoaded, EngineConnected,
                   AnswerStarted,
                   AnswerToken, AnswerFinished, BranchFinished, CodeStarted, CodeFinished, Failure, RunFinished]
