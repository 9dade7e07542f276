"""The page's run handler with a remote engine, called without a browser: a chain of engines only
does not wait for the local model, and learning mode shows the engine's candidates with what
cannot be seen remotely."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from app.engines.config import EngineConfig
from app.services import Services, start_services
from app.ui import chain_run
from app.ui.app import StudioPage, assemble
from tests.engine_servers import FaultProxy
from tests.ui.test_handlers import fields

HELLO = "Hello from the demo model."


@pytest.fixture
def studio(studio_home: Path, proxy: FaultProxy) -> Iterator[tuple[Services, StudioPage]]:
    services = start_services(studio_home / "models")
    assert services.engines.store is not None
    services.engines.store.save(EngineConfig("remote", proxy.url, concurrency=2))
    try:
        yield services, assemble(services)
    finally:
        services.close()


def test_an_engine_only_chain_runs_while_the_local_model_is_busy_and_shows_remote_candidates(
        studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    services.run_lock.acquire("a page run")  # another tab holds the local model
    try:
        data = fields(page, prompt="Say hello", models="remote/demo", learning=True)
        final: dict[Any, Any] = {}
        for values in chain_run.run_chain(services, page.handles, data, "tab"):
            final.update(values)
    finally:
        services.run_lock.release()
    assert final[page.handles.status] == "Run finished."
    entries = final[page.handles.entries]
    assert [e.title.split(" · ")[0] for e in entries if e.kind == "answer"] == ["remote/demo"]
    assert HELLO in final[page.handles.transcript]
    shown = " ".join(str(value) for value in final.values())
    assert "Seen remotely: the engine reports only the top log-probabilities" in shown
    stored = services.journal.stored_run(final[page.handles.last_run_store])
    assert stored is not None and stored.answers[0].model == "remote/demo" and stored.answers[0].choices[0].remote
