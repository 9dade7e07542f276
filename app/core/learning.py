"""Learning mode's view of one token choice: the top candidates, their raw logits, their
probability before sampling and after every sampler stage, the stage that removed each removed
candidate, and the rank of the token that was picked.

The pick is drawn by `SamplerPipeline` from exactly the distribution recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from app.core.sampler_pipeline import STAGES, Pick, StageRecord, VocabularyLogits, top_indices

MAX_CANDIDATES = 100


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate for the next token. (Slots: a hundred a token are kept for the whole answer;
    a quarter of the memory of a dict-backed instance, and one object for the garbage collector.)"""

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
    remote: bool = False  # from a remote engine's log-probabilities: no logits, no stages, no token ids


    def to_record(self) -> dict:
        """Plain data for the journal."""
        record = {
            "position": self.position, "chosen": self.chosen, "rank": self.chosen_rank, "stages": list(self.stages),
            "candidates": [[c.token_id, c.piece, round(c.logit, 4), round(c.prob, 6),
                            [round(p, 6) for p in c.stage_probs], c.removed_by] for c in self.candidates],
        }
        if self.remote:
            record["remote"] = True
        return record

    @classmethod
    def from_record(cls, record: dict) -> "TokenChoice":
        """Back from the journal's plain data (`to_record`)."""
        candidates = tuple(Candidate(int(token), str(piece), float(logit), float(prob),
                                     tuple(float(p) for p in stage_probs), removed or None)
                           for token, piece, logit, prob, stage_probs, removed in record["candidates"])
        return cls(int(record["position"]), int(record["chosen"]), int(record["rank"]),
                   tuple(record["stages"]), candidates, bool(record.get("remote", False)))

    def __reduce__(self) -> tuple:
        """Pickled by columns (one list per Candidate field): the worker sends one choice per
        generated token, and the default (every candidate an object whose fields a Python
        __setstate__ sets) takes several times as long to write and read. `describe_pick` leaves
        the columns it built on the choice."""
        columns = self.__dict__.get("_columns")
        if columns is None:
            columns = tuple(map(list, zip(*((c.token_id, c.piece, c.logit, c.prob, c.stage_probs, c.removed_by)
                                            for c in self.candidates), strict=True))) or ([],) * 6
        if self.remote:  # made in the studio's own process, never sent to the worker: the plain form
            return TokenChoice, (self.position, self.chosen, self.chosen_rank, self.stages, self.candidates, True)
        return _choice_from_columns, (self.position, self.chosen, self.chosen_rank, self.stages, *columns)

    @property
    def chosen_candidate(self) -> Candidate:
        """The candidate that was picked (always among the candidates)."""
        return next(c for c in self.candidates if c.token_id == self.chosen)


def _candidate(token_id: int, piece: str, logit: float, prob: float, stage_probs: tuple[float, ...],
               removed_by: str | None) -> Candidate:
    """`Candidate(...)` at half the cost of the frozen dataclass's own __init__ (which goes through
    object.__setattr__ for every field): the slots are set through their descriptors. A hundred a
    token, in the worker and again in the studio."""
    candidate = _new_object(Candidate)
    _set_token_id(candidate, token_id)
    _set_piece(candidate, piece)
    _set_logit(candidate, logit)
    _set_prob(candidate, prob)
    _set_stage_probs(candidate, stage_probs)
    _set_removed_by(candidate, removed_by)
    return candidate


_new_object = object.__new__
# In field order (a field added to Candidate must be added here: the unpacking fails loudly).
_set_token_id, _set_piece, _set_logit, _set_prob, _set_stage_probs, _set_removed_by = (
    getattr(Candidate, field.name).__set__ for field in fields(Candidate))


def _choice_from_columns(position: int, chosen: int, rank: int, stages: tuple[str, ...], *columns: list) -> TokenChoice:
    """A `TokenChoice` back from `TokenChoice.__reduce__`'s columns."""
    return TokenChoice(position, chosen, rank, stages, tuple(map(_candidate, *columns)))


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
    ids = top.tolist()
    raw = pick.raw if pick.raw is not None else StageRecord("raw", vocabulary=VocabularyLogits(logits))
    names = tuple(r.stage for r in pick.stages)
    # One row per stage: the candidates' probabilities after it and whether they were kept.
    probs = np.zeros((len(pick.stages), len(ids)))
    kept = np.zeros((len(pick.stages), len(ids)), dtype=bool)
    whole: dict[int, np.ndarray] = {}  # several stages can share one whole-vocabulary distribution
    column = {token: index for index, token in enumerate(ids)}
    previous: StageRecord | None = None
    for row, record in enumerate(pick.stages):
        if record.vocabulary is not None:
            key = id(record.vocabulary)
            if key not in whole:
                whole[key] = record.probs_of(top)[0]
            probs[row], kept[row] = whole[key], True
        elif (previous is not None and previous.vocabulary is None and record.token_ids is previous.token_ids
              and record.probs is previous.probs):  # a stage that kept all: the same arrays
            probs[row], kept[row] = probs[row - 1], kept[row - 1]
        elif len(record) > MAX_CANDIDATES * 4:
            probs[row], kept[row] = record.probs_of(top)
        else:
            found = [(column[token], at) for at, token in enumerate(record.token_ids.tolist()) if token in column]
            if found:
                columns, positions = zip(*found, strict=True)
                probs[row, list(columns)] = record.probs[list(positions)]
                kept[row, list(columns)] = True
        previous = record
    key = id(raw.vocabulary)
    before = whole[key] if key in whole else raw.probs_of(top)[0]
    stage_probs = probs.T.tolist()
    # Removal is membership, not a zero: a survivor's probability can underflow to 0.
    first_gone = np.where(kept.all(axis=0), -1, np.argmin(kept, axis=0)).tolist() if len(names) else [-1] * len(ids)
    values = np.asarray(logits)[top]
    n_pieces = len(pieces)
    columns = (ids, [pieces[token] if token < n_pieces else "" for token in ids], values.tolist(), before.tolist(),
               list(map(tuple, stage_probs)), [names[gone] if gone >= 0 else None for gone in first_gone])
    candidates = tuple(map(_candidate, *columns))
    chosen_logit = values[len(top) - 1] if not len(chosen_at) else values[chosen_at[0]]
    if len(chosen_at):
        # Every token above the chosen one is among the candidates (they are the most likely).
        rank = int(np.count_nonzero(values > chosen_logit)) + 1
    else:
        rank = int(np.count_nonzero(np.asarray(logits) > chosen_logit)) + 1
    choice = TokenChoice(position, pick.token_id, rank, names, candidates)
    object.__setattr__(choice, "_columns", columns)  # for pickling (see TokenChoice.__reduce__)
    return choice


__all__ = ["Candidate", "TokenChoice", "describe_pick", "STAGES", "MAX_CANDIDATES"]
