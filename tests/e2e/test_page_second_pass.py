"""What a new user hit on the page (issue: the page, second pass), one test per point, in headless
Chromium against the real studio and the demo model. Screenshots at 1280x720 and 1400x1000 go to
test-artifacts/."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import RunningStudio, open_tab, wait_status

pytestmark = pytest.mark.e2e
HELLO = "Hello from the demo model."


def screens(page, artifacts_dir: Path, name: str) -> None:
    """The page at both sizes the issue was tried at."""
    for width, height in ((1280, 720), (1400, 1000)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(artifacts_dir / f"{name}-{width}x{height}.png"))


def journal(studio: RunningStudio) -> sqlite3.Connection:
    assert studio.home is not None
    return sqlite3.connect(studio.home / "journal.sqlite3")


def newest_answer(studio: RunningStudio) -> tuple[int, str, str]:
    with journal(studio) as db:
        return db.execute("SELECT run_id, text, stop_reason FROM answers ORDER BY id DESC LIMIT 1").fetchone()


def run_count(studio: RunningStudio) -> int:
    with journal(studio) as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def settings_tab(page) -> None:
    page.get_by_role("tab", name="Settings").click()


def run_prompt(page, text: str) -> None:
    """Type `text`, press Enter and wait for this run (not an earlier one) to finish."""
    runs = page.locator("#transcript h5").count()
    page.locator("#user-prompt textarea").fill(text)
    page.locator("#user-prompt textarea").press("Enter")
    page.wait_for_function("(n) => document.querySelectorAll('#transcript h5').length > n", arg=runs,
                           timeout=90_000)
    wait_status(page, "Run finished.")


def slow_stream(page, delay: str = "0.02") -> None:
    """Stream one token every `delay` seconds (Learning → Stepping "delay"), so a test can act
    while an answer is being written."""
    page.get_by_role("tab", name="Learning").click()
    page.locator("#stepping").get_by_text("delay").click()
    page.locator("#step-delay input").fill(delay)
    page.locator("#step-delay input").press("Tab")
    page.get_by_role("tab", name="Transcript").click()


@pytest.fixture
def small_page(studio_server: RunningStudio, browser: object, artifacts_dir: Path) -> Iterator[object]:
    """A tab at 1280x720."""
    with open_tab(browser, studio_server.url, 1280, 720) as opened:
        yield opened


# 1 -------------------------------------------------------------------------------------------------
def test_start_during_the_own_run_is_refused_and_the_transcript_ends_equal_to_the_journal(
        page, studio_server: RunningStudio, artifacts_dir: Path) -> None:
    runs_before = run_count(studio_server)
    slow_stream(page)
    page.locator("#user-prompt textarea").fill("{max_tokens=300} sing ~")
    page.locator("#start").click()
    page.locator("#transcript").get_by_text("la la la").first.wait_for(timeout=60_000)
    expect(page.locator("#start")).to_be_disabled(timeout=10_000)  # Start says it is busy while the run goes
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#user-prompt textarea").press("Enter")
    page.get_by_text("A run is going in this tab").first.wait_for(timeout=30_000)
    screens(page, artifacts_dir, "busy")
    wait_status(page, "Run finished.", timeout=120_000)
    assert page.locator("#start").is_enabled()
    _run_id, text, reason = newest_answer(studio_server)
    assert reason == "max_tokens"
    shown = page.locator("#transcript p").filter(has_text="la la").last.inner_text()
    assert shown.strip() == text.strip()  # the transcript ends equal to the journal
    assert run_count(studio_server) == runs_before + 1  # the second start ran nothing
    assert HELLO not in page.locator("#transcript").inner_text()


# 2 -------------------------------------------------------------------------------------------------
def test_single_line_breaks_stay_and_fenced_code_stays_code(page, artifacts_dir: Path) -> None:
    run_prompt(page, "a poem ^")
    poem = page.locator("#transcript p").filter(has_text="Roses are red").last
    assert poem.inner_text() == "Roses are red\nViolets are blue\nThe end."
    assert poem.locator("br").count() == 2
    run_prompt(page, "compute %")
    assert page.locator("#transcript pre code").last.inner_text().strip() == "print(6 * 7)"
    screens(page, artifacts_dir, "line-breaks")


# 3 -------------------------------------------------------------------------------------------------
def test_each_answer_shows_its_prompt_item_and_the_count_is_shown_before_start(page, artifacts_dir: Path) -> None:
    long_item = "tell me " + "very " * 60 + "much"
    page.locator("#user-prompt textarea").fill(f"first\nsecond ^\n{long_item}")
    page.locator("#plan-preview").get_by_text("3 prompts × 1 model = 3 answers").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Models").click()
    page.locator("#models textarea").fill("chain-studio-demo.gguf\nchain-studio-demo.gguf")
    page.locator("#plan-preview").get_by_text("3 prompts × 2 models = 6 answers").wait_for(timeout=30_000)
    page.locator("#models textarea").fill("chain-studio-demo.gguf")
    page.locator("#plan-preview").get_by_text("3 prompts × 1 model = 3 answers").wait_for(timeout=30_000)
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    asked = page.locator("#transcript .asked")
    assert [asked.nth(i).inner_text().strip() for i in range(2)] == ["› first", "› second ^"]
    folded = page.locator("#transcript details.asked")
    assert folded.count() == 1 and folded.locator("summary").inner_text().startswith("› tell me very very")
    assert "3 answers planned" in page.locator("#transcript h5").last.inner_text()
    screens(page, artifacts_dir, "prompt-items")


# 4 -------------------------------------------------------------------------------------------------
def test_the_learning_view_is_readable_and_updates_live(page, artifacts_dir: Path) -> None:
    page.get_by_role("tab", name="Learning").click()
    page.locator("#option-learning input").check()
    page.locator("#stepping").get_by_text("next token").click()
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    for _ in range(3):
        page.locator("#next-token").click()
        page.wait_for_timeout(700)
    # live: the token view and the table fill while the answer is still being written
    page.wait_for_function("() => document.querySelectorAll('#token-view .token').length >= 2", timeout=30_000)
    assert "Run finished." not in page.locator("#status").inner_text()
    page.locator("#stepping").get_by_text("off").click()
    for _ in range(4):
        page.locator("#next-token").click()
    wait_status(page, "Run finished.", timeout=60_000)
    headers = page.locator("#learning-table th")
    names = [headers.nth(i).inner_text() for i in range(headers.count())]
    assert names[:5] == ["rank", "id", "token", "logit", "p"] and names[-1] == "removed by"
    assert len(names) < 17 and "temp." not in names  # greedy decoding: only the stages it went through
    assert all(headers.nth(i).get_attribute("title") for i in range(headers.count()))  # explained on hover
    assert headers.first.bounding_box()["height"] < 48  # one line of header, not ~230 px
    box = page.locator("#learning-table table").bounding_box()
    assert box is not None and box["width"] < 900
    page.locator("#learning-bars").scroll_into_view_if_needed()
    screens(page, artifacts_dir, "learning")


# 5 -------------------------------------------------------------------------------------------------
def test_branches_come_back_on_reopen_and_are_not_counted_as_answers(page, studio_server: RunningStudio,
                                                                     artifacts_dir: Path) -> None:
    page.get_by_role("tab", name="Learning").click()
    page.locator("#option-learning input").check()
    run_prompt(page, "hi")
    page.locator("#branches").get_by_text("original answer", exact=True).wait_for(timeout=30_000)
    page.locator("#branch-position input").fill("3")
    page.wait_for_function("() => (document.querySelector('#branch-token input') || {}).value.includes('tiny')")
    page.locator("#branch-button").click()
    page.locator("#status").get_by_text("Branch 1 saved as answer").wait_for(timeout=60_000)
    run_id, text, _reason = newest_answer(studio_server)
    assert text == "Hello from the tiny model."
    page.locator("#clear").click()
    page.get_by_role("tab", name="History").click()
    page.wait_for_function("() => document.querySelector('#history-runs').innerText.includes('1/1 + 1 branch')",
                           timeout=30_000)
    page.locator("#history-run-id input").fill(str(run_id))
    page.locator("#history-reopen").click()
    wait_status(page, f"Reopened run {run_id}.")
    page.get_by_role("tab", name="Learning").click()
    branches = page.locator("#branches label")
    branches.nth(1).wait_for(timeout=30_000)
    assert [branches.nth(i).inner_text() for i in range(branches.count())] == [
        "original answer", "branch 1: original answer → position 3 takes ␣tiny"]
    assert "branch of answer 1 at position 3" in page.locator("#transcript").inner_text()
    screens(page, artifacts_dir, "branches-reopened")


# 6 -------------------------------------------------------------------------------------------------
def test_history_loads_when_opened_and_after_each_run(page, artifacts_dir: Path) -> None:
    run_prompt(page, "a history check")
    page.get_by_role("tab", name="History").click()  # no Refresh pressed
    table = page.locator("#history-runs")
    page.wait_for_function("() => document.querySelector('#history-runs').innerText.includes('a history check')",
                           timeout=30_000)
    rows = table.inner_text().split("a history check", 1)  # the newest run comes first
    assert "chain-studio-demo.gguf" in rows[1][:200]
    run_prompt(page, "and another one")  # the History tab is still open
    page.wait_for_function("() => document.querySelector('#history-runs').innerText.includes('and another one')",
                           timeout=30_000)
    assert table.inner_text().index("and another one") < table.inner_text().index("a history check")
    screens(page, artifacts_dir, "history")


# 7 -------------------------------------------------------------------------------------------------
def test_a_reload_keeps_settings_inputs_and_the_last_transcript_and_reset_restores_defaults(
        page, artifacts_dir: Path) -> None:
    settings_tab(page)
    page.locator("#setting-top_k input[type=number]").fill("7")
    page.locator("#setting-top_k input[type=number]").press("Tab")
    page.locator("#loops input").fill("2")
    page.locator("#loops input").press("Tab")
    page.locator("#system-prompt textarea").fill("be brief")
    run_prompt(page, "remember me")
    page.wait_for_timeout(500)
    page.reload(wait_until="load")
    page.locator("#transcript").get_by_text("remember me").first.wait_for(timeout=30_000)
    assert page.locator("#user-prompt textarea").input_value() == "remember me"
    assert page.locator("#system-prompt textarea").input_value() == "be brief"
    settings_tab(page)
    assert page.locator("#setting-top_k input[type=number]").input_value() == "7"
    assert page.locator("#loops input").input_value() == "2"
    screens(page, artifacts_dir, "reloaded")
    page.locator("#reset-defaults").click()
    wait_status(page, "back to their defaults")
    page.wait_for_function("() => document.querySelector('#loops input').value === '1'")
    assert page.locator("#setting-top_k input[type=number]").input_value() == "40"
    page.reload(wait_until="load")
    page.locator("#user-prompt textarea").wait_for()
    settings_tab(page)
    page.wait_for_timeout(500)
    assert page.locator("#loops input").input_value() == "1"


# 8 -------------------------------------------------------------------------------------------------
def test_enter_in_model_urls_starts(page) -> None:
    page.locator("#user-prompt textarea").fill("hi")
    page.get_by_role("tab", name="Models").click()
    page.locator("#model-urls textarea").click()
    page.locator("#model-urls textarea").press("Enter")
    wait_status(page, "Run finished.")
    assert HELLO in page.locator("#transcript").inner_text()


# 9 -------------------------------------------------------------------------------------------------
def test_at_1280x720_the_answer_is_in_view_and_the_stream_is_followed(small_page, artifacts_dir: Path) -> None:
    page = small_page
    run_prompt(page, "hi")
    header = page.locator("#transcript h4").last.bounding_box()
    answer = page.locator("#transcript p").filter(has_text=HELLO).last.bounding_box()
    assert header is not None and answer is not None
    assert answer["y"] + answer["height"] < 720, answer  # the start of the answer is above the fold
    slow_stream(page, "0.01")
    page.locator("#user-prompt textarea").fill("{max_tokens=1500} sing ~")
    page.locator("#start").click()
    page.wait_for_function("() => { const t = document.querySelector('#transcript');"
                           " return t.scrollHeight > t.clientHeight + 200; }", timeout=120_000)
    page.wait_for_timeout(500)
    gap = page.evaluate("() => { const t = document.querySelector('#transcript');"
                        " return t.scrollHeight - t.scrollTop - t.clientHeight; }")
    assert gap < 80, gap  # the newest text is in view while it streams
    page.screenshot(path=str(artifacts_dir / "following-1280x720.png"))
    page.keyboard.press("Escape")  # Stop/Next from the keyboard
    page.locator("#transcript sub").last.get_by_text("stopped").wait_for(timeout=60_000)
    wait_status(page, "Run finished.", timeout=60_000)


# 11 ------------------------------------------------------------------------------------------------
def test_small_things(page, studio_server: RunningStudio, artifacts_dir: Path) -> None:
    # out-of-range numbers name their field; the temperature slider spans what the box accepts
    settings_tab(page)
    assert page.locator("#setting-temperature input[type=range]").get_attribute("max") == "5"
    page.locator("#responses input").fill("0")
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    page.get_by_text("Responses per model: Value 0 is less than minimum value 1").first.wait_for(timeout=30_000)
    page.locator("#responses input").fill("1")
    # "1 answer planned", readable footers
    run_prompt(page, "hi")
    assert "1 answer planned" in page.locator("#transcript h5").last.inner_text()
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#transcript sub')).fontSize)")
    assert size >= 12, size
    # the model panel follows the model in memory
    page.get_by_role("tab", name="Models").click()
    page.locator("#loaded-model").get_by_text("In memory: chain-studio-demo.gguf").wait_for(timeout=30_000)
    page.locator("#unload").click()
    page.locator("#loaded-model").get_by_text("No model in memory").wait_for(timeout=30_000)
    # text from the person is shown as typed in the status, never as Markdown
    page.locator("#user-prompt textarea").fill("{__import__('os')} hi")
    page.locator("#start").click()
    status = page.locator("#status")
    status.get_by_text("{__import__('os')}").first.wait_for(timeout=30_000)
    assert status.locator("strong").count() == 0
    # voice says what is missing before Listen is ticked
    page.get_by_role("tab", name="Voice").click()
    page.locator("#voice-status").get_by_text("not available yet").wait_for(timeout=30_000)  # said when it opens
    # saving a prompt without a name says why
    page.get_by_role("tab", name="Library").click()
    page.locator("#save-name textarea, #save-name input").first.fill("")
    page.locator("#save-prompt").click()
    page.locator("#status").get_by_text("give the prompt file a name").wait_for(timeout=30_000)
    # shortcuts are listed on the page
    assert "Esc" in page.locator("#keyboard-shortcuts").inner_text()
    screens(page, artifacts_dir, "small-things")


def test_the_theme_follows_the_browser_and_the_switch_is_remembered(studio_server: RunningStudio,
                                                                    browser: object) -> None:
    context = browser.new_context(color_scheme="light")  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(studio_server.url, wait_until="load")
        page.locator("#user-prompt textarea").wait_for()
        assert page.evaluate("() => document.body.classList.contains('dark')") is False
        page.get_by_role("tab", name="Settings").click()
        page.locator("#theme-toggle").click()
        assert page.evaluate("() => document.body.classList.contains('dark')") is True
        page.reload(wait_until="load")
        page.locator("#user-prompt textarea").wait_for()
        page.wait_for_function("() => document.body.classList.contains('dark')")
    finally:
        context.close()


def test_closing_the_tab_mid_answer_keeps_the_partial_answer(studio_server: RunningStudio, browser: object) -> None:
    with journal(studio_server) as db:
        last_before = db.execute("SELECT COALESCE(MAX(id), 0) FROM answers").fetchone()[0]
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(studio_server.url)
    page.locator("#user-prompt textarea").fill("sing ~")
    page.locator("#start").click()
    page.locator("#transcript").get_by_text("la la la la").first.wait_for(timeout=60_000)
    context.close()
    found = None
    for _ in range(120):
        with journal(studio_server) as db:
            found = db.execute("SELECT text, stop_reason FROM answers WHERE id > ?", (last_before,)).fetchone()
        if found:
            break
        time.sleep(0.5)
    assert found is not None, "the partial answer was not journaled"
    text, reason = found
    assert reason == "stopped" and text.startswith(" la la la la")


def test_run_in_the_code_tab_while_code_runs_says_it_is_busy(page, artifacts_dir: Path) -> None:
    page.get_by_role("tab", name="Code").click()
    editor = page.locator("#code-editor .cm-content")
    editor.click(timeout=120_000)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    editor.fill("import time\ntime.sleep(6)\nprint('slept')")
    page.locator("#run-code").click()
    page.locator("#code-status").get_by_text("Running").wait_for(timeout=60_000)
    page.locator("#run-code").click()
    page.locator("#code-status").get_by_text("Busy: the code started").wait_for(timeout=30_000)
    page.locator("#code-output").get_by_text("slept").wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts_dir / "code-busy.png"))


def test_the_model_list_shows_its_whole_label(page) -> None:
    page.get_by_role("tab", name="Models").click()
    field = page.locator("#model-pick input")
    assert field.input_value().startswith("chain-studio-demo.gguf · llama · ")
    assert page.evaluate("() => { const i = document.querySelector('#model-pick input');"
                         " return i.scrollWidth <= i.clientWidth + 1; }")
