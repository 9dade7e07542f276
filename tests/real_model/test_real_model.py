"""A real GGUF through the studio: its header, greedy answers in each prompt format the backend
offers, learning mode with 100 candidates, a branch, and the memory estimate against the measured
peak. The model is CHAIN_STUDIO_REAL_MODEL (see conftest.py).

Every check holds for any GGUF; where the file is the installed SmolLM2-135M-Instruct, the words it
really writes and its header's values are checked too (KNOWN)."""

from __future__ import annotations

import functools
import math
import mmap
import struct
from pathlib import Path
from typing import Any

import gguf
import pytest

from app.core import prompt_format
from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.branching import BranchPoint, grow_branch
from app.core.events import Answer
from app.core.learning import TokenChoice
from app.core.sampling import SamplingParams
from app.models.gguf_file import inspect_gguf
from app.models.local_backend import LocalBackend
from app.models.memory import estimate_memory
from tests.real_model.conftest import LOAD

pytestmark = pytest.mark.real_model

QUESTION = "What is the capital of France? Answer in one sentence."
RAW_START = "The capital of France is"
MAX_TOKENS = 48
# Special-token texts of common chat formats; the model's own control tokens are added (special_texts).
COMMON_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|begin_of_text|>", "<|end|>", "<start_of_turn>", "<end_of_turn>",
                  "<bos>", "<eos>", "<s>", "</s>", "[INST]", "[/INST]")
ENDINGS = ("eos", "max_tokens")
# The formats besides the model's own template: auto, raw completion, and llama.cpp's built-in
# templates, one of each family of markup (all 50-odd would cost a minute and check the same path).
OTHER_FORMATS = ("auto", "raw", "chatml", "llama3", "gemma", "mistral-v7", "phi3")
MARKUP = {"chatml": "<|im_start|>user\n", "llama3": "<|start_header_id|>user<|end_header_id|>",
          "gemma": "<start_of_turn>user\n", "mistral-v7": "[INST]", "phi3": "<|user|>\n"}

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
KNOWN = {
    SMOLLM2: {
        "header": dict(version=3, architecture="llama", size_label="135M", parameter_count=134_515_008,
                       quantization="Q4_1", context_length=8192, vocab_size=49152, block_count=30,
                       embedding_length=576, head_count=9, head_count_kv=3, feed_forward_length=1536,
                       tensor_count=272),
        "template_marks": ("<|im_start|>", "<|im_end|>"),  # ChatML
        "chat_answer": "The capital of France is Paris.",  # greedy, ends by its end-of-turn token
        "raw_answer_starts": " Paris",
        # greedy answers in other formats (the question alone as raw completion: it ends at once)
        "format_answers": {"auto": "The capital of France is Paris.", "chatml": "The capital of France is Paris.",
                           "phi3": "The capital of France is Paris.", "raw": ""},
        "branch_answer": "The capital of the French Republic is Paris.",  # " the" instead of " France" at 3
    },
}


def known(model: Path) -> dict:
    return KNOWN.get(model.name, {})


@functools.lru_cache(maxsize=4)
def special_texts(model: Path) -> frozenset[str]:
    """The texts of the model's control tokens (from the file's vocabulary), and the common chat
    formats' markers."""
    arrays = vocabulary_arrays(model)
    tokens, types = arrays["tokenizer.ggml.tokens"], arrays["tokenizer.ggml.token_type"]
    control = {text for text, kind in zip(tokens, types, strict=True) if kind == gguf.TokenType.CONTROL}
    return frozenset(text for text in control if text.strip()) | frozenset(COMMON_SPECIAL)


def vocabulary_arrays(model: Path) -> dict[str, list]:
    """The vocabulary's token texts and types, read straight from the GGUF header (gguf.GGUFReader
    takes seconds to index a whole file; only these two arrays are needed)."""
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    wanted = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type")
    found: dict[str, list] = {}
    with open(model, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = 16  # magic, version, tensor count
        (kv_count,) = struct.unpack_from("<Q", data, at)
        at += 8

        def take(fmt: str) -> Any:
            nonlocal at
            (value,) = struct.unpack_from(fmt, data, at)
            at += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal at
            length = take("<Q")
            at += length
            return bytes(data[at - length:at]).decode("utf-8", "replace")

        def value(kind: int) -> Any:
            if kind in scalar:
                return take(scalar[kind])
            if kind == 8:
                return string()
            item_kind, count = take("<I"), take("<Q")  # an array
            return [value(item_kind) for _ in range(count)]

        for _ in range(kv_count):
            key, kind = string(), take("<I")
            item = value(kind)
            if key in wanted:
                found[key] = item
            if len(found) == len(wanted):
                return found
    raise AssertionError(f"{model.name} has no {', '.join(k for k in wanted if k not in found)}")


def generate(backend: LocalBackend, request: GenerationRequest) -> tuple[list[TokenEvent], GenerationResult]:
    events = list(backend.generate(request))
    result = events[-1]
    assert isinstance(result, GenerationResult)
    tokens = [e for e in events[:-1] if isinstance(e, TokenEvent)]
    return tokens, result


def own_control_texts(model: Path) -> frozenset[str]:
    return special_texts(model) - frozenset(COMMON_SPECIAL)


def assert_clean_answer(model: Path, tokens: list[TokenEvent], result: GenerationResult, max_tokens: int,
                        foreign_format: bool = False) -> None:
    """A finished answer: no special-token text, ended by the end token or the limit. In a foreign
    template only the model's own control tokens count: its markers are plain text to the model,
    which may write them back (SmolLM2 in gemma's format writes "<end_of_turn>" as text)."""
    watched = own_control_texts(model) if foreign_format else special_texts(model)
    leaked = sorted(s for s in watched if s in result.text)
    assert not leaked, (leaked, result.text)
    assert result.stop_reason in ENDINGS, result
    assert result.generated_tokens <= max_tokens
    if result.stop_reason == "max_tokens":
        assert result.generated_tokens == max_tokens
    assert "".join(t.text for t in tokens) == result.text  # the stream is the answer


# --- header -------------------------------------------------------------------------------------------


def test_header_info_matches_the_file_and_llama_cpp(real_model: Path, real_backend: LocalBackend) -> None:
    info = inspect_gguf(real_model)
    assert info.path == str(real_model) and info.file_name == real_model.name
    assert info.file_size == real_model.stat().st_size
    assert info.version >= 2 and info.architecture and info.tensor_count > 0
    assert info.parameter_count > 0 and info.quantization
    assert info.block_count and info.embedding_length and info.head_count
    loaded = real_backend.loaded
    assert loaded is not None
    # What the header says is what llama.cpp read from the same file.
    assert (loaded.n_vocab, loaded.n_ctx_train, loaded.chat_template) == \
        (info.vocab_size, info.context_length, info.chat_template)
    assert loaded.n_ctx == LOAD.n_ctx
    expected = known(real_model)
    if expected:
        assert {key: getattr(info, key) for key in expected["header"]} == expected["header"]
        assert info.chat_template and all(mark in info.chat_template for mark in expected["template_marks"])


# --- one greedy answer in each prompt format ----------------------------------------------------------


def test_greedy_answer_in_the_models_own_chat_template(real_model: Path, real_backend: LocalBackend) -> None:
    if not inspect_gguf(real_model).chat_template:
        pytest.skip(f"{real_model.name} has no chat template")
    request = GenerationRequest.chat(QUESTION, params=SamplingParams(max_tokens=MAX_TOKENS))
    tokens, result = generate(real_backend, request)
    assert result.text.strip()
    assert_clean_answer(real_model, tokens, result, MAX_TOKENS)
    assert result.prompt_format == prompt_format.MODEL and QUESTION in result.prompt_text
    assert result.prompt_tokens > len(real_backend.tokenize(QUESTION, add_special=False))  # the template's turns
    again = generate(real_backend, request)[1]
    assert (again.text, again.token_ids) == (result.text, result.token_ids)  # greedy repeats itself
    if known(real_model):
        assert (result.text, result.stop_reason) == (known(real_model)["chat_answer"], "eos")


def test_greedy_answer_as_raw_completion(real_model: Path, real_backend: LocalBackend) -> None:
    """A plain prompt (GenerationRequest.prompt, as the API's completions send): the text as it is."""
    request = GenerationRequest(prompt=RAW_START, params=SamplingParams(max_tokens=16))
    tokens, result = generate(real_backend, request)
    assert result.text.strip()
    assert_clean_answer(real_model, tokens, result, 16)
    assert (result.prompt_format, result.prompt_text) == (prompt_format.RAW, RAW_START)
    assert result.prompt_tokens == len(real_backend.tokenize(RAW_START))
    if known(real_model):
        assert result.text.startswith(known(real_model)["raw_answer_starts"]), result.text


@pytest.mark.parametrize("template", OTHER_FORMATS)
def test_one_greedy_answer_in_each_other_prompt_format(template: str, real_model: Path,
                                                       real_backend: LocalBackend) -> None:
    """The same question in auto, raw completion and llama.cpp's built-in templates."""
    assert template in prompt_format.FORMATS
    own = inspect_gguf(real_model).chat_template
    messages = GenerationRequest.chat(QUESTION).messages
    request = GenerationRequest(messages=messages, params=SamplingParams(max_tokens=16), template=template)
    tokens, result = generate(real_backend, request)
    assert_clean_answer(real_model, tokens, result, 16, foreign_format=template in prompt_format.BUILTIN_TEMPLATES)
    used = (prompt_format.MODEL if own else prompt_format.RAW) if template == prompt_format.AUTO else template
    assert result.prompt_format == used
    if used == prompt_format.RAW:
        assert result.prompt_text == prompt_format.raw_completion(messages) == QUESTION
    else:
        assert QUESTION in result.prompt_text and result.prompt_text != QUESTION
    if template in MARKUP:
        assert MARKUP[template] in result.prompt_text, result.prompt_text
    answers = known(real_model).get("format_answers", {})
    if template in answers:
        assert (result.text, result.stop_reason) == (answers[template], "eos")


# --- learning mode ------------------------------------------------------------------------------------


def check_choice(choice: TokenChoice, top: int, vocab_size: int) -> None:
    """One token's record: `top` candidates by raw logit; probabilities that are one softmax over the
    whole vocabulary before sampling; every stage's distribution summing to 1."""
    candidates = choice.candidates
    assert len(candidates) == top, len(candidates)
    assert len({c.token_id for c in candidates}) == top and all(0 <= c.token_id < vocab_size for c in candidates)
    logits = [c.logit for c in candidates]
    assert logits == sorted(logits, reverse=True)
    # Before sampling: a softmax over the whole vocabulary. Each candidate's logit - log(prob) is the
    # log of the same sum over every token, and the candidates hold at most all of the mass.
    before = [c.prob for c in candidates]
    assert all(0 < p <= 1 for p in before[:10]) and sum(before) <= 1 + 1e-6
    normalisers = [c.logit - math.log(c.prob) for c in candidates if c.prob > 1e-30]
    assert max(normalisers) - min(normalisers) < 1e-3, (min(normalisers), max(normalisers))
    chosen = choice.chosen_candidate
    assert chosen.removed_by is None  # the pick survived every stage
    assert choice.chosen_rank == 1 + sum(c.logit > chosen.logit for c in candidates)
    top_k_at = choice.stages.index("top_k")
    for column, stage in enumerate(choice.stages):
        probs = [c.stage_probs[column] for c in candidates]
        assert all(0 <= p <= 1 + 1e-9 for p in probs), stage
        if column < top_k_at:  # the whole vocabulary; no penalty is set, so it is unchanged
            assert all(abs(c.stage_probs[column] - c.prob) < 1e-9 for c in candidates), stage
            assert sum(probs) <= 1 + 1e-6
        else:  # from top_k (40 < 100) on, every survivor is a candidate: the whole distribution is seen
            assert abs(sum(probs) - 1) < 1e-6, (stage, sum(probs))
            assert all(c.stage_probs[column] == 0 for c in candidates if c.removed_by == stage)
    assert chosen.stage_probs[-1] > 0  # drawn from the last distribution


def test_learning_mode_with_100_candidates(real_model: Path, real_backend: LocalBackend) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=7)
    base = GenerationRequest.chat(QUESTION, params=params)
    request = GenerationRequest(messages=base.messages, params=params, learning_top=100)
    tokens, result = generate(real_backend, request)
    assert result.stop_reason in ENDINGS and result.generated_tokens == len(tokens)
    choices = [t.choice for t in tokens]
    assert all(isinstance(c, TokenChoice) for c in choices)
    assert [c.position for c in choices] == list(range(len(choices)))
    assert [c.chosen for c in choices] == [t.token_id for t in tokens] == list(result.token_ids)
    vocab_size = len(real_backend.vocabulary())
    for choice in choices:
        assert "top_k" in choice.stages and choice.stages[-1] == "temperature", choice.stages
        check_choice(choice, 100, vocab_size)
    assert any(c.removed_by for choice in choices for c in choice.candidates)  # the filters did remove some
    again = generate(real_backend, request)[1]
    assert again.token_ids == result.token_ids  # the seeded draw repeats


# --- a branch -----------------------------------------------------------------------------------------


def test_a_branch_keeps_the_prefix_and_goes_on_from_another_candidate(
    real_model: Path, real_backend: LocalBackend
) -> None:
    params = SamplingParams(max_tokens=24)
    base_request = GenerationRequest.chat(QUESTION, params=params)
    request = GenerationRequest(messages=base_request.messages, params=params, learning_top=100)
    tokens, original = generate(real_backend, request)
    ids = tuple(t.token_id for t in tokens)
    assert len(ids) >= 2, original
    at = len(ids) // 2
    alternative = next(c for c in tokens[at].choice.candidates if c.token_id != ids[at])
    point = BranchPoint(run_id=1, seq=0, model_path=str(real_model), item=0, response=0, loop=0,
                        messages=request.messages, params=params, token_ids=ids)
    events = list(grow_branch(real_backend, point, at, alternative.token_id, new_seq=1, learning_top=100, load=LOAD))
    branch = events[-1]
    assert isinstance(branch, Answer)
    assert real_backend.loaded is not None and real_backend.loaded.load == LOAD  # not reloaded
    chosen = tuple(c.chosen for c in branch.choices)
    assert chosen[:at] == ids[:at] and chosen[at] == alternative.token_id
    assert branch.choices[at].chosen_rank == 2  # greedy's pick was rank 1; shown with its real rank
    assert branch.text.startswith("".join(t.text for t in tokens[:at]))
    assert branch.stop_reason in ENDINGS and branch.tokens <= params.max_tokens
    leaked = sorted(s for s in special_texts(real_model) if s in branch.text)
    assert not leaked, (leaked, branch.text)
    if known(real_model):
        assert (branch.text, branch.stop_reason) == (known(real_model)["branch_answer"], "eos")


# --- memory -------------------------------------------------------------------------------------------


def peak_resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_memory_estimate_is_within_10_percent_of_the_measured_peak(real_model: Path, tmp_path: Path) -> None:
    estimate = estimate_memory(inspect_gguf(real_model), n_ctx=LOAD.n_ctx, n_batch=LOAD.n_batch)
    backend = LocalBackend(log_dir=tmp_path)  # a worker of its own: its peak is this model's alone
    try:
        backend.load(real_model, LOAD)
        # Fill the context (all but a few tokens): the peak a person has to budget for. A part-used
        # context peaks lower (SmolLM2 with 450 of 1024 tokens: the estimate is 11% above its peak).
        chunk = "The cat sat on the mat. "
        first = len(backend.tokenize(chunk))
        each = len(backend.tokenize(chunk * 2)) - first
        prompt = chunk * (1 + (LOAD.n_ctx - 16 - first) // each)
        result = generate(backend, GenerationRequest(prompt=prompt, params=SamplingParams(max_tokens=4)))[1]
        assert LOAD.n_ctx - 64 <= result.prompt_tokens <= LOAD.n_ctx - 8, result.prompt_tokens
        measured = peak_resident_bytes(backend._worker.process.pid)  # type: ignore[union-attr]
    finally:
        backend.close()
    assert abs(estimate.total - measured) / measured <= 0.10, (estimate.describe(), measured / 2**20)


def test_special_texts_are_found_in_the_file(real_model: Path) -> None:
    """The leak check above looks for the model's own control tokens: it must find some."""
    assert own_control_texts(real_model)
    if known(real_model):
        assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= special_texts(real_model)
