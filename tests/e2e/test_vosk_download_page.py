"""The Voice tab's Vosk model download in headless Chromium: nothing is fetched when the page opens;
Download shows progress, and a file that is not the pinned one is refused and deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.vosk_models import CATALOG
from tests.e2e.conftest import choose_option, launch_studio, open_tab
from tests.hub_standin import StandInHub

pytestmark = pytest.mark.e2e


def test_download_is_asked_for_shows_progress_and_refuses_a_file_that_is_not_the_pinned_one(
        browser, tmp_path: Path, artifacts_dir: Path) -> None:
    portuguese = CATALOG["pt"]
    mirror = StandInHub().start()
    # The pinned size, other bytes: read to the end, then refused by its sha256.
    mirror.add("vosk/models", f"{portuguese.name}.zip", b"\0" * portuguese.size, rate=12_000_000)
    home = tmp_path / "home"
    home.mkdir()
    env = {"CHAIN_STUDIO_VOSK_URL": f"{mirror.endpoint}/vosk/models/resolve/main"}
    try:
        with launch_studio(home, extra_env=env) as studio:
            with open_tab(browser, studio.url) as page:
                run_the_download(page, mirror, artifacts_dir)
    finally:
        mirror.stop()
    assert [p for p in (home / "vosk-models").rglob("*") if p.is_file()] == []


def run_the_download(page, mirror: StandInHub, artifacts_dir: Path) -> None:
    """Nothing fetched when the page opened; Download shows progress, then the refusal."""
    page.get_by_role("tab", name="Voice").click()
    page.locator("#vosk-download").wait_for()
    assert mirror.requests == []  # never at start without asking
    choose_option(page, "vosk-download-language", "Portuguese (Brazil), small: vosk-model-small-pt-0.3 (30.9 MiB)")
    page.locator("#vosk-download").click()
    status = page.locator("#vosk-download-status")
    status.get_by_text("Downloading vosk-model-small-pt-0.3").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "vosk-download-progress.png"))
    status.get_by_text("pinned one is").wait_for(timeout=90_000)
    assert "is not the expected vosk-model-small-pt-0.3" in status.inner_text()
    page.screenshot(path=str(artifacts_dir / "vosk-download-refused.png"))
    assert len(mirror.requests) == 1
