"""Prompt formats and reasoning in the page: a raw-completion answer says so in its header, and an
answer's reasoning is shown folded above it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import choose_option, wait_status

pytestmark = pytest.mark.e2e


def test_a_raw_completion_answer_says_so(page, artifacts_dir: Path) -> None:
    page.get_by_role("tab", name="Settings").click()
    choose_option(page, "prompt-format", "raw")
    page.wait_for_timeout(300)  # the choice reaches the server's copy of the field
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    header = page.locator("#transcript h4").last.inner_text()
    assert header.endswith("· raw completion"), header
    page.screenshot(path=str(artifacts_dir / "raw-completion.png"))


def test_reasoning_is_folded_above_the_answer(page, artifacts_dir: Path) -> None:
    page.locator("#user-prompt textarea").fill("think &")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    folded = page.locator("#transcript details.reasoning").last
    assert folded.locator("summary").inner_text() == "Reasoning"
    assert folded.get_attribute("open") is None  # folded
    assert "Hello from the demo model." in page.locator("#transcript").inner_text().split("Reasoning")[-1]
    page.screenshot(path=str(artifacts_dir / "reasoning-folded.png"))
    folded.locator("summary").click()
    assert "print('STOP_SAMANTHA')" in folded.inner_text()
    page.screenshot(path=str(artifacts_dir / "reasoning-open.png"))
