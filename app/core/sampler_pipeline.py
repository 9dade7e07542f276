"""A visible, seeded token sampler: penalties -> top_k -> tfs_z -> typical_p -> top_p -> min_p ->
temperature -> draw.

llama.cpp's own samplers run in normal mode; this pipeline runs where the studio must see or
control every stage (learning mode) and where llama-cpp-python cannot do what was asked (it accepts
`tfs_z` and silently ignores it). Each stage follows llama.cpp's definition, keeps at least one
candidate, and can record the distribution it leaves behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from app.core.sampling import SamplingParams

STAGES = ("penalties", "top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature")


@dataclass(frozen=True)
class StageRecord:
    """The candidates left after one stage and their probabilities (summing to 1)."""

    stage: str
    token_ids: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class Pick:
    """The drawn token and, when recording, the distribution after every stage. `raw_probs` is the
    softmax of the raw logits (when recording); `penalized` says whether penalties changed them."""

    token_id: int
    stages: tuple[StageRecord, ...]
    raw_probs: np.ndarray | None = None
    penalized: bool = False


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
    weights = np.exp(shifted)
    return weights / weights.sum()


def apply_penalties(
    logits: np.ndarray, recent: Sequence[int], repeat: float, presence: float, frequency: float
) -> np.ndarray:
    """llama.cpp's penalties over the recent tokens: divide positive logits (multiply negative ones)
    by `repeat`, then subtract `frequency` per occurrence and `presence` once."""
    out = np.array(logits, dtype=np.float64, copy=True)
    if not len(recent) or (repeat == 1.0 and presence == 0.0 and frequency == 0.0):
        return out
    ids, counts = np.unique(np.asarray(recent, dtype=np.int64), return_counts=True)
    ids, counts = ids[ids < len(out)], counts[ids < len(out)]
    values = out[ids]
    values = np.where(values > 0, values / repeat, values * repeat)
    out[ids] = values - counts * frequency - presence
    return out


def top_k_keep(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices (into `logits`) of the k largest; k <= 0 keeps all."""
    if k <= 0 or k >= len(logits):
        return np.arange(len(logits))
    return np.argpartition(-logits, k - 1)[:k]


def tail_free_keep(probs_sorted: np.ndarray, z: float) -> int:
    """How many of the descending-sorted probabilities tail-free sampling keeps."""
    size = len(probs_sorted)
    if z >= 1.0 or size <= 2:
        return size
    second = np.abs(np.diff(probs_sorted, n=2) * 1.0)
    total = second.sum()
    second = second / total if total > 1e-6 else np.full(len(second), 1.0 / len(second))
    cumulative = np.cumsum(second)
    for i, value in enumerate(cumulative):
        if value > z and i >= 1:
            return i
    return size


def typical_keep_order(probs: np.ndarray, p: float) -> np.ndarray:
    """Positions kept by locally typical sampling, most typical first."""
    if p >= 1.0:
        return np.arange(len(probs))
    logp = np.log(np.clip(probs, 1e-300, None))
    entropy = -np.sum(probs * logp)
    order = np.argsort(np.abs(-logp - entropy), kind="stable")
    cumulative = np.cumsum(probs[order])
    beyond = np.nonzero(cumulative > p)[0]
    last = beyond[0] + 1 if len(beyond) else len(order)
    return order[: max(last, 1)]


def top_p_keep(probs_sorted: np.ndarray, p: float) -> int:
    """How many of the descending-sorted probabilities nucleus sampling keeps."""
    if p >= 1.0:
        return len(probs_sorted)
    reached = np.nonzero(np.cumsum(probs_sorted) >= p)[0]
    return max(int(reached[0]) + 1 if len(reached) else len(probs_sorted), 1)


def min_p_keep(probs: np.ndarray, p: float) -> np.ndarray:
    """Boolean mask of candidates at least `p` times as likely as the top one."""
    if p <= 0.0:
        return np.ones(len(probs), dtype=bool)
    mask = probs >= p * probs.max()
    return mask if mask.any() else probs == probs.max()


class SamplerPipeline:
    """Draws tokens from full logit vectors with the stages in `STAGES` and a seeded generator."""

    def __init__(self, params: SamplingParams, seed: int) -> None:
        self.params = params
        self.rng = np.random.default_rng(seed)

    def pick(self, logits: np.ndarray, recent: Sequence[int], record: bool = False) -> Pick:
        """Choose the next token from `logits` given the recent tokens (for the penalties)."""
        prm = self.params
        records: list[StageRecord] = []
        ids = np.arange(len(logits))
        recent_tokens = list(recent)[-prm.repeat_last_n :] if prm.repeat_last_n else []
        penalized = bool(recent_tokens) and (
            prm.repeat_penalty != 1.0 or prm.presence_penalty != 0.0 or prm.frequency_penalty != 0.0
        )
        values = apply_penalties(logits, recent_tokens, prm.repeat_penalty, prm.presence_penalty,
                                 prm.frequency_penalty)
        raw_probs = None

        def note(stage: str) -> None:
            if record:
                records.append(StageRecord(stage, ids.copy(), softmax(values)))

        if record:
            # Over the whole vocabulary this is the costly part: computed once, shared by the
            # "before sampling" column and the penalties stage when penalties change nothing.
            raw_probs = softmax(values)
            records.append(StageRecord("penalties", ids, raw_probs if not penalized else softmax(values)))
            if penalized:
                raw_probs = softmax(np.asarray(logits, dtype=np.float64))
        if prm.is_greedy:
            best = int(ids[np.argmax(values)])
            return Pick(best, tuple(records), raw_probs, penalized)

        keep = top_k_keep(values, prm.top_k)
        ids, values = ids[keep], values[keep]
        # Later stages work on a descending order, as llama.cpp's do.
        order = np.argsort(-values, kind="stable")
        ids, values = ids[order], values[order]
        note("top_k")
        count = tail_free_keep(softmax(values), prm.tfs_z)
        ids, values = ids[:count], values[:count]
        note("tfs_z")
        kept = np.sort(typical_keep_order(softmax(values), prm.typical_p))
        ids, values = ids[kept], values[kept]
        note("typical_p")
        count = top_p_keep(softmax(values), prm.top_p)
        ids, values = ids[:count], values[:count]
        note("top_p")
        mask = min_p_keep(softmax(values), prm.min_p)
        ids, values = ids[mask], values[mask]
        note("min_p")
        values = values / prm.temperature
        note("temperature")
        probs = softmax(values)
        chosen = int(ids[self.rng.choice(len(ids), p=probs)])
        return Pick(chosen, tuple(records), raw_probs, penalized)
