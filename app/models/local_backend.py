"""`LocalBackend`: the `Backend` protocol served by llama.cpp in a worker process.

One model in memory at a time. Unloading ends the worker process, so the memory really returns to
the operating system; loading another model ends the old worker first. When the worker dies (an
abort inside llama.cpp, a kill), the caller gets a `WorkerCrashedError` naming the file and the exit
code, and the next load starts a fresh worker.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from app import settings
from app.core.backend import (
    GenerationEvent,
    GenerationRequest,
    GenerationResult,
    LoadedModel,
    TokenEvent,
)
from app.core.errors import (
    ContextOverflowError,
    GenerationError,
    GrammarError,
    ModelFileError,
    ModelLoadError,
    WorkerCrashedError,
)
from app.core.sampling import LoadParams
from app.models.gguf_file import GGUFInfo, inspect_gguf
from app.models.memory import (
    CONTEXT_STEP,
    MemoryEstimate,
    available_memory,
    estimate_memory,
    largest_context,
    private_memory,
)
from app.models.worker_link import FramedPipe, StopFlag
from app.spawn import on_spawner_thread

STOP_ALL_GRACE_SECONDS = 1.0
EXIT_GRACE_SECONDS = 3.0
# A load that takes longer than this is ended (a file on a stalled disk, a bug in llama.cpp): a
# minute plus half a minute per GB of file, since loading reads (or maps) the weights once.
LOAD_SECONDS_BASE = 60.0
LOAD_SECONDS_PER_GB = 30.0
# The worker's data memory may exceed the estimate by this much (or this share of it) before
# allocations fail: estimates are approximate, a runaway (a template building a huge text) is not.
MEMORY_MARGIN_BYTES = 2**30
MEMORY_MARGIN_SHARE = 0.5
_worker_numbers = itertools.count(1)


class _WorkerGone(Exception):
    """The pipe closed: the worker process has ended."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"worker ended (exit code {exit_code})")
        self.exit_code = exit_code


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: FramedPipe
    log_path: Path
    stop: StopFlag


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


_DIAGNOSTIC = re.compile(r"GGML_ASSERT|error|failed|what\(\)|terminate called|exception", re.IGNORECASE)
_BUILD_PATH = re.compile(r"\S*[/\\]([^/\\\s]+:\d+:)")


def crash_diagnosis(path: Path, lines: int = 3) -> str:
    """The lines of a worker log that explain a crash (an assertion, an error), with build paths
    shortened; the last lines when nothing stands out. Debugger backtraces are skipped."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 65536))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [
        _BUILD_PATH.sub(r"\1", line.strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "[Inferior", "[New LWP", "[Thread"))
    ]
    hits = [line for line in kept if _DIAGNOSTIC.search(line)]
    return "\n".join((hits or kept[-lines:])[:lines])


def memory_refusal(info: GGUFInfo, params: LoadParams, needed: MemoryEstimate, available: int,
                   releasable: int = 0) -> str:
    """Why a load is refused for memory: the model, its n_ctx, the estimate and what is available,
    and the largest n_ctx that would fit."""
    gib = 2**30
    trained = " (its trained context, n_ctx 0)" if params.n_ctx == 0 else ""
    freed = f", counting the {releasable / gib:.2f} GB the loaded model would give back" if releasable else ""
    fits = largest_context(info, available, params.n_batch, below=needed.n_ctx)
    if fits:
        advice = (f"n_ctx {fits:,} or less would fit: lower n_ctx (Settings > Model loading, or --set n_ctx=N) "
                  "or close other programs")
    else:
        advice = (f"not even n_ctx {CONTEXT_STEP} would fit: close other programs or choose a smaller model "
                  "(or a smaller quantization)")
    advice += (". To load it regardless, tick \"Load anyway\" (Settings > Model loading; --load-anyway): the "
               "system will then swap to disk and answers become very slow")
    return (f"{info.file_name} at n_ctx {needed.n_ctx:,}{trained} needs about {needed.total / gib:.2f} GB of "
            f"memory (weights {needed.weights / gib:.2f} GB, KV cache {needed.kv_cache / gib:.2f} GB, compute "
            f"{needed.compute / gib:.2f} GB), but only {available / gib:.2f} GB is available{freed}; {advice}")


class LocalBackend:
    """Runs GGUF models with llama.cpp in a child process; safe to share between threads (requests
    are served one at a time; a second caller waits)."""

    def __init__(self, log_dir: Path | None = None, load_timeout: float | None = None) -> None:
        self._lock = threading.Lock()
        self._load_timeout = load_timeout  # None: from the file's size (see LOAD_SECONDS_*)
        self._loading: _Worker | None = None  # the worker while it loads (Stop all / Unload end it)
        self._load_ended_by: str | None = None  # "timeout" or "stop" when the studio ended a load
        self._idle = threading.Event()
        self._idle.set()
        self._worker: _Worker | None = None
        self._loaded: LoadedModel | None = None
        self._loaded_stamp: tuple[int, int] | None = None
        self._vocabulary: list[str] | None = None
        self._killed_by_stop_all = False
        self._log_dir = log_dir
        # The running generation's delivered tokens, and how many had been delivered when a stop
        # was requested: the answer is cut there, so it ends where the person pressed stop.
        self._streamed: list[TokenEvent] = []
        self._stop_at: int | None = None

    # -- worker lifecycle -------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        log_dir = self._log_dir or settings.logs_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = log_dir / f"model-worker-{os.getpid()}-{next(_worker_numbers)}"
        log_path = stem.with_suffix(".log")
        stop = StopFlag(stem.with_suffix(".stop"), create=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with open(log_path, "wb") as log:
            # Started from the spawner thread: the worker's parent-death signal must not fire
            # when the handler thread that loads the model ends (app/spawn.py).
            process: subprocess.Popen[bytes] = on_spawner_thread(
                subprocess.Popen,
                [sys.executable, "-m", "app.models.worker", stop.path, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=settings.PROJECT_ROOT,
            )
        assert process.stdin is not None and process.stdout is not None
        self._worker = _Worker(process, FramedPipe(process.stdout, process.stdin), log_path, stop)
        return self._worker

    def _end_worker(self, keep_log: bool = False) -> None:
        """End the worker (politely, then by force) and forget the loaded model."""
        worker, self._worker = self._worker, None
        self._loaded = None
        self._loaded_stamp = None
        self._vocabulary = None
        if worker is None:
            return
        if worker.process.poll() is None:
            try:
                worker.conn.send(("exit",))
                worker.process.wait(EXIT_GRACE_SECONDS)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                worker.process.kill()
                worker.process.wait(EXIT_GRACE_SECONDS)
        worker.conn.close()
        worker.stop.close(remove=True)
        if not keep_log:
            try:
                os.remove(worker.log_path)
            except OSError:
                pass

    @staticmethod
    def _exit_code(worker: _Worker) -> int | None:
        try:
            return worker.process.wait(EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            return None

    def _recv(self, worker: _Worker) -> tuple:
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            raise _WorkerGone(self._exit_code(worker)) from None

    def _send(self, worker: _Worker, message: tuple) -> None:
        try:
            worker.conn.send(message)
        except (OSError, ValueError):
            raise _WorkerGone(self._exit_code(worker)) from None

    def _crashed(self, worker: _Worker, gone: _WorkerGone, doing: str) -> WorkerCrashedError:
        tail = crash_diagnosis(worker.log_path)
        name = Path(self._loaded.path).name if self._loaded else "the model"
        if doing.startswith("loading "):
            name = doing.removeprefix("loading ")
            message = f"model crashed while loading {name} (exit code {gone.exit_code})"
        else:
            message = f"model crashed while {doing} {name} (exit code {gone.exit_code})"
        self._end_worker(keep_log=True)  # the log stays in the logs folder for a bug report
        return WorkerCrashedError(message, gone.exit_code, tail)

    @staticmethod
    def _raise_reported(message: tuple) -> None:
        _, kind, text, extra = message
        if kind == "load":
            raise ModelLoadError(text)
        if kind == "context":
            raise ContextOverflowError(*extra)
        if kind == "grammar":
            raise GrammarError(text)
        raise GenerationError(text)

    def _request(self, op: str, *args: Any) -> Any:
        """Send one request and return its value (caller holds the lock)."""
        worker = self._worker
        if worker is None or self._loaded is None:
            raise GenerationError("no model is loaded: choose a model first")
        try:
            self._send(worker, (op, *args))
            reply = self._recv(worker)
        except _WorkerGone as gone:
            raise self._crashed(worker, gone, "serving") from None
        if reply[0] == "err":
            self._raise_reported(reply)
        return reply[1]

    # -- Backend protocol ---------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        """The model in memory, if any."""
        return self._loaded

    @property
    def busy(self) -> bool:
        """True while a generation is running."""
        return not self._idle.is_set()

    def load(self, path: str | os.PathLike[str], params: LoadParams | None = None,
             progress: Callable[[float], None] | None = None) -> LoadedModel:
        """Load `path` (checked first, without llama.cpp); a no-op when it is loaded alike.

        A load whose memory estimate (KV cache at its n_ctx included) exceeds the memory available,
        counting what unloading the current model gives back, is refused with a ModelLoadError
        before anything is unloaded or started. While llama.cpp loads, `progress` is called on this
        thread with the fraction done (rising, 1.0 last, about ten times a second)."""
        params = params or LoadParams()
        info = inspect_gguf(path)  # raises ModelFileError for anything that is not a usable GGUF
        resolved = info.path
        with self._lock:
            if (
                self._loaded is not None
                and self._loaded.path == resolved
                and dataclasses.replace(self._loaded.load, load_anyway=params.load_anyway) == params
                and self._loaded_stamp == _file_stamp(resolved)
                and self._worker is not None
                and self._worker.process.poll() is None
            ):
                return self._loaded
            needed = estimate_memory(info, params.n_ctx, params.n_batch)
            # Refused before unloading: a load that cannot fit leaves the loaded model in place
            # (unless the person chose "load anyway": then the system swaps).
            if not params.load_anyway:
                self._check_memory(info, params, needed, self._releasable())
            self._end_worker()
            if not params.load_anyway:
                self._check_memory(info, params, needed, 0)  # what unloading really gave back
            limit = needed.total + max(MEMORY_MARGIN_BYTES, int(needed.total * MEMORY_MARGIN_SHARE))
            timeout = self._load_timeout or LOAD_SECONDS_BASE + LOAD_SECONDS_PER_GB * info.file_size / 2**30
            worker = self._start_worker()
            self._loading, self._load_ended_by = worker, None
            watchdog = threading.Timer(timeout, self._end_load, args=(worker, "timeout"))
            watchdog.daemon = True
            watchdog.start()
            try:
                self._send(worker, ("load", resolved, params, limit, needed.kv_cache))
                reply = self._recv(worker)
                while reply[0] == "progress":
                    if progress is not None:
                        progress(reply[1])
                    reply = self._recv(worker)
            except _WorkerGone as gone:
                ended_by = self._load_ended_by
                if ended_by is None:
                    raise self._crashed(worker, gone, f"loading {info.file_name}") from None
                self._end_worker(keep_log=ended_by == "timeout")
                if ended_by == "timeout":
                    raise ModelLoadError(f"loading {info.file_name} took longer than {timeout:.3g} s, so it was "
                                         "ended; the worker log is in the logs folder") from None
                raise ModelLoadError(f"loading {info.file_name} was stopped") from None
            except BaseException:
                self._end_worker()  # e.g. the progress callback raised: the worker is mid-load, out of step
                raise
            finally:
                watchdog.cancel()
                self._loading = None
            if reply[0] == "err":
                self._raise_reported(reply)
            self._loaded = reply[1]
            self._loaded_stamp = _file_stamp(resolved)
            return self._loaded

    def _releasable(self) -> int:
        """The memory that ending the current worker would give back (0 without one)."""
        worker = self._worker
        if worker is None or worker.process.poll() is not None:
            return 0
        return private_memory(worker.process.pid) or 0

    @staticmethod
    def _check_memory(info: GGUFInfo, params: LoadParams, needed: MemoryEstimate, releasable: int) -> None:
        """Refuse a load that cannot fit, before the machine starts swapping or the worker is killed."""
        free = available_memory()
        if free is not None and needed.total > free + releasable:
            raise ModelLoadError(memory_refusal(info, params, needed, free + releasable, releasable))

    def _end_load(self, worker: _Worker, reason: str) -> bool:
        """End a worker that is still loading (its load then fails with a message); False when no
        load is running in it."""
        if self._loading is not worker or worker.process.poll() is not None:
            return False
        self._load_ended_by = reason
        worker.process.kill()
        return True

    @property
    def loading(self) -> bool:
        """True while a model is being loaded."""
        return self._loading is not None

    def unload(self) -> None:
        """End the worker process: the model's memory returns to the operating system. A load in
        progress is ended first, so Unload always answers."""
        loading = self._loading
        if loading is not None:
            self._end_load(loading, "stop")
        with self._lock:
            self._end_worker()

    def close(self) -> None:
        """Release everything (same as unload); call on shutdown."""
        self.unload()

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of `text` in the loaded model's vocabulary."""
        with self._lock:
            return self._request("tokenize", text, add_special)

    def detokenize(self, tokens: list[int]) -> str:
        """The text of `tokens` in the loaded model's vocabulary (GenerationError for an id outside it)."""
        with self._lock:
            return self._request("detokenize", list(tokens))

    def vocabulary(self) -> list[str]:
        """Every token's text by id (cached per loaded model)."""
        with self._lock:
            if self._vocabulary is None:
                self._vocabulary = self._request("vocab")
            return self._vocabulary

    def metadata(self) -> dict[str, str]:
        """The loaded model's GGUF metadata as llama.cpp reports it."""
        with self._lock:
            return self._request("metadata")

    def step(self) -> None:
        """With manual stepping: let the running generation produce one more token."""
        worker = self._worker
        if worker is not None and not self._idle.is_set():
            worker.stop.grant_step()

    def stop_current(self) -> None:
        """End the running generation: the answer keeps the tokens delivered so far."""
        worker = self._worker
        if worker is not None and not self._idle.is_set():
            if self._stop_at is None:
                self._stop_at = len(self._streamed)
            worker.stop.set()

    def stop_all(self) -> None:
        """Stop the running generation (or load); kill the worker if it has not stopped within a second."""
        loading = self._loading
        if loading is not None and self._end_load(loading, "stop"):
            return
        self.stop_current()
        if self._idle.wait(STOP_ALL_GRACE_SECONDS):
            return
        worker = self._worker
        if worker is not None and worker.process.poll() is None:
            self._killed_by_stop_all = True
            worker.process.kill()

    def generate(self, request: GenerationRequest) -> Iterator[GenerationEvent]:
        """Stream `TokenEvent`s, then one `GenerationResult`.

        The concatenated token texts equal the result's text, except for text held back at the very
        end (the start of a stop string that never completed, or a cut multi-byte character): the
        result's text is the complete answer."""
        with self._lock:
            self._idle.clear()
            try:
                yield from self._stream(request)
            finally:
                self._idle.set()

    def generate_many(self, requests: Sequence[GenerationRequest],
                      unwanted: Callable[[], set[int]] = set) -> Iterator[tuple[int, GenerationEvent | None]]:
        """Several requests decoded together in one llama.cpp batch (app/models/batched.py): yields
        (request index, TokenEvent) as tokens come, then (index, GenerationResult), or (index,
        None) for a request that did not fit in this batch (run it again). `unwanted()` names the
        requests whose answers are no longer wanted (their generation ends at the next batch)."""
        with self._lock:
            self._idle.clear()
            try:
                yield from self._stream_many(list(requests), unwanted)
            finally:
                self._idle.set()

    def _stream_many(self, requests: list[GenerationRequest],
                     unwanted: Callable[[], set[int]]) -> Iterator[tuple[int, GenerationEvent | None]]:
        self._check_model_file()
        worker = self._worker
        assert worker is not None
        worker.stop.clear()
        self._killed_by_stop_all = False
        awaiting_ack = finished = False
        try:
            self._send(worker, ("generate_many", requests))
            while True:
                reply = self._recv(worker)
                if reply[0] == "toks_many":
                    awaiting_ack = True
                    for index, token_id, text, choice in reply[1]:
                        yield index, TokenEvent(token_id, text, choice)
                    self._send(worker, ("ack", frozenset(unwanted())))
                    awaiting_ack = False
                elif reply[0] == "done_many":
                    finished = True
                    for index, result in enumerate(reply[1]):
                        yield index, result
                    return
                else:
                    finished = True
                    self._raise_reported(reply)
        except _WorkerGone as gone:
            finished = True
            if self._killed_by_stop_all:
                self._end_worker()
                raise GenerationError("stopped: Stop all ended the model worker") from None
            raise self._crashed(worker, gone, "generating with") from None
        finally:
            if not finished:
                self._abandon(worker, awaiting_ack)

    def _check_model_file(self) -> None:
        loaded = self._loaded
        if loaded is None or self._worker is None:
            raise GenerationError("no model is loaded: choose a model first")
        if _file_stamp(loaded.path) != self._loaded_stamp:
            self._end_worker()
            raise ModelFileError(
                loaded.path, "the file was changed or deleted after it was loaded; load it again"
            )

    def _stream(self, request: GenerationRequest) -> Iterator[GenerationEvent]:
        self._check_model_file()
        worker = self._worker
        assert worker is not None
        worker.stop.clear()
        self._killed_by_stop_all = False
        self._stop_at = None
        streamed: list[TokenEvent] = []
        self._streamed = streamed
        awaiting_ack = finished = False
        try:
            self._send(worker, ("generate", request))
            while True:
                reply = self._recv(worker)
                if reply[0] == "toks":
                    awaiting_ack = True
                    for token_id, text, choice, attention in reply[1]:
                        if self._stop_at is not None and len(streamed) >= self._stop_at:
                            break  # generated after the stop request: not part of the answer
                        event = TokenEvent(token_id, text, choice, attention)
                        streamed.append(event)
                        yield event
                    self._send(worker, ("ack",))
                    awaiting_ack = False
                elif reply[0] == "done":
                    finished = True
                    yield self._cut_at_stop(reply[1], streamed)
                    return
                else:
                    finished = True
                    self._raise_reported(reply)
        except _WorkerGone as gone:
            finished = True
            if self._killed_by_stop_all:
                self._end_worker()
                yield GenerationResult(
                    text="".join(e.text for e in streamed),
                    token_ids=tuple(e.token_id for e in streamed),
                    prompt_tokens=0,
                    stop_reason="stopped",
                    seconds=0.0,
                    prompt_seconds=0.0,
                    seed=request.params.seed,
                )
                return
            raise self._crashed(worker, gone, "generating with") from None
        finally:
            if not finished:
                self._abandon(worker, awaiting_ack)

    def _cut_at_stop(self, result: GenerationResult, streamed: list[TokenEvent]) -> GenerationResult:
        """The worker may have generated a token or a batch beyond the stop request; the answer
        ends where the request was made."""
        stop_at = self._stop_at
        if stop_at is None or result.generated_tokens <= stop_at:
            return result
        kept = streamed[:stop_at]
        return dataclasses.replace(
            result,
            text="".join(e.text for e in kept),
            token_ids=tuple(e.token_id for e in kept),
            stop_reason="stopped",
        )

    def _abandon(self, worker: _Worker, awaiting_ack: bool) -> None:
        """The consumer stopped reading mid-generation: stop the worker and drain the pipe so the
        next request starts in step."""
        worker.stop.set()
        try:
            if awaiting_ack:
                self._send(worker, ("ack",))
            while True:
                reply = self._recv(worker)
                if reply[0] in ("toks", "toks_many"):
                    self._send(worker, ("ack",))
                else:
                    return
        except _WorkerGone:
            self._end_worker()

