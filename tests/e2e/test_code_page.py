"""The Code tab and code execution in chains, in headless Chromium against the real studio, its
demo model and real kernels from venvs/jupyter."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import refresh_until_finished, run_prompt, wait_status

pytestmark = pytest.mark.e2e
HELLO = "Hello from the demo model."


@pytest.fixture
def page(page):
    """The shared new tab, with the Code tab open."""
    page.get_by_role("tab", name="Code").click()
    return page


def set_code(page, code: str) -> None:
    editor = page.locator("#code-editor .cm-content")
    # the editor follows the last answer: its progress overlay may cover it for a while on a busy
    # machine (a generous hang guard, not a speed check)
    editor.click(timeout=120_000)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    editor.fill(code)


def test_a_matplotlib_plot_appears_as_an_image_in_the_transcript(page, artifacts_dir: Path) -> None:
    assert not page.locator("#code-on-banner").is_visible()
    page.locator("#option-run-code input").check()
    page.locator("#code-on-banner").get_by_text("Code execution is on").wait_for()
    set_code(page, "#IDE\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title('squares')\nplt.show()")
    run_prompt(page, "draw squares")
    page.get_by_role("tab", name="Transcript").click()
    figure = page.locator("#transcript img.code-figure")
    figure.wait_for(timeout=30_000)
    box = figure.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    assert figure.evaluate("img => img.complete && img.naturalWidth > 100")  # a real, decoded image
    assert HELLO in page.locator("#transcript").inner_text()
    page.screenshot(path=str(artifacts_dir / "plot-in-transcript.png"), full_page=True)
    page.get_by_role("tab", name="Code").click()
    page.locator("#option-run-code input").uncheck()
    page.locator("#code-on-banner").wait_for(state="hidden")


def test_last_answer_code_fills_the_editor_and_runs_by_hand(page) -> None:
    run_prompt(page, "compute %")
    page.locator("#code-editor .cm-content").get_by_text("print(6 * 7)").wait_for(timeout=30_000)
    assert page.locator("#code-output").inner_text().strip() == "Outputs of the code appear here."  # off: nothing ran
    page.locator("#run-code").click()
    page.locator("#code-output").get_by_text("42", exact=True).wait_for(timeout=90_000)
    assert "ran after" in page.locator("#code-output").inner_text()


def test_auto_run_shows_output_under_the_answer_and_feeds_it_back(page) -> None:
    page.locator("#option-run-code input").check()
    page.locator("#option-feed-output input").check()
    run_prompt(page, "compute %\nand then")
    page.get_by_role("tab", name="Transcript").click()
    transcript = page.locator("#transcript")
    assert transcript.locator(".code-status").first.inner_text().startswith("Code: ran after")
    assert "42" in transcript.inner_text()


def test_endless_code_times_out_while_the_studio_keeps_answering(page, artifacts_dir: Path) -> None:
    set_code(page, "while True:\n    pass")
    page.locator("#code-timeout input").fill("20")  # the model answers well within it, even on a slow machine
    page.locator("#run-code").click()
    page.locator("#code-status").get_by_text("Running").wait_for(timeout=30_000)
    page.locator("#user-prompt textarea").fill("hello while the code loops")
    page.locator("#user-prompt textarea").press("Enter")
    wait_status(page, "Run finished.")  # the model answered while the code was still looping
    page.get_by_role("tab", name="Transcript").click()
    assert HELLO in page.locator("#transcript").inner_text()
    page.get_by_role("tab", name="Code").click()
    assert "Running" in page.locator("#code-status").inner_text()  # the loop was still going
    page.locator("#code-output").get_by_text("timed out after 20 s").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "timed-out.png"), full_page=True)
    set_code(page, "print('next run works')")
    page.locator("#run-code").click()
    page.locator("#code-output").get_by_text("next run works").wait_for(timeout=60_000)


def test_save_a_file_and_run_it(page) -> None:
    set_code(page, "print(sum(range(10)))")
    page.locator("#code-file-name textarea").fill("../sum of range")
    page.locator("#save-code").click()
    page.locator("#code-status").get_by_text("Saved").wait_for()
    assert "scripts/sum_of_range.py" in page.locator("#code-status").inner_text()
    set_code(page, "print('something else')")
    page.locator("#run-saved").click()
    page.locator("#code-output").get_by_text("45", exact=True).wait_for(timeout=60_000)


def test_jupyterlab_opens_on_loopback_with_a_token_and_close_python_stops_it(page) -> None:
    page.locator("#open-jupyterlab").click()
    link = page.locator("#jupyterlab-link a")
    link.wait_for(timeout=120_000)
    url = link.get_attribute("href") or ""
    assert url.startswith("http://127.0.0.1:") and "token=" in url
    page.locator("#close-python").click()
    page.locator("#code-status").get_by_text("Closed Python").wait_for()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_a_reopened_run_shows_its_code_output(page) -> None:
    page.locator("#option-run-code input").check()
    run_prompt(page, "for the history, compute %")
    page.locator("#clear").click()
    page.get_by_role("tab", name="History").click()
    refresh_until_finished(page)
    run_id = page.locator("#history-runs [data-testid=cell-0-0]").inner_text().strip()
    page.locator("#history-run-id input").fill(run_id)
    page.locator("#history-reopen").click()
    wait_status(page, f"Reopened run {run_id}.")
    page.get_by_role("tab", name="Transcript").click()
    transcript = page.locator("#transcript")
    assert transcript.locator(".code-status").first.inner_text().startswith("Code: ran after")
    assert "42" in transcript.inner_text().split("Code: ran after")[1]
