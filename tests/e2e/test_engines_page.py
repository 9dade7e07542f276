"""The Engines section in headless Chromium: an engine (llama-cpp-python's real server with the demo
model) is added with a key, its models are listed, one joins the chain, and a debate between it and
the local demo model runs with feedback. The key never appears in the page or the studio's log."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from app.models.demo_model import write_demo_model
from tests.e2e.conftest import RunningStudio, launch_studio, open_tab, run_prompt
from tests.engine_servers import FaultProxy, LlamaServer

pytestmark = pytest.mark.e2e
KEY = "sk-page-secret-7f3a"
HELLO = "Hello from the demo model."


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """The engine the page adds, behind a proxy that records what the studio sent it."""
    model = write_demo_model(tmp_path_factory.mktemp("engine-model") / "chain-studio-demo.gguf")
    server = LlamaServer(model)
    proxy = FaultProxy([server.url.removesuffix("/v1")])
    yield proxy
    proxy.stop()
    server.stop()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStudio]:
    with launch_studio(tmp_path_factory.mktemp("studio-home")) as running:
        yield running


def test_an_engine_is_added_listed_and_debates_a_local_model(studio: RunningStudio, engine: FaultProxy, browser,
                                                              artifacts_dir: Path) -> None:
    with open_tab(browser, studio.url) as page:
        page.get_by_role("tab", name="Models").click()
        page.get_by_text("Engines (remote OpenAI-compatible servers)").click()
        page.locator("#engine-name textarea").fill("far")
        page.locator("#engine-url textarea").fill("http://203.0.113.9:8000/v1")
        page.locator("#engine-save").click()
        page.locator("#engine-status").get_by_text("uses plain http to 203.0.113.9").wait_for(timeout=30_000)
        page.locator("#engine-name textarea").fill("remote")
        page.locator("#engine-url textarea").fill(engine.url)
        page.locator("#engine-key input").fill(KEY)
        page.locator("#engine-concurrency input").fill("2")
        page.locator("#engine-save").click()
        page.locator("#engine-status").get_by_text("Saved engine remote").wait_for(timeout=30_000)
        table = page.locator("#engines-table")
        assert "remote" in table.inner_text() and "saved" in table.inner_text()
        assert "203.0.113.9" in table.inner_text() and "plain http" in table.inner_text()
        assert page.locator("#engine-key input").input_value() == ""  # never shown again
        page.locator("#engine-list-models").click()
        page.locator("#engine-status").get_by_text("remote lists 1 model.").wait_for(timeout=30_000)
        page.wait_for_function("() => document.querySelector('#engine-models input').value === 'remote/demo'")
        page.locator("#engine-add-model").click()
        page.wait_for_function("() => document.querySelector('#models textarea').value.endsWith('\\nremote/demo')")
        page.screenshot(path=str(artifacts_dir / "engines.png"), full_page=True)
        page.get_by_role("tab", name="Settings").click()
        page.get_by_label("Feedback loop").check()
        page.locator("#loops input").fill("2")
        page.locator("#loops input").press("Tab")
        run_prompt(page, "Debate: is the sea blue?")
        titles = [h.inner_text() for h in page.locator("#transcript h4").all()]
        answers = [t for t in titles if "item 1" in t]
        assert [t.split(" · ")[0] for t in answers] == ["chain-studio-demo.gguf", "remote/demo"] * 2
        assert page.locator("#transcript").inner_text().count(HELLO) == 4
        page.screenshot(path=str(artifacts_dir / "debate.png"), full_page=True)
        assert KEY not in page.content()
    chats = [r for r in engine.seen if r["path"] == "/v1/chat/completions"]
    assert len(chats) == 2 and all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in chats)
    assert chats[1]["body"]["messages"][-2] == {"role": "assistant", "content": HELLO}  # the debate's feedback
    assert KEY not in studio.log.read_text(errors="replace")
