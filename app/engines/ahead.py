"""Answers sent ahead: the answers of a run that run on remote engines and do not depend on the
answers before them start as soon as their engine has a free slot, while the chain goes on in
plan order. The chain takes each one when its turn comes (its tokens so far are waiting), so the
transcript and the journal keep the plan's order."""

from __future__ import annotations

import functools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable

from app.core.backend import GenerationRequest
from app.engines.backend import EngineAnswer, RemoteEngine


@dataclass(frozen=True)
class AheadEntry:
    """One answer that may be sent ahead: its plan index, engine, model and (made when it starts)
    its request."""

    index: int
    engine: RemoteEngine
    model_id: str
    request: Callable[[], GenerationRequest]


class AnswersAhead:
    """Starts entries per engine, in plan order, up to each engine's concurrency."""

    def __init__(self, entries: list[AheadEntry]) -> None:
        self._pending: dict[str, deque[AheadEntry]] = {}
        for entry in entries:
            self._pending.setdefault(entry.engine.config.name, deque()).append(entry)
        self._running: dict[str, int] = {name: 0 for name in self._pending}
        self._started: dict[int, EngineAnswer] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Send what the engines have room for."""
        with self._lock:
            for name in self._pending:
                self._top_up(name)

    def take(self, index: int) -> EngineAnswer | None:
        """The answer of plan `index` if it was sent ahead (else None: the chain sends it itself, and
        it no longer waits here)."""
        with self._lock:
            started = self._started.pop(index, None)
            if started is None:
                for queue in self._pending.values():
                    for entry in list(queue):
                        if entry.index == index:
                            queue.remove(entry)
            return started

    def drop(self, indexes: set[int]) -> None:
        """Forget answers the chain will not take (their model was skipped), stopping any started."""
        with self._lock:
            for queue in self._pending.values():
                for entry in [e for e in queue if e.index in indexes]:
                    queue.remove(entry)
            for index in indexes & set(self._started):
                self._started.pop(index).cancel()

    def close(self) -> None:
        """The run ended: stop every answer sent ahead and start no more."""
        with self._lock:
            self._closed = True
            for answer in self._started.values():
                answer.cancel()
            self._started.clear()
            self._pending.clear()

    def _top_up(self, name: str) -> None:
        queue = self._pending.get(name)
        while queue and not self._closed:
            engine = queue[0].engine
            if self._running[name] >= engine.config.concurrency:
                return
            entry = queue.popleft()
            self._running[name] += 1
            try:
                self._started[entry.index] = engine.start(entry.model_id, entry.request(),
                                                          on_done=functools.partial(self._finished, name))
            except Exception:  # the chain sends it itself when its turn comes, and reports why it fails
                self._running[name] -= 1

    def _finished(self, name: str) -> None:
        with self._lock:
            self._running[name] -= 1
            self._top_up(name)
