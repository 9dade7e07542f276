"""Replaying a journaled run and comparing answers token by token.

A replay runs the run's own settings again (`spec_from_record`), each answer with the seed it had.
`compare_answers` finds the first token where two answers part: by token ids where both answers
kept them (every answer since the journal's `pieces` column), else by text. Where learning mode
recorded each token's candidates, the difference carries both distributions at that position.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Sequence

from app.core.chain import ChainSpec
from app.core.code_exec import CodeOptions
from app.core.events import Answer
from app.core.learning import TokenChoice
from app.core.sampling import LoadParams, SamplingParams

CANDIDATES_SHOWN = 5  # of each distribution, in a difference


def spec_from_record(data: dict[str, Any]) -> ChainSpec:
    """The `ChainSpec` a journaled run was started with (`ChainSpec.to_dict`). Fields of an older or
    newer version that this one does not know are left out."""
    known = {f.name for f in dataclasses.fields(ChainSpec)}
    given = {key: value for key, value in data.items() if key in known}
    given["models"] = tuple(given.get("models", ()))
    sampling_known = {f.name for f in dataclasses.fields(SamplingParams)}
    given["sampling"] = SamplingParams().with_overrides(
        {k: v for k, v in dict(given.get("sampling") or {}).items() if k in sampling_known})
    load_known = {f.name for f in dataclasses.fields(LoadParams)}
    given["load"] = LoadParams(**{k: v for k, v in dict(given.get("load") or {}).items() if k in load_known})
    code_known = {f.name for f in dataclasses.fields(CodeOptions)}
    given["code"] = CodeOptions(**{k: v for k, v in dict(given.get("code") or {}).items() if k in code_known})
    given["model_templates"] = tuple(tuple(pair) for pair in given.get("model_templates") or ())
    return ChainSpec(**given)


@dataclass(frozen=True)
class TokenAt:
    """One side of a difference: the token at the position (None when the answer ended before it)
    and, from learning mode, the distribution it was drawn from."""

    token_id: int | None
    text: str
    candidates: tuple[tuple[int, str, float], ...] | None = None  # (id, piece, probability), most likely first

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "text": self.text,
                "candidates": None if self.candidates is None else
                [{"token_id": t, "text": piece, "probability": round(p, 6)} for t, piece, p in self.candidates]}


@dataclass(frozen=True)
class Difference:
    """Where two answers part: `position` counts generated tokens from 0 (characters from 0 when
    `by` is "text": answers kept without their token ids)."""

    position: int
    by: str  # "tokens" or "text"
    a: TokenAt
    b: TokenAt
    common: str  # the text both wrote before they parted

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "by": self.by, "a": self.a.to_dict(), "b": self.b.to_dict(),
                "common": self.common}


def _token_at(answer: Answer, position: int) -> TokenAt:
    if position >= len(answer.pieces):
        return TokenAt(None, "")
    token_id, text = answer.pieces[position]
    choice = answer.choices[position] if position < len(answer.choices) else None
    return TokenAt(token_id, text, _distribution(choice))


def _distribution(choice: TokenChoice | None) -> tuple[tuple[int, str, float], ...] | None:
    if choice is None:
        return None
    ranked = sorted(choice.candidates, key=lambda c: c.prob, reverse=True)[:CANDIDATES_SHOWN]
    return tuple((c.token_id, c.piece, c.prob) for c in ranked)


def compare_answers(a: Answer, b: Answer) -> Difference | None:
    """The first place `a` and `b` part, or None when they are the same: token for token where
    both kept their tokens, else character for character."""
    if a.pieces and b.pieces:
        ids_a = [token for token, _text in a.pieces]
        ids_b = [token for token, _text in b.pieces]
        position = _first_mismatch(ids_a, ids_b)
        if position is None:
            return None
        common = "".join(text for _token, text in a.pieces[:position])
        return Difference(position, "tokens", _token_at(a, position), _token_at(b, position), common)
    position = _first_mismatch(a.text, b.text)
    if position is None:
        return None
    return Difference(position, "text", TokenAt(None, a.text[position:position + 20]),
                      TokenAt(None, b.text[position:position + 20]), a.text[:position])


def _first_mismatch(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    for position, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


def text_diff(a: str, b: str, a_name: str = "a", b_name: str = "b") -> list[str]:
    """A unified diff of two answers' texts, line by line (empty when they are the same)."""
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), a_name, b_name, lineterm=""))


@dataclass(frozen=True)
class AnswerPair:
    """Two answers compared: `a` or `b` is None when one side has no answer at that index."""

    index: int
    a: Answer | None
    b: Answer | None
    difference: Difference | None

    @property
    def identical(self) -> bool:
        return self.a is not None and self.b is not None and self.difference is None


def pair_answers(a: Sequence[Answer], b: Sequence[Answer]) -> list[AnswerPair]:
    """Pair two runs' answers by their index in the plan, and compare each pair."""
    by_index_a = {answer.index: answer for answer in a}
    by_index_b = {answer.index: answer for answer in b}
    pairs = []
    for index in sorted(set(by_index_a) | set(by_index_b)):
        first, second = by_index_a.get(index), by_index_b.get(index)
        difference = compare_answers(first, second) if first is not None and second is not None else None
        pairs.append(AnswerPair(index, first, second, difference))
    return pairs
