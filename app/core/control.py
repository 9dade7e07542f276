"""Stop buttons for a running chain, usable from any thread."""

from __future__ import annotations

import threading

from app.core.backend import Backend


class RunControl:
    """Stop the current answer (the run goes on) or the whole run."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._stop_all = threading.Event()

    @property
    def stop_all_requested(self) -> bool:
        return self._stop_all.is_set()

    def stop_current(self) -> None:
        """End the answer being generated; the chain goes on with the next item or model."""
        self._backend.stop_current()

    def stop_all(self) -> None:
        """End the run after the answer being generated (stopped where it is)."""
        self._stop_all.set()
        self._backend.stop_all()

    def reset(self) -> None:
        """Ready for a new run."""
        self._stop_all.clear()
