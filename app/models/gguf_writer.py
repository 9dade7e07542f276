"""Write small llama-architecture GGUF files from numpy arrays.

Used for the scripted demo model (weights chosen so real inference gives a known text) and for
random-weight benchmark models of realistic shape. Files are written under a temporary name and
renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import gguf
import numpy as np

TokenType = gguf.TokenType
Quant = gguf.GGMLQuantizationType


@dataclass(frozen=True)
class LlamaShape:
    """Hyper-parameters of a llama-architecture model."""

    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx_train: int
    rms_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_embd_kv(self) -> int:
        return self.head_dim * self.n_head_kv


@dataclass(frozen=True)
class Vocabulary:
    """A SentencePiece-style ("llama") vocabulary. Token strings must be unique: llama.cpp aborts
    on a duplicate."""

    tokens: tuple[str, ...]
    types: tuple[int, ...]
    bos_id: int
    eos_id: int
    unk_id: int
    add_bos: bool = True
    eot_id: int | None = None  # an end-of-turn token (llama.cpp ends generation on it too)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.types):
            raise ValueError("tokens and types differ in length")


def byte_token(value: int) -> str:
    """The vocabulary string of a byte-fallback token."""
    return f"<0x{value:02X}>"


def spm_vocabulary(normal_tokens: Iterable[str]) -> Vocabulary:
    """<unk>, <s>, </s>, the 256 byte-fallback tokens, then `normal_tokens` in order."""
    tokens = ["<unk>", "<s>", "</s>"] + [byte_token(b) for b in range(256)] + list(normal_tokens)
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * (len(tokens) - len(types))
    if len(set(tokens)) != len(tokens):
        raise ValueError("duplicate token strings in vocabulary")
    return Vocabulary(tuple(tokens), tuple(int(t) for t in types), bos_id=1, eos_id=2, unk_id=0)


def q8_0_random(rows: int, cols: int, rng: np.random.Generator, std: float = 0.02) -> np.ndarray:
    """Raw Q8_0 bytes for a rows x cols matrix of random weights, built block by block without a
    float copy of the whole matrix (a 152k-vocabulary embedding would need gigabytes)."""
    if cols % 32:
        raise ValueError("Q8_0 rows must be a multiple of 32 wide")
    blocks = rows * cols // 32
    # Uniform int8 in [-127, 127] has a standard deviation of about 73.6.
    scale = np.float16(std / 73.6)
    out = np.empty((blocks, 34), dtype=np.uint8)
    out[:, :2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
    out[:, 2:] = rng.integers(-127, 128, size=(blocks, 32), dtype=np.int8).view(np.uint8)
    return out.reshape(rows, cols // 32 * 34)


def write_llama_gguf(
    path: str | os.PathLike[str],
    *,
    name: str,
    shape: LlamaShape,
    vocab: Vocabulary,
    tensors: Iterable[tuple[str, np.ndarray, Quant | None]],
    file_type: gguf.LlamaFileType,
    chat_template: str | None = None,
    description: str = "",
) -> Path:
    """Write a llama-architecture GGUF atomically and return its path.

    `tensors` yields (name, array, raw quantization or None for plain float arrays)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    writer = gguf.GGUFWriter(partial, "llama")
    writer.add_name(name)
    if description:
        writer.add_description(description)
    writer.add_file_type(int(file_type))
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_vocab_size(shape.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_types(list(vocab.types))
    writer.add_token_scores([0.0] * len(vocab.tokens))
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_unk_token_id(vocab.unk_id)
    if vocab.eot_id is not None:
        writer.add_eot_token_id(vocab.eot_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for tensor_name, array, raw_dtype in tensors:
        writer.add_tensor(tensor_name, array, raw_dtype=raw_dtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    os.replace(partial, target)
    return target
