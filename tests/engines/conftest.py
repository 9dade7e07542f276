"""A real engine for the engine tests: llama-cpp-python's server with the demo model (one per
session), behind a fresh `FaultProxy` per test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from app.engines.config import EngineConfig
from app.engines.members import Engines
from tests.engine_servers import FaultProxy, LlamaServer


@pytest.fixture(scope="session")
def llama_server(demo_model: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(demo_model, alias="demo")
    yield server
    server.stop()


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:
    made = FaultProxy([llama_server.url.removesuffix("/v1")])
    yield made
    made.stop()


@pytest.fixture
def engines(proxy: FaultProxy) -> Engines:
    """One engine, "remote", reached through the proxy (idle timeout 2 s for the silent-stream test)."""
    return Engines(extra=(EngineConfig("remote", proxy.url, concurrency=2, idle_timeout=2),))
