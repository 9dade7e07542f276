"""Concurrent /api/sample calls decoded together.

A program's `asyncio.gather` over prompt_fns sends several samples at once. Each call is handed to
the batcher, whose one thread waits for a turn on the model (page runs and other API requests take
theirs in order), then takes every call waiting for the same model (at most MAX_GROUP) and runs
them as one llama.cpp batch (app/models/batched.py). A call that does not fit in this batch waits
for the next. A single call runs as it always did.

The calls say themselves what their lines are (`Call`, implemented by sample_route.SampleCall): the
batcher only decides what runs together, and tells a call when its tokens come and when it ends."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Protocol

from app.api.turns import API_HOLDER, TurnCancelled
from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.services import Services

GATHER_SECONDS = 0.02  # siblings of a gather arrive within this of each other…
GATHER_LIMIT_SECONDS = 0.1  # …but the first does not wait longer than this for them
MAX_GROUP = 7  # the worker's sequence slots, less its own cache (app/models/batched.py)


class Call(Protocol):
    path: Path
    cancelled: threading.Event
    started: bool
    batch_size: int  # how many calls were decoded together with it (itself included)

    def prepare(self) -> GenerationRequest:
        """The request, once its model is loaded (ApiError / ChainStudioError when it cannot run);
        sends the call's first line."""

    def token(self, event: TokenEvent) -> bool:
        """One token of its answer; True when the call wants no more (a stop string came)."""

    def finish(self, result: GenerationResult | None) -> None:
        """The end: the worker's result, or None when the call ended it (token() said so)."""

    def fail(self, error: BaseException) -> None:
        """The call cannot go on: its stream ends with `error`."""


class SampleBatcher:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._pending: list[Call] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, call: Call) -> None:
        with self._condition:
            self._pending.append(call)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="api-sample-batcher", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    # -- the batcher's thread -----------------------------------------------------------------------

    def _all_cancelled(self) -> bool:
        with self._condition:
            return all(call.cancelled.is_set() for call in self._pending)

    def _take_group(self) -> list[Call]:
        with self._condition:
            for call in [c for c in self._pending if c.cancelled.is_set()]:
                self._pending.remove(call)
                if call.started:
                    call.finish(None)
                else:
                    call.fail(TurnCancelled("the client went away"))
            if not self._pending:
                return []
            path = self._pending[0].path
            group = [call for call in self._pending if call.path == path][:MAX_GROUP]
            for call in group:
                self._pending.remove(call)
            return group

    def _serve(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    if not self._condition.wait(timeout=60):
                        if not self._pending:
                            self._thread = None
                            return
            self._gather()
            try:
                with self.services.run_lock.turn(API_HOLDER, self._all_cancelled):
                    group = self._take_group()
                    if group:
                        self._run(group)
            except TurnCancelled:
                self._take_group_of_cancelled()
            except Exception as exc:  # noqa: BLE001 (every waiting call hears of it; the thread goes on)
                for call in self._drain():
                    call.fail(exc)

    def _gather(self) -> None:
        """Wait until no call has arrived for GATHER_SECONDS (at most GATHER_LIMIT_SECONDS): the
        samples of a gather arrive one after another, each after its own prompt's tokenization."""
        deadline = time.monotonic() + GATHER_LIMIT_SECONDS
        with self._condition:
            seen = len(self._pending)
            while time.monotonic() < deadline:
                self._condition.wait(timeout=min(GATHER_SECONDS, max(deadline - time.monotonic(), 0)))
                if len(self._pending) == seen:
                    return
                seen = len(self._pending)

    def _take_group_of_cancelled(self) -> None:
        with self._condition:
            gone = [c for c in self._pending if c.cancelled.is_set()]
            for call in gone:
                self._pending.remove(call)
        for call in gone:
            call.fail(TurnCancelled("the client went away"))

    def _drain(self) -> list[Call]:
        with self._condition:
            taken, self._pending = self._pending, []
        return taken

    def _requeue(self, calls: list[Call]) -> None:
        with self._condition:
            self._pending[:0] = calls

    def _run(self, group: list[Call]) -> None:
        from app.api.engine import ApiEngine

        engine = ApiEngine(self.services)
        try:
            engine.ensure_loaded(group[0].path)
        except Exception as exc:  # noqa: BLE001 (a studio error or a bug: said to each call)
            for call in group:
                call.fail(exc)
            return
        members: list[Call] = []
        requests: list[GenerationRequest] = []
        for call in group:
            try:
                requests.append(call.prepare())
                members.append(call)
            except Exception as exc:  # noqa: BLE001 (ApiError / ChainStudioError: this call's own)
                call.fail(exc)
        from app.models.batched import batchable

        backend = self.services.backend
        together = [(c, r) for c, r in zip(members, requests, strict=True) if batchable(r)]
        if len(together) < 2 or not hasattr(backend, "generate_many"):
            together = []
        alone = [(c, r) for c, r in zip(members, requests, strict=True) if (c, r) not in together]
        for call, request in alone:
            call.batch_size = 1
            self._run_one(call, request)
        if together:
            for call, _request in together:
                call.batch_size = len(together)
            self._run_many([c for c, _ in together], [r for _, r in together])

    def _run_one(self, call: Call, request: GenerationRequest) -> None:
        try:
            with contextlib.closing(self.services.backend.generate(request)) as events:
                for event in events:
                    if isinstance(event, GenerationResult):
                        call.finish(event)
                        return
                    if call.cancelled.is_set() or call.token(event):
                        break
            call.finish(None)
        except Exception as exc:  # noqa: BLE001 (the call's stream ends with it)
            call.fail(exc)

    def _run_many(self, members: list[Call], requests: list[GenerationRequest]) -> None:
        backend = self.services.backend
        ended: set[int] = set()
        stopped_all = False

        def unwanted() -> set[int]:
            return ended | {n for n, call in enumerate(members) if call.cancelled.is_set()}

        deferred: list[Call] = []
        finished: set[int] = set()
        try:
            for index, event in backend.generate_many(requests, unwanted):  # type: ignore[attr-defined]
                call = members[index]
                if isinstance(event, TokenEvent):
                    if index not in ended and (call.cancelled.is_set() or call.token(event)):
                        ended.add(index)
                    if not stopped_all and len(unwanted()) == len(members):
                        backend.stop_current()  # nobody wants any of it: end the batch now
                        stopped_all = True
                    continue
                finished.add(index)
                if event is None:
                    deferred.append(call)
                else:
                    call.finish(None if index in ended else event)
        except Exception as exc:  # noqa: BLE001 (every unfinished call's stream ends with it)
            for index, call in enumerate(members):
                if index not in finished:
                    call.fail(exc)
            return
        self._requeue(deferred)
