"""The Programs tab in headless Chromium: the chatbot example answering two user_input prompts, a
sampled token's alternatives on click with the context shaded by its attention, a run reopened from the journal and two runs side by side,
and a program exported with its runs and imported again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import choose_option, open_tab

pytestmark = pytest.mark.e2e
HELLO = "Hello from the demo model."


def open_programs(page) -> None:
    page.get_by_role("tab", name="Programs").click()
    page.locator("#program-editor").wait_for()


def wait_program_status(page, text: str, timeout: float = 120_000) -> None:
    page.locator("#program-status").get_by_text(text).wait_for(timeout=timeout)


def answer(page, text: str) -> None:
    """Answer the question the program waits on (the box appears again at once for the next one)."""
    page.locator("#program-ask").wait_for(state="visible", timeout=120_000)
    box = page.locator("#program-answer textarea, #program-answer input").first
    box.fill(text)
    page.locator("#program-send").click()


def wait_answers(page, count: int) -> None:
    page.wait_for_function(f"() => document.querySelector('#program-view').innerText.split({HELLO!r}).length - 1 "
                           f">= {count}", timeout=120_000)


def test_the_chatbot_answers_two_messages_and_a_token_shows_its_alternatives(studio_server, browser,
                                                                             artifacts_dir: Path) -> None:
    with open_tab(browser, studio_server.url) as page:
        open_programs(page)
        choose_option(page, "program-example", "Chatbot (user_input)")
        page.wait_for_function("() => document.querySelector('#program-editor').innerText.includes('user_input')")
        page.locator("#program-run").click()
        wait_program_status(page, "waiting for your answer")
        assert "Write a message" in page.locator("#program-ask-label").inner_text()
        answer(page, "hello")
        wait_answers(page, 1)
        answer(page, "how are you?")
        wait_answers(page, 2)
        wait_program_status(page, "waiting for your answer")
        view = page.locator("#program-view")
        assert view.inner_text().count(HELLO) == 2
        page.screenshot(path=str(artifacts_dir / "chatbot-waiting.png"), full_page=True)
        # prompted tokens are drawn plain, sampled ones shaded; a click shows the alternatives after top-P
        assert view.locator(".cs-prompted").count() > 10
        sampled = view.locator(".cs-sampled")
        assert sampled.count() >= 10
        sampled.first.click()
        detail = page.locator("#program-token-detail")
        detail.wait_for()
        text = detail.inner_text()
        assert "top-K after top-P" in text and '"Hello"' in text and "id 259" in text
        # the chatbot asks for attention: the context before the token is shaded by it
        assert "Context shaded by this token's attention" in text
        assert view.locator(".cs-context").first.locator(".cs-attended").count() > 10
        page.screenshot(path=str(artifacts_dir / "token-detail.png"), full_page=True)
        answer(page, "")  # an empty message ends the chatbot's loop
        wait_program_status(page, "finished")
        # Markdown mode shows the context as text
        page.locator("#program-markdown input").check()
        page.locator("#program-view .cs-context-markdown").first.wait_for()
        assert HELLO in page.locator("#program-view").inner_text()


def test_a_run_is_reopened_compared_and_exported_with_its_program(studio_server, browser, artifacts_dir: Path,
                                                                  tmp_path: Path) -> None:
    with open_tab(browser, studio_server.url) as page:
        open_programs(page)
        editor = page.locator("#program-editor .cm-content")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text('set_title("two samples")\nawait prompt("hi")\n'
                                  'print((await sample(temperature=0)).text)\n')
        page.locator("#program-name input, #program-name textarea").first.fill("greeter")
        page.locator("#program-save").click()
        page.locator("#program-note").get_by_text("Saved a new version of greeter").wait_for()
        for _ in range(2):
            page.locator("#program-run").click()
            wait_program_status(page, "finished")
        assert HELLO in page.locator("#program-output textarea").input_value()
        # reopen the older run from the journal, then both side by side
        page.get_by_text("Runs: reopen, compare, export").click()
        page.locator("#program-runs input").click()
        older = page.locator("#program-runs li").nth(1)
        older_label = older.inner_text()
        older.click()
        page.locator("#program-reopen").click()
        page.locator("#program-status").get_by_text("Reopened run").wait_for()
        assert older_label.split(" · ")[0] in page.locator("#program-status").inner_text()
        assert HELLO in page.locator("#program-view").inner_text()
        page.locator("#program-compare-with input").click()
        page.locator("#program-compare-with li").first.click()  # the newest run
        page.locator("#program-compare").click()
        columns = page.locator("#program-side-by-side .cs-compare-column")
        columns.nth(1).wait_for()
        assert columns.count() == 2 and all(HELLO in columns.nth(n).inner_text() for n in range(2))
        headings = [columns.nth(n).locator("h4").inner_text() for n in range(2)]
        assert headings[0] != headings[1] and all(h.endswith("two samples") for h in headings)
        page.screenshot(path=str(artifacts_dir / "side-by-side.png"), full_page=True)
        # export: the program's versions and both runs in one file
        page.locator("#program-export").click()
        page.locator("#program-note").get_by_text("Exported greeter with 2 run(s)").wait_for()
        link = page.locator("#program-export-file a").first
        with page.expect_download() as download:
            link.click()
        saved = tmp_path / "greeter.program.json"
        download.value.save_as(saved)
        shared = json.loads(saved.read_text(encoding="utf-8"))
        assert shared["name"] == "greeter" and len(shared["runs"]) == 2
        assert shared["versions"] == ['set_title("two samples")\nawait prompt("hi")\n'
                                      'print((await sample(temperature=0)).text)\n']
        assert shared["runs"][0]["run"]["title"] == "two samples"
        # import it back under another name: its versions and runs are added
        shared["name"] = "greeter copy"
        saved.write_text(json.dumps(shared), encoding="utf-8")
        with page.expect_file_chooser() as chooser:
            page.locator("#program-import").click()
        chooser.value.set_files(str(saved))
        page.locator("#program-note").get_by_text("Imported greeter copy: 1 new version(s), 2 run(s).").wait_for()
        choose_option(page, "program-saved", "greeter copy")
