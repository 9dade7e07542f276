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


_EXACT_BELOW = 4096
"""Vocabularies smaller than this get their log-sum-exp in float64 throughout (it is cheap there)."""
_STRIDE = 64
_SUM_BLOCK = 4096
"""One logit in `_STRIDE` is sampled to set the threshold of the top-candidates pass."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
    weights = np.exp(shifted)
    return weights / weights.sum()


def log_sum_exp(values: np.ndarray, scratch: np.ndarray | None = None) -> float:
    """log(sum(exp(values))). A large float32 vector takes one float32 pass (exp in float32 into
    `scratch`, summed in float32 blocks of 4096 and the blocks in float64: about 1e-8 relative
    error, a tenth of a float32 step); small or float64 vectors are done in float64."""
    values = np.asarray(values)
    if len(values) == 0:
        return float("-inf")
    top = float(values.max())
    if not np.isfinite(top):
        return top  # +inf / nan: no finite distribution; all -inf: log(0)
    if values.dtype != np.float32 or len(values) < _EXACT_BELOW:
        return top + float(np.log(np.exp(np.asarray(values, dtype=np.float64) - top).sum()))
    if scratch is None or len(scratch) < len(values) or scratch.dtype != np.float32:
        scratch = np.empty(len(values), dtype=np.float32)
    out = scratch[: len(values)]
    # Logits well inside float32's range need no shift (exp(60) x 2^31 tokens still fits): one
    # pass less. Otherwise the usual shift by the maximum.
    shift = 0.0 if -60.0 < top < 60.0 else top
    if shift:
        np.subtract(values, np.float32(shift), out=out)
        np.exp(out, out=out)
    else:
        np.exp(values, out=out)
    whole = len(out) - len(out) % _SUM_BLOCK
    total = float(out[:whole].reshape(-1, _SUM_BLOCK).sum(axis=1).sum(dtype=np.float64))
    total += float(out[whole:].sum(dtype=np.float64))
    if total <= 0.0:  # every exp underflowed: redo with the shift
        np.subtract(values, np.float32(top), out=out)
        np.exp(out, out=out)
        return top + float(np.log(out.sum(dtype=np.float64)))
    return shift + float(np.log(total))


def _top_of(values: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """`ids` (ascending) of the n largest `values`, largest first, equal values lower id first, NaN
    after everything (the order of a stable sort of -values)."""
    if len(values) > n:
        negated = -values
        nth = np.partition(negated, n - 1)[n - 1]
        if np.isnan(nth):  # fewer than n numbers: all of them, then the first NaNs
            better, tied = ~np.isnan(negated), np.isnan(negated)
        else:
            better, tied = negated < nth, negated == nth
        chosen = better
        chosen[np.flatnonzero(tied)[: n - int(np.count_nonzero(better))]] = True
        values, ids = values[chosen], ids[chosen]
    return ids[np.argsort(-values, kind="stable")]


def top_indices(values: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest values, largest first; equal values in index order, NaN last: the
    first n of `np.argsort(-values, kind="stable")` (which argpartition + sort also give, up to the
    order it picks among values tied at the n-th place), without sorting or partitioning the whole
    vector. A strided sample sets a threshold that about 10 x n values pass; the survivors are found
    in one comparison pass and only they are partitioned. When the sample misleads (fewer than n
    pass), the whole vector is partitioned: slower, same answer."""
    values = np.asarray(values)
    size = len(values)
    n = min(int(n), size)
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    if size >= 8 * _STRIDE * (n // _STRIDE + 8):
        sample = -values[::_STRIDE]
        rank = min(len(sample), 2 * -(-n // _STRIDE) + 8)
        threshold = -np.partition(sample, rank - 1)[rank - 1]
        if not np.isnan(threshold):
            survivors = np.flatnonzero(values >= threshold)
            if len(survivors) >= n:
                return _top_of(values[survivors], survivors, n)
    return _top_of(values, np.arange(size), n)


class VocabularyLogits:
    """One position's logits over the whole vocabulary after the penalties (and DRY), without a
    copy: the float32 logits as llama.cpp left them (a view of its buffer, valid until the next
    decode) and, kept apart in float64, the few tokens the penalties changed. Everything asked of it
    costs one float32 pass over the vocabulary at most; the exact float64 values are computed only
    for the tokens asked about."""

    def __init__(self, raw: np.ndarray, scratch: np.ndarray | None = None,
                 changed_ids: np.ndarray | None = None, changed_values: np.ndarray | None = None) -> None:
        self.raw = np.asarray(raw)
        self.scratch = scratch
        self.changed_ids = changed_ids if changed_ids is not None else np.empty(0, dtype=np.int64)
        self.changed_values = changed_values if changed_values is not None else np.empty(0)
        self._log_total: float | None = None

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def changed(self) -> bool:
        return len(self.changed_ids) > 0

    def with_changes(self, ids: np.ndarray, values: np.ndarray) -> "VocabularyLogits":
        """These logits with the tokens `ids` set to `values` (float64)."""
        merged = dict(zip(self.changed_ids.tolist(), self.changed_values.tolist(), strict=True))
        merged.update(zip(np.asarray(ids).tolist(), np.asarray(values, dtype=np.float64).tolist(), strict=True))
        order = sorted(merged)
        return VocabularyLogits(self.raw, self.scratch, np.array(order, dtype=np.int64),
                                np.array([merged[t] for t in order], dtype=np.float64))

    def exact(self, tokens: np.ndarray) -> np.ndarray:
        """The float64 values of `tokens`."""
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
        return out

    def top(self, n: int, raw_top: np.ndarray | None = None) -> np.ndarray:
        """The n most likely tokens, most likely first, equal values lower id first. Only the
        changed tokens can move: the raw top n + (changed count) and the changed tokens hold them
        (`raw_top`, the raw logits' most likely tokens in that order, saves the pass when long enough)."""
        wanted = min(n + len(self.changed_ids), len(self.raw))
        if raw_top is None or len(raw_top) < wanted:
            raw_top = top_indices(self.raw, wanted)
        if not self.changed:
            return raw_top[:n]
        pool = np.union1d(raw_top[:wanted], self.changed_ids)
        return pool[np.argsort(-self.exact(pool), kind="stable")][:n]

    def argmax(self, raw_top: np.ndarray | None = None) -> int:
        """The most likely token (the lowest id among equals), as np.argmax over the values."""
        return int(np.argmax(self.raw)) if not self.changed else int(self.top(1, raw_top)[0])

    def log_total(self) -> float:
        """log-sum-exp of the values (one float32 pass, computed once)."""
        if self._log_total is None:
            if not self.changed:
                self._log_total = log_sum_exp(self.raw, self.scratch)
            elif len(self.raw) < _EXACT_BELOW or self.raw.dtype != np.float32:
                self._log_total = log_sum_exp(self.full())
            else:
                if self.scratch is None or len(self.scratch) < len(self.raw):
                    self.scratch = np.empty(len(self.raw), dtype=np.float32)
                values = self.scratch[: len(self.raw)]
                np.copyto(values, self.raw)
                values[self.changed_ids] = self.changed_values
                self._log_total = log_sum_exp(values, values)
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
    def whole(self) -> bool:
        """True when the stage kept every token of the vocabulary (stored as the vocabulary's logits)."""
        return self.vocabulary is not None

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
    likely first, at least the candidates asked for), when recording; `penalized` says whether
    penalties changed the logits. Records of whole-vocabulary stages read the logits they were
    made from: describe a pick before the next decode overwrites them."""

    token_id: int
    stages: tuple[StageRecord, ...]
    raw: StageRecord | None = None
    penalized: bool = False
    top: np.ndarray | None = None

    @property
    def raw_probs(self) -> np.ndarray | None:
        """The softmax of the raw logits over the whole vocabulary (computed when read)."""
        return self.raw.probs if self.raw is not None else None


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


def penalty_changes(
    logits: np.ndarray, recent: Sequence[int], repeat: float, presence: float, frequency: float
) -> tuple[np.ndarray, np.ndarray]:
    """`apply_penalties` for the recent tokens only: their ids (ascending) and new float64 values,
    the same numbers `apply_penalties` gives them."""
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

    Per token, with top_k first (the default order) or greedy decoding, the work over the whole
    vocabulary is one threshold pass for the most likely tokens and, when recording, one float32
    log-sum-exp pass (two when penalties changed something); every stage after top_k works on the
    top_k candidates only. With top_k off (0 or not first in the order) or Mirostat, the stages see
    the whole vocabulary, sorted, in float64: that costs a full sort per token."""

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
        if record and raw.dtype == np.float32 and n_vocab >= _EXACT_BELOW:
            if self._scratch is None or len(self._scratch) != n_vocab:
                self._scratch = np.empty(n_vocab, dtype=np.float32)
        vocab = VocabularyLogits(raw, self._scratch)
        records: list[StageRecord] = []
        recent_tokens = list(recent)[-prm.repeat_last_n :] if prm.repeat_last_n else []
        penalized = bool(recent_tokens) and (
            prm.repeat_penalty != 1.0 or prm.presence_penalty != 0.0 or prm.frequency_penalty != 0.0
        )
        raw_record = StageRecord("raw", vocabulary=vocab) if record else None
        if penalized:
            changed_ids, changed_values = penalty_changes(raw, recent_tokens, prm.repeat_penalty,
                                                          prm.presence_penalty, prm.frequency_penalty)
            vocab = vocab.with_changes(changed_ids, changed_values)
        if record:
            records.append(StageRecord("penalties", vocabulary=vocab))
        if prm.dry_multiplier > 0:
            context = list(recent)[-prm.dry_last_n :] if prm.dry_last_n else list(recent)
            dry = {token: penalty for token, penalty in
                   dry_penalties(context, prm.dry_multiplier, prm.dry_base, prm.dry_allowed_length).items()
                   if token < n_vocab}
            if dry:
                tokens = np.array(sorted(dry), dtype=np.int64)
                vocab = vocab.with_changes(tokens, vocab.exact(tokens) - np.array([dry[t] for t in tokens.tolist()]))
                penalized = True
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
            top_raw = top_indices(raw, min(wanted, n_vocab))

        def done(token: int) -> Pick:
            return Pick(token, tuple(records), raw_record, penalized, top_raw)

        if prm.is_greedy:
            return done(vocab.argmax(top_raw))
        if prm.mirostat:
            token = self._mirostat(np.arange(n_vocab), vocab.full(), records if record else None)
            return done(token)

        if top_k_first:
            # Only the top_k candidates go on: found without sorting the vocabulary, in
            # descending order (equal logits lower id first), their values exact in float64.
            ids = vocab.top(prm.top_k, top_raw)
            values = vocab.exact(ids)
        else:
            values = vocab.full()
            ids = np.argsort(-values, kind="stable")
            values = values[ids]

        def note(stage: str) -> None:
            if record:
                records.append(StageRecord(stage, ids.copy(), softmax(values)))

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
        return done(int(ids[self.rng.choice(len(ids), p=probs)]))

    def _mirostat(self, ids: np.ndarray, values: np.ndarray, records: list[StageRecord] | None) -> int:
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
        return int(ids[index])
