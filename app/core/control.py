"""Stop buttons for a running chain, usable from any thread."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.runner import ChainRunner


class RunControl:
    """Stop the current answer (the run goes on) or the whole run. Several runners share one
    backend (one per browser tab): a stop reaches the backend only while this runner's own answer
    is being generated."""

    def __init__(self, runner: "ChainRunner") -> None:
        self._runner = runner
        self._stop_all = threading.Event()
        self._stop_code = threading.Event()
        self._stop_download = threading.Event()

    @property
    def stop_all_requested(self) -> bool:
        return self._stop_all.is_set()

    def code_should_stop(self) -> bool:
        """Polled by the code runner while an answer's code runs: Stop/Next or Stop all ends it."""
        return self._stop_code.is_set() or self._stop_all.is_set()

    def code_started(self) -> None:
        self._stop_code.clear()

    def download_should_stop(self) -> bool:
        """Polled while a model downloads: Stop/Next (skip this model) or Stop all ends the wait."""
        return self._stop_download.is_set() or self._stop_all.is_set()

    def download_started(self) -> None:
        self._stop_download.clear()

    def step(self) -> None:
        """With manual stepping: one more token of this runner's answer."""
        if self._runner.generating:
            self._runner.step_answer()

    def stop_current(self) -> None:
        """End the answer being generated (or its code running, or the download of its model); the
        chain goes on with the next item or model."""
        if getattr(self._runner, "running_code", False):
            self._stop_code.set()
        if getattr(self._runner, "downloading", False):
            self._stop_download.set()
        if self._runner.generating:
            self._runner.stop_answer()

    def stop_all(self) -> None:
        """End the run; the answer being generated stops where it is, a download within a second
        (its bytes are kept for next time)."""
        self._stop_all.set()
        remote = self._runner.stop_remote()  # answers on engines: the one shown and those sent ahead
        if (self._runner.generating and not remote) or self._runner.loading:
            self._runner.backend.stop_all()  # also ends a load in progress

    def reset(self) -> None:
        """Ready for a new run."""
        self._stop_all.clear()
