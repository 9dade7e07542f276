"""Connections that go away: a streaming client that disconnects stops its generation within a few
tokens and the next request is served; a request still waiting for its turn leaves the line."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import pytest

from app.api.engine import ApiEngine
from app.services import Services
from tests.api.conftest import RunningApi

DEMO = "chain-studio-demo.gguf"


def test_a_client_that_disconnects_mid_stream_stops_the_generation(api: RunningApi) -> None:
    body = {"model": DEMO, "prompt": "~", "max_tokens": 0, "temperature": 0}  # "la la …" until the context is full
    whole = api.client().completions.create(**body).usage.completion_tokens  # what a reader to the end gets
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.stream("POST", f"{api.v1}/completions", json={**body, "stream": True}, headers=headers,
                      timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any('"text": " la"' in line for line in received)
    said = None
    for _ in range(200):  # the studio logs it once the worker has stopped
        said = re.search(r"the client went away after (\d+) tokens", api.log_text())
        if said:
            break
        time.sleep(0.05)
    assert said is not None, api.log_text()[-2000:]
    # Stopped early: the server runs ahead of a reader only by what the hand-over queue and the
    # socket buffers hold (a few hundred tokens of the ~4000 here, depending on the machine's load).
    assert int(said.group(1)) < whole // 2, (said.group(0), whole)
    reply = api.client().completions.create(model=DEMO, prompt="hi", temperature=0)
    assert reply.choices[0].text == "Hello from the demo model."


def test_a_request_waiting_for_its_turn_leaves_the_line_when_it_is_cancelled(tmp_path) -> None:
    services = Services(models_dir=tmp_path)
    engine = ApiEngine(services)
    ran = threading.Event()

    def job(_stop: threading.Event):
        ran.set()
        yield "never"

    async def scenario() -> str:
        services.run_lock.acquire("a page run")
        consumer = asyncio.ensure_future(engine.collect(job, lambda: asyncio.sleep(0, False)))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if services.run_lock._waiting:
                break
        assert services.run_lock._waiting, "the request is in line"
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        for _ in range(100):  # the producer thread notices within a wait slice
            await asyncio.sleep(0.02)
            if not services.run_lock._waiting:
                break
        waiting = len(services.run_lock._waiting)
        services.run_lock.release()
        return f"{waiting} waiting"

    try:
        assert asyncio.run(scenario()) == "0 waiting"
        assert not ran.is_set()  # its job never ran
        with services.run_lock.turn("next", None):
            assert services.run_lock.holder == "next"
    finally:
        services.journal.close()
