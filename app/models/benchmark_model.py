"""Random-weight GGUF models of realistic shape, for benchmarks and memory checks.

The weights are random, so the text is nonsense, but llama.cpp does the full work of a real model
of that size. The default shape is that of a 0.5B-parameter model (24 layers, 896 wide, 152k
vocabulary) quantized to Q8_0; `SMALL_MODERN_SHAPE` is a 0.27B one with a 262k vocabulary.
"""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import numpy as np

from app.models.gguf_writer import LlamaShape, Quant, q8_0_random, spm_vocabulary, write_llama_gguf

REALISTIC_SHAPE = LlamaShape(
    n_vocab=151_936, n_embd=896, n_layer=24, n_head=14, n_head_kv=2, n_ff=4864, n_ctx_train=32_768
)
SMALL_MODERN_SHAPE = LlamaShape(
    n_vocab=262_144, n_embd=640, n_layer=18, n_head=4, n_head_kv=1, n_ff=2048, n_ctx_train=32_768
)
"""A small modern model's shape (about 0.27B parameters, most of them in the 262k-token vocabulary's
embeddings, as in Gemma 3 270M): cheap layers, so reading the vocabulary's logits weighs more."""


def _vocabulary_strings(n_vocab: int) -> list[str]:
    # Three or more characters each, so prompts tokenize into bytes (see demo_model).
    return [f"\u2581w{index:06d}" for index in range(n_vocab - 259)]


def write_benchmark_model(path: str | os.PathLike[str], shape: LlamaShape = REALISTIC_SHAPE, seed: int = 0) -> Path:
    """Write a random-weight Q8_0 model (embeddings tied to the output, as in small Qwen models)."""
    rng = np.random.default_rng(seed)
    vocab = spm_vocabulary(_vocabulary_strings(shape.n_vocab))
    embeddings = q8_0_random(shape.n_vocab, shape.n_embd, rng)
    # A zero row (scale 0) gives the end token logit 0, far below the top of 152k random logits,
    # so generations run to max_tokens and every run measures the same amount of work.
    embeddings[vocab.eos_id, :] = 0
    ones = np.ones(shape.n_embd, dtype=np.float32)
    tensors: list[tuple[str, np.ndarray, Quant | None]] = [
        ("token_embd.weight", embeddings, Quant.Q8_0),
        ("output_norm.weight", ones, None),
    ]
    for layer in range(shape.n_layer):
        prefix = f"blk.{layer}"
        tensors += [
            (f"{prefix}.attn_norm.weight", ones, None),
            (f"{prefix}.attn_q.weight", q8_0_random(shape.n_embd, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.attn_k.weight", q8_0_random(shape.n_embd_kv, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.attn_v.weight", q8_0_random(shape.n_embd_kv, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.attn_output.weight", q8_0_random(shape.n_embd, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.ffn_norm.weight", ones, None),
            (f"{prefix}.ffn_gate.weight", q8_0_random(shape.n_ff, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.ffn_up.weight", q8_0_random(shape.n_ff, shape.n_embd, rng), Quant.Q8_0),
            (f"{prefix}.ffn_down.weight", q8_0_random(shape.n_embd, shape.n_ff, rng), Quant.Q8_0),
        ]
    return write_llama_gguf(
        path,
        name="Chain Studio random-weight benchmark model",
        shape=shape,
        vocab=vocab,
        tensors=tensors,
        file_type=gguf.LlamaFileType.MOSTLY_Q8_0,
        description="Random weights: real compute cost, meaningless text.",
    )


def ensure_benchmark_model(path: str | os.PathLike[str], shape: LlamaShape = REALISTIC_SHAPE) -> Path:
    """Write the benchmark model once; later calls reuse the file."""
    target = Path(path)
    if not target.exists():
        write_benchmark_model(target, shape)
    return target


TINY_ATTENTION_SHAPE = LlamaShape(n_vocab=300, n_embd=32, n_layer=2, n_head=4, n_head_kv=2, n_ff=64,
                                  n_ctx_train=512)


def write_tiny_attention_model(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """A tiny llama model (2 layers, 4 heads over 2 key/value heads, width 32) with random F32
    weights whose attention is real and varied: the reference the studio's attention readout is
    tested against (the test computes the same attention in numpy from these weights)."""
    shape = TINY_ATTENTION_SHAPE
    rng = np.random.default_rng(seed)
    vocab = spm_vocabulary(_vocabulary_strings(shape.n_vocab))

    def weights(rows: int, cols: int, std: float) -> np.ndarray:
        return rng.normal(0.0, std, size=(rows, cols)).astype(np.float32)

    tensors: list[tuple[str, np.ndarray, Quant | None]] = [
        ("token_embd.weight", weights(shape.n_vocab, shape.n_embd, 1.0), None),
        ("output_norm.weight", np.ones(shape.n_embd, dtype=np.float32), None),
        ("output.weight", weights(shape.n_vocab, shape.n_embd, 0.5), None),
    ]
    for layer in range(shape.n_layer):
        prefix = f"blk.{layer}"
        tensors += [
            (f"{prefix}.attn_norm.weight", rng.uniform(0.5, 1.5, shape.n_embd).astype(np.float32), None),
            # large query/key weights: attention far from uniform, so a wrong readout shows
            (f"{prefix}.attn_q.weight", weights(shape.n_embd, shape.n_embd, 0.6), None),
            (f"{prefix}.attn_k.weight", weights(shape.n_embd_kv, shape.n_embd, 0.6), None),
            (f"{prefix}.attn_v.weight", weights(shape.n_embd_kv, shape.n_embd, 0.3), None),
            (f"{prefix}.attn_output.weight", weights(shape.n_embd, shape.n_embd, 0.3), None),
            (f"{prefix}.ffn_norm.weight", rng.uniform(0.5, 1.5, shape.n_embd).astype(np.float32), None),
            (f"{prefix}.ffn_gate.weight", weights(shape.n_ff, shape.n_embd, 0.3), None),
            (f"{prefix}.ffn_up.weight", weights(shape.n_ff, shape.n_embd, 0.3), None),
            (f"{prefix}.ffn_down.weight", weights(shape.n_embd, shape.n_ff, 0.3), None),
        ]
    return write_llama_gguf(
        path,
        name="Chain Studio tiny attention model",
        shape=shape,
        vocab=vocab,
        tensors=tensors,
        file_type=gguf.LlamaFileType.ALL_F32,
        description="Random F32 weights with real attention: the reference for attention readouts.",
    )
