"""Each sampled token's attention, read from llama.cpp's own softmaxed attention (app/models/attention.py),
against the same attention computed independently in numpy from the model's weights: a tiny random
llama model the project writes (2 layers, 4 query heads over 2 key/value heads, F32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.sampling import LoadParams, SamplingParams
from app.models.benchmark_model import TINY_ATTENTION_SHAPE, write_tiny_attention_model
from app.models.local_backend import LocalBackend

SHAPE = TINY_ATTENTION_SHAPE
ROPE_BASE = 10000.0  # llama.cpp's default: the writer sets none


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_attention_model(tmp_path_factory.mktemp("models") / "tiny-attention.gguf")


def weights_of(path: Path) -> dict[str, np.ndarray]:
    import gguf

    reader = gguf.GGUFReader(path)
    return {t.name: np.array(t.data, dtype=np.float64).reshape([int(n) for n in reversed(t.shape)])
            for t in reader.tensors}


def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + SHAPE.rms_eps) * weight


def rope(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """llama.cpp's "normal" rotary embedding: dimensions (0, 1), (2, 3)… rotate together."""
    head_dim = x.shape[-1]
    angles = positions[:, None] * ROPE_BASE ** (-np.arange(0, head_dim, 2) / head_dim)[None, :]
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = even * sin + odd * cos
    return out


def reference_attention(weights: dict[str, np.ndarray], tokens: list[int]) -> np.ndarray:
    """softmax(QK^T / sqrt(d) + causal mask) per layer and head for the whole sequence, from the
    weights alone: shape (layers, heads, queries, keys)."""
    n, hd, group = len(tokens), SHAPE.head_dim, SHAPE.n_head // SHAPE.n_head_kv
    x = weights["token_embd.weight"][tokens]
    positions = np.arange(n, dtype=np.float64)
    found = []
    for layer in range(SHAPE.n_layer):
        w = {name.split(".", 2)[2]: value for name, value in weights.items() if name.startswith(f"blk.{layer}.")}
        h = rms_norm(x, w["attn_norm.weight"])
        q = rope((h @ w["attn_q.weight"].T).reshape(n, SHAPE.n_head, hd), positions)
        k = rope((h @ w["attn_k.weight"].T).reshape(n, SHAPE.n_head_kv, hd), positions)
        v = (h @ w["attn_v.weight"].T).reshape(n, SHAPE.n_head_kv, hd)
        scores = np.einsum("qhd,khd->hqk", q, np.repeat(k, group, axis=1)) / np.sqrt(hd)
        scores = scores + np.triu(np.full((n, n), -np.inf), 1)[None]
        attention = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention /= attention.sum(axis=-1, keepdims=True)
        found.append(attention)
        mixed = np.einsum("hqk,khd->qhd", attention, np.repeat(v, group, axis=1)).reshape(n, SHAPE.n_embd)
        x = x + mixed @ w["attn_output.weight"].T
        h = rms_norm(x, w["ffn_norm.weight"])
        gate, up = h @ w["ffn_gate.weight"].T, h @ w["ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w["ffn_down.weight"].T
    return np.stack(found)


def test_each_tokens_attention_is_the_models_own(tiny: Path) -> None:
    backend = LocalBackend()
    try:
        backend.load(str(tiny), LoadParams(n_ctx=256))
        prompt = backend.tokenize("attention, please", True)
        request = GenerationRequest(prompt_tokens=tuple(prompt), attention=True, learning_top=3,
                                    params=SamplingParams(max_tokens=6, temperature=0.0))
        events = list(backend.generate(request))
    finally:
        backend.close()
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    result = events[-1]
    assert isinstance(result, GenerationResult) and result.attention_note == ""
    assert len(tokens) == 6
    reference = reference_attention(weights_of(tiny), prompt + [e.token_id for e in tokens])
    for number, event in enumerate(tokens):
        query = len(prompt) + number - 1  # the step that chose this token looked from the position before it
        expected = reference[:, :, query, : query + 1].mean(axis=(0, 1))
        assert event.attention is not None and len(event.attention) == query + 1
        np.testing.assert_allclose(event.attention, expected, atol=1e-3)  # llama.cpp keeps keys in F16
        assert abs(sum(event.attention) - 1) < 1e-4
    # far from uniform: a readout that averaged the wrong axis or position would not pass
    assert max(tokens[0].attention) > 3 / len(tokens[0].attention)
