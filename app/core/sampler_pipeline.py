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
"""The stages recorded with the default settings."""
ALL_STAGES = ("penalties", "dry", "top_k", "tfs_z", "typical_p", "top_p", "min_p", "xtc", "top_n_sigma",
              "temperature", "mirostat")
"""Every stage a pick can go through (DRY, XTC, top-n-sigma and Mirostat only when switched on)."""


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


def dry_penalties(context: Sequence[int], multiplier: float, base: float, allowed: int,
                  max_length: int = 64) -> dict[int, float]:
    """DRY ("don't repeat yourself"): for each token that would extend a repeat of the context's
    end, the penalty multiplier x base^(repeat length - allowed length), when the repeat is at least
    `allowed` long. A repeat is found where an earlier stretch equals the context's last tokens; the
    token that followed it is penalised. (No sequence breakers: token ids only.)"""
    ctx = np.asarray(context, dtype=np.int64)
    n = len(ctx)
    penalties: dict[int, float] = {}
    if multiplier <= 0 or n < 2:
        return penalties
    positions = np.arange(1, n)  # ctx[i] is the token that followed the stretch ending at i - 1
    matching = np.ones(len(positions), dtype=bool)
    lengths = np.zeros(len(positions), dtype=np.int64)
    for k in range(1, min(n - 1, max_length) + 1):
        valid = positions - k >= 0
        same = np.zeros(len(positions), dtype=bool)
        same[valid] = ctx[positions[valid] - k] == ctx[n - k]
        matching &= same
        if not matching.any():
            break
        lengths[matching] = k
    for position, length in zip(positions.tolist(), lengths.tolist(), strict=False):
        if length >= allowed and length > 0:
            token = int(ctx[position])
            penalties[token] = max(penalties.get(token, 0.0), multiplier * base ** (length - allowed))
    return penalties


def xtc_keep(probs_sorted: np.ndarray, threshold: float) -> np.ndarray:
    """XTC ("exclude top choices"): when two or more tokens are at least `threshold` likely, all of
    them but the least likely are removed. A mask over descending-sorted probabilities."""
    above = np.nonzero(probs_sorted >= threshold)[0]
    mask = np.ones(len(probs_sorted), dtype=bool)
    if len(above) >= 2:
        mask[above[:-1]] = False
    return mask


def top_n_sigma_keep(values: np.ndarray, n: float) -> np.ndarray:
    """Keep the logits within n standard deviations of the largest."""
    if n <= 0 or len(values) < 2:
        return np.ones(len(values), dtype=bool)
    return values >= values.max() - n * values.std()


class SamplerPipeline:
    """Draws tokens from full logit vectors with the stages in `STAGES` and a seeded generator.
    Extra stages (DRY, XTC, top-n-sigma, Mirostat) run and are recorded only when switched on; the
    order of the filter stages is `params.order`. One pipeline serves one generation (Mirostat
    keeps its state from token to token)."""

    def __init__(self, params: SamplingParams, seed: int) -> None:
        self.params = params
        self.rng = np.random.default_rng(seed)
        self.mu = 2.0 * params.mirostat_tau

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
        if prm.dry_multiplier > 0:
            context = list(recent)[-prm.dry_last_n :] if prm.dry_last_n else list(recent)
            dry = dry_penalties(context, prm.dry_multiplier, prm.dry_base, prm.dry_allowed_length)
            if dry:
                values = values.copy()
                for token, penalty in dry.items():
                    if token < len(values):
                        values[token] -= penalty
                penalized = True
            note("dry")
        if prm.is_greedy:
            best = int(ids[np.argmax(values)])
            return Pick(best, tuple(records), raw_probs, penalized)
        if prm.mirostat:
            return self._mirostat(ids, values, records if record else None, raw_probs, penalized)

        if prm.order[0] == "top_k" and 0 < prm.top_k < len(values):
            keep = top_k_keep(values, prm.top_k)  # a partial sort: no full sort of the vocabulary
            ids, values = ids[keep], values[keep]
        # The stages work on a descending order, as llama.cpp's do.
        order = np.argsort(-values, kind="stable")
        ids, values = ids[order], values[order]
        for stage in prm.order:
            if stage == "top_k":
                count = prm.top_k if prm.top_k > 0 else len(values)
                ids, values = ids[:count], values[:count]
            elif stage == "tfs_z":
                count = tail_free_keep(softmax(values), prm.tfs_z)
                ids, values = ids[:count], values[:count]
            elif stage == "typical_p":
                kept = np.sort(typical_keep_order(softmax(values), prm.typical_p))
                ids, values = ids[kept], values[kept]
            elif stage == "top_p":
                count = top_p_keep(softmax(values), prm.top_p)
                ids, values = ids[:count], values[:count]
            elif stage == "min_p":
                mask = min_p_keep(softmax(values), prm.min_p)
                ids, values = ids[mask], values[mask]
            elif stage == "xtc":
                if prm.xtc_probability <= 0:
                    continue
                if self.rng.random() < prm.xtc_probability:
                    mask = xtc_keep(softmax(values), prm.xtc_threshold)
                    ids, values = ids[mask], values[mask]
            elif stage == "top_n_sigma":
                if prm.top_n_sigma <= 0:
                    continue
                mask = top_n_sigma_keep(values, prm.top_n_sigma)
                ids, values = ids[mask], values[mask]
            note(stage)
        values = values / prm.temperature
        note("temperature")
        probs = softmax(values)
        chosen = int(ids[self.rng.choice(len(ids), p=probs)])
        return Pick(chosen, tuple(records), raw_probs, penalized)

    def _mirostat(self, ids: np.ndarray, values: np.ndarray, records: list[StageRecord] | None,
                  raw_probs: np.ndarray | None, penalized: bool) -> Pick:
        """Mirostat 1 or 2: truncate to keep the surprise near tau, draw, and steer mu."""
        prm = self.params

        def note(stage: str) -> None:
            if records is not None:
                records.append(StageRecord(stage, ids.copy(), softmax(values)))

        values = values / prm.temperature
        order = np.argsort(-values, kind="stable")
        ids, values = ids[order], values[order]
        note("temperature")
        probs = softmax(values)
        if prm.mirostat == 1:
            m = min(100, len(probs) - 1)
            t = np.log((np.arange(m) + 2) / (np.arange(m) + 1))
            b = np.log(np.clip(probs[:m], 1e-300, None) / np.clip(probs[1 : m + 1], 1e-300, None))
            s_hat = float((t * b).sum() / (t * t).sum()) if m > 0 else 1.0
            epsilon = s_hat - 1
            n_vocab = len(probs)
            if abs(epsilon) < 1e-9 or s_hat <= 0:
                k = n_vocab
            else:
                k = int(((epsilon * 2**self.mu) / (1 - n_vocab ** (-epsilon))) ** (1 / s_hat))
            count = max(1, min(k, len(probs)))
        else:
            surprise = -np.log2(np.clip(probs, 1e-300, None))
            count = max(1, int(np.count_nonzero(surprise <= self.mu)))
        ids, values = ids[:count], values[:count]
        note("mirostat")
        probs = softmax(values)
        index = int(self.rng.choice(len(ids), p=probs))
        observed = -np.log2(max(probs[index], 1e-300))
        self.mu -= prm.mirostat_eta * (observed - prm.mirostat_tau)
        return Pick(int(ids[index]), tuple(records or ()), raw_probs, penalized)
