"""Learning mode's view of one token choice: the top candidates, their raw logits, their
probability before sampling and after every sampler stage, the stage that removed each removed
candidate, and the rank of the token that was picked.

The pick is drawn by `SamplerPipeline` from exactly the distribution recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from app.core.sampler_pipeline import STAGES, Pick, softmax

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
    """The top-`k` candidates by raw logit (the chosen token is always included) and their fate."""
    k = max(1, min(k, MAX_CANDIDATES, len(logits)))
    top_k_stage = next((r for r in pick.stages if r.stage == "top_k"), None)
    if top_k_stage is not None and not pick.penalized and len(top_k_stage.token_ids) >= k:
        # The top_k stage already holds the most likely tokens, sorted: no second pass over the vocabulary.
        top = top_k_stage.token_ids[:k]
    else:
        top = np.argpartition(-logits, k - 1)[:k]
        top = top[np.argsort(-logits[top], kind="stable")]
    if pick.token_id not in top:
        top = np.append(top, pick.token_id)
    before = pick.raw_probs if pick.raw_probs is not None else softmax(logits)
    names = tuple(r.stage for r in pick.stages)
    stage_probs: list[np.ndarray] = []
    stage_kept: list[np.ndarray] = []
    for record in pick.stages:
        if len(record.token_ids) == len(logits):  # a stage that keeps the whole vocabulary
            stage_probs.append(record.probs[top])
            stage_kept.append(np.ones(len(top), dtype=bool))
        else:
            table = dict(zip(record.token_ids.tolist(), record.probs.tolist(), strict=False))
            stage_probs.append(np.array([table.get(int(i), 0.0) for i in top]))
            stage_kept.append(np.array([int(i) in table for i in top]))
    candidates = []
    for column, token in enumerate(top.tolist()):
        probs = tuple(float(p[column]) for p in stage_probs)
        # Removal is membership, not a zero: a survivor's probability can underflow to 0.
        removed = next((names[i] for i, kept in enumerate(stage_kept) if not kept[column]), None)
        candidates.append(Candidate(token, pieces[token] if token < len(pieces) else "", float(logits[token]),
                                    float(before[token]), probs, removed))
    rank = int(np.count_nonzero(logits > logits[pick.token_id])) + 1
    return TokenChoice(position, pick.token_id, rank, names, tuple(candidates))


__all__ = ["Candidate", "TokenChoice", "describe_pick", "STAGES", "MAX_CANDIDATES"]
