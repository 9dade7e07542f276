"""The studio page in headless Chromium against the real app and the demo model."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import RunningStudio, wait_status

pytestmark = pytest.mark.e2e
HELLO = "Hello from the demo model."


def settings_tab(page) -> None:
    page.get_by_role("tab", name="Settings").click()


def answer_titles(page) -> list[str]:
    return [h.inner_text() for h in page.locator("#transcript h4").all()]


def test_enter_runs_and_shift_enter_adds_a_line(page) -> None:
    prompt = page.locator("#user-prompt textarea")
    prompt.fill("first line")
    prompt.press("Shift+Enter")
    prompt.type("second line")
    assert prompt.input_value() == "first line\nsecond line"
    page.wait_for_timeout(500)
    assert answer_titles(page) == []  # Shift+Enter started nothing
    prompt.press("Enter")
    wait_status(page, "Run finished.")
    assert page.locator("#transcript").inner_text().count(HELLO) == 2  # one answer per line


def test_enter_anywhere_on_the_page_starts(page) -> None:
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#page-title").click()  # focus leaves the fields
    page.keyboard.press("Enter")
    wait_status(page, "Run finished.")
    assert HELLO in page.locator("#transcript").inner_text()


def test_two_items_two_loops_with_feedback(page) -> None:
    settings_tab(page)
    page.locator("#option-feedback input").check()
    page.locator("#loops input").fill("2")
    page.locator("#user-prompt textarea").fill("hello\ncompute %")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    assert answer_titles(page) == [
        f"chain-studio-demo.gguf · item {item} · response 1 · loop {loop}" for loop in (1, 2) for item in (1, 2)
    ]
    text = page.locator("#transcript").inner_text()
    assert text.count(HELLO) == 2 and text.count("print(6 * 7)") == 2


def test_stop_during_an_endless_answer(page) -> None:
    settings_tab(page)
    page.locator("#option-fast input").uncheck()
    page.locator("#user-prompt textarea").fill("sing ~")
    page.locator("#start").click()
    page.locator("#transcript").get_by_text("la la la").wait_for(timeout=60_000)
    page.locator("#stop-all").click()
    wait_status(page, "Run stopped")
    footer = page.locator("#transcript sub").last.inner_text()
    assert footer.splitlines()[0].endswith("stopped")  # the counts line; the metrics line follows


def test_each_answer_beeps_at_its_first_token_and_chimes_at_its_end(page) -> None:
    """As the original: a beep when an answer's first token arrives, a chime when it ends."""
    page.locator("#user-prompt textarea").fill("hi\nhello\nhey")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    page.wait_for_function("() => (window.chainStudioSoundKinds || []).length === 6")
    assert page.evaluate("() => window.chainStudioSoundKinds") == ["token", "end"] * 3


def test_sounds_play_at_start_and_end_unless_turned_off(page) -> None:
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    page.wait_for_function("() => window.chainStudioSoundsPlayed === 2")
    settings_tab(page)
    page.locator("#sounds input").uncheck()
    page.locator("#start").click()
    page.locator("#transcript h5").nth(1).wait_for(timeout=60_000)  # this tab's second run
    wait_status(page, "Run finished.")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.chainStudioSoundsPlayed") == 2


def test_bad_prompt_list_says_why_and_runs_nothing(page) -> None:
    page.locator("#user-prompt textarea").fill("{top_p=7} hello")
    page.locator("#start").click()
    wait_status(page, "top_p=7 is out of range")
    assert answer_titles(page) == []


def test_transcript_controls(page) -> None:
    page.locator("#user-prompt textarea").fill("compute %")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    page.locator("#raw input").check()
    page.locator("#transcript").get_by_text("```python").wait_for()  # the answer exactly as written
    page.locator("#use-last").click()
    previous = page.locator("#previous-response textarea")
    page.wait_for_function("() => document.querySelector('#previous-response textarea').value.includes('print(6 * 7)')")
    assert previous.input_value() == "```python\nprint(6 * 7)\n```"
    page.locator("#clear").click()
    page.locator("#transcript").get_by_text("Type a prompt and press Enter").wait_for()


def test_presets_and_models(page, studio_server: RunningStudio) -> None:
    settings_tab(page)
    temperature = page.get_by_label("temperature").first
    page.locator("#preset-stochastic").click()
    page.wait_for_function("() => [...document.querySelectorAll('input[type=number]')].some(i => i.value === '0.8')")
    page.locator("#preset-deterministic").click()
    page.wait_for_function("() => ![...document.querySelectorAll('input[type=number]')].some(i => i.value === '0.8')")
    del temperature
    page.get_by_role("tab", name="Models").click()
    page.locator("#add-model").click()  # the same model twice: a chain of two
    models = page.locator("#models textarea")
    page.wait_for_function("() => document.querySelector('#models textarea').value.split('\\n').length === 2")
    assert models.input_value() == "chain-studio-demo.gguf\nchain-studio-demo.gguf"
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    assert len(answer_titles(page)) == 2
    page.locator("#models-folder input, #models-folder textarea").first.fill("/no/such/folder")
    page.locator("#use-folder").click()
    wait_status(page, "is not a folder")


def test_run_options_reach_the_engine(page) -> None:
    page.get_by_role("tab", name="Models").click()
    page.locator("#add-model").click()
    page.wait_for_function("() => document.querySelector('#models textarea').value.split('\\n').length === 2")
    settings_tab(page)
    page.locator("#option-single-response input").check()
    page.locator("#option-random-params input").check()
    page.locator("#user-prompt textarea").fill("hi\ncompute %\nnot answered")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    assert answer_titles(page) == [  # model i answers item i; the extra item is left out
        "chain-studio-demo.gguf · item 1 · response 1 · loop 1",
        "chain-studio-demo.gguf · item 2 · response 1 · loop 1",
    ]
    assert page.locator("#transcript").inner_text().count("temperature=") == 2  # the values drawn


def test_unload_n_ctx_notice_and_missing_models(page) -> None:
    page.locator("#user-prompt textarea").fill("hi")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    settings_tab(page)
    page.get_by_text("Model loading").click()
    page.get_by_label("n_ctx").fill("2048")
    page.get_by_label("n_ctx").press("Tab")
    wait_status(page, "n_ctx is now 2048: the model reloads at the next start.")
    page.locator("#unload").click()
    wait_status(page, "Model unloaded")
    page.get_by_role("tab", name="Models").click()
    page.locator("#models textarea").fill("not-downloaded.gguf\nchain-studio-demo.gguf")
    page.locator("#start").click()
    wait_status(page, "Run finished.")
    text = page.locator("#transcript").inner_text()
    assert "not-downloaded.gguf:" in text and "no such file" in text  # reported in place
    assert HELLO in text  # and the next model answered


def test_fast_mode_shows_answers_only_when_complete(page) -> None:
    # Distinct states of the transcript the person could see (one page update can be many mutations).
    counter = """() => { const t = document.querySelector('#transcript'); const seen = new Set();
        window.transcriptStates = seen;
        new MutationObserver(() => seen.add(t.innerText.length)).observe(
            t, {childList: true, subtree: true, characterData: true}); }"""
    page.locator("#transcript").wait_for()
    page.evaluate(counter)
    page.locator("#user-prompt textarea").fill("{max_tokens=2000} sing ~")  # about a second of streaming
    page.locator("#start").click()
    wait_status(page, "Run finished.", timeout=120_000)
    streamed = page.evaluate("() => window.transcriptStates.size")
    settings_tab(page)
    page.locator("#option-fast input").check()
    page.evaluate(counter)
    page.locator("#start").click()
    page.locator("#transcript h5").nth(1).wait_for(timeout=120_000)
    wait_status(page, "Run finished.", timeout=120_000)
    fast = page.evaluate("() => window.transcriptStates.size")
    assert fast <= 4 < streamed, (fast, streamed)
