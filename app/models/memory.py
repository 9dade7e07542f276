"""How much memory a model will need, from its GGUF header, before it is loaded.

    weights      the file (memory-mapped: resident once used)
    KV cache     2 (keys, values) x layers x n_ctx x (width / heads x KV heads) x 2 bytes (f16)
    attention    n_ctx x batch x heads x 4 bytes: the scores of one batch against a full context
    activations  batch x (feed-forward width + 3 x width) x 4 bytes x 3
    runtime      the worker's Python, llama.cpp and the cached vocabulary (measured: about 70 MiB)

This is the peak with the context in use: what to budget for. Checked by
tests/models/test_memory.py against the worker's measured peak resident memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.models.gguf_file import GGUFInfo

RUNTIME_BYTES = 70 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    compute: int
    runtime: int
    n_ctx: int

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
    batch = min(n_batch, context)
    kv_cache = 2 * layers * context * kv_width * 2
    attention = context * batch * heads * 4
    activations = batch * ((info.feed_forward_length or 4 * width) + 3 * width) * 4 * 3
    return MemoryEstimate(info.file_size, kv_cache, attention + activations, RUNTIME_BYTES, context)


def available_memory() -> int | None:
    """Memory the system can give a new process now (None when the OS does not say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
