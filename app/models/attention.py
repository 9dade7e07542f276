"""Each sampled token's attention over the context, read from llama.cpp itself.

llama.cpp names the softmaxed attention of layer L `kq_soft_max-L` in its compute graph (shape:
keys × queries × heads). A context made with an evaluation callback (`cb_eval`) is shown every
tensor of the graph before it is computed and may ask to look at it after: we ask for those, and
from each keep the last query's row averaged over the heads; the token's attention is the mean
of those rows over the layers, one weight per context position before the token.

That context is a second one on the same model, made on the first request that wants attention
(the callback runs for every tensor of every step, too costly for ordinary generation), with
flash attention off (it fuses the softmax away) and its cache emptied before each request (so its
cells are the positions in order). Where no such tensor appears (an architecture that computes
attention otherwise, or none), or the weights are not in this process's memory (GPU offload),
the result says attention is not available and gives none: never invented numbers.

The ggml_tensor layout below is ggml's (ggml.h); each tensor seen is checked for sense (its name,
an F32 type, a shape that fits the step) before its data is read.

This module does not import llama_cpp: the worker hands it the module."""

from __future__ import annotations

import ctypes
from typing import Any, Generator

import numpy as np

SOFTMAX_PREFIX = "kq_soft_max-"
GGML_TYPE_F32 = 0


class GgmlTensor(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4), ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16), ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p), ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64), ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


class AttentionUnavailable(Exception):
    """Why no attention can be read (the message ends "attention not available …")."""


class AttentionReader:
    """A context on `llm`'s model whose decode steps leave each layer's last-query attention row."""

    def __init__(self, lib: Any, internals: Any, llm: Any, architecture: str, n_heads: int) -> None:
        self.lib = lib.llama_cpp
        self.architecture = architecture
        self.n_heads = n_heads
        self.rows: dict[str, np.ndarray] = {}
        self.misread = ""
        self.expected_queries = 0
        self._callback = self.lib.ggml_backend_sched_eval_callback(self._look)  # kept alive with the context
        params = self.lib.llama_context_default_params()
        main = llm.context_params
        params.n_ctx = main.n_ctx
        params.n_batch = main.n_batch
        params.n_ubatch = main.n_ubatch
        params.n_threads = main.n_threads
        params.n_threads_batch = main.n_threads_batch
        params.n_seq_max = 1
        params.flash_attn_type = self.lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.cb_eval = self._callback
        params.cb_eval_user_data = None
        self.context = internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.n_vocab = llm.n_vocab()
        self.n_batch = int(main.n_batch)

    def close(self) -> None:
        self.context.close()

    def _look(self, pointer: int, ask: bool, _user_data: Any) -> bool:
        tensor = ctypes.cast(pointer, ctypes.POINTER(GgmlTensor)).contents
        name = tensor.name.split(b"\0", 1)[0].decode("ascii", "replace")
        if not name.startswith(SOFTMAX_PREFIX):
            return False if ask else True
        if ask:
            return True
        n_kv, n_queries, n_heads, _streams = (int(n) for n in tensor.ne)
        if (tensor.type != GGML_TYPE_F32 or not tensor.data or n_heads != self.n_heads or n_kv <= 0
                or tensor.nb[0] != 4 or tensor.nb[1] != 4 * n_kv or n_queries <= 0):
            self.misread = f"an unexpected {name} tensor (type {tensor.type}, shape {tuple(tensor.ne)})"
            return True
        values = np.ctypeslib.as_array(ctypes.cast(tensor.data, ctypes.POINTER(ctypes.c_float)),
                                       shape=(n_heads, n_queries, n_kv))
        self.rows[name] = values[:, -1, :].mean(axis=0)  # a copy: the buffer is reused by the next step
        return True

    def _decode(self, tokens: list[int], start: int) -> np.ndarray:
        """Decode `tokens` at positions from `start`; the last one's logits (a copy)."""
        lib = self.lib
        self.rows = {}
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset:offset + self.n_batch]
            batch = lib.llama_batch_init(len(chunk), 0, 1)
            try:
                for slot, token in enumerate(chunk):
                    batch.token[slot] = token
                    batch.pos[slot] = start + offset + slot
                    batch.n_seq_id[slot] = 1
                    batch.seq_id[slot][0] = 0
                    batch.logits[slot] = offset + slot == len(tokens) - 1
                batch.n_tokens = len(chunk)
                if lib.llama_decode(self.ctx, batch) != 0:
                    raise RuntimeError("llama.cpp could not decode for the attention readout")
            finally:
                lib.llama_batch_free(batch)
        row = lib.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(self.n_vocab,)).copy()

    def attention(self, positions: int) -> tuple[float, ...]:
        """The last step's attention of its last query over the first `positions` positions."""
        if self.misread:
            raise AttentionUnavailable(f"attention not available for {self.architecture}: {self.misread}")
        if not self.rows:
            raise AttentionUnavailable(f"attention not available for {self.architecture}: llama.cpp computes "
                                       "no softmaxed attention (kq_soft_max) for it")
        mean = np.mean(np.stack(list(self.rows.values())), axis=0)
        return tuple(float(w) for w in mean[:positions])

    def steps(self, prompt: list[int]) -> Generator[tuple[np.ndarray, tuple[float, ...]], int, None]:
        """Evaluates `prompt` from an empty cache, then yields (logits, the attention of the step
        that made them) for each step, and is sent the token chosen from those logits."""
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        logits = self._decode(prompt, 0)
        position = len(prompt)
        while True:
            token = yield logits, self.attention(position)
            logits = self._decode([token], position)
            position += 1
