"""Several generations decoded together in one llama.cpp batch (used by the worker).

A program's concurrent contexts (`asyncio.gather` over prompt_fns) each ask for a sample at about
the same time. Decoding them one after another leaves the machine's batching unused: one decode
step over N sequences costs much less than N steps over one. Here every sequence has its own id in
the context's unified KV cache (the model is loaded with several sequence slots):

* Prefix reuse. Sequence 0 is the studio's ordinary cache (what the last single generation
  evaluated). The longest prefix all prompts of a batch share is evaluated once, into sequence 0,
  and each sequence starts as a copy of sequence 0's cells for its common prefix (a copy of cell
  ownership, no computation); only the rest of each prompt is evaluated.
* One decode per step. Each step decodes one token of every active sequence in one batch; each
  sequence draws its next token from its own logits row with its own sampler pipeline and seed.
* Admission. A sequence is admitted only while the prompts and answers of the admitted ones fit
  in the context's cells; the others are handed back ("not admitted") to run in a later batch.

Only requests given as token ids, sampled by the studio's pipeline (learning_top > 0) and without
grammars, stepping or forced tokens are batched: the API's /api/sample sends those.

This module does not import llama_cpp: the worker hands it its session (whose `_lib` is the
module)."""

from __future__ import annotations

import codecs
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from app.core.backend import GenerationRequest, GenerationResult, StopReason
from app.core.learning import TokenChoice, describe_pick
from app.core.sampler_pipeline import SamplerPipeline
from app.core.sampling import SEED_RANDOM
from app.core.stop_strings import StopStringScanner

if TYPE_CHECKING:
    from app.models.worker import ModelSession

MAX_SEQUENCES = 8  # sequence slots the worker's context is made with (plus nothing: 0 is one of them)
FLUSH_SECONDS = 0.05

Send = Callable[[list[tuple[int, int, str, TokenChoice | None]]], set[int]]


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    shared = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        shared += 1
    return shared


def masked_logits(logits: np.ndarray, allowed: np.ndarray, disallowed: np.ndarray) -> np.ndarray:
    """`logits` with only `allowed` tokens possible (when any are given), or without `disallowed`."""
    if len(allowed):
        masked = np.full(len(logits), -np.inf, dtype=logits.dtype)
        masked[allowed] = logits[allowed]
        return masked
    if len(disallowed):
        masked = logits.copy()
        masked[disallowed] = -np.inf
        return masked
    return logits


def batchable(request: GenerationRequest) -> bool:
    """Whether `request` can share a batch (see the module docstring)."""
    return (bool(request.prompt_tokens) and request.learning_top > 0 and not request.grammar
            and not request.json_schema and request.stepping == "off" and not request.forced_tokens
            and not request.attention)


@dataclass
class _Sequence:
    index: int  # position of the request in the call
    seq_id: int
    request: GenerationRequest
    prompt: list[int]
    limit: int
    seed: int
    pipeline: SamplerPipeline
    allowed: np.ndarray
    disallowed: np.ndarray
    stop_tokens: frozenset[int]
    reused: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    generated: list[int] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    logits: np.ndarray | None = None
    reason: StopReason | None = None
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    scanner: StopStringScanner | None = None

    @property
    def position(self) -> int:
        """Where its next token goes in the sequence."""
        return len(self.prompt) + len(self.generated)


class BatchedGeneration:
    """One call's sequences, from admission to their results."""

    def __init__(self, session: "ModelSession", requests: Sequence[GenerationRequest]) -> None:
        self.session = session
        self.lib = session._lib
        self.llm = session.llm
        self.ctx = self.llm._ctx.ctx
        self.memory = self.lib.llama_get_memory(self.ctx)
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self.n_batch = self.llm.n_batch
        self.requests = list(requests)
        self.sequences: list[_Sequence] = []
        self.deferred: list[int] = []

    # -- admission and prompts -----------------------------------------------------------------

    def _share_prefix(self, prompts: list[list[int]]) -> list[int]:
        """Evaluate the prefix every prompt shares into sequence 0 (beyond what it holds); returns
        sequence 0's tokens."""
        llm = self.llm
        cached = [int(t) for t in llm.input_ids[: llm.n_tokens]]
        shared = min(len(p) for p in prompts) - 1
        for prompt in prompts[1:]:
            shared = min(shared, common_prefix(prompts[0], prompt))
        kept = common_prefix(cached, prompts[0][:shared])
        if shared > kept:
            llm.n_tokens = kept  # eval() drops every sequence's cells past n_tokens: only 0 holds any
            llm.eval(prompts[0][kept:shared])
            return prompts[0][:shared]
        return cached

    def _admit(self) -> None:
        prompts = [list(r.prompt_tokens) for r in self.requests]
        base = self._share_prefix(prompts)
        useful = max(min(common_prefix(base, p), len(p) - 1) for p in prompts)
        if len(base) > useful:
            # Sequence 0's cells past what this batch reuses would only take room from its answers.
            self.lib.llama_memory_seq_rm(self.memory, 0, useful, -1)
            self.llm.n_tokens = useful
            base = base[:useful]
        used = len(base)
        for index, (request, prompt) in enumerate(zip(self.requests, prompts, strict=True)):
            room = self.n_ctx - len(prompt)
            params = request.params
            limit = min(params.max_tokens, room) if params.max_tokens else room
            reused = min(common_prefix(base, prompt), len(prompt) - 1)
            needs = len(prompt) - reused + limit
            if len(self.sequences) >= MAX_SEQUENCES - 1 or used + needs > self.n_ctx or room <= 0:
                self.deferred.append(index)
                continue
            used += needs
            seed = params.seed if params.seed != SEED_RANDOM else random.randrange(2**32)
            sequence = _Sequence(
                index=index, seq_id=len(self.sequences) + 1, request=request, prompt=prompt, limit=limit, seed=seed,
                pipeline=SamplerPipeline(params, seed), reused=reused,
                allowed=np.array(sorted(set(request.allowed_tokens)), dtype=np.int64),
                disallowed=np.array(sorted(set(request.disallowed_tokens)), dtype=np.int64),
                stop_tokens=frozenset(request.stop_tokens), scanner=StopStringScanner(params.stop),
            )
            if reused:
                self.lib.llama_memory_seq_cp(self.memory, 0, sequence.seq_id, 0, reused)
            self.sequences.append(sequence)

    def _decode(self, entries: list[tuple[_Sequence, int, int, bool]]) -> None:
        """Decode (sequence, token, position, wants logits) entries, n_batch at a time; each
        sequence that wanted logits gets its row copied out before the next decode overwrites it."""
        lib = self.lib
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            batch = lib.llama_batch_init(len(chunk), 0, 1)
            try:
                for slot, (sequence, token, position, logits) in enumerate(chunk):
                    batch.token[slot] = token
                    batch.pos[slot] = position
                    batch.n_seq_id[slot] = 1
                    batch.seq_id[slot][0] = sequence.seq_id
                    batch.logits[slot] = logits
                batch.n_tokens = len(chunk)
                status = lib.llama_decode(self.ctx, batch)
                if status != 0:
                    raise RuntimeError(f"llama.cpp could not decode the batch (status {status})")
                for slot, (sequence, _token, _position, logits) in enumerate(chunk):
                    if logits:
                        row = lib.llama_get_logits_ith(self.ctx, slot)
                        sequence.logits = np.ctypeslib.as_array(row, shape=(self.n_vocab,)).copy()
            finally:
                lib.llama_batch_free(batch)

    # -- the loop ---------------------------------------------------------------------------------

    def _pick(self, sequence: _Sequence) -> tuple[int, TokenChoice | None]:
        assert sequence.logits is not None
        logits = masked_logits(sequence.logits, sequence.allowed, sequence.disallowed)
        top = sequence.request.learning_top
        pick = sequence.pipeline.pick(logits, sequence.generated, record=True, candidates=top)
        words = self.session.vocabulary_words
        return pick.token_id, describe_pick(logits, pick, words, len(sequence.generated), top)

    def run(self, send: Send, stopped: Callable[[], bool]) -> list[GenerationResult | None]:
        """Generate every admitted sequence to its end, streaming (index, token, text, choice)
        batches through `send` (which returns the indices the parent no longer wants); returns a
        result per request (None: not admitted, run it again later)."""
        self._admit()
        try:
            self._decode([(s, token, s.reused + n, n == len(s.prompt) - s.reused - 1)
                          for s in self.sequences for n, token in enumerate(s.prompt[s.reused:])])
            self._loop(send, stopped)
        finally:
            for sequence in self.sequences:  # sequence 0 stays: it is the studio's cache
                self.lib.llama_memory_seq_rm(self.memory, sequence.seq_id, -1, -1)
        results: list[GenerationResult | None] = [None] * len(self.requests)
        for sequence in self.sequences:
            results[sequence.index] = self._result(sequence)
        return results

    def _loop(self, send: Send, stopped: Callable[[], bool]) -> None:
        pieces = self.session.pieces
        eog = self.lib.llama_vocab_is_eog
        vocab = self.session.vocab
        outgoing: list[tuple[int, int, str, TokenChoice | None]] = []
        last_send = 0.0
        active = list(self.sequences)
        while active:
            next_entries: list[tuple[_Sequence, int, int, bool]] = []
            halt = stopped()
            for sequence in active:
                if halt:
                    sequence.reason = "stopped"
                    continue
                token, choice = self._pick(sequence)
                if sequence.first_token_at is None:
                    sequence.first_token_at = time.perf_counter()
                if eog(vocab, token):
                    sequence.reason = "eos"
                    continue
                if token in sequence.stop_tokens:
                    sequence.reason = "stop_token"
                    continue
                assert sequence.scanner is not None
                text = sequence.scanner.feed(sequence.decoder.decode(pieces[token]))
                sequence.generated.append(token)
                sequence.text_parts.append(text)
                outgoing.append((sequence.index, token, text, choice))
                if sequence.scanner.stopped:
                    sequence.reason = "stop_string"
                elif len(sequence.generated) >= sequence.limit:
                    params = sequence.request.params
                    sequence.reason = "max_tokens" if params.max_tokens and sequence.limit == params.max_tokens \
                        else "context_full"
                else:
                    next_entries.append((sequence, token, sequence.position - 1, True))
            # Sent at the flush interval, and whenever an answer ended (the parent learns of ended
            # answers, and answers the ones it no longer wants, without waiting).
            ended = len(next_entries) < len(active)
            if outgoing and (time.perf_counter() - last_send >= FLUSH_SECONDS or ended):
                unwanted = send(outgoing)
                outgoing = []
                last_send = time.perf_counter()
                for sequence in self.sequences:
                    if sequence.index in unwanted and sequence.reason is None:
                        sequence.reason = "stopped"
                next_entries = [entry for entry in next_entries if entry[0].reason is None]
            active = [entry[0] for entry in next_entries]
            if next_entries:
                self._decode(next_entries)

    def _result(self, sequence: _Sequence) -> GenerationResult:
        assert sequence.scanner is not None
        tail = sequence.scanner.feed(sequence.decoder.decode(b"", final=True)) + sequence.scanner.flush()
        finished = time.perf_counter()
        return GenerationResult(
            text="".join(sequence.text_parts) + tail,
            token_ids=tuple(sequence.generated),
            prompt_tokens=len(sequence.prompt),
            stop_reason=sequence.reason or "max_tokens",
            seconds=finished - sequence.started,
            prompt_seconds=(sequence.first_token_at or finished) - sequence.started,
            seed=sequence.seed,
            prompt_text=self.session.detokenize(sequence.prompt),
            prompt_format="raw",
            reused_tokens=sequence.reused,
        )
