"""The model worker: llama.cpp in a child process. The only module that imports llama_cpp.

A malformed GGUF can abort the process from C (uncatchable in Python), so the model never lives in
the studio's own process. The parent (`local_backend.LocalBackend`) starts
`python -m app.models.worker STOP_FLAG_FILE` and exchanges messages over its stdin and stdout
(`worker_link.FramedPipe`); the worker's stderr (and anything llama.cpp prints) goes to a log file
whose tail explains a crash:

    parent -> worker   ("load", path, LoadParams, memory_limit, context_bytes) |
                       ("generate", GenerationRequest) | ("generate_many", [GenerationRequest, ...]) |
                       ("tokenize", text, add_special) | ("detokenize", tokens) | ("vocab",) | ("metadata",) | ("exit",)
                       ("ack",) after each batch of tokens it has handled, during a generation
                       (("ack", indices) during generate_many: the requests no longer wanted)
    worker -> parent   ("ok", value) | ("err", kind, message, extra) |
                       ("progress", fraction) ... while loading, then ("progress", 1.0) before "ok" |
                       ("toks", [(token_id, text, choice, attention), ...]) ... ("done", GenerationResult)
                       ("toks_many", [(index, token_id, text, choice), ...]) ... ("done_many", [result or None])
                       (choice: a learning.TokenChoice in learning mode, else None)

A load reports its progress at most every `PROGRESS_SECONDS` (see `LoadProgress`).

Tokens are sent in batches: the first at once, then at most one message per `FLUSH_SECONDS`. On a
machine whose cores all run llama.cpp threads, every wake-up of the studio process costs a compute
thread its core, so one message per token would cost several percent of the speed; a page does
not update faster than that anyway. A batch is sent only after the previous one was acknowledged,
so a slow reader holds generation back instead of piling tokens up. The stop flag is shared memory
(`worker_link.StopFlag`) checked after every token: generation ends within one token of a stop
request. When the studio dies, the worker's next read or write on the pipe fails and it exits.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import os
import random
import signal
import sys
import threading
import time
from typing import Any, Callable, Generator, Iterator, Sequence, overload

import numpy as np

from app.core import prompt_format
from app.core.backend import ChatMessage, GenerationRequest, GenerationResult, LoadedModel, StopReason
from app.core.errors import GenerationError
from app.core.learning import TokenChoice, describe_pick
from app.core.metrics import EntropyMeter
from app.core.sampler_pipeline import SamplerPipeline
from app.core.sampling import SEED_RANDOM, LoadParams, SamplingParams
from app.core.stop_strings import StopStringScanner
from app.models.attention import AttentionReader, AttentionUnavailable
from app.models.batched import MAX_SEQUENCES, BatchedGeneration, batchable, masked_logits
from app.models.chat_template import render_chat
from app.models.grammar_mask import GrammarMask, NoTokenAllowed, constrained_pick
from app.models.memory import private_memory
from app.models.worker_link import FramedPipe, StopFlag

FLUSH_SECONDS = 0.05  # one message per page update at most (the UI shows ~20 a second)
PROGRESS_SECONDS = 0.1  # load progress: ten messages a second at most
INSTALL_HINT = "llama-cpp-python is not installed in this environment; run ./install.sh (or install.bat)"


class _Failure(Exception):
    """An error the worker reports to the parent instead of crashing."""

    def __init__(self, kind: str, message: str, extra: object = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.extra = extra


def reset_peak_memory() -> None:
    """Start counting this process's peak resident memory afresh (Linux: clear_refs 5 resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_memory_bytes() -> int | None:
    """This process's peak resident memory since `reset_peak_memory` (Linux VmHWM), else its
    resident memory now."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resident_memory_bytes()


def resident_memory_bytes() -> int | None:
    """This process's resident memory, where the OS tells it cheaply."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None


class _UncompiledChatFormatter:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter, which compiles a file's chat templates
    at load. Jinja folds constant expressions while compiling, even in its sandbox, so a template
    like `{{ 3 ** 1000000000 }}` would hang the load. The studio renders templates itself."""

    def __init__(self, **_kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Any:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("the studio renders chat templates itself (app/models/chat_template.py)")

        return refuse


class LoadProgress:
    """The progress of one load, from 0 to 1, sent as ("progress", fraction) messages.

    A load has two parts: llama.cpp reads (or maps) the weights, reporting its own progress through
    its progress callback, then it creates the context, writing the whole KV cache, which has no
    callback and takes most of the time at a large n_ctx (seconds per GB). The second part is
    measured by the growth of this process's private memory against the KV cache's expected size.
    Each part counts for its share of the bytes. A reporter thread sends the fraction at most every
    `PROGRESS_SECONDS`, only when it grew, and never 1.0 before `finish()`."""

    def __init__(self, send: Callable[[tuple], None], weights_bytes: int, context_bytes: int) -> None:
        self._send = send
        total = max(1, weights_bytes + context_bytes)
        self._weights_share = weights_bytes / total
        self._context_bytes = context_bytes
        self._weights = 0.0
        self._context_baseline: int | None = None  # private memory when the weights were done
        self._sent = -1.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._report, name="load progress", daemon=True)

    def start(self) -> "LoadProgress":
        self._thread.start()
        return self

    def weights(self, fraction: float) -> None:
        """llama.cpp's progress of reading the weights (called from its progress callback)."""
        self._weights = min(1.0, max(self._weights, fraction))
        if self._weights >= 1.0 and self._context_baseline is None:
            self._context_baseline = private_memory(os.getpid()) or 0

    def fraction(self) -> float:
        """The load's progress so far, below 1 until `finish()`."""
        done = self._weights_share * self._weights
        baseline = self._context_baseline
        if baseline is not None and self._context_bytes > 0:
            grown = max(0, (private_memory(os.getpid()) or 0) - baseline)
            done += (1 - self._weights_share) * min(1.0, grown / self._context_bytes)
        return min(done, 0.99)

    def _report(self) -> None:
        while not self._done.wait(PROGRESS_SECONDS):
            self._maybe_send(self.fraction())

    def _maybe_send(self, fraction: float) -> None:
        if fraction > self._sent:
            self._sent = fraction
            try:
                self._send(("progress", round(fraction, 4)))
            except (OSError, ValueError):
                self._done.set()  # the studio went away: the main loop notices on its next read

    def finish(self, loaded: bool) -> None:
        """Stop reporting (before anything else is sent); a finished load reports 1.0."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        if loaded:
            self._maybe_send(1.0)


@contextlib.contextmanager
def _weights_progress(llama_cpp: Any, report: Callable[[float], None]) -> Iterator[Any]:
    """Hand llama.cpp a progress callback for the weights. This llama-cpp-python's `Llama` does not
    take one, so the default model parameters it starts from get it while `Llama(...)` runs. Yields
    the C callback: keep it as long as the model (llama.cpp keeps a pointer to it)."""
    low_level = llama_cpp.llama_cpp
    default_params = low_level.llama_model_default_params

    def on_progress(fraction: float, _user_data: Any) -> bool:
        try:
            report(float(fraction))
        except Exception:  # an exception here would abort the load: never let one out
            pass
        return True  # go on loading (Stop all ends the process instead)

    callback = low_level.llama_progress_callback(on_progress)  # kept alive until the load ends

    def with_progress() -> Any:
        params = default_params()
        params.progress_callback = callback
        return params

    low_level.llama_model_default_params = with_progress
    try:
        yield callback
    finally:
        low_level.llama_model_default_params = default_params


@contextlib.contextmanager
def _sequence_slots(llama_cpp: Any) -> Iterator[None]:
    """Contexts made meanwhile get several sequence slots over one unified KV cache (so concurrent
    samples can share a batch, app/models/batched.py); llama-cpp-python has no parameter for it.
    Measured on the 152k benchmark model: single-sequence decoding is as fast as with one slot."""
    low_level = llama_cpp.llama_cpp
    defaults = low_level.llama_context_default_params

    def with_slots() -> Any:
        params = defaults()
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True
        return params

    low_level.llama_context_default_params = with_slots
    try:
        yield
    finally:
        low_level.llama_context_default_params = defaults


def limit_data_memory(limit_bytes: int) -> None:
    """Cap this process's data memory (heap and private mappings; the memory-mapped model file does
    not count) so a runaway allocation fails with MemoryError instead of taking the machine. The
    soft limit only: a later load in a fresh worker sets its own."""
    # Linux only: elsewhere RLIMIT_DATA is not enforced, and an address-space limit would count the
    # mapped model file and every reservation the runtime makes.
    if limit_bytes <= 0 or not sys.platform.startswith("linux"):
        return
    import resource

    which = resource.RLIMIT_DATA
    try:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        resource.setrlimit(which, (limit_bytes, hard))
    except (ValueError, OSError):
        pass


def guard_process(parent_pid: int) -> None:
    """Ignore Ctrl-C (the studio ends the worker) and die with the studio on every OS path."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:
        os._exit(0)  # the studio died before the guard was in place

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    if parent_pid:
        # Also on Linux: a watchdog costs nothing and covers a prctl that failed.
        threading.Thread(target=watch, name="studio watch", daemon=True).start()


class VocabularyWords(Sequence[str]):
    """A model's `vocabulary()`, each text made when read. The pieces the worker decodes text with
    (`ModelSession.pieces`, kept in every mode) give most of them: a token whose piece is not empty
    reads the same with special tokens shown. Only an empty piece (a control token) or a piece that
    is not text on its own asks llama.cpp again."""

    def __init__(self, session: "ModelSession") -> None:
        self._session = session
        self._size = session.llm.n_vocab()

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        token = index % self._size
        piece = self._session.pieces[token]
        if piece:
            try:
                return piece.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return self._session.word(token)


class ModelSession:
    """One loaded model and the operations on it."""

    def __init__(self, path: str, params: LoadParams, memory_limit: int = 0,
                 progress: LoadProgress | None = None) -> None:
        try:
            import llama_cpp
            import llama_cpp.llama_chat_format as chat_format
        except ImportError as exc:
            raise _Failure("load", INSTALL_HINT) from exc
        chat_format.Jinja2ChatFormatter = _UncompiledChatFormatter  # type: ignore[assignment,misc]
        limit_data_memory(memory_limit)
        self._lib = llama_cpp
        threads = params.n_threads or os.cpu_count() or 1
        report: Callable[[float], None] = progress.weights if progress else (lambda _fraction: None)
        started = time.perf_counter()
        try:
            with _weights_progress(llama_cpp, report) as callback, _sequence_slots(llama_cpp):
                # Never logits_all: it costs n_ctx x n_vocab floats. The last row is read from the
                # context when our own sampler needs it.
                self.llm = llama_cpp.Llama(
                    model_path=path,
                    n_ctx=params.n_ctx,
                    n_batch=params.n_batch,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=params.n_gpu_layers,
                    seed=params.seed if params.seed != SEED_RANDOM else random.randrange(2**32),
                    logits_all=False,
                    verbose=True,  # goes to the worker log: the parent shows its tail on failures
                )
        except MemoryError:
            raise _Failure("load", f"{os.path.basename(path)} needs more memory than the studio estimated "
                                   f"({memory_limit / 2**30:.2f} GB allowed): lower n_ctx") from None
        except Exception as exc:  # llama-cpp-python raises ValueError for files llama.cpp refuses
            raise _Failure("load", f"llama.cpp could not load {os.path.basename(path)}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        self._progress_callback = callback
        self.path = path
        self.params = params
        self.vocab = self.llm._model.vocab
        self._pieces: list[bytes] | None = None
        self._words: VocabularyWords | None = None
        self.reused_tokens = 0
        self.attention_note = ""
        self._attention: AttentionReader | None = None

    def describe(self) -> LoadedModel:
        meta = self.llm.metadata
        return LoadedModel(
            path=self.path,
            load=self.params,
            n_ctx=self.llm.n_ctx(),
            n_vocab=self.llm.n_vocab(),
            n_ctx_train=self.llm._model.n_ctx_train(),
            chat_template=meta.get("tokenizer.chat_template"),
            load_seconds=self.load_seconds,
            memory_bytes=resident_memory_bytes(),
        )

    @property
    def pieces(self) -> list[bytes]:
        """Every token's bytes as generated text (special tokens empty), computed once per model."""
        if self._pieces is None:
            self._pieces = [self._piece(t, special=False) for t in range(self.llm.n_vocab())]
        return self._pieces

    def _piece(self, token: int, special: bool) -> bytes:
        size = 64
        while True:
            buffer = self._lib.ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(self.vocab, token, buffer, size, 0, special)
            if n >= 0:
                return buffer.raw[:n]
            size = -n  # buffer too small: llama.cpp returns the needed size, negated

    @property
    def vocabulary_words(self) -> "VocabularyWords":
        """`vocabulary()` as a sequence whose items are made when read (learning mode reads a hundred
        candidates a token; a list of a 262k vocabulary's strings would cost the worker ~25 MB)."""
        if self._words is None:
            self._words = VocabularyWords(self)
        return self._words

    def word(self, token: int) -> str:
        """One token's text with special tokens shown (see `vocabulary`)."""
        try:
            return self._piece(token, special=True).decode("utf-8")
        except UnicodeDecodeError:
            return self.llm._model.token_get_text(token)

    def vocabulary(self) -> list[str]:
        """Every token's text with special tokens shown, indexed by id. A piece that is not text on
        its own (a lone byte of a multi-byte character) is shown by its vocabulary name, e.g. <0xE2>."""
        return [self.word(token) for token in range(self.llm.n_vocab())]

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)

    def detokenize(self, tokens: list[int]) -> str:
        """The text of `tokens` (special tokens as their text); ids outside the vocabulary are
        refused here, before llama.cpp reads past its tables."""
        n_vocab = self.llm.n_vocab()
        outside = [t for t in tokens if not isinstance(t, int) or not 0 <= t < n_vocab]
        if outside:
            raise GenerationError(f"token id {outside[0]!r} is outside the vocabulary (0 to {n_vocab - 1})")
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def _prompt_tokens(self, request: GenerationRequest) -> tuple[list[int], str, str]:
        """The prompt's tokens, the exact text they come from, and the prompt format used."""
        if request.prompt is not None:
            return self.tokenize(request.prompt), request.prompt, prompt_format.RAW
        if request.prompt_tokens:
            tokens = list(request.prompt_tokens)
            return tokens, self.detokenize(tokens), prompt_format.RAW
        own = self.llm.metadata.get("tokenizer.chat_template")
        chosen = prompt_format.check_format(request.template)
        if chosen == prompt_format.AUTO:
            chosen = prompt_format.MODEL if own else prompt_format.RAW
        if chosen == prompt_format.RAW:
            text = prompt_format.raw_completion(request.messages)
            return self.tokenize(text, add_special=True), text, chosen
        if chosen == prompt_format.MODEL:
            if not own:
                raise _Failure("generate", "this model's file has no chat template of its own: choose raw "
                                           "completion or one of llama.cpp's templates (e.g. chatml)")
            bos_id, eos_id = self.llm.token_bos(), self.llm.token_eos()
            rendered = render_chat(
                request.messages, own,
                bos_token=self._piece(bos_id, special=True).decode("utf-8", "replace") if bos_id >= 0 else "",
                eos_token=self._piece(eos_id, special=True).decode("utf-8", "replace") if eos_id >= 0 else "",
            )
            return self.tokenize(rendered.text, add_special=rendered.add_bos), rendered.text, chosen
        text = self._builtin_template(chosen, request.messages)
        bos_id = self.llm.token_bos()
        bos = self._piece(bos_id, special=True).decode("utf-8", "replace") if bos_id >= 0 else ""
        return self.tokenize(text, add_special=not (bos and text.startswith(bos))), text, chosen

    def _builtin_template(self, name: str, messages: Sequence[ChatMessage]) -> str:
        """`messages` in llama.cpp's built-in template `name`, applied by llama.cpp itself."""
        lib = self._lib
        chat = (lib.llama_chat_message * len(messages))()
        keep = []  # the encoded strings must live until llama.cpp has read them
        for slot, message in zip(chat, messages, strict=True):
            role, content = message.role.encode("utf-8"), message.content.encode("utf-8")
            keep += [role, content]
            slot.role, slot.content = role, content
        size = max(1024, 2 * sum(len(m.content) + 32 for m in messages))
        for _attempt in range(2):
            buffer = lib.ctypes.create_string_buffer(size)
            written = lib.llama_chat_apply_template(name.encode(), chat, len(messages), True, buffer, size)
            if written < 0:
                raise _Failure("generate", f"llama.cpp cannot apply its template {name!r} to these messages")
            if written <= size:
                return buffer.raw[:written].decode("utf-8", "replace")
            size = written + 1
        raise _Failure("generate", f"llama.cpp's template {name!r} wrote more than it said it would")

    def _gbnf(self, request: GenerationRequest) -> str:
        """The request's grammar as GBNF (a JSON schema converted), once llama.cpp's parser has
        accepted it; a "grammar" _Failure when it cannot be used."""
        gbnf = request.grammar
        if request.json_schema:
            from app.core.constraints import json_schema_grammar, read_schema
            from app.core.errors import GrammarError

            try:
                gbnf = json_schema_grammar(read_schema(request.json_schema))
            except GrammarError as exc:
                raise _Failure("grammar", str(exc)) from exc
        # LlamaGrammar parses nothing: a grammar llama.cpp cannot parse would crash the sampler it is
        # given to. llama.cpp's own parser is asked first (it gives no sampler for a bad grammar).
        probe = self._lib.llama_sampler_init_grammar(self.vocab, gbnf.encode("utf-8"), b"root")
        if not probe:
            raise _Failure("grammar", "the grammar could not be parsed (llama.cpp's parser refused it; "
                                      "the worker log says where)")
        self._lib.llama_sampler_free(probe)
        return gbnf

    def _native_tokens(self, prompt: list[int], params: SamplingParams, seed: int) -> Iterator[int]:
        """llama.cpp's own samplers (with its prompt-prefix cache)."""
        self.llm.set_seed(seed)
        self.llm.last_n_tokens_size = params.repeat_last_n
        return self.llm.generate(
            prompt,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            typical_p=params.typical_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            mirostat_mode=params.mirostat,
            mirostat_tau=params.mirostat_tau,
            mirostat_eta=params.mirostat_eta,
            reset=True,
        )

    def _evaluate_reusing_prefix(self, prompt: list[int]) -> int:
        """Evaluate `prompt`, keeping the cached tokens it starts with (a program's contexts share
        long prefixes); returns how many prompt tokens were reused. At least the last token is
        evaluated, so its logits are fresh."""
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens]
        reused = 0
        for old, new in zip(cached, prompt[:-1], strict=False):
            if old != new:
                break
            reused += 1
        llm.n_tokens = reused  # eval() drops the cache past n_tokens before it decodes
        llm.eval(prompt[reused:])
        return reused

    def _pipeline_tokens(
        self, prompt: list[int], params: SamplingParams, seed: int, learning_top: int = 0,
        forced: tuple[int, ...] = (), allowed: tuple[int, ...] = (), disallowed: tuple[int, ...] = (),
        gbnf: str = "",
    ) -> Generator[tuple[int, TokenChoice | None, None], None, None]:
        """The studio's own sampler pipeline over the last position's logits, read as a view of
        llama.cpp's buffer (no logits_all, no copy unless tokens are masked). In learning mode each
        pick is described; masked tokens show as impossible (probability 0). Under a grammar
        (`gbnf`), each step draws from the tokens it allows, and learning mode shows that as the
        "constraint" stage (app/models/grammar_mask.py)."""
        llm = self.llm
        self.reused_tokens = self._evaluate_reusing_prefix(prompt)
        pipeline = SamplerPipeline(params, seed)
        n_vocab = llm.n_vocab()
        words: Sequence[str] = self.vocabulary_words if learning_top else []
        generated: list[int] = []
        allowed_ids = np.array(sorted(set(allowed)), dtype=np.int64)
        disallowed_ids = np.array(sorted(set(disallowed)), dtype=np.int64)
        mask = GrammarMask(self._lib, self.vocab, gbnf, n_vocab) if gbnf else None
        try:
            while True:
                logits = masked_logits(np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,)),
                                       allowed_ids, disallowed_ids)
                if mask is None:
                    pick = pipeline.pick(logits, generated, record=bool(learning_top), candidates=learning_top)
                else:
                    try:
                        pick = constrained_pick(pipeline, mask, logits, generated, learning_top)
                    except NoTokenAllowed as exc:
                        raise _Failure("grammar", str(exc)) from exc
                if len(generated) < len(forced):
                    # Branching: this position's token is given; its real distribution is still shown.
                    pick = dataclasses.replace(pick, token_id=forced[len(generated)])
                    if mask is not None and not mask.allows(pick.token_id):  # llama.cpp would abort on accepting it
                        raise _Failure("grammar", f"token {pick.token_id} at position {len(generated)} is not "
                                                  "allowed by the constraint")
                choice = None
                if learning_top:
                    shown = len(pick.top) if mask is not None and pick.top is not None else learning_top
                    choice = describe_pick(logits, pick, words, len(generated), shown)
                    if mask is not None:  # the rank is by raw logit over the whole vocabulary
                        rank = int(np.count_nonzero(logits > logits[pick.token_id])) + 1
                        choice = dataclasses.replace(choice, chosen_rank=rank)
                yield pick.token_id, choice, None
                generated.append(pick.token_id)
                if mask is not None:
                    mask.accept(pick.token_id)
                llm.eval([pick.token_id])
        finally:
            if mask is not None:
                mask.close()

    def _attention_reader(self) -> AttentionReader:
        if self.params.n_gpu_layers:
            raise AttentionUnavailable("attention not available with GPU offload (n_gpu_layers > 0): the "
                                       "weights llama.cpp computes stay on the GPU")
        if self._attention is None:
            from llama_cpp import _internals

            meta = self.llm.metadata
            architecture = meta.get("general.architecture", "this architecture")
            heads = int(meta.get(f"{architecture}.attention.head_count", 0) or 0)
            self._attention = AttentionReader(self._lib, _internals, self.llm, architecture, heads)
        return self._attention

    def _attention_tokens(
        self, prompt: list[int], params: SamplingParams, seed: int, learning_top: int,
        allowed: tuple[int, ...], disallowed: tuple[int, ...],
    ) -> Generator[tuple[int, TokenChoice | None, tuple[float, ...] | None], None, None]:
        """As `_pipeline_tokens`, each token with its attention over the context, decoded in the
        attention reader's own context. Where attention cannot be read, `attention_note` says why
        and the ordinary pipeline generates instead."""
        try:
            steps = self._attention_reader().steps(prompt)
            logits, attention = next(steps)
        except AttentionUnavailable as exc:
            self.attention_note = str(exc)
            yield from self._pipeline_tokens(prompt, params, seed, learning_top, (), allowed, disallowed)
            return
        pipeline = SamplerPipeline(params, seed)
        words: Sequence[str] = self.vocabulary_words if learning_top else []
        allowed_ids = np.array(sorted(set(allowed)), dtype=np.int64)
        disallowed_ids = np.array(sorted(set(disallowed)), dtype=np.int64)
        generated: list[int] = []
        while True:
            masked = masked_logits(logits, allowed_ids, disallowed_ids)
            pick = pipeline.pick(masked, generated, record=bool(learning_top), candidates=learning_top)
            choice = describe_pick(masked, pick, words, len(generated), learning_top) if learning_top else None
            yield pick.token_id, choice, attention
            generated.append(pick.token_id)
            logits, attention = steps.send(pick.token_id)

    def generate(self, request: GenerationRequest, conn: FramedPipe, stop: StopFlag) -> GenerationResult:
        """Stream tokens to `conn` (see the module docstring) and return the result."""
        params = request.params
        started = time.perf_counter()
        cpu_started = time.process_time()
        reset_peak_memory()
        prompt, prompt_text, used_format = self._prompt_tokens(request)
        n_ctx = self.llm.n_ctx()
        if len(prompt) >= n_ctx:
            raise _Failure("context", f"prompt has {len(prompt)} tokens, context is {n_ctx}", (len(prompt), n_ctx))
        seed = params.seed if params.seed != SEED_RANDOM else random.randrange(2**32)
        if request.fresh_context:
            self.llm.reset()
            self.llm.input_ids[:] = -1  # so no cached prompt prefix matches
        room = n_ctx - len(prompt)
        limit = min(params.max_tokens, room) if params.max_tokens else room
        # llama-cpp-python ignores tfs_z and has no XTC, top-n-sigma, DRY or sampler order: when one
        # of them would change the draw, the studio's pipeline (which implements them) samples.
        # Learning mode always samples with the pipeline: the pick is drawn from the distribution shown.
        # Token masks are applied by the pipeline too (one place that shows them in learning mode).
        # A grammar is applied by the pipeline too: llama-cpp-python's sampler checks every token of
        # the vocabulary against it at every step (a quarter of the speed at 152k tokens), where the
        # pipeline checks only the token drawn, as llama.cpp's own sampler does (grammar_mask.py).
        gbnf = self._gbnf(request) if request.grammar or request.json_schema else ""
        use_pipeline = (request.learning_top > 0 or bool(request.forced_tokens) or params.needs_pipeline
                        or bool(request.allowed_tokens) or bool(request.disallowed_tokens) or bool(gbnf))
        n_vocab = self.llm.n_vocab()
        outside = [t for t in request.allowed_tokens + request.disallowed_tokens if not 0 <= t < n_vocab]
        if outside:
            raise _Failure("generate", f"token id {outside[0]} is outside the vocabulary (0 to {n_vocab - 1})")
        self.reused_tokens = 0
        self.attention_note = ""
        source: Generator[tuple[int, TokenChoice | None, tuple[float, ...] | None], None, None]
        if request.attention:
            if gbnf or request.forced_tokens:
                raise _Failure("generate", "attention cannot be read with a grammar or forced tokens")
            source = self._attention_tokens(prompt, params, seed, max(request.learning_top, 0),
                                            request.allowed_tokens, request.disallowed_tokens)
        elif use_pipeline:
            source = self._pipeline_tokens(prompt, params, seed, request.learning_top, request.forced_tokens,
                                           request.allowed_tokens, request.disallowed_tokens, gbnf)
        else:
            source = ((token, None, None) for token in self._native_tokens(prompt, params, seed))

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopStringScanner(params.stop)
        pieces = self.pieces
        generated: list[int] = []
        text_parts: list[str] = []
        batch: list[tuple[int, str, TokenChoice | None, tuple[float, ...] | None]] = []
        first_token_at: float | None = None
        awaiting_ack = False
        last_send = 0.0

        def send_batch() -> None:
            nonlocal awaiting_ack, last_send
            if awaiting_ack and conn.recv()[0] != "ack":
                raise _Failure("protocol", "the studio sent an unexpected message during generation")
            conn.send(("toks", list(batch)))
            batch.clear()
            awaiting_ack = True
            last_send = time.perf_counter()

        steps_used = stop.steps_granted()  # steps granted before this generation do not count

        def wait_for_step() -> bool:
            """Stepping: hold the next token back; False when a stop came while waiting."""
            nonlocal steps_used
            if request.stepping == "delay" and request.step_delay > 0:
                deadline = time.monotonic() + request.step_delay
                while time.monotonic() < deadline:
                    if stop.is_set():
                        return False
                    time.sleep(min(0.02, request.step_delay))
            elif request.stepping == "manual":
                while stop.steps_granted() <= steps_used:
                    if stop.is_set():
                        return False
                    time.sleep(0.01)
                steps_used += 1
            return True

        stepping = request.stepping in ("delay", "manual")
        stop_tokens = frozenset(request.stop_tokens)
        # Every answer's mean entropy is measured: the metrics show it and {escalate_entropy=…} gates
        # on it. One pass over a 152k vocabulary costs 135-200 µs per token (about 0.7% of decode
        # speed, within bench/throughput.py's noise). The attention path samples in a context of its
        # own, whose logits are not this one's.
        entropy = EntropyMeter() if not request.attention else None
        get_logits = self.llm._ctx.get_logits_ith

        # Reaching `limit` means the token limit, unless the context ran out first.
        reason: StopReason = "max_tokens" if params.max_tokens and limit == params.max_tokens else "context_full"
        tokens: Iterator[tuple[int, TokenChoice | None, tuple[float, ...] | None]] = source
        if stepping and not wait_for_step():
            tokens = iter(())  # stopped before the first token
            reason = "stopped"
        for token, choice, attention in tokens:
            if first_token_at is None:
                first_token_at = time.perf_counter()
            if entropy is not None:  # the distribution this token was drawn from, before sampling
                entropy.add(np.ctypeslib.as_array(get_logits(-1), shape=(n_vocab,)))
            if self._lib.llama_vocab_is_eog(self.vocab, token):
                reason = "eos"
                break
            if token in stop_tokens:
                reason = "stop_token"
                break
            if stop.is_set():
                reason = "stopped"
                break
            text = scanner.feed(decoder.decode(pieces[token]))
            generated.append(token)
            text_parts.append(text)
            batch.append((token, text, choice, attention))
            if stepping or time.perf_counter() - last_send >= FLUSH_SECONDS:
                send_batch()  # when stepping, every token is shown as soon as it exists
            if scanner.stopped:
                reason = "stop_string"
                break
            if len(generated) >= limit:
                break
            if stepping and not wait_for_step():
                reason = "stopped"
                break
        source.close()
        if batch:
            send_batch()
        tail = scanner.feed(decoder.decode(b"", final=True)) + scanner.flush()
        finished = time.perf_counter()
        return GenerationResult(
            text="".join(text_parts) + tail,
            token_ids=tuple(generated),
            prompt_tokens=len(prompt),
            stop_reason=reason,
            seconds=finished - started,
            prompt_seconds=(first_token_at or finished) - started,
            seed=seed,
            prompt_text=prompt_text,
            prompt_format=used_format,
            reused_tokens=self.reused_tokens,
            attention_note=self.attention_note,
            peak_rss_bytes=peak_memory_bytes(),
            cpu_seconds=time.process_time() - cpu_started,
            entropy_mean=entropy.mean if entropy is not None else None,
        )


def _generate_many(session: "ModelSession", requests: list[GenerationRequest], conn: FramedPipe,
                   stop: StopFlag) -> list[GenerationResult | None]:
    """Several requests decoded together (app/models/batched.py), their tokens streamed as
    ("toks_many", [(index, token_id, text, choice), ...]); each batch waits for the previous one's
    ("ack", indices no longer wanted)."""
    if not all(batchable(request) for request in requests):
        raise _Failure("generate", "only prompt-token requests sampled by the studio's pipeline can share a batch")
    n_vocab = session.llm.n_vocab()
    for request in requests:
        outside = [t for t in request.prompt_tokens + request.allowed_tokens + request.disallowed_tokens
                   if not 0 <= t < n_vocab]
        if outside:
            raise _Failure("generate", f"token id {outside[0]} is outside the vocabulary (0 to {n_vocab - 1})")
    unwanted: set[int] = set()
    awaiting_ack = False

    def send(items: list[tuple[int, int, str, TokenChoice | None]]) -> set[int]:
        nonlocal awaiting_ack
        if awaiting_ack:
            reply = conn.recv()
            if reply[0] != "ack":
                raise _Failure("protocol", "the studio sent an unexpected message during generation")
            unwanted.update(reply[1] if len(reply) > 1 else ())
        conn.send(("toks_many", items))
        awaiting_ack = True
        return unwanted

    return BatchedGeneration(session, requests).run(send, stop.is_set)


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _serve(conn: FramedPipe, stop: StopFlag) -> None:
    session: ModelSession | None = None

    def need_session() -> ModelSession:
        if session is None:
            raise _Failure("state", "no model is loaded")
        return session

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op, args = message[0], message[1:]
        try:
            if op == "exit":
                conn.send(("ok", None))
                return
            if op == "ack":  # a late acknowledgement after a finished generation
                continue
            if op == "load":
                session = None  # drop any previous model before loading the next one
                path, params, memory_limit, context_bytes = args
                progress = LoadProgress(conn.send, _file_size(path), context_bytes).start()
                try:
                    session = ModelSession(path, params, memory_limit, progress)
                finally:
                    progress.finish(loaded=session is not None)
                conn.send(("ok", session.describe()))
            elif op == "generate":
                result = need_session().generate(args[0], conn, stop)
                conn.send(("done", result))
            elif op == "generate_many":
                conn.send(("done_many", _generate_many(need_session(), args[0], conn, stop)))
            elif op == "tokenize":
                conn.send(("ok", need_session().tokenize(*args)))
            elif op == "detokenize":
                conn.send(("ok", need_session().detokenize(*args)))
            elif op == "vocab":
                conn.send(("ok", need_session().vocabulary()))
            elif op == "metadata":
                conn.send(("ok", dict(need_session().llm.metadata)))
            else:
                conn.send(("err", "protocol", f"unknown operation {op!r}", None))
        except _Failure as failure:
            conn.send(("err", failure.kind, str(failure), failure.extra))
        except GenerationError as exc:  # e.g. a chat template that could not be applied
            conn.send(("err", "generate", str(exc), None))
        except Exception as exc:  # report, keep serving: the parent decides what to do
            conn.send(("err", "internal", f"{type(exc).__name__}: {exc}", None))


def main(argv: list[str]) -> int:
    """Entry point of the worker process: `python -m app.models.worker STOP_FLAG_FILE [PARENT_PID]`."""
    if len(argv) not in (1, 2) or (len(argv) == 2 and not argv[1].isdigit()):
        print("usage: python -m app.models.worker STOP_FLAG_FILE [PARENT_PID]", file=sys.stderr)
        return 2
    guard_process(int(argv[1]) if len(argv) == 2 else 0)
    # Keep stdout for the protocol only: anything else printed there (by Python or by llama.cpp)
    # is sent to stderr, i.e. the log file.
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    link = FramedPipe(sys.stdin.buffer, protocol_out)
    stop = StopFlag(argv[0])
    try:
        _serve(link, stop)
    except (BrokenPipeError, OSError):
        pass  # the studio has gone away
    finally:
        stop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
