"""How much memory a model will need, from its GGUF header, before it is loaded; how much there is.

    weights      the file (memory-mapped: resident once used)
    KV cache     2 (keys, values) x layers x n_ctx x (width / heads x KV heads) x 2 bytes (f16)
    attention    n_ctx x micro-batch x heads x 4 bytes: the scores of one micro-batch against a full context
    activations  micro-batch x (feed-forward width + 3 x width) x 4 bytes x 3
    runtime      the worker's Python, llama.cpp and the cached vocabulary (measured: about 70 MiB)

The micro-batch is min(n_batch, 512, n_ctx): llama-cpp-python evaluates a batch in micro-batches of
at most 512 tokens (its n_ubatch), and the compute buffers are sized for one of them. The KV cache
grows linearly with n_ctx and is written (zeroed) while the model loads, so a huge n_ctx costs its
memory, and time, before the first token.

This is the peak with the context in use: what to budget for. Checked by
tests/models/test_memory.py against the worker's measured peak resident memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from app.models.gguf_file import GGUFInfo

RUNTIME_BYTES = 70 * 2**20
MICRO_BATCH = 512  # llama-cpp-python's n_ubatch (the studio does not change it)
CONTEXT_STEP = 256  # suggested contexts are rounded down to this (llama.cpp pads n_ctx to it)


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory a model needs at one n_ctx, in bytes."""

    weights: int
    kv_cache: int  # written while the model loads
    compute: int  # attention scores and activations of one micro-batch
    runtime: int
    n_ctx: int  # the context it was computed for (the trained context when n_ctx 0 was asked)

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.runtime

    def describe(self) -> str:
        gib = 2**30
        return (f"about {self.total / gib:.2f} GB at n_ctx {self.n_ctx:,} (weights {self.weights / gib:.2f} GB, "
                f"context {(self.kv_cache + self.compute) / gib:.2f} GB)")


def estimate_memory(info: GGUFInfo, n_ctx: int, n_batch: int = 512) -> MemoryEstimate:
    """Peak memory for `info` at `n_ctx` (0 = the trained context)."""
    context = n_ctx or info.context_length or 4096
    layers = info.block_count or 0
    width = info.embedding_length or 0
    heads = info.head_count or 1
    kv_heads = info.head_count_kv or heads
    kv_width = width // heads * kv_heads if width else 0
    batch = min(n_batch, MICRO_BATCH, context)
    kv_cache = 2 * layers * context * kv_width * 2
    attention = context * batch * heads * 4
    activations = batch * ((info.feed_forward_length or 4 * width) + 3 * width) * 4 * 3
    return MemoryEstimate(info.file_size, kv_cache, attention + activations, RUNTIME_BYTES, context)


def largest_context(info: GGUFInfo, budget: int, n_batch: int = 512, below: int | None = None) -> int:
    """The largest n_ctx (a multiple of CONTEXT_STEP, under `below` when given) whose estimate fits
    in `budget` bytes; 0 when not even CONTEXT_STEP tokens fit. The estimate grows with n_ctx, so
    a bisection finds it."""
    top = (below - 1 if below else 2**24) // CONTEXT_STEP
    low, high = 0, top  # in steps: `low` fits (0 trivially), anything above `high` does not
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_memory(info, middle * CONTEXT_STEP, n_batch).total <= budget:
            low = middle
        else:
            high = middle - 1
    return low * CONTEXT_STEP


def available_memory() -> int | None:
    """Memory the system can give a new process now (None when the OS does not say)."""
    try:
        return int(psutil.virtual_memory().available)
    except (psutil.Error, OSError, AttributeError, RuntimeError):
        return None


def private_memory(pid: int) -> int | None:
    """Memory that only process `pid` holds: what ending it gives back. Pages of a memory-mapped
    file are left out (they stay in the page cache, which the available memory already counts)."""
    try:
        info = psutil.Process(pid).memory_info()
    except (psutil.Error, OSError):
        return None
    if hasattr(info, "shared"):  # Linux: resident minus file-backed and shared pages
        return max(0, int(info.rss) - int(info.shared))
    return int(getattr(info, "private", info.rss))  # Windows: private bytes; macOS: resident
