"""llama.cpp's grammar sampler as a mask over the whole vocabulary, for the studio's own sampler
pipeline (learning mode, and the samplers llama-cpp-python lacks).

In learning mode, each step offers every token of the vocabulary to llama.cpp's grammar sampler with
the same logit; those it sets to -inf cannot continue the grammar. The pipeline draws from the rest,
and the step is recorded as the "constraint" stage: each candidate's probability before it and after
it. Otherwise the token is drawn first without the grammar and only checked (`allows`); the whole
vocabulary is checked only when that token is not allowed, as llama.cpp's own sampler does. Drawing
again from the allowed tokens after a refusal gives each allowed token its probability renormalised
over the allowed ones, as drawing from the constrained distribution at once would. The drawn token
is then accepted, which advances the grammar.

This module does not import llama_cpp: the worker hands it the module (as in attention.py).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from app.core.sampler_pipeline import Pick, SamplerPipeline, StageRecord, VocabularyLogits, softmax, top_indices

CONSTRAINT_STAGE = "constraint"
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
"""llama.cpp's `llama_token_data`: the layout its grammar sampler reads and writes."""


class GrammarMask:
    """One answer's grammar (GBNF text, already accepted by llama.cpp's parser). `close()` frees it."""

    def __init__(self, lib: Any, vocab: Any, gbnf: str, n_vocab: int) -> None:
        self._lib = lib
        self._sampler = lib.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self._sampler:
            raise ValueError("llama.cpp's parser refused the grammar")
        self._n_vocab = n_vocab
        self._data = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._array = lib.llama_token_data_array(
            data=self._data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), size=n_vocab, selected=-1,
            sorted=False)
        self._one = np.zeros(1, dtype=TOKEN_DATA)
        self._one_array = lib.llama_token_data_array(
            data=self._one.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), size=1, selected=-1, sorted=False)

    def valid(self) -> np.ndarray:
        """Which tokens may come next (a boolean vector over the vocabulary)."""
        data = self._data
        data["id"] = self._ids  # the sampler may have reordered nothing, but never trust a C callee
        data["logit"] = 0.0
        self._array.size = self._n_vocab
        self._array.selected = -1
        self._array.sorted = False
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._array))
        valid = np.zeros(self._n_vocab, dtype=bool)
        valid[data["id"][np.isfinite(data["logit"])]] = True
        return valid

    def allows(self, token: int) -> bool:
        """Whether `token` may come next: the grammar checks that one candidate only (llama.cpp's
        own sampler does this first, and checks the whole vocabulary only when the token drawn
        without the grammar is not allowed)."""
        one = self._one
        one[0]["id"], one[0]["logit"] = token, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self._lib.llama_sampler_apply(self._sampler, ctypes.byref(self._one_array))
        return bool(np.isfinite(one[0]["logit"]))

    def accept(self, token: int) -> None:
        """Advance the grammar past `token` (one of the tokens `valid()` allowed)."""
        self._lib.llama_sampler_accept(self._sampler, int(token))

    def close(self) -> None:
        if self._sampler:
            self._lib.llama_sampler_free(self._sampler)
            self._sampler = None


class NoTokenAllowed(ValueError):
    """The grammar allows no token of the vocabulary at this point."""


def constrained_pick(pipeline: SamplerPipeline, mask: GrammarMask, logits: np.ndarray, recent: list[int],
                     learning_top: int = 0) -> Pick:
    """The next token under the grammar. Outside learning mode the token is drawn as usual and kept
    when the grammar allows it; otherwise (and always in learning mode, which shows the constraint
    as a stage) it is drawn from the tokens the grammar allows."""
    if not learning_top:
        drawn = pipeline.pick(logits, recent)
        if mask.allows(drawn.token_id):
            return drawn
    valid = mask.valid()
    if not valid.any():
        raise NoTokenAllowed(f"no token of this model can continue the constraint after {len(recent)} tokens")
    pick = pipeline.pick(constrained_logits(logits, valid), recent, record=bool(learning_top),
                         candidates=learning_top)
    return with_constraint_stage(pick, logits, valid, learning_top) if learning_top else pick


def constrained_logits(logits: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`logits` with the tokens the constraint rules out at -inf."""
    return np.where(valid, logits, np.float32(-np.inf)).astype(logits.dtype, copy=False)


def with_constraint_stage(pick: Pick, logits: np.ndarray, valid: np.ndarray, shown: int) -> Pick:
    """A pick drawn from the constrained logits, described against the logits before the
    constraint: "before sampling" is the unconstrained distribution, the first stage is the
    constraint (the tokens it rules out removed by it), and the candidates shown are the `shown`
    most likely valid tokens first, then the most likely tokens it ruled out."""
    valid_ids = np.flatnonzero(valid)
    record = StageRecord(CONSTRAINT_STAGE, valid_ids, softmax(logits[valid_ids].astype(np.float64)))
    valid_top = [t for t in (pick.top.tolist() if pick.top is not None else []) if valid[t]][:shown]
    if len(valid_top) < min(shown, len(valid_ids)):  # the pick's own pass held too few valid ones
        by_value = valid_ids[np.argsort(-logits[valid_ids], kind="stable")[:shown]]
        valid_top = by_value.tolist()
    ruled_out = [t for t in top_indices(logits, shown).tolist() if not valid[t]]
    top = np.array(valid_top + ruled_out, dtype=np.int64)
    raw = StageRecord("raw", vocabulary=VocabularyLogits(logits))
    return Pick(pick.token_id, (record, *pick.stages), raw, top)
