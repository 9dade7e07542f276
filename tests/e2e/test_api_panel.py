"""The API tab in headless Chromium: the token (masked until asked), a snippet copied from the page
and run as it is, and the page while the API has the model: the activity line, a page run that
waits for its turn, and the API's run in History."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import launch_studio, open_tab, refresh_until_finished, wait_status

pytestmark = pytest.mark.e2e
TOKEN = "cs-api-panel-token-42"


@pytest.fixture(scope="module")
def api_studio(tmp_path_factory: pytest.TempPathFactory):
    with launch_studio(tmp_path_factory.mktemp("studio-home"), extra_env={"CHAIN_STUDIO_API_TOKEN": TOKEN}) as studio:
        yield studio


def copied(page, selector: str) -> str:
    """Click the copy button of the component `selector` and read the clipboard."""
    page.locator(f"{selector} button[aria-label*='opy'], {selector} button[title*='opy']").first.click()
    return page.evaluate("() => navigator.clipboard.readText()")


def test_the_token_is_masked_until_asked_and_a_copied_snippet_runs(api_studio, browser, artifacts_dir: Path,
                                                                    tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1100},  # type: ignore[attr-defined]
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(api_studio.url)
    page.get_by_role("tab", name="API").click()
    token_box = page.locator("#api-token input, #api-token textarea").first
    page.wait_for_function("() => (document.querySelector('#api-base input, #api-base textarea') || {}).value")
    assert token_box.get_attribute("type") == "password"
    assert page.locator("#api-base input, #api-base textarea").first.input_value() == api_studio.url.rstrip("/")
    page.locator("#api-show-token input").check()
    page.wait_for_function("() => !document.querySelector('#api-token input[type=password]')")
    token_box = page.locator("#api-token input, #api-token textarea").first
    assert token_box.input_value() == TOKEN
    page.screenshot(path=str(artifacts_dir / "api-panel.png"), full_page=True)
    assert copied(page, "#api-token") == TOKEN
    snippet = copied(page, "#api-python")
    assert "CHAIN_STUDIO_API_TOKEN" in snippet and TOKEN not in snippet  # a copied snippet never carries it
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, CHAIN_STUDIO_API_TOKEN=TOKEN))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().startswith(("Hello", "Greetings")), ran.stdout  # one of the demo model's greetings (sampled)
    curl = copied(page, "#api-curl")
    ran = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, CHAIN_STUDIO_API_TOKEN=TOKEN))
    assert json.loads(ran.stdout)["object"] == "chat.completion", ran.stdout + ran.stderr
    context.close()


def test_while_the_api_has_the_model_the_page_says_so_and_its_run_waits_its_turn(api_studio, browser) -> None:
    lines: list[dict] = []

    def long_api_chain() -> None:  # eight "la la …" answers, each until the context is full
        body = {"models": ["chain-studio-demo"], "prompts": "\n".join(["{max_tokens=0} ~"] * 8), "tokens": False}
        with httpx.stream("POST", f"{api_studio.url}api/chain", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            lines.extend(json.loads(line) for line in response.iter_lines() if line)

    with open_tab(browser, api_studio.url) as page:
        page.get_by_role("tab", name="API").click()
        api = threading.Thread(target=long_api_chain)
        api.start()
        page.locator("#api-activity").get_by_text("Serving an API request").wait_for(timeout=60_000)
        page.locator("#user-prompt textarea").fill("hi")
        page.locator("#start").click()
        wait_status(page, "Waiting for the model: serving an API request")
        wait_status(page, "Run finished.", timeout=300_000)
        api.join(300)
        assert lines[-1]["type"] == "run_finished" and lines[-1]["answers"] == 8
        page.locator("#api-activity").get_by_text("not serving").wait_for(timeout=30_000)
        page.get_by_role("tab", name="History").click()
        refresh_until_finished(page)
        def cell(row: int, column: int) -> str:
            return page.locator(f"#history-runs [data-testid=cell-{row}-{column}]").inner_text().strip()

        # Newest first: the page's run, and before it the API's (it had the model first).
        assert (cell(0, 6), cell(1, 6)) == ("page", "api")
        assert cell(1, 0) == str(lines[0]["run_id"]) and int(cell(0, 0)) > int(cell(1, 0))


def test_an_api_chain_during_a_page_run_waits_for_it_and_both_finish_in_order(api_studio, browser) -> None:
    from app.store.journal import Journal

    lines: list[dict] = []

    def api_chain() -> None:
        body = {"models": ["chain-studio-demo"], "prompts": "hi", "tokens": False}
        with httpx.stream("POST", f"{api_studio.url}api/chain", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            lines.extend(json.loads(line) for line in response.iter_lines() if line)

    with open_tab(browser, api_studio.url) as page:
        page.locator("#user-prompt textarea").fill("\n".join(["{max_tokens=1500} ~"] * 3))  # a few seconds of "la"
        page.locator("#start").click()
        wait_status(page, "Generating")
        api = threading.Thread(target=api_chain)
        api.start()
        wait_status(page, "Run finished.", timeout=300_000)
        api.join(300)
    assert lines[-1]["type"] == "run_finished" and lines[-1]["reason"] == "completed"
    journal = Journal(api_studio.home / "journal.sqlite3")
    try:
        page_run, api_run = (journal.stored_run(n).summary for n in (lines[0]["run_id"] - 1, lines[0]["run_id"]))
    finally:
        journal.close()
    assert (page_run.origin, page_run.end_reason, page_run.answers) == ("page", "completed", 3)
    assert api_run.origin == "api" and api_run.started_at >= page_run.finished_at  # it waited its turn
