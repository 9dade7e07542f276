"""The long-lived objects one studio process shares between its front ends (UI, CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from app.api.turns import TurnQueue
from app.core.backend import Backend
from app.core.runner import ChainRunner
from app.engines.members import Engines
from app.engines.store import EngineStore
from app.models.capabilities import gpu_offload_supported
from app.models.gguf_file import GGUFInfo, inspect_gguf
from app.models.hub import HubDownloader, HubModelSource
from app.models.local_backend import LocalBackend
from app.models.memory import MemoryEstimate, estimate_memory
from app.models.model_folder import ModelFile, describe_model_file, list_model_files, prepare_models_folder
from app.store.journal import Journal

if TYPE_CHECKING:
    from app.execution.jupyterlab import JupyterLab
    from app.execution.pool import KernelPool


@dataclass
class Services:
    """What handlers need: the model backend, the journal, the models folder, and one chain runner
    per browser tab (its stop buttons reach only its own run)."""

    models_dir: Path
    backend: Backend = field(default_factory=LocalBackend)
    journal: Journal = field(default_factory=Journal)
    # One run or API request at a time uses the single model, in arrival order; a waiter says who has it.
    run_lock: TurnQueue = field(default_factory=TurnQueue)
    local_port: int = 0  # the port the page serves on (programs reach its API on loopback there)
    engines: Engines = field(default_factory=lambda: Engines(EngineStore()))  # remote engines (saved ones)
    _runners: dict[str, ChainRunner] = field(default_factory=dict)
    _closed_sessions: set[str] = field(default_factory=set)
    _downloaders: dict[str, HubDownloader] = field(default_factory=dict)
    _code: "KernelPool | None" = None
    _lab: "JupyterLab | None" = None
    _on_close: list[Callable[[], None]] = field(default_factory=list)
    _on_session_close: list[Callable[[str], None]] = field(default_factory=list)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the studio shuts down (panels release what they started)."""
        self._on_close.append(callback)

    def on_session_close(self, callback: Callable[[str], None]) -> None:
        """Call `callback(session)` when a browser tab goes away."""
        self._on_session_close.append(callback)

    def code(self) -> "KernelPool":
        """The runner of generated code (nothing starts until code execution is used)."""
        if self._code is None:
            from app.execution.pool import KernelPool

            self._code = KernelPool()
        return self._code

    def lab(self) -> "JupyterLab":
        """JupyterLab from venvs/jupyter (started by the "Open JupyterLab" button)."""
        if self._lab is None:
            from app.execution.jupyterlab import JupyterLab

            self._lab = JupyterLab(sdk_environment=self.sdk_environment)
        return self._lab

    def sdk_environment(self) -> dict[str, str]:
        """Where programs and notebooks reach this studio's API, with its token (empty when the page
        does not serve, e.g. in `python -m app chain`)."""
        if not self.local_port:
            return {}
        from app.api.token import api_token
        from app.sdk.connection import TOKEN_ENV, URL_ENV

        return {URL_ENV: f"http://127.0.0.1:{self.local_port}", TOKEN_ENV: api_token()}

    def running_apps(self) -> list:
        """Web apps the code started that still run (none before code execution was used)."""
        return self._code.running_apps() if self._code is not None else []

    def close_python(self) -> int:
        """"Close Python": every kernel, app and JupyterLab the studio started; returns how many."""
        stopped = self._code.close_python() if self._code is not None else 0
        if self._lab is not None and self._lab.running:
            self._lab.stop()
            stopped += 1
        return stopped

    def downloader(self, folder: Path | None = None) -> HubDownloader:
        """The downloader of a models folder, shared by every tab (one download per file)."""
        key = str((folder or self.models_dir).resolve())
        if key not in self._downloaders:
            self._downloaders[key] = HubDownloader(Path(key))
        return self._downloaders[key]

    def model_source(self, folder: str | Path, testing: bool = False) -> HubModelSource:
        """Where a run's model links are downloaded to and verified (`testing`: keep only the newest)."""
        return HubModelSource(self.downloader(Path(folder)), testing=testing)

    def model_header(self, path: str | Path) -> GGUFInfo:
        """What a GGUF file's header says (raises ChainStudioError for a file that is not usable)."""
        return inspect_gguf(path)

    def memory_needed(self, info: GGUFInfo, n_ctx: int) -> MemoryEstimate:
        """How much memory `info`'s model needs with an `n_ctx`-token context."""
        return estimate_memory(info, n_ctx)

    def model_file(self, path: Path) -> ModelFile:
        """A file of a models folder with its header, or the reason it cannot be used."""
        return describe_model_file(path)

    def gpu_offload_supported(self) -> bool:
        """Whether the installed llama.cpp can offload layers to a GPU (asked once)."""
        return gpu_offload_supported()

    def model_files(self, folder: Path | None = None) -> list[Path]:
        """GGUF files in a models folder (demo model first)."""
        return list_model_files(folder or self.models_dir)

    def runner_for(self, session: str) -> ChainRunner:
        """The chain runner of one browser tab."""
        runner = self._runners.get(session)
        if runner is None:
            runner = self._runners[session] = ChainRunner(self.backend, self.journal, _LazyCodeRunner(self),
                                                          engines=self.engines)
        return runner

    def is_closed(self, session: str) -> bool:
        return session in self._closed_sessions

    def close_session(self, session: str) -> None:
        """A tab went away: stop its run and forget its runner."""
        self._closed_sessions.add(session)
        runner = self._runners.pop(session, None)
        if runner is not None and runner.running:
            runner.control.stop_all()
        for callback in self._on_session_close:
            callback(session)

    def close(self) -> None:
        """Release the model worker, the code kernels and apps, and the journal."""
        for callback in self._on_close:
            callback()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self.close_python()
        self.journal.close()


class _LazyCodeRunner:
    """The services' code runner, created when a run first turns code execution on."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def prepare(self, persistent: bool, offline: bool = False) -> None:
        self._services.code().prepare(persistent, offline)

    def run(self, code, timeout, persistent=False, should_stop=None, offline=False):  # noqa: ANN001 - CodeRunner protocol
        return self._services.code().run(code, timeout, persistent, should_stop, offline)


def start_services(models_dir: Path) -> Services:
    """Services for a studio process, with the demo model present in the models folder."""
    prepare_models_folder(models_dir)
    return Services(models_dir=models_dir)
