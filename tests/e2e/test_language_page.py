"""The page in Portuguese for a Portuguese browser, in English otherwise (the original Samantha's
interface was in both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStudio

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("locale", "words"), [
    ("pt-BR", ["Prompt do sistema", "Prompt do usuário", "Iniciar", "Parar / Próxima", "Modelos", "Histórico"]),
    ("en-US", ["System prompt", "User prompt", "Start", "Stop / Next", "Models", "History"]),
])
def test_the_page_speaks_the_browser_s_language(studio_server: RunningStudio, browser: object, artifacts_dir: Path,
                                                locale: str, words: list[str]) -> None:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 720})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(studio_server.url, wait_until="load")
        page.locator("#user-prompt textarea").wait_for()
        text = page.locator("body").inner_text()
        for word in words:
            assert word in text, word
        page.screenshot(path=str(artifacts_dir / f"page-{locale}.png"))
        if locale == "pt-BR":  # and the run still works, with the button's words in Portuguese
            page.locator("#user-prompt textarea").fill("oi")
            page.locator("#user-prompt textarea").press("Enter")
            page.locator("#status").get_by_text("Run finished.").wait_for(timeout=60_000)
            assert page.locator("#start").inner_text() == "Iniciar"
    finally:
        context.close()
