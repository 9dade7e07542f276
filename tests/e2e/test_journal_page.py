"""The studio started over a damaged journal, in headless Chromium: it opens, says what happened at
the top of the page, and History → Salvage brings the readable runs back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import launch_studio, wait_status
from tests.store.test_journal_damage import damaged_pages, write_journal

pytestmark = pytest.mark.e2e


def test_a_damaged_journal_is_reported_and_salvaged_in_the_page(browser, tmp_path: Path, artifacts_dir: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_journal(home / "journal.sqlite3")
    (home / "journal.sqlite3").write_bytes(damaged_pages((home / "journal.sqlite3").read_bytes()))
    with launch_studio(home) as studio:
        assert "warning: The journal was damaged" in studio.log.read_text()
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        try:
            page.goto(studio.url)
            notice = page.locator("#journal-notice")
            notice.get_by_text("The journal was damaged").wait_for(timeout=60_000)
            assert "journal.corrupt-" in notice.inner_text()
            page.get_by_role("tab", name="History").click()
            page.locator("#history-salvage").click()
            wait_status(page, "Salvaged from journal.corrupt-")
            notice.wait_for(state="hidden", timeout=30_000)
            page.locator("#history-damaged").wait_for(state="hidden", timeout=30_000)
            first_run_end = "(document.querySelector('#history-runs [data-testid=cell-0-2]') || {}).innerText"
            page.wait_for_function(f"() => {first_run_end} === 'completed'")
        finally:
            page.screenshot(path=str(artifacts_dir / "page.png"), full_page=True)
            context.close()
