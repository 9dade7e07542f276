"""The demo model's script is a contract: exact greedy answers under real llama.cpp inference."""

from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from app.core.backend import ChatMessage, GenerationRequest
from app.core.sampling import SamplingParams
from app.models.demo_model import (
    SCRIPT_CODE,
    SCRIPT_HELLO,
    SCRIPT_STOP,
    TRANSITIONS,
    expected_reply,
    write_demo_model,
)
from app.models.gguf_file import inspect_gguf
from app.models.local_backend import LocalBackend


@pytest.mark.parametrize(
    ("prompt", "expected", "reason"),
    [
        ("Please greet me", SCRIPT_HELLO, "eos"),
        ("Stop the run #", SCRIPT_STOP, "eos"),
        ("Compute six times seven %", SCRIPT_CODE, "eos"),
        ("Sing ~", " la" * 12, "max_tokens"),
        ("", SCRIPT_HELLO, "eos"),
        ("Ünïcödé ✓", SCRIPT_HELLO, "eos"),
    ],
)
def test_each_script_exactly_through_the_worker(
    backend: LocalBackend, demo_model: Path, prompt: str, expected: str, reason: str
) -> None:
    backend.load(demo_model)
    events = list(backend.generate(GenerationRequest.chat(prompt, params=SamplingParams(max_tokens=12))))
    result = events[-1]
    assert result.text == expected == expected_reply(prompt, 12)
    assert result.stop_reason == reason
    assert "".join(e.text for e in events[:-1]) == expected


def test_last_message_decides_and_raw_prompts_work(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    system_hash = GenerationRequest(
        messages=(ChatMessage("system", "rules #"), ChatMessage("user", "hi")), params=SamplingParams()
    )
    assert list(backend.generate(system_hash))[-1].text == SCRIPT_HELLO
    raw = GenerationRequest(prompt="print something %", params=SamplingParams())
    assert list(backend.generate(raw))[-1].text == SCRIPT_CODE


def test_written_offline_and_reproducible(tmp_path: Path) -> None:
    first = write_demo_model(tmp_path / "a.gguf").read_bytes()
    second = write_demo_model(tmp_path / "b.gguf").read_bytes()
    assert first == second
    assert not list(tmp_path.glob("*.partial"))


def test_vocabulary_keeps_prompts_as_bytes(demo_model: Path) -> None:
    """Script tokens have 3+ characters and no 2-character token exists, so SentencePiece can never
    merge prompt characters: every prompt tokenizes into byte tokens and its last byte decides."""
    assert all(len(token) >= 3 for token in TRANSITIONS)
    assert inspect_gguf(demo_model).vocab_size == 3 + 256 + len(TRANSITIONS)


def _script_paths() -> list[str]:
    return ["tell me", "x#", "y%", "z~"]


@pytest.mark.parametrize("prompt", _script_paths())
def test_every_step_has_a_real_alternative(demo_model: Path, prompt: str) -> None:
    """Read real logits from llama.cpp: at every scripted step the intended token is the most likely
    and another token has between 1% and 20% probability at temperature 1."""
    llm = llama_cpp.Llama(str(demo_model), n_ctx=256, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    llm.eval(tokens)
    n_vocab = llm.n_vocab()
    for _step in range(8):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,)).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        best, second = int(order[0]), float(probs[order[1]])
        assert probs[best] > 0.5
        assert 0.01 <= second <= 0.20, second
        if best == llm.token_eos():
            break
        llm.eval([best])
