"""Turns on the one model: page runs, API requests and programs use it one at a time, in the
order they asked, and whoever waits can see who has it.

A plain lock would do for exclusion, but it is not fair (a thread that releases and re-acquires
can overtake a waiting one) and a waiter cannot give up: an API client that closes its connection
while queued must leave the queue at once.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable

from app.core.errors import ChainStudioError

API_HOLDER = "an API request"
WAIT_SLICE_SECONDS = 0.1  # how often a cancellable waiter looks at its cancel flag


class TurnCancelled(ChainStudioError):
    """The waiter gave up (its client went away) before its turn came."""


class TurnQueue:
    """A fair (first come, first served) lock with a description of who holds it.

    `with queue:` works as with a threading.Lock (for the page); `turn(who, cancelled)` is the
    cancellable form."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._tickets = itertools.count()
        self._serving = 0  # the ticket whose turn it is
        self._waiting: set[int] = set()
        self._cancelled: set[int] = set()
        self._held = False
        self.holder = ""  # "a page run", "an API request", …: said to whoever waits

    def locked(self) -> bool:
        """Whether someone has the model now (or is next in line)."""
        with self._condition:
            return self._held or bool(self._waiting)

    def acquire(self, who: str = "a page run", cancelled: Callable[[], bool] | None = None,
                timeout: float | None = None) -> bool:
        """Wait for this caller's turn and return True; TurnCancelled when `cancelled()` turns true
        first; False when `timeout` seconds pass first (as threading.Lock.acquire does)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            ticket = next(self._tickets)
            self._waiting.add(ticket)
            try:
                while self._held or ticket != self._serving:
                    gave_up = cancelled is not None and cancelled()
                    timed_out = deadline is not None and time.monotonic() >= deadline
                    if gave_up or timed_out:
                        self._cancelled.add(ticket)
                        self._skip_cancelled()
                        self._condition.notify_all()
                        if gave_up:
                            raise TurnCancelled("the request was cancelled while it waited for the model")
                        return False
                    slice_ = WAIT_SLICE_SECONDS if cancelled is not None else None
                    if deadline is not None:
                        left = max(deadline - time.monotonic(), 0.0)
                        slice_ = left if slice_ is None else min(slice_, left)
                    self._condition.wait(slice_)
            finally:
                self._waiting.discard(ticket)
            self._held = True
            self.holder = who
            return True

    def release(self) -> None:
        """End the current turn; the next waiter in line goes."""
        with self._condition:
            self._held = False
            self.holder = ""
            self._serving += 1
            self._skip_cancelled()
            self._condition.notify_all()

    def _skip_cancelled(self) -> None:
        """Tickets given up while waiting are passed over."""
        while not self._held and self._serving in self._cancelled:
            self._cancelled.discard(self._serving)
            self._serving += 1

    def turn(self, who: str, cancelled: Callable[[], bool] | None = None) -> "_Turn":
        """A context manager: `with queue.turn("an API request", client_gone):`."""
        return _Turn(self, who, cancelled)

    def __enter__(self) -> "TurnQueue":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Turn:
    def __init__(self, queue: TurnQueue, who: str, cancelled: Callable[[], bool] | None) -> None:
        self.queue, self.who, self.cancelled = queue, who, cancelled

    def __enter__(self) -> None:
        self.queue.acquire(self.who, self.cancelled)

    def __exit__(self, *exc: object) -> None:
        self.queue.release()
