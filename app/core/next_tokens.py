"""Cross-model next-token comparison: at one prefix, several models' most likely next tokens side by
side, and where their greedy continuations part.

The prefix is a user prompt (sent in each model's own prompt format) or raw text (sent as is, e.g.
an answer's prompt as the model read it plus the answer up to a token). Each model is loaded in
turn (one model in memory) and continues the prefix greedily for a few tokens in learning mode: the
first token's candidates are its next-token distribution (softmax of the raw logits), and the
continuations are compared character by character, since models tokenize differently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from app.core.backend import Backend, GenerationRequest, GenerationResult, TokenEvent
from app.core.errors import ChainStudioError
from app.core.hub_links import display_name
from app.core.sampling import LoadParams, SamplingParams

DEFAULT_TOP = 10
DEFAULT_TOKENS = 16
MAX_TOKENS = 256


@dataclass(frozen=True)
class ModelNextTokens:
    """One model's side: its top next tokens (id, text, probability, most likely first) and its
    greedy continuation, token by token; `error` when it could not answer."""

    model: str
    candidates: tuple[tuple[int, str, float], ...] = ()
    continuation: tuple[str, ...] = ()
    error: str = ""

    @property
    def text(self) -> str:
        return "".join(self.continuation)

    def token_at(self, char: int | None) -> int | None:
        """The index of the continuation's token that holds character `char` (None when the
        continuation ends before it, or `char` is None)."""
        if char is None:
            return None
        end = 0
        for index, piece in enumerate(self.continuation):
            end += len(piece)
            if char < end:
                return index
        return None


@dataclass(frozen=True)
class NextTokenComparison:
    """Every model's side at one prefix, and the first character where their continuations part
    (None when they all wrote the same)."""

    prefix: str
    raw: bool
    sides: tuple[ModelNextTokens, ...]
    parts_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the CLI's `next_tokens` line)."""
        return {
            "prefix": self.prefix, "raw": self.raw, "parts_at": self.parts_at,
            "models": [{"model": side.model, "error": side.error or None,
                        "candidates": [{"token_id": t, "text": piece, "probability": round(p, 6)}
                                       for t, piece, p in side.candidates],
                        "continuation": list(side.continuation),
                        "parts_at_token": side.token_at(self.parts_at)} for side in self.sides],
        }


def parting_character(texts: Sequence[str]) -> int | None:
    """The first character index where `texts` are not all the same (a text that ends counts as
    parting there); None when they are equal, or fewer than two."""
    if len(texts) < 2 or all(text == texts[0] for text in texts):
        return None
    shortest = min(len(text) for text in texts)
    for index in range(shortest):
        if len({text[index] for text in texts}) > 1:
            return index
    return shortest


def compare_next_tokens(backend: Backend, models: Sequence[str], prefix: str, raw: bool = False,
                        top: int = DEFAULT_TOP, tokens: int = DEFAULT_TOKENS, system: str = "",
                        load: LoadParams | None = None,
                        on_model: Callable[[str], None] | None = None) -> NextTokenComparison:
    """Load each of `models` in turn and compare them at `prefix`. A model that cannot load or
    answer gets its message in its side; the others go on."""
    if not models:
        raise ChainStudioError("choose at least one model to compare")
    if not 1 <= top <= 100:
        raise ChainStudioError("show 1 to 100 next tokens per model")
    if not 1 <= tokens <= MAX_TOKENS:
        raise ChainStudioError(f"continue 1 to {MAX_TOKENS} tokens")
    params = SamplingParams(temperature=0.0, max_tokens=tokens, seed=0)
    if raw:
        request = GenerationRequest(prompt=prefix, params=params, learning_top=top, fresh_context=True)
    else:
        request = dataclasses.replace(GenerationRequest.chat(prefix, system, params), learning_top=top,
                                      fresh_context=True)
    sides = []
    for model in models:
        name = display_name(model)
        if on_model is not None:
            on_model(name)
        try:
            backend.load(model, load)  # a no-op when it is loaded alike
            sides.append(_side(name, backend, request, top))
        except ChainStudioError as exc:
            sides.append(ModelNextTokens(name, error=str(exc)))
    answered = [side.text for side in sides if not side.error]
    return NextTokenComparison(prefix, raw, tuple(sides), parting_character(answered))


def _side(name: str, backend: Backend, request: GenerationRequest, top: int) -> ModelNextTokens:
    pieces: list[str] = []
    first = None
    for event in backend.generate(request):
        if isinstance(event, TokenEvent):
            pieces.append(event.text)
            if first is None:
                first = event.choice
        elif isinstance(event, GenerationResult):
            break
    candidates: tuple[tuple[int, str, float], ...] = ()
    if first is not None:
        ranked = sorted(first.candidates, key=lambda c: (-c.prob, c.token_id))[:top]
        candidates = tuple((c.token_id, c.piece, c.prob) for c in ranked)
    return ModelNextTokens(name, candidates, tuple(pieces))


__all__ = ["ModelNextTokens", "NextTokenComparison", "compare_next_tokens", "parting_character"]
