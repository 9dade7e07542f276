"""Learning mode on a remote engine: a `TokenChoice` from what the server reports for a token, its
log-probability and its top-N alternatives (OpenAI's `logprobs`/`top_logprobs`).

An engine gives no raw logits, no vocabulary ids and no view of its sampler stages: the
probabilities are the server's, after whatever it applies before reporting them. Pieces get ids
of their own within one answer (negative, so they never pass for vocabulary ids)."""

from __future__ import annotations

import math
from typing import Iterable

from app.core.learning import Candidate, TokenChoice

REMOTE_NOTE = ("Seen remotely: the engine reports only the top log-probabilities of each token. Its raw "
               "logits and every sampler stage (penalties, top-k, top-p, min-p, temperature) happen on the "
               "server and cannot be seen; token ids are the studio's own, numbered within the answer.")


class PieceIds:
    """Ids for the pieces of one answer: -2, -3, … in order of appearance (-1 means "no id")."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def __call__(self, piece: str) -> int:
        return self._ids.setdefault(piece, -2 - len(self._ids))


def remote_choice(position: int, piece: str, logprob: float | None, alternatives: Iterable[tuple[str, float]],
                  ids: PieceIds) -> TokenChoice:
    """The choice of `piece` at `position` among the engine's `alternatives` (piece, logprob); the
    chosen piece is always among the candidates, and its rank is its place by probability (one past
    the list when the engine did not list it)."""
    listed: dict[str, float] = {}
    for alternative, value in alternatives:
        if isinstance(value, (int, float)) and math.isfinite(value) and alternative not in listed:
            listed[str(alternative)] = float(value)
    chosen_logprob = logprob if isinstance(logprob, (int, float)) and math.isfinite(logprob) else listed.get(piece)
    ranked = sorted(listed.items(), key=lambda item: -item[1])
    rank = next((at for at, (name, _v) in enumerate(ranked, start=1) if name == piece), len(ranked) + 1)
    if piece not in listed:
        ranked.append((piece, chosen_logprob if chosen_logprob is not None else -math.inf))
    candidates = tuple(Candidate(ids(name), name, value, math.exp(value) if math.isfinite(value) else 0.0, (), None)
                       for name, value in ranked)
    return TokenChoice(position, ids(piece), rank, (), candidates, remote=True)
