"""Domain errors raised by the core and the model layer.

They are turned into user-facing messages at the edges (the CLI prints them, the UI shows them as
notices), so every message must say what happened and, where possible, what to do.

    ChainStudioError
    ├── ModelFileError          a model file is missing or is not a usable GGUF (checked before loading)
    ├── ModelLoadError          llama.cpp refused to load a file that passed the header checks
    ├── WorkerCrashedError      the model worker process died (e.g. an abort inside llama.cpp)
    ├── ContextOverflowError    a prompt does not fit in the context window
    ├── GenerationError         generation failed for another reason reported by the worker
    ├── WorkerBusyError         the single model worker is serving another request
    ├── SettingsError           a parameter is unknown or outside its allowed range
    ├── PromptSyntaxError       a prompt list breaks the prompt-list syntax (names the item)
    ├── LinkError               a model link is refused (not a Hugging Face GGUF link)
    ├── DownloadError           a download failed, was refused, or did not verify
    │   └── DownloadStopped     a download was stopped on request; its bytes are kept for next time
    ├── CodeExecutionError      the code environment (kernel, app, JupyterLab) cannot start or run
    ├── VoiceError              speech in or out cannot work (no engine, model or microphone) or failed
    └── StorageError            the data folder or the journal cannot be created, opened, written or salvaged
"""

from __future__ import annotations


class ChainStudioError(Exception):
    """Base class of every error the studio reports to a person."""


class ModelFileError(ChainStudioError):
    """A model path is missing, unreadable, or not a valid GGUF file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ModelLoadError(ChainStudioError):
    """llama.cpp could not load a model file that passed the header checks."""


class WorkerCrashedError(ChainStudioError):
    """The worker process died; `exit_code` is its exit status (negative: killed by a signal)."""

    def __init__(self, message: str, exit_code: int | None, log_tail: str = "") -> None:
        self.exit_code = exit_code
        self.log_tail = log_tail
        full = message if not log_tail else f"{message}\nlast worker output:\n{log_tail}"
        super().__init__(full)


class ContextOverflowError(ChainStudioError):
    """The prompt has at least as many tokens as the context window holds."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt has {prompt_tokens} tokens, context is {n_ctx}: "
            "raise n_ctx (up to the model's trained context) or shorten the prompt"
        )


class GenerationError(ChainStudioError):
    """Generation failed inside the worker for a reason other than a crash."""


class GrammarError(ChainStudioError):
    """A grammar or JSON schema an answer must follow cannot be used: it does not parse, or the
    sampler that would draw the tokens cannot apply it."""


class WorkerBusyError(ChainStudioError):
    """The model worker is serving another request and the caller chose not to wait."""


class SettingsError(ChainStudioError):
    """A setting name is unknown or its value is outside the allowed range."""


class PromptSyntaxError(ChainStudioError):
    """A prompt list (or library entry) does not follow the prompt-list syntax."""


class LinkError(ChainStudioError):
    """A model link is not a Hugging Face GGUF link (refused before any connection)."""


class DownloadError(ChainStudioError):
    """A download failed, was refused, or gave bytes that do not verify."""


class DownloadStopped(DownloadError):
    """A download was stopped on request (Stop, Stop all, Ctrl-C). The `kept` bytes stay in the
    staging folder, never listed as a model; the next request for the file resumes from them."""

    def __init__(self, message: str, kept: int) -> None:
        self.kept = kept
        super().__init__(message)


class CodeExecutionError(ChainStudioError):
    """The environment for generated code is missing, or a kernel, app or JupyterLab failed to start.
    (Errors *in* the code are results, not exceptions: they come back as a CodeResult.)"""


class VoiceError(ChainStudioError):
    """Speech to text or text to speech cannot work here (no speech engine, no Vosk model, no
    microphone, a missing library) or failed; the message says what is missing and how to add it."""


class StorageError(ChainStudioError):
    """The data folder, the journal in it, or a journal to salvage cannot be used: a read-only
    folder, missing permissions, a file where a folder should be, a full disk, a locked file. Nothing
    is moved or deleted; the message names the path and how to point the studio elsewhere."""


class EngineError(ChainStudioError):
    """A remote OpenAI-compatible engine cannot be used or failed: a refused URL, an unreachable host,
    a TLS failure, a refused key, an unknown model, rate limiting, a server error, a cut or silent
    stream. The message names the engine, never its key."""
