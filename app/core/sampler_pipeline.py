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


_EXACT_BELOW = 4096
"""Vocabularies smaller than this get their log-sum-exp in float64 throughout (it is cheap there)."""
_BLOCK_MAX, _BLOCK_MIN = 1024, 128
"""Block sizes of the top-candidates pass (`top_indices`): at least 2 x n blocks."""
_SUM_BLOCK = 4096
"""The float32 log-sum-exp adds its terms in float32 blocks of this size, the blocks in float64."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
    weights = np.exp(shifted)
    return weights / weights.sum()


def log_sum_exp(values: np.ndarray, scratch: np.ndarray | None = None, divisor: float = 1.0,
                likely: np.ndarray | None = None, likely_values: np.ndarray | None = None,
                peak: float | None = None) -> float:
    """log(sum(exp(values / divisor))). A large float32 vector takes two float32 passes (exp into
    `scratch`, then sums of float32 blocks of 4096 added in float64) except for the terms that
    carry the mass: `likely` (indices of the largest values; by default those within 3 of the
    largest) are done in float64, since float32's exp is off by up to 2e-7 per term and a few
    dominant terms would pass that on (`likely_values`: their exact values when `values` holds
    them rounded). `peak`, the largest value when known, saves a pass. The result is within a few
    1e-9 of the float64 one. Small or float64 vectors are done in float64."""
    values = np.asarray(values)
    if len(values) == 0:
        return float("-inf")
    top = float(values.max()) if peak is None else peak
    if not np.isfinite(top):
        return top / divisor  # +inf / nan: no finite distribution; all -inf: log(0)
    if values.dtype != np.float32 or len(values) < _EXACT_BELOW:
        return top / divisor + float(np.log(np.exp((np.asarray(values, dtype=np.float64) - top) / divisor).sum()))
    if scratch is None or len(scratch) < len(values) or scratch.dtype != np.float32:
        scratch = np.empty(len(values), dtype=np.float32)
    if likely is None or len(likely) < 32 and likely_values is None:
        likely = np.flatnonzero(values >= np.float32(top - 3.0 * divisor))
    mass = None
    if len(likely) <= _SUM_BLOCK:  # read before `out` (which may be `values`) is overwritten
        mass = likely_values if likely_values is not None else values[likely].astype(np.float64)
    out = scratch[: len(values)]
    if divisor == 1.0 and -60.0 < top < 60.0:
        shift = 0.0  # far from float32's limits (e^60 x 2^31 terms still fits): no shift, a pass fewer
        np.exp(values, out=out)
    else:
        shift = top
        np.subtract(values, np.float32(top), out=out)
        if divisor != 1.0:
            np.divide(out, np.float32(divisor), out=out)
        np.exp(out, out=out)
    total = 0.0
    if mass is not None:
        # The terms that carry the mass in float64, and out of the float32 sums below.
        out[likely] = 0.0
        total = float(np.exp((mass - shift) / divisor).sum())
    whole = len(out) - len(out) % _SUM_BLOCK
    total += float(out[:whole].reshape(-1, _SUM_BLOCK).sum(axis=1).sum(dtype=np.float64))
    total += float(out[whole:].sum(dtype=np.float64))
    return shift / divisor + float(np.log(total))


def _top_of(values: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """`ids` (ascending) of the n largest `values`, largest first, equal values lower id first, NaN
    after everything (the order of a stable sort of -values). A few survivors are simply sorted;
    many are partitioned first."""
    if len(values) > max(4 * n, 1024):
        negated = -values
        nth = np.partition(negated, n - 1)[n - 1]
        if np.isnan(nth):  # fewer than n numbers: all of them, then the first NaNs
            better, tied = ~np.isnan(negated), np.isnan(negated)
        else:
            better, tied = negated < nth, negated == nth
        chosen = better
        chosen[np.flatnonzero(tied)[: n - int(np.count_nonzero(better))]] = True
        values, ids = values[chosen], ids[chosen]
    return ids[np.argsort(-values, kind="stable")[:n]]


def top_indices(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest values, largest first; equal values in index order, NaN last: the
    first n of `np.argsort(-values, kind="stable")` (which argpartition + sort also give, up to the
    order it picks among values tied at the n-th place), without sorting or partitioning the whole
    vector. One sequential pass takes the maximum of each block of 512-1024 values; the n-th
    largest of those maxima is a threshold at least n values reach (so the n largest all do), and
    a comparison pass finds them: typically 1-2 x n survivors, and only they are partitioned.
    (A strided sample would touch a cache line per value read: slower on logits fresh from the
    model.) Too few blocks for n, or NaN in the way: the whole vector is partitioned."""
    values = np.asarray(values)
    size = len(values)
    n = min(int(n), size)
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    block = _BLOCK_MAX
    while block > _BLOCK_MIN and size // block < 2 * n:
        block //= 2
    blocks = size // block
    if blocks >= 2 * n and blocks >= 16:
        maxima = values[: blocks * block].reshape(blocks, block).max(axis=1)
        threshold = -np.partition(-maxima, n - 1)[n - 1]
        if not np.isnan(threshold):
            survivors = np.flatnonzero(values >= threshold)
            return _top_of(values[survivors], survivors, n)
    return _top_of(values, np.arange(size), n)


class VocabularyLogits:
    """One position's logits over the whole vocabulary after the penalties (and DRY), without a
    copy: the float32 logits as llama.cpp left them (a view of its buffer, valid until the next
    decode) and, kept apart in float64, the few tokens the penalties changed; `divisor` is a
    temperature they are divided by (Mirostat). Anything asked of it costs one float32 pass over
    the vocabulary at most; exact float64 values are computed only for the tokens asked about."""

    def __init__(self, raw: np.ndarray, scratch: np.ndarray | None = None,
                 changed_ids: np.ndarray | None = None, changed_values: np.ndarray | None = None,
                 divisor: float = 1.0) -> None:
        self.raw = np.asarray(raw)
        self.scratch = scratch
        self.changed_ids = changed_ids if changed_ids is not None else np.empty(0, dtype=np.int64)
        self.changed_values = changed_values if changed_values is not None else np.empty(0)
        self.divisor = divisor
        self.likely: np.ndarray | None = None  # ids of likely tokens, if known: see log_sum_exp
        self._log_total: float | None = None
        self._exact_log_total: float | None = None
        self._base: VocabularyLogits | None = None  # the logits these were changed from (`with_changes`)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def changed(self) -> bool:
        return len(self.changed_ids) > 0

    def with_changes(self, ids: np.ndarray, values: np.ndarray) -> "VocabularyLogits":
        """These logits with the tokens `ids` set to `values` (float64, before the divisor)."""
        merged = dict(zip(self.changed_ids.tolist(), self.changed_values.tolist(), strict=True))
        merged.update(zip(np.asarray(ids).tolist(), np.asarray(values, dtype=np.float64).tolist(), strict=True))
        order = sorted(merged)
        changed = VocabularyLogits(self.raw, self.scratch, np.array(order, dtype=np.int64),
                                   np.array([merged[t] for t in order], dtype=np.float64), self.divisor)
        changed.likely = self.likely
        changed._base = self
        return changed

    def divided(self, divisor: float) -> "VocabularyLogits":
        """These logits divided by `divisor` (a temperature)."""
        scaled = VocabularyLogits(self.raw, self.scratch, self.changed_ids, self.changed_values, divisor)
        scaled.likely = self.likely
        return scaled

    def exact(self, tokens: np.ndarray) -> np.ndarray:
        """The float64 values of `tokens`."""
        out = self._undivided(tokens)
        return out / self.divisor if self.divisor != 1.0 else out

    def _undivided(self, tokens: np.ndarray) -> np.ndarray:
        out = self.raw[tokens].astype(np.float64)
        if self.changed:
            where = np.minimum(np.searchsorted(self.changed_ids, tokens), len(self.changed_ids) - 1)
            hit = self.changed_ids[where] == tokens
            out[hit] = self.changed_values[where[hit]]
        return out

    def full(self) -> np.ndarray:
        """The whole vector in float64 (a copy: for the stages that need every token)."""
        out = self.raw.astype(np.float64)
        out[self.changed_ids] = self.changed_values
        return out / self.divisor if self.divisor != 1.0 else out

    def _ordered(self, pool: np.ndarray) -> np.ndarray:
        """`pool` (ascending ids) by exact value, largest first, equal values lower id first."""
        return pool[np.argsort(-self.exact(pool), kind="stable")]

    def top(self, n: int, raw_top: np.ndarray | None = None) -> np.ndarray:
        """The n most likely tokens, most likely first, equal values lower id first. Only the
        changed tokens can move: the raw top n + (changed count) and the changed tokens hold them
        (`raw_top`, the raw logits' most likely tokens in that order, saves the pass when long enough)."""
        wanted = min(n + len(self.changed_ids), len(self.raw))
        if raw_top is None or len(raw_top) < wanted:
            raw_top = top_indices(self.raw, wanted)
        if not self.changed and self.divisor == 1.0:
            return raw_top[:n]
        return self._ordered(np.union1d(raw_top[:wanted], self.changed_ids))[:n]

    def at_least(self, threshold: float) -> np.ndarray:
        """The tokens whose value is at least `threshold`, most likely first (equal values lower
        id first): one comparison pass over the float32 logits, the survivors checked exactly."""
        bound = threshold * self.divisor
        if not np.isfinite(bound):
            return self._ordered(np.arange(len(self.raw))[self.full() >= threshold])
        loose = np.float32(bound - 1e-6 * (1.0 + abs(bound)))  # float32 rounding never loses a token
        pool = np.flatnonzero(self.raw >= loose)
        if self.changed:
            pool = np.union1d(pool, self.changed_ids)
        pool = pool[self.exact(pool) >= threshold]
        return self._ordered(pool)

    def argmax(self, raw_top: np.ndarray | None = None) -> int:
        """The most likely token (the lowest id among equals), as np.argmax over the values."""
        if not self.changed and self.divisor == 1.0:
            return int(np.argmax(self.raw))
        return int(self.top(1, raw_top)[0])

    def exact_log_total(self) -> float:
        """log-sum-exp of the values in float64 (a float64 pass, computed once): for the draws and
        cuts that add up thousands of tiny probabilities, where the float32 pass's 1e-8 would
        move a boundary now and then."""
        if self._exact_log_total is None:
            self._exact_log_total = log_sum_exp(self.full())
        return self._exact_log_total

    def log_total(self) -> float:
        """log-sum-exp of the values (one float32 pass, computed once). Logits changed at a few
        tokens get theirs from the unchanged ones' sum: minus the old terms, plus the new ones;
        unless the changed tokens held half the mass or more (the difference would lose digits),
        then from a pass of their own."""
        if self._log_total is None:
            base = self._base
            if base is not None and self.divisor == 1.0 and base.divisor == 1.0:
                base_total = base.log_total()
                removed = float(np.exp(base._undivided(self.changed_ids) - base_total).sum())
                if removed < 0.5:
                    added = float(np.exp(self.changed_values - base_total).sum())
                    self._log_total = base_total + float(np.log1p(added - removed))
                    return self._log_total
            if not self.changed:
                # `likely` is the raw top, most likely first: its first is the largest logit.
                peak = float(self.raw[self.likely[0]]) if self.likely is not None and len(self.likely) else None
                self._log_total = log_sum_exp(self.raw, self.scratch, self.divisor, self.likely, peak=peak)
            elif len(self.raw) < _EXACT_BELOW or self.raw.dtype != np.float32:
                self._log_total = log_sum_exp(self.full())
            else:
                if self.scratch is None or len(self.scratch) < len(self.raw):
                    self.scratch = np.empty(len(self.raw), dtype=np.float32)
                values = self.scratch[: len(self.raw)]
                np.copyto(values, self.raw)
                values[self.changed_ids] = self.changed_values
                # The changed tokens are rounded to float32 in the pass: they count as likely.
                raw_top = self.likely if self.likely is not None else top_indices(self.raw, 64)
                likely = np.union1d(raw_top, self.changed_ids)
                self._log_total = log_sum_exp(values, values, self.divisor, likely, self._undivided(likely))
        return self._log_total


class StageRecord:
    """The candidates left after one stage and their probabilities (summing to 1).

    A stage that keeps the whole vocabulary is recorded as its logits (`VocabularyLogits`, no copy)
    and their log-sum-exp: `probs_of` gives the probabilities of the tokens asked about;
    `token_ids` and `probs` build the whole vectors only when read."""

    def __init__(self, stage: str, token_ids: np.ndarray | None = None, probs: np.ndarray | None = None,
                 vocabulary: VocabularyLogits | None = None) -> None:
        if (vocabulary is None) == (token_ids is None or probs is None):
            raise ValueError("a stage record holds either token ids and probabilities or the vocabulary")
        self.stage = stage
        self.vocabulary = vocabulary
        self._token_ids = token_ids
        self._probs = probs
        self._positions: np.ndarray | None = None

    @property
    def token_ids(self) -> np.ndarray:
        if self._token_ids is None:
            assert self.vocabulary is not None
            self._token_ids = np.arange(len(self.vocabulary))
        return self._token_ids

    @property
    def probs(self) -> np.ndarray:
        if self._probs is None:
            assert self.vocabulary is not None
            self._probs = softmax(self.vocabulary.full())
        return self._probs

    def __len__(self) -> int:
        return len(self.vocabulary) if self.vocabulary is not None else len(self.token_ids)

    def probs_of(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities of `tokens` after this stage (0 for a removed token) and whether each
        was kept, without touching the rest of the vocabulary."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if self.vocabulary is not None:
            log_total = self.vocabulary.log_total()
            return np.exp(self.vocabulary.exact(tokens) - log_total), np.ones(len(tokens), dtype=bool)
        ids = self.token_ids
        if len(ids) == 0:
            return np.zeros(len(tokens)), np.zeros(len(tokens), dtype=bool)
        if len(ids) > _EXACT_BELOW:
            # A large record (a stage over the whole vocabulary, sorted): a position table is one
            # scatter, where sorting the ids would be a sort of the vocabulary.
            size = int(max(ids.max(), tokens.max())) + 1
            table = np.full(size, -1, dtype=np.int64)
            table[ids] = np.arange(len(ids))
            index = table[tokens]
            kept = index >= 0
            return np.where(kept, self.probs[np.maximum(index, 0)], 0.0), kept
        if self._positions is None:
            self._positions = np.argsort(ids, kind="stable")
        where = np.minimum(np.searchsorted(ids[self._positions], tokens), len(ids) - 1)
        index = self._positions[where]
        kept = ids[index] == tokens
        return np.where(kept, self.probs[index], 0.0), kept


@dataclass(frozen=True)
class Pick:
    """The drawn token and, when recording, the distribution after every stage. `raw` is the raw
    logits' distribution ("before sampling") and `top` the most likely tokens by raw logit (most
    likely first, at least the candidates asked for), when recording. Records of whole-vocabulary stages read the logits they were
    made from: describe a pick before the next decode overwrites them."""

    token_id: int
    stages: tuple[StageRecord, ...]
    raw: StageRecord | None = None
    top: np.ndarray | None = None


def apply_penalties(
    logits: np.ndarray, recent: Sequence[int], repeat: float, presence: float, frequency: float
) -> np.ndarray:
    """llama.cpp's penalties over the recent tokens: divide positive logits (multiply negative ones)
    by `repeat`, then subtract `frequency` per occurrence and `presence` once."""
    out = np.array(logits, dtype=np.float64, copy=True)
    ids, values = penalty_changes(out, recent, repeat, presence, frequency)
    out[ids] = values
    return out


def penalty_changes(
    logits: np.ndarray, recent: Sequence[int], repeat: float, presence: float, frequency: float
) -> tuple[np.ndarray, np.ndarray]:
    """The penalties for the recent tokens only: their ids (ascending) and new float64 values
    (`apply_penalties` writes them into a copy of the whole vocabulary)."""
    if not len(recent) or (repeat == 1.0 and presence == 0.0 and frequency == 0.0):
        return np.empty(0, dtype=np.int64), np.empty(0)
    ids, counts = np.unique(np.asarray(recent, dtype=np.int64), return_counts=True)
    ids, counts = ids[ids < len(logits)], counts[ids < len(logits)]
    values = np.asarray(logits)[ids].astype(np.float64)
    values = np.where(values > 0, values / repeat, values * repeat)
    return ids, values - counts * frequency - presence


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
    keeps its state from token to token).

    The logits are not copied or sorted. With top_k first (the default order) or greedy decoding,
    the work over the whole vocabulary per token is one threshold pass for the most likely tokens
    and, when recording, one float32 log-sum-exp pass (two when penalties or DRY changed some
    logits); every stage after top_k works on the top_k candidates only. Before a top_k (or with
    top_k off), a stage that keeps a most-likely prefix is found without sorting: top_p from growing
    top candidates and a float64 log-sum-exp, min_p and top-n-sigma from a threshold pass, as are
    Mirostat's cuts; sampling from the whole vocabulary (no stage cut anything) walks growing top
    candidates. Tail-free, typical and a firing XTC over the whole vocabulary sort it all (as does
    a top_p or a draw that needs most of it)."""

    def __init__(self, params: SamplingParams, seed: int) -> None:
        self.params = params
        self.rng = np.random.default_rng(seed)
        self.mu = 2.0 * params.mirostat_tau
        self._scratch: np.ndarray | None = None  # one float32 vector, reused for every token

    def pick(self, logits: np.ndarray, recent: Sequence[int], record: bool = False, candidates: int = 0) -> Pick:
        """Choose the next token from `logits` given the recent tokens (for the penalties). With
        `record`, the distribution after every stage is recorded and `Pick.top` holds at least the
        `candidates` most likely tokens by raw logit."""
        prm = self.params
        raw = np.asarray(logits)
        if raw.dtype not in (np.float32, np.float64):
            raw = raw.astype(np.float64)
        n_vocab = len(raw)
        if raw.dtype == np.float32 and n_vocab >= _EXACT_BELOW and (
                self._scratch is None or len(self._scratch) != n_vocab):
            self._scratch = np.empty(n_vocab, dtype=np.float32)
        vocab = VocabularyLogits(raw, self._scratch)
        records: list[StageRecord] = []
        penalties_on = prm.repeat_penalty != 1.0 or prm.presence_penalty != 0.0 or prm.frequency_penalty != 0.0
        # Only the window is copied: `recent` grows with the answer.
        recent_tokens = list(recent[-prm.repeat_last_n :]) if prm.repeat_last_n and penalties_on else []
        raw_record = StageRecord("raw", vocabulary=vocab) if record else None
        if recent_tokens:
            changed_ids, changed_values = penalty_changes(raw, recent_tokens, prm.repeat_penalty,
                                                          prm.presence_penalty, prm.frequency_penalty)
            vocab = vocab.with_changes(changed_ids, changed_values)
        if record:
            records.append(StageRecord("penalties", vocabulary=vocab))
        if prm.dry_multiplier > 0:
            context = list(recent[-prm.dry_last_n :]) if prm.dry_last_n else list(recent)
            dry = {token: penalty for token, penalty in
                   dry_penalties(context, prm.dry_multiplier, prm.dry_base, prm.dry_allowed_length).items()
                   if token < n_vocab}
            if dry:
                tokens = np.array(sorted(dry), dtype=np.int64)
                vocab = vocab.with_changes(tokens, vocab.exact(tokens) - np.array([dry[t] for t in tokens.tolist()]))
            if record:
                records.append(StageRecord("dry", vocabulary=vocab))
        top_k_first = prm.order[0] == "top_k" and 0 < prm.top_k < n_vocab and not prm.mirostat
        top_raw = None
        if record and candidates > 0:
            # The candidates shown and what the sampler needs come from the same pass: the raw
            # top (need) + (tokens the penalties changed) hold the top (need) after the penalties.
            wanted = candidates
            if prm.is_greedy and vocab.changed:
                wanted = max(wanted, 1 + len(vocab.changed_ids))
            elif top_k_first and not prm.is_greedy:
                wanted = max(wanted, prm.top_k + len(vocab.changed_ids))
            top_raw = top_indices(raw, min(max(wanted, 32), n_vocab))
            # They carry most of the mass: the log-sum-exp passes redo them in float64.
            for made in {id(v): v for v in (raw_record.vocabulary if raw_record else None, vocab,
                                              *(r.vocabulary for r in records)) if v is not None}.values():
                made.likely = top_raw

        def done(token: int) -> Pick:
            return Pick(token, tuple(records), raw_record, top_raw)

        if prm.is_greedy:
            return done(vocab.argmax(top_raw))
        if prm.mirostat:
            return done(self._mirostat(vocab, records if record else None))

        # The candidates still in play: explicit arrays, most likely first (equal values lower id
        # first), values exact in float64; or None while every stage so far kept the whole
        # vocabulary (then `vocab` is the distribution, and `_cut_vocabulary` runs the stages).
        ids: np.ndarray | None = None
        values = np.empty(0)

        probs: np.ndarray | None = None  # softmax(values), once computed (a stage that keeps all keeps it)

        def note(stage: str) -> None:
            nonlocal probs
            if record:
                if ids is None:
                    records.append(StageRecord(stage, vocabulary=vocab))
                else:
                    probs = softmax(values) if probs is None else probs
                    records.append(StageRecord(stage, ids, probs))  # never written to: no copy

        for stage in prm.order:
            if stage == "xtc" and prm.xtc_probability <= 0 or stage == "top_n_sigma" and prm.top_n_sigma <= 0:
                continue  # off: not a stage of this pick
            draw = self.rng.random() if stage == "xtc" else None
            if ids is None:
                cut = self._cut_vocabulary(stage, vocab, top_raw, draw)
                if cut is not None:  # None: the stage kept every token
                    ids, values = cut
            else:
                count = len(ids)
                ids, values = self._apply(stage, ids, values, probs, draw)
                if len(ids) != count:
                    probs = None
            note(stage)
        if ids is None:
            return done(self._draw_from_vocabulary(vocab, top_raw, records if record else None))
        values = values / prm.temperature
        probs = None
        note("temperature")
        probs = softmax(values) if probs is None else probs
        return done(int(ids[self.rng.choice(len(ids), p=probs)]))

    def _draw_from_vocabulary(self, vocab: VocabularyLogits, top_raw: np.ndarray | None,
                              records: list[StageRecord] | None) -> int:
        """The draw when every stage kept the whole vocabulary: `Generator.choice`'s own method
        (one uniform number, the first token whose cumulative probability in descending order
        exceeds it) over growing top candidates; the whole vocabulary is sorted only when the
        number falls beyond them."""
        scaled = vocab.divided(self.params.temperature)
        if records is not None:
            records.append(StageRecord("temperature", vocabulary=scaled))
        log_total = scaled.exact_log_total()
        uniform = self.rng.random()
        size = len(scaled)
        count = 1024
        while count < size:
            ids = scaled.top(count, top_raw)
            cumulative = np.cumsum(np.exp(scaled.exact(ids) - log_total))
            if cumulative[-1] > uniform:
                return int(ids[int(np.searchsorted(cumulative, uniform, side="right"))])
            count *= 8
        values = scaled.full()
        ids = np.argsort(-values, kind="stable")
        cumulative = np.cumsum(softmax(values[ids]))
        cumulative /= cumulative[-1]
        return int(ids[min(int(np.searchsorted(cumulative, uniform, side="right")), size - 1)])

    def _cut_vocabulary(self, stage: str, vocab: VocabularyLogits, top_raw: np.ndarray | None,
                        draw: float | None) -> tuple[np.ndarray, np.ndarray] | None:
        """`stage` over the whole vocabulary: None when it keeps every token; else the survivors,
        most likely first, and their values. Stages that keep a most-likely prefix (top_k, top_p,
        min_p, top-n-sigma) find it from the top candidates or one threshold pass; the others
        (tail-free, typical, XTC when it fires) need the whole vocabulary sorted, as does a top_p
        whose prefix is most of the vocabulary."""
        prm = self.params
        size = len(vocab)
        if stage == "top_k":
            if not 0 < prm.top_k < size:
                return None
            ids = vocab.top(prm.top_k, top_raw)
            return ids, vocab.exact(ids)
        if (self._set_to_keep_all(stage) or stage == "tfs_z" and size <= 2
                or stage == "xtc" and draw is not None and draw >= prm.xtc_probability):
            return None
        if stage == "top_p":
            # The smallest most-likely prefix whose mass reaches p, from growing top candidates.
            log_total = vocab.exact_log_total()
            count = 1024
            while count < size:
                ids = vocab.top(count, top_raw)
                values = vocab.exact(ids)
                reached = np.flatnonzero(np.cumsum(np.exp(values - log_total)) >= prm.top_p)
                if len(reached):
                    keep = max(int(reached[0]) + 1, 1)
                    return ids[:keep], values[:keep]
                count *= 8
        elif stage == "min_p":
            best = float(vocab.exact(vocab.top(1, top_raw))[0])
            ids = vocab.at_least(best + np.log(prm.min_p) - 1e-9 * (1.0 + abs(best)))
            values = vocab.exact(ids)
            passing = np.exp(values - best) >= prm.min_p
            return ids[passing], values[passing]
        elif stage == "top_n_sigma":
            full = vocab.full()
            ids = vocab.at_least(float(full.max() - prm.top_n_sigma * full.std()))
            return ids, vocab.exact(ids)
        values = vocab.full()
        ids = np.argsort(-values, kind="stable")
        return self._apply(stage, ids, values[ids], None, draw)

    def _set_to_keep_all(self, stage: str) -> bool:
        """Whether a filter stage is set to its "off" value (it is still a recorded stage)."""
        prm = self.params
        return (stage == "tfs_z" and prm.tfs_z >= 1.0 or stage == "typical_p" and prm.typical_p >= 1.0
                or stage == "top_p" and prm.top_p >= 1.0 or stage == "min_p" and prm.min_p <= 0.0)

    def _apply(self, stage: str, ids: np.ndarray, values: np.ndarray, probs: np.ndarray | None,
               draw: float | None) -> tuple[np.ndarray, np.ndarray]:
        """One filter stage over explicit candidates, most likely first (`probs`: their softmax,
        if already computed). Every stage keeps a subset in the same order."""
        prm = self.params

        def softmaxed() -> np.ndarray:
            return probs if probs is not None else softmax(values)

        if self._set_to_keep_all(stage):
            return ids, values  # off: keeps every candidate, as the functions below would
        if stage == "top_k":
            count = prm.top_k if prm.top_k > 0 else len(values)
            return ids[:count], values[:count]
        if stage == "tfs_z":
            count = tail_free_keep(softmaxed(), prm.tfs_z)
            return ids[:count], values[:count]
        if stage == "typical_p":
            kept = np.sort(typical_keep_order(softmaxed(), prm.typical_p))
            return ids[kept], values[kept]
        if stage == "top_p":
            count = top_p_keep(softmaxed(), prm.top_p)
            return ids[:count], values[:count]
        if stage == "min_p":
            mask = min_p_keep(softmaxed(), prm.min_p)
            return ids[mask], values[mask]
        if stage == "xtc":
            if draw is not None and draw < prm.xtc_probability:
                mask = xtc_keep(softmaxed(), prm.xtc_threshold)
                return ids[mask], values[mask]
            return ids, values
        if stage == "top_n_sigma":
            mask = top_n_sigma_keep(values, prm.top_n_sigma)
            return ids[mask], values[mask]
        raise ValueError(f"unknown sampler stage {stage!r}")

    def _mirostat(self, vocab: VocabularyLogits, records: list[StageRecord] | None) -> int:
        """Mirostat 1 or 2: truncate to keep the surprise near tau, draw, and steer mu. The
        distribution after the temperature is recorded as the whole vocabulary; the truncation is a
        most-likely prefix found from its log-sum-exp (Mirostat 2: one threshold pass; Mirostat 1:
        the top 101 tokens, then the top k)."""
        prm = self.params
        scaled = vocab.divided(prm.temperature)
        if records is not None:
            records.append(StageRecord("temperature", vocabulary=scaled))
        log_total = scaled.log_total()
        size = len(scaled)
        if prm.mirostat == 1:
            m = min(100, size - 1)
            head = scaled.exact(scaled.top(m + 1))
            probs = np.exp(head - log_total)
            t = np.log((np.arange(m) + 2) / (np.arange(m) + 1))
            b = np.log(np.clip(probs[:m], 1e-300, None) / np.clip(probs[1 : m + 1], 1e-300, None))
            s_hat = float((t * b).sum() / (t * t).sum()) if m > 0 else 1.0
            epsilon = s_hat - 1
            if abs(epsilon) < 1e-9 or s_hat <= 0:
                k = size
            else:
                k = int(((epsilon * 2**self.mu) / (1 - size ** (-epsilon))) ** (1 / s_hat))
            ids = scaled.top(max(1, min(k, size)))
        else:
            # Surprise -log2(p) <= mu: p >= 2^-mu, a threshold on the logits.
            ids = scaled.at_least(log_total - self.mu * np.log(2.0))
            if not len(ids):
                ids = scaled.top(1)
        values = scaled.exact(ids)
        if records is not None:
            records.append(StageRecord("mirostat", ids.copy(), softmax(values)))
        probs = softmax(values)
        index = int(self.rng.choice(len(ids), p=probs))
        observed = -np.log2(max(probs[index], 1e-300))
        self.mu -= prm.mirostat_eta * (observed - prm.mirostat_tau)
        return int(ids[index])
