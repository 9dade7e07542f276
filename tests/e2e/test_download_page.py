"""Paste a Hugging Face link, press Enter: the model downloads (from a loopback stand-in for the
Hub), loads and answers, with the progress shown on the way."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.conftest import RunningStudio, launch_studio
from tests.hub_standin import StandInHub

pytestmark = pytest.mark.e2e
REPO = "studio-tests/demo-GGUF"


@pytest.fixture(scope="module")
def hub() -> Iterator[StandInHub]:
    started = StandInHub().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def studio(hub: StandInHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStudio]:
    with launch_studio(tmp_path_factory.mktemp("studio-home"), {"HF_ENDPOINT": hub.endpoint}) as running:
        yield running


def test_paste_a_link_and_press_enter(studio: RunningStudio, hub: StandInHub, browser: object,
                                      demo_model: Path, artifacts_dir: Path) -> None:
    # Trailing bytes after the tensors are ignored by llama.cpp: 20 MB of them make a download long
    # enough to watch.
    served = demo_model.read_bytes() + bytes(20 * 2**20)
    hub.add(REPO, "hub-demo-Q8_0.gguf", served, behaviour="slow")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(studio.url)
        page.locator("#models textarea").fill("")  # no local model: the link is used
        page.locator("#model-urls textarea").fill(
            f"https://huggingface.co/{REPO}/resolve/main/hub-demo-Q8_0.gguf?download=true"
        )
        page.locator("#user-prompt textarea").fill("hello")
        page.locator("#user-prompt textarea").press("Enter")
        bar = page.locator("#download-progress")
        bar.wait_for(timeout=60_000)
        first = float(bar.get_attribute("value") or 0)
        page.wait_for_function(
            f"() => {{ const b = document.querySelector('#download-progress'); return !b || b.value > {first}; }}",
            timeout=60_000,
        )  # the bar moves
        page.screenshot(path=str(artifacts_dir / "downloading.png"))
        page.locator("#status").get_by_text("Run finished.").wait_for(timeout=120_000)
        transcript = page.locator("#transcript").inner_text()
        assert "hub-demo-Q8_0.gguf · item 1 · response 1 · loop 1" in transcript
        assert "Hello from the demo model." in transcript
        assert (studio.home / "models" / "hub-demo-Q8_0.gguf").read_bytes() == served
        page.screenshot(path=str(artifacts_dir / "answered.png"), full_page=True)
    finally:
        page.close()


def test_a_refused_link_makes_no_connection(studio: RunningStudio, hub: StandInHub, browser: object,
                                            artifacts_dir: Path) -> None:
    before = len(hub.requests)
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(studio.url)
        page.locator("#models textarea").fill("")
        page.locator("#model-urls textarea").fill("http://huggingface.co/x/y/resolve/main/z.gguf")
        page.locator("#start").click()
        page.locator("#status").get_by_text("plain http is refused").wait_for(timeout=30_000)
        assert len(hub.requests) == before
        page.screenshot(path=str(artifacts_dir / "refused.png"))
    finally:
        page.close()


def test_stop_all_ends_a_download_and_the_next_run_answers(studio: RunningStudio, hub: StandInHub, browser: object,
                                                           demo_model: Path, artifacts_dir: Path) -> None:
    # 200 KB/s: the whole file would take over 100 s.
    hub.add(REPO, "stop-me.gguf", demo_model.read_bytes() + bytes(20 * 2**20), rate=200_000)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(studio.url, wait_until="load")
        prompt = page.locator("#user-prompt textarea")
        prompt.wait_for()
        demo = page.locator("#models textarea").input_value()  # the demo model, chosen by default
        page.locator("#models textarea").fill("")
        page.locator("#model-urls textarea").fill(f"https://huggingface.co/{REPO}/resolve/main/stop-me.gguf")
        prompt.fill("hello")
        prompt.press("Enter")
        page.locator("#download-progress").wait_for(timeout=60_000)
        page.locator("#stop-all").click()
        clicked = time.monotonic()
        # The run's own last word (the Stop all button's reply may arrive before or after it).
        page.locator("#transcript").get_by_text("it resumes next time").wait_for(timeout=15_000)
        took = time.monotonic() - clicked
        page.locator("#status").get_by_text("Run stopped").wait_for(timeout=15_000)
        page.screenshot(path=str(artifacts_dir / "download-stopped.png"), full_page=True)
        assert took < 5, f"the run reported the stop {took:.1f} s after Stop all"
        transcript = page.locator("#transcript").inner_text()
        assert re.search(r"download of stop-me\.gguf stopped; \d+\.\d MB kept, it resumes next time", transcript)
        models = studio.home / "models"
        assert list((models / ".downloading").rglob("stop-me.gguf.*.incomplete"))  # kept for next time
        assert not (models / "stop-me.gguf").exists()

        # The model lock is free: a run on the demo model starts at once and answers.
        page.locator("#models textarea").fill(demo)
        page.locator("#model-urls textarea").fill("")  # (a link there would run instead of the default)
        prompt.press("Enter")
        page.locator("#status").get_by_text("Run finished.").wait_for(timeout=120_000)
        assert page.locator("#transcript").inner_text().rstrip().count("Hello from the demo model.") == 1
        page.screenshot(path=str(artifacts_dir / "answered-after-stop.png"), full_page=True)
    finally:
        page.close()


def test_a_pasted_link_runs_instead_of_the_untouched_default_model(studio: RunningStudio, hub: StandInHub,
                                                                   browser: object, demo_model: Path,
                                                                   artifacts_dir: Path) -> None:
    hub.add(REPO, "pasted-Q8_0.gguf", demo_model.read_bytes())
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(studio.url)
        assert page.locator("#models textarea").input_value() == "chain-studio-demo.gguf"  # left as it is
        page.locator("#user-prompt textarea").fill("hello")
        page.locator("#model-urls textarea").fill(f"https://huggingface.co/{REPO}/resolve/main/pasted-Q8_0.gguf")
        page.locator("#model-urls textarea").press("Enter")
        page.locator("#status").get_by_text("Run finished.").wait_for(timeout=120_000)
        titles = [h.inner_text() for h in page.locator("#transcript h4").all()]
        assert titles == ["pasted-Q8_0.gguf · item 1 · response 1 · loop 1"], titles
        page.screenshot(path=str(artifacts_dir / "pasted-link.png"))
    finally:
        page.close()
