"""The studio's side panels in headless Chromium: libraries, files, history, vocabulary, copying,
and two tabs at once."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pymupdf
import pytest

from tests.e2e.conftest import RunningStudio, refresh_until_finished, run_prompt, wait_status

pytestmark = pytest.mark.e2e
HELLO = "Hello from the demo model."


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    opened = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    opened.grant_permissions(["clipboard-read", "clipboard-write"])
    yield opened
    opened.close()


@pytest.fixture
def page(context, studio_server: RunningStudio, artifacts_dir: Path) -> Iterator[object]:
    opened = context.new_page()
    opened.goto(studio_server.url)
    opened.locator("#user-prompt textarea").wait_for()
    yield opened
    opened.screenshot(path=str(artifacts_dir / "page.png"), full_page=True)


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def wait_value(page, selector: str, expected: str) -> None:
    page.wait_for_function(
        "([s, e]) => { const el = document.querySelector(s); return el && el.value.includes(e); }",
        arg=[selector, expected], timeout=30_000,
    )


def test_library_example_fills_the_field_and_prompts_can_be_saved(page, studio_server: RunningStudio) -> None:
    tab(page, "Library")
    page.locator("#library-examples").get_by_text("Debate with a judge").click()
    wait_value(page, "#user-prompt textarea", "Argue FOR the ban.")
    assert "[[You are the judge" in page.locator("#user-prompt textarea").input_value()
    page.locator("#user-prompt textarea").fill("my own prompt %")
    page.locator("#save-name input, #save-name textarea").first.fill("saved-in-test")
    page.locator("#save-prompt").click()
    wait_status(page, "Saved to")
    assert studio_server.home is not None
    saved = studio_server.home / "prompts" / "saved-in-test.txt"
    assert saved.read_text(encoding="utf-8") == "my own prompt %\n"


def test_the_pdf_summary_entry_then_a_two_page_pdf_gives_two_items_and_a_summary(page, tmp_path: Path) -> None:
    from app.media.pdf import FINAL_SUMMARY_PROMPT, PAGE_SUMMARY_PROMPT

    pdf = tmp_path / "two-pages.pdf"
    document = pymupdf.open()
    for text in ("First page text.", "Second page text."):
        document.new_page().insert_text((72, 72), text)
    document.save(pdf)
    document.close()
    tab(page, "Library")
    page.locator("#library-examples").get_by_text("Summarise a PDF").click()
    wait_value(page, "#user-prompt textarea", "[[Create a summary joining")
    tab(page, "Files")
    page.locator("#file-upload input[type=file]").set_input_files(str(pdf))
    page.locator("#file-upload").get_by_text("two-pages.pdf").wait_for(timeout=120_000)
    page.locator("#pdf-pages").click()
    wait_value(page, "#user-prompt textarea", "Second page text.")
    value = page.locator("#user-prompt textarea").input_value()
    assert value == (f"[{PAGE_SUMMARY_PROMPT}]\n[[{FINAL_SUMMARY_PROMPT}]]\n$$$\n"
                     "Page 1:\nFirst page text.\n$$$\nPage 2:\nSecond page text.")
    run_prompt(page, value)
    assert len(page.locator("#transcript h4").all()) == 3  # two pages, then the summary of their answers


def test_text_file_into_the_system_prompt(page, tmp_path: Path) -> None:
    text = tmp_path / "system.txt"
    text.write_bytes("Réponds en français.".encode("cp1252"))
    tab(page, "Files")
    page.locator("#file-upload input[type=file]").set_input_files(str(text))
    page.locator("#file-upload").get_by_text("system.txt").wait_for(timeout=120_000)
    page.locator("#text-system").click()
    wait_value(page, "#system-prompt textarea", "Réponds en français.")


def test_history_reopens_a_run_and_restores_versions(page) -> None:
    run_prompt(page, "first version %")
    page.locator("#clear").click()
    page.locator("#user-prompt textarea").fill("second version")
    tab(page, "History")
    refresh_until_finished(page)
    run_id = page.locator("#history-runs [data-testid=cell-0-0]").inner_text().strip()
    page.locator("#history-run-id input").fill(run_id)
    page.locator("#history-reopen").click()
    wait_status(page, f"Reopened run {run_id}.")
    assert "print(6 * 7)" in page.locator("#transcript").inner_text()
    assert page.locator("#user-prompt textarea").input_value() == "first version %"
    page.locator("#history-field").get_by_text("User prompt").click()
    page.locator("#history-versions input").click()
    page.get_by_role("option").filter(has_text="first version").first.click()
    page.locator("#user-prompt textarea").fill("something else")
    page.locator("#history-restore").click()
    wait_value(page, "#user-prompt textarea", "first version %")


def test_vocabulary_and_memory_of_the_loaded_model(page) -> None:
    run_prompt(page, "hi")
    page.locator("#loaded-model").get_by_text("In memory:").wait_for(timeout=30_000)
    assert "memory in use" in page.locator("#loaded-model").inner_text()
    page.get_by_text("Vocabulary of the model in memory").click()
    page.locator("#vocab-search input, #vocab-search textarea").first.fill("from")
    page.locator("#vocab-show").click()
    page.wait_for_function(
        "() => (document.querySelector('#vocab-table [data-testid=cell-0-1]') || {}).innerText === '␣from'",
        timeout=30_000)


def test_copy_last_answer_and_all(page) -> None:
    run_prompt(page, "hi\ncompute %")
    page.locator("#copy-last").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).endsWith('print(6 * 7)\\n```')")
    page.locator("#copy-all").click()
    page.wait_for_function(
        "async () => { const t = await navigator.clipboard.readText();"
        " return t.includes('Hello from the demo model.') && t.includes('print(6 * 7)'); }")


def test_closing_a_tab_stops_its_run(context, studio_server: RunningStudio, artifacts_dir: Path) -> None:
    closing = context.new_page()
    closing.goto(studio_server.url)
    closing.locator("#user-prompt textarea").fill("{max_tokens=0} sing forever ~")
    tab(closing, "Settings")
    closing.get_by_text("Model loading").click()
    closing.get_by_label("n_ctx").fill("32768")
    closing.locator("#start").click()
    closing.locator("#transcript").get_by_text("la la").wait_for(timeout=60_000)
    closing.close()  # mid-run
    watcher = context.new_page()
    watcher.goto(studio_server.url)
    tab(watcher, "History")
    watcher.wait_for_function(
        """async () => {
            document.querySelector('#history-refresh').click();
            await new Promise(r => setTimeout(r, 500));
            const cell = document.querySelector('#history-runs [data-testid=cell-0-2]');
            return cell && cell.innerText === 'stopped';
        }""", timeout=60_000, polling=1000)
    watcher.screenshot(path=str(artifacts_dir / "history.png"), full_page=True)
    watcher.close()


def test_two_tabs_run_with_their_own_transcripts(context, studio_server: RunningStudio, artifacts_dir: Path) -> None:
    first, second = context.new_page(), context.new_page()
    for opened in (first, second):
        opened.goto(studio_server.url)
        opened.locator("#user-prompt textarea").wait_for()
    first.locator("#user-prompt textarea").fill("{max_tokens=3000} sing ~")
    second.locator("#user-prompt textarea").fill("compute %")
    first.locator("#start").click()
    first.locator("#transcript").get_by_text("la la").wait_for(timeout=60_000)
    second.locator("#start").click()
    wait_status(first, "Run finished.", timeout=120_000)
    wait_status(second, "Run finished.", timeout=120_000)
    first_text, second_text = first.locator("#transcript").inner_text(), second.locator("#transcript").inner_text()
    assert "print(6 * 7)" not in first_text and " la" in first_text
    assert "print(6 * 7)" in second_text and " la la" not in second_text
    first.screenshot(path=str(artifacts_dir / "first-tab.png"), full_page=True)
    second.screenshot(path=str(artifacts_dir / "second-tab.png"), full_page=True)
