"""The model worker: streaming, stopping, crash isolation and clear errors, with real llama.cpp."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.errors import ContextOverflowError, GenerationError, ModelFileError, WorkerCrashedError
from app.core.sampling import LoadParams, SamplingParams
from app.models.demo_model import SCRIPT_HELLO
from app.models.gguf_writer import LlamaShape, TokenType, Vocabulary, byte_token, write_llama_gguf
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT


def write_duplicate_token_model(path: Path) -> Path:
    """A structurally valid GGUF whose vocabulary holds the same string twice: llama.cpp aborts."""
    tokens = ["<unk>", "<s>", "</s>"] + [byte_token(b) for b in range(256)] + ["Hello", "Hello"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * 2
    vocab = Vocabulary(tuple(tokens), tuple(int(t) for t in types), bos_id=1, eos_id=2, unk_id=0)
    shape = LlamaShape(n_vocab=len(tokens), n_embd=64, n_layer=1, n_head=1, n_head_kv=1, n_ff=32, n_ctx_train=512)

    def zeros(*dims: int) -> np.ndarray:
        return np.zeros(dims, dtype=np.float32)

    tensors = [
        ("token_embd.weight", zeros(shape.n_vocab, 64), None),
        ("output_norm.weight", np.ones(64, dtype=np.float32), None),
        ("output.weight", zeros(shape.n_vocab, 64), None),
        ("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32), None),
        ("blk.0.attn_q.weight", zeros(64, 64), None),
        ("blk.0.attn_k.weight", zeros(64, 64), None),
        ("blk.0.attn_v.weight", zeros(64, 64), None),
        ("blk.0.attn_output.weight", zeros(64, 64), None),
        ("blk.0.ffn_norm.weight", np.ones(64, dtype=np.float32), None),
        ("blk.0.ffn_gate.weight", zeros(32, 64), None),
        ("blk.0.ffn_up.weight", zeros(32, 64), None),
        ("blk.0.ffn_down.weight", zeros(64, 32), None),
    ]
    return write_llama_gguf(path, name="duplicate vocabulary", shape=shape, vocab=vocab,
                            tensors=tensors, file_type=gguf.LlamaFileType.ALL_F32)


def final(events: list) -> GenerationResult:
    assert isinstance(events[-1], GenerationResult)
    return events[-1]


def test_stop_current_ends_within_one_token(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    seen = 0
    result = None
    for event in backend.generate(GenerationRequest.chat("sing ~", params=SamplingParams(max_tokens=100_000))):
        if isinstance(event, TokenEvent):
            seen += 1
            if seen == 5:
                backend.stop_current()
        else:
            result = event
    assert result is not None
    assert result.stop_reason == "stopped"
    assert result.generated_tokens == seen == 5
    assert result.text == " la" * 5
    # The worker is in step again: the next generation is complete.
    assert final(list(backend.generate(GenerationRequest.chat("hi")))).text == SCRIPT_HELLO


def test_crash_isolation(tmp_path: Path, demo_model: Path) -> None:
    broken = write_duplicate_token_model(tmp_path / "duplicate-vocab.gguf")
    backend = LocalBackend(log_dir=tmp_path / "logs")
    try:
        with pytest.raises(WorkerCrashedError) as caught:
            backend.load(broken)
        message = str(caught.value)
        assert message.startswith("model crashed while loading duplicate-vocab.gguf (exit code ")
        assert caught.value.exit_code not in (None, 0)
        assert "GGML_ASSERT" in caught.value.log_tail  # llama.cpp's own words, not a backtrace
        # The same backend goes on: it loads the demo model and answers.
        backend.load(demo_model)
        assert final(list(backend.generate(GenerationRequest.chat("hello")))).text == SCRIPT_HELLO
    finally:
        backend.close()


def test_context_overflow_names_both_numbers(tmp_path: Path, demo_model: Path) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    try:
        loaded = backend.load(demo_model, LoadParams(n_ctx=256))
        with pytest.raises(ContextOverflowError) as caught:
            list(backend.generate(GenerationRequest.chat("x" * 300)))
        assert caught.value.prompt_tokens == 301  # BOS + one byte token per character
        assert caught.value.n_ctx == loaded.n_ctx == 256
        assert str(caught.value).startswith("prompt has 301 tokens, context is 256")
        # A full context ends a generation cleanly instead of failing.
        result = final(list(backend.generate(GenerationRequest.chat("y" * 240 + "~", params=SamplingParams(max_tokens=0)))))
        assert result.stop_reason == "context_full"
        assert result.prompt_tokens + result.generated_tokens == 256
    finally:
        backend.close()


def test_stop_strings_and_limits(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    cut = final(list(backend.generate(GenerationRequest.chat("hi", params=SamplingParams(stop=(" demo",))))))
    assert (cut.text, cut.stop_reason) == ("Hello from the", "stop_string")
    short = final(list(backend.generate(GenerationRequest.chat("hi", params=SamplingParams(max_tokens=2)))))
    assert (short.text, short.stop_reason, short.generated_tokens) == ("Hello from", "max_tokens", 2)


def test_sampling_with_seed_is_reproducible_on_both_paths(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)

    def run(params: SamplingParams) -> GenerationResult:
        return final(list(backend.generate(GenerationRequest.chat("~", params=params))))

    native = SamplingParams(temperature=1.5, top_k=0, max_tokens=40, seed=1234)
    first, second = run(native), run(native)
    assert first.token_ids == second.token_ids and first.seed == 1234
    assert len(set(first.token_ids)) > 1  # temperature 1.5 really draws alternatives
    # tfs_z < 1 goes through the studio's pipeline (llama-cpp-python ignores tfs_z). On the demo's
    # peaked distributions tail-free sampling keeps only the top token, so the song stays " la".
    tail_free = dataclasses.replace(native, tfs_z=0.95)
    assert run(tail_free).text == run(tail_free).text == " la" * 40


def test_vocabulary_tokenize_metadata(backend: LocalBackend, demo_model: Path) -> None:
    loaded = backend.load(demo_model)
    vocab = backend.vocabulary()
    assert len(vocab) == loaded.n_vocab == 294
    assert vocab[1] == "<s>" and vocab[0x41 + 3] == "A" and vocab[0xE2 + 3] == "<0xE2>"
    assert " from" in vocab
    assert backend.tokenize("AB") == [1, 0x41 + 3, 0x42 + 3]
    assert backend.metadata()["general.name"] == "Chain Studio demo model"


def test_loading_another_model_ends_the_old_worker(tmp_path: Path, demo_model: Path) -> None:
    copy = shutil.copy(demo_model, tmp_path / "copy.gguf")
    backend = LocalBackend(log_dir=tmp_path)
    try:
        backend.load(demo_model)
        first = backend._worker.process  # type: ignore[union-attr]
        assert backend.load(demo_model) is backend.loaded  # same model, same settings: no reload
        backend.load(copy)
        assert first.poll() is not None  # the old process has exited: its memory is back
        backend.unload()
        assert backend.loaded is None and backend._worker is None
    finally:
        backend.close()


def test_changed_model_file_is_reported_then_reloads(tmp_path: Path, demo_model: Path) -> None:
    model = Path(shutil.copy(demo_model, tmp_path / "changing.gguf"))
    backend = LocalBackend(log_dir=tmp_path)
    try:
        backend.load(model)
        os.utime(model, ns=(time.time_ns(), time.time_ns() + 10**9))
        with pytest.raises(ModelFileError, match="changed or deleted after it was loaded"):
            list(backend.generate(GenerationRequest.chat("hi")))
        backend.load(model)
        assert final(list(backend.generate(GenerationRequest.chat("hi")))).text == SCRIPT_HELLO
    finally:
        backend.close()


def test_abandoned_stream_keeps_the_worker_in_step(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    stream = backend.generate(GenerationRequest.chat("~", params=SamplingParams(max_tokens=10_000)))
    for _ in range(3):
        next(stream)
    stream.close()  # e.g. the browser tab was closed mid-run
    assert final(list(backend.generate(GenerationRequest.chat("hi")))).text == SCRIPT_HELLO


def test_no_model_loaded_is_a_clear_error(tmp_path: Path) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    with pytest.raises(GenerationError, match="no model is loaded"):
        list(backend.generate(GenerationRequest.chat("hi")))


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX job-control signals")
def test_stop_all_kills_a_worker_that_does_not_answer(tmp_path: Path, demo_model: Path) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    try:
        backend.load(demo_model)
        stream = backend.generate(GenerationRequest.chat("~", params=SamplingParams(max_tokens=100_000)))
        texts = [next(stream).text for _ in range(3)]
        pid = backend._worker.process.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGSTOP)  # a worker stuck inside llama.cpp
        backend.stop_all()
        rest = list(stream)
        result = rest[-1]
        assert result.stop_reason == "stopped"
        assert result.text.startswith("".join(texts))
        assert backend.loaded is None
        backend.load(demo_model)
        assert final(list(backend.generate(GenerationRequest.chat("hi")))).text == SCRIPT_HELLO
    finally:
        backend.close()


def start_studio_with_a_worker(tmp_path: Path, model: Path) -> tuple[subprocess.Popen[str], int]:
    """A studio-like process holding a loaded model; returns it and its worker's pid."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from app.models.local_backend import LocalBackend
        backend = LocalBackend(log_dir=Path({str(tmp_path)!r}))
        backend.load({str(model)!r})
        print(backend._worker.process.pid, flush=True)
        time.sleep(600)
        """
    )
    studio = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    return studio, int(studio.stdout.readline())  # type: ignore[union-attr]


def wait_until_gone(pid: int, seconds: float = 10) -> bool:
    """True once `pid` has ended (a zombie counts as ended), within `seconds` (a generous bound)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_worker_exits_when_the_studio_is_killed(tmp_path: Path, demo_model: Path) -> None:
    studio, worker_pid = start_studio_with_a_worker(tmp_path, demo_model)
    try:
        studio.kill()
        studio.wait()
        if not wait_until_gone(worker_pid):  # the worker notices its closed pipe at once
            os.kill(worker_pid, signal.SIGKILL)
            pytest.fail("the model worker outlived the studio process")
    finally:
        if studio.poll() is None:
            studio.kill()


def test_the_worker_ignores_ctrl_c_and_dies_with_a_studio_that_is_terminated(
        tmp_path: Path, demo_model: Path) -> None:
    studio, worker_pid = start_studio_with_a_worker(tmp_path, demo_model)
    try:
        os.kill(worker_pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the whole group
        time.sleep(0.5)
        os.kill(worker_pid, 0)  # still there: the studio decides when the worker ends
        os.kill(worker_pid, signal.SIGSTOP)  # busy: it never reads its pipe, only the death signal ends it
        studio.terminate()
        studio.wait()
        if not wait_until_gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
            pytest.fail("the model worker outlived the studio process")
    finally:
        if studio.poll() is None:
            studio.kill()
