"""The long-lived objects one studio process shares between its front ends (UI, CLI)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.core.backend import Backend
from app.core.runner import ChainRunner
from app.models.hub import HubDownloader
from app.models.local_backend import LocalBackend
from app.models.model_folder import list_model_files, prepare_models_folder
from app.store.journal import Journal


@dataclass
class Services:
    """What handlers need: the model backend, the journal, the models folder, and one chain runner
    per browser tab (its stop buttons reach only its own run)."""

    models_dir: Path
    backend: Backend = field(default_factory=LocalBackend)
    journal: Journal = field(default_factory=Journal)
    # One run at a time uses the single model; a tab that waits for it says so.
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    _runners: dict[str, ChainRunner] = field(default_factory=dict)
    _closed_sessions: set[str] = field(default_factory=set)
    _downloaders: dict[str, HubDownloader] = field(default_factory=dict)

    def downloader(self, folder: Path | None = None) -> HubDownloader:
        """The downloader of a models folder, shared by every tab (one download per file)."""
        key = str((folder or self.models_dir).resolve())
        if key not in self._downloaders:
            self._downloaders[key] = HubDownloader(Path(key))
        return self._downloaders[key]

    def model_files(self, folder: Path | None = None) -> list[Path]:
        """GGUF files in a models folder (demo model first)."""
        return list_model_files(folder or self.models_dir)

    def runner_for(self, session: str) -> ChainRunner:
        """The chain runner of one browser tab."""
        runner = self._runners.get(session)
        if runner is None:
            runner = self._runners[session] = ChainRunner(self.backend, self.journal)
        return runner

    def is_closed(self, session: str) -> bool:
        return session in self._closed_sessions

    def close_session(self, session: str) -> None:
        """A tab went away: stop its run and forget its runner."""
        self._closed_sessions.add(session)
        runner = self._runners.pop(session, None)
        if runner is not None and runner.running:
            runner.control.stop_all()

    def close(self) -> None:
        """Release the model worker and the journal."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self.journal.close()


def start_services(models_dir: Path) -> Services:
    """Services for a studio process, with the demo model present in the models folder."""
    prepare_models_folder(models_dir)
    return Services(models_dir=models_dir)
