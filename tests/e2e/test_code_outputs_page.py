"""What the code shows, in headless Chromium against the real studio and real kernels: printed HTML
in a sandboxed frame, printed Markdown as Markdown, an interactive Plotly figure (plotly.js from
the studio, offline), the missing-package button and "Open a DataFrame in D-Tale"."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import run_prompt, wait_status
from tests.e2e.test_code_page import set_code

pytestmark = pytest.mark.e2e

# With "Keep variables between runs" each answer's run goes one step further: the first prints an
# HTML table, the second Markdown with a link, the third shows a Plotly figure.
STEPS = """#IDE
import pandas as pd
try:
    frames_step += 1
except NameError:
    frames_step = 1
if frames_step == 1:
    cities = pd.DataFrame({"city": ["Lisbon", "Porto"], "people": [545000, 232000]})
    print(cities.to_html(index=False))
elif frames_step == 2:
    print("## Sources\\n\\nSee [the census](https://example.org/census) for **the numbers**.")
elif frames_step == 3:
    import plotly.express as px
    px.bar(x=["Lisbon", "Porto"], y=[545000, 232000], title="people").show()
else:
    print("step", frames_step)
"""


@pytest.fixture
def page(page):
    """The shared new tab, with the Code tab open."""
    page.get_by_role("tab", name="Code").click()
    return page


def test_printed_html_markdown_and_a_plotly_figure_render_in_the_transcript(page, artifacts_dir: Path) -> None:
    page.locator("#option-run-code input").check()
    page.locator("#option-persistent input").check()
    set_code(page, STEPS)
    run_prompt(page, "a table\na link\na figure")
    page.get_by_role("tab", name="Transcript").click()
    transcript = page.locator("#transcript")
    frames = transcript.locator("iframe.code-frame-view")
    frames.nth(1).wait_for(timeout=30_000)
    assert frames.count() == 2
    assert {frames.nth(i).get_attribute("sandbox") for i in range(2)} == {"allow-scripts"}
    # printed HTML: a real table inside the first frame, sized to it
    table = page.frame_locator("#transcript iframe.code-frame-view >> nth=0").locator("table")
    table.locator("td", has_text="Lisbon").wait_for(timeout=30_000)
    assert table.locator("tr").count() == 3
    # printed Markdown: a heading, bold text and a link in the transcript itself
    link = transcript.locator('a[href="https://example.org/census"]')
    assert link.inner_text() == "the census"
    assert transcript.locator("h2", has_text="Sources").count() == 1
    assert transcript.locator("strong", has_text="the numbers").count() == 1
    # Plotly: the figure is drawn by plotly.js (served by the studio, no network) in the second frame
    figure = page.frame_locator("#transcript iframe.code-frame-view >> nth=1")
    figure.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    assert figure.locator(".js-plotly-plot .trace.bars .point").count() == 2
    assert figure.locator(".modebar").count() == 1  # Plotly's toolbar: the interactive figure
    box = frames.nth(1).bounding_box()
    assert box is not None and box["height"] > 300 and box["width"] > 300
    page.screenshot(path=str(artifacts_dir / "outputs-in-transcript.png"), full_page=True)

    # A later answer streams into the same transcript: the frames stay (not rebuilt nor reloaded).
    frames.nth(0).evaluate("frame => { frame.dataset.kept = 'yes'; }")
    page.locator("#user-prompt textarea").fill("one more")
    page.locator("#user-prompt textarea").press("Enter")
    transcript.get_by_text("step 4").wait_for(timeout=90_000)  # (the status still says the last run finished)
    wait_status(page, "Run finished.")
    assert transcript.locator("iframe.code-frame-view[data-kept=yes]").count() == 1
    page.get_by_role("tab", name="Code").click()
    page.locator("#option-persistent input").uncheck()
    page.locator("#option-run-code input").uncheck()


def test_a_missing_module_offers_to_install_its_package(page) -> None:
    page.locator("#install-package").wait_for(state="hidden")
    set_code(page, "import cv2\nprint(cv2.__version__)")
    page.locator("#run-code").click()
    button = page.locator("#install-package")
    button.wait_for(timeout=90_000)
    assert button.inner_text().strip() == "Install opencv-python into venvs/jupyter"
    assert "the Code tab offers to install opencv-python" in page.locator("#code-output").inner_text()
    set_code(page, "print('fine')")
    page.locator("#run-code").click()
    button.wait_for(state="hidden", timeout=90_000)


def test_open_the_newest_dataframe_in_dtale(page, artifacts_dir: Path) -> None:
    page.locator("#option-persistent input").check()
    set_code(page, "import pandas as pd\nfirst = pd.DataFrame({'a': [1]})\n"
                   "sales = pd.DataFrame({'item': ['tea', 'bread', 'milk'], 'price': [2.5, 1.2, 0.9]})")
    page.locator("#run-code").click()
    page.locator("#code-status").get_by_text("Code: ok").wait_for(timeout=90_000)
    page.locator("#open-dtale").click()
    link = page.locator("#dtale-link a")
    link.wait_for(timeout=180_000)
    url = link.get_attribute("href") or ""
    assert url.startswith("http://127.0.0.1:") and "/dtale/main/" in url
    assert "sales" in page.locator("#dtale-link").inner_text() and "3 rows × 2 columns" in \
        page.locator("#dtale-link").inner_text()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
    dtale = page.context.new_page()
    dtale.goto(url)
    dtale.get_by_text("bread").first.wait_for(timeout=60_000)  # D-Tale's grid, drawn offline
    dtale.screenshot(path=str(artifacts_dir / "dtale.png"))
    dtale.close()
    page.locator("#close-python").click()
    page.locator("#code-status").get_by_text("Closed Python").wait_for()
    page.locator("#option-persistent input").uncheck()
