"""Learning mode's view of one token choice: the top candidates, their raw logits, their
probability before sampling and after every sampler stage, the stage that removed each removed
candidate, and the rank of the token that was picked.

The pick is drawn by `SamplerPipeline` from exactly the distribution recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from app.core.sampler_pipeline import STAGES, Pick, StageRecord, VocabularyLogits, top_indices

MAX_CANDIDATES = 100


@dataclass(frozen=True)
class Candidate:
    """One candidate for the next token."""

    token_id: int
    piece: str
    logit: float
    prob: float  # before sampling: softmax of the raw logits
    stage_probs: tuple[float, ...]  # after each applied stage (0 once removed)
    removed_by: str | None  # the stage that removed it, or None when it survived every stage


@dataclass(frozen=True)
class TokenChoice:
    """Everything learning mode shows about one generated token."""

    position: int
    chosen: int
    chosen_rank: int  # 1 = the most likely token by raw logit
    stages: tuple[str, ...]  # the stages applied, in order (greedy decoding applies penalties only)
    candidates: tuple[Candidate, ...]

    def to_record(self) -> dict:
        """Plain data for the journal."""
        return {
            "position": self.position, "chosen": self.chosen, "rank": self.chosen_rank, "stages": list(self.stages),
            "candidates": [[c.token_id, c.piece, round(c.logit, 4), round(c.prob, 6),
                            [round(p, 6) for p in c.stage_probs], c.removed_by] for c in self.candidates],
        }

    @classmethod
    def from_record(cls, record: dict) -> "TokenChoice":
        """Back from the journal's plain data (`to_record`)."""
        candidates = tuple(Candidate(int(token), str(piece), float(logit), float(prob),
                                     tuple(float(p) for p in stage_probs), removed or None)
                           for token, piece, logit, prob, stage_probs, removed in record["candidates"])
        return cls(int(record["position"]), int(record["chosen"]), int(record["rank"]),
                   tuple(record["stages"]), candidates)

    @property
    def chosen_candidate(self) -> Candidate:
        """The candidate that was picked (always among the candidates)."""
        return next(c for c in self.candidates if c.token_id == self.chosen)


def describe_pick(logits: np.ndarray, pick: Pick, pieces: Sequence[str], position: int, k: int) -> TokenChoice:
    """The top-`k` candidates by raw logit (the chosen token is always included) and their fate.

    Only the candidates are looked at: the pipeline's records give their probabilities (a stage
    that kept the whole vocabulary, from its log-sum-exp), and the most likely tokens come from the
    pick's own pass over the vocabulary when it made one (`Pick.top`)."""
    k = max(1, min(k, MAX_CANDIDATES, len(logits)))
    top = pick.top[:k] if pick.top is not None and len(pick.top) >= k else top_indices(logits, k)
    chosen_at = np.flatnonzero(top == pick.token_id)
    if not len(chosen_at):
        top = np.append(top, pick.token_id)
    top = top.astype(np.int64, copy=False)
    raw = pick.raw if pick.raw is not None else StageRecord("raw", vocabulary=VocabularyLogits(logits))
    before, _ = raw.probs_of(top)
    names = tuple(r.stage for r in pick.stages)
    if pick.stages:
        looked_up = [record.probs_of(top) for record in pick.stages]
        stage_probs = np.array([probs for probs, _ in looked_up], dtype=np.float64).T.tolist()
        kept = np.array([flags for _, flags in looked_up])
        # Removal is membership, not a zero: a survivor's probability can underflow to 0.
        first_gone = np.where(kept.all(axis=0), -1, np.argmin(kept, axis=0)).tolist()
    else:
        stage_probs = [[] for _ in range(len(top))]
        first_gone = [-1] * len(top)
    values = np.asarray(logits)[top]
    ids = top.tolist()
    n_pieces = len(pieces)
    candidates = tuple(
        Candidate(token, pieces[token] if token < n_pieces else "", logit, prob, tuple(probs),
                  names[gone] if gone >= 0 else None)
        for token, logit, prob, probs, gone in zip(ids, values.tolist(), before.tolist(), stage_probs, first_gone,
                                                   strict=True)
    )
    chosen_logit = values[len(top) - 1] if not len(chosen_at) else values[chosen_at[0]]
    if len(chosen_at):
        # Every token above the chosen one is among the candidates (they are the most likely).
        rank = int(np.count_nonzero(values > chosen_logit)) + 1
    else:
        rank = int(np.count_nonzero(np.asarray(logits) > chosen_logit)) + 1
    return TokenChoice(position, pick.token_id, rank, names, candidates)


__all__ = ["Candidate", "TokenChoice", "describe_pick", "STAGES", "MAX_CANDIDATES"]
