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
from typing import Any, Callable, Sequence

from app.core.chain import ChainSpec
from app.core.code_exec import CodeOptions
from app.core.errors import ChainStudioError
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


CODE_NOTE = "the original ran the code in its answers; the replay does not (add --run-code to run it again)"


@dataclass(frozen=True)
class ReplaySetup:
    """What a replay runs: the run's settings, each answer's seed (by index), the answers it is
    compared with (branches left out: they are not replayed) and what the verdict must say."""

    spec: ChainSpec
    seeds: dict[int, int]
    originals: list[Answer]
    notes: list[str]


def prepare_replay(spec_record: dict[str, Any], answers: Sequence[Answer], is_branch: Callable[[int], bool],
                   run_code: bool = False) -> ReplaySetup:
    """A journaled run's replay (raises ChainStudioError when its settings are not this version's).
    The code in answers runs again only with `run_code`."""
    try:
        spec = spec_from_record(spec_record)
    except (ChainStudioError, TypeError, ValueError) as exc:
        raise ChainStudioError(f"its settings are not this version's ({exc})") from None
    notes = []
    if spec.code.run_code and not run_code:
        spec = dataclasses.replace(spec, code=dataclasses.replace(spec.code, run_code=False))
        notes.append(CODE_NOTE)
    originals = [answer for answer in answers if not is_branch(answer.index)]
    return ReplaySetup(spec, {answer.index: answer.seed for answer in originals}, originals, notes)


def replay_verdict(run_id: int, replay_run_id: int | None, setup: ReplaySetup,
                   replayed: Sequence[Answer]) -> dict[str, Any]:
    """The `replay` line: token-identical or not, and where the first answer parted."""
    pairs = pair_answers(setup.originals, replayed)
    first = next((pair for pair in pairs if not pair.identical), None)
    return {"type": "replay", "run_id": run_id, "replay_run_id": replay_run_id, "identical": first is None,
            "answers": len(pairs), "differing": sum(1 for pair in pairs if not pair.identical),
            "first_difference": difference_record(first, "original", "replay") if first else None,
            "notes": list(setup.notes)}


def difference_record(pair: AnswerPair, a_name: str, b_name: str) -> dict[str, Any]:
    """Where a pair parts, as JSON: the answer, and the token (or a missing answer) on each side."""
    known = pair.a or pair.b
    assert known is not None
    record: dict[str, Any] = {"answer": pair.index, "model": known.model, "item": known.item}
    if pair.a is None or pair.b is None:
        record["missing"] = a_name if pair.a is None else b_name
        return record
    assert pair.difference is not None
    difference = pair.difference.to_dict()
    difference[a_name] = difference.pop("a")
    difference[b_name] = difference.pop("b")
    record.update(difference)
    return record


def token_words(side: dict[str, Any]) -> str:
    """One side of a difference record in words: the token, its id, and its likeliest candidates."""
    if side["token_id"] is None and not side["text"]:
        return "the end of the answer"
    words = repr(side["text"]) + (f" (id {side['token_id']})" if side["token_id"] is not None else "")
    if side.get("candidates"):
        words += ", from " + ", ".join(f"{c['text']!r} {c['probability']:.2f}" for c in side["candidates"][:3])
    return words


def replay_sentence(line: dict[str, Any]) -> str:
    """The replay's verdict in a sentence (the CLI without --jsonl, the Compare tab)."""
    head = f"Replay of run {line['run_id']} (journaled as run {line['replay_run_id']}): "
    tail = "".join(f"\nNote: {note}" for note in line["notes"])
    if line["identical"]:
        return head + f"token-identical, {line['answers']} answers." + tail
    record = line["first_difference"]
    where = f"answer {record['answer']} ({record['model']}, item {record['item']})"
    if "missing" in record:
        return head + f"{where} is missing in the {record['missing']}." + tail
    unit = "token" if record["by"] == "tokens" else "character"
    return (head + f"{line['differing']} of {line['answers']} answers differ; the first is {where}, at {unit} "
            f"{record['position']}: {token_words(record['original'])} in the original, "
            f"{token_words(record['replay'])} in the replay." + tail)


