"""The Code tab's pure parts: options from the fields, file names, and how a run is shown."""

from __future__ import annotations

import base64
import json
import re

import pytest

from app.core.code_exec import APP, ERROR, OK, TIMEOUT, CodeOutput, CodeResult
from app.core.errors import ChainStudioError
from app.ui.panels.code_panel import (
    code_options,
    frames_js,
    install_missing,
    install_offer,
    plotly_url,
    safe_file_name,
)
from app.ui.render import code_markdown


def test_the_editor_counts_for_chains_only_with_the_ide_marker() -> None:
    assert code_options(True, False, True, False, False, 30, "print(1)").pasted == ""
    chosen = code_options(True, True, False, True, True, 30, "#IDE\nprint(1)")
    assert (chosen.run_code, chosen.stop_condition, chosen.hide_output, chosen.persistent, chosen.timeout,
            chosen.pasted) == (True, True, True, True, 30.0, "#IDE\nprint(1)")
    assert code_options(False, False, False, False, False, None, None).run_code is False


@pytest.mark.parametrize("name, expected", [
    ("analysis", "analysis.py"), ("analysis.py", "analysis.py"), ("../../etc/passwd", "passwd.py"),
    ("/abs/path/x.py", "x.py"), ("my script!.py", "my_script.py"), (".hidden", "hidden.py"),
])
def test_saved_file_names_stay_in_the_saved_folder(name: str, expected: str) -> None:
    assert safe_file_name(name) == expected


def test_a_file_needs_a_name() -> None:
    with pytest.raises(ChainStudioError, match="give the file a name"):
        safe_file_name("  ")


def test_code_markdown_shows_text_images_tables_and_status() -> None:
    shown = code_markdown(CodeResult("c", OK, stdout="42\n", seconds=0.5, outputs=(
        CodeOutput("image/png", "iVBORw0KGgo"), CodeOutput("text/html", "<table><tr><td>1</td></tr></table>"))))
    assert shown.startswith('<sub class="code-status">Code: ran after 0.50 s</sub>')
    assert "````text\n42\n````" in shown
    assert '<img class="code-figure" alt="figure from the code" src="data:image/png;base64,iVBORw0KGgo">' in shown
    assert "<td>1</td>" in shown


def test_code_markdown_for_failures_hidden_output_and_apps() -> None:
    timed_out = code_markdown(CodeResult("c", TIMEOUT, seconds=60, message="timed out after 60 s"))
    assert "timed out after 60.00 s · timed out after 60 s" in timed_out
    error = code_markdown(CodeResult("c", ERROR, stderr="ZeroDivisionError: division by zero\n"))
    assert "raised an error" in error and "ZeroDivisionError" in error
    hidden = code_markdown(CodeResult("c", OK, stdout="secret\n"), hidden=True)
    assert "secret" not in hidden and "(output hidden)" in hidden
    app = code_markdown(CodeResult("c", APP, stdout="Dash app running\n", app_url="http://127.0.0.1:8050/"))
    assert "[http://127.0.0.1:8050/](http://127.0.0.1:8050/)" in app


# -- printed HTML, printed Markdown, Plotly figures ---------------------------------------------------

def frame_document(shown: str) -> str:
    """The document a code-frame placeholder carries (what the page's frame shows)."""
    match = re.search(r'<div class="code-frame" title="[^"]*" style="height:\d+px"><span hidden>([A-Za-z0-9+/=]*)'
                      r"</span></div>", shown)
    assert match, shown
    return base64.b64decode(match.group(1)).decode("utf-8")


def test_printed_html_goes_to_a_frame_placeholder_not_into_the_page() -> None:
    table = '<table border="1" class="dataframe"><tr><td>Lisbon</td></tr></table>\n'
    shown = code_markdown(CodeResult("print(df.to_html())", OK, stdout=table))
    assert frame_document(shown) == table
    assert "<td>Lisbon</td>" not in shown  # only inside the frame: its styles and scripts stay there
    assert "\n\n" not in shown.split("</sub>", 1)[1].strip()  # one HTML block: Markdown leaves it whole


def test_printed_markdown_is_rendered_and_plain_text_stays_verbatim() -> None:
    shown = code_markdown(CodeResult("c", OK, stdout="## Sources\n\nSee [the census](https://example.org/c).\n"))
    assert "## Sources\n\nSee [the census](https://example.org/c)." in shown and "````" not in shown
    plain = code_markdown(CodeResult("c", OK, stdout="   a  b\n0  1  2\n"))
    assert "````text\n   a  b\n0  1  2\n````" in plain
    unclosed = code_markdown(CodeResult("c", OK, stdout="# Code\n```python\nprint(1)\n"))
    assert unclosed.endswith("```python\nprint(1)\n```")  # the rest of the transcript stays outside


def test_html_outputs_with_scripts_get_a_frame_and_plain_tables_stay_inline() -> None:
    figure = ('<!doctype html><html><body><script src="chain-studio-plotly.min.js"></script>'
              '<div id="f"></div><script>Plotly.newPlot("f", [])</script></body></html>')
    shown = code_markdown(CodeResult("fig.show()", OK, outputs=(CodeOutput("text/html", figure),)))
    assert frame_document(shown) == figure and 'style="height:500px"' in shown
    table = code_markdown(CodeResult("df", OK, outputs=(CodeOutput("text/html", "<table><tr><td>1</td></tr></table>"),)))
    assert '<div class="code-html"><table><tr><td>1</td></tr></table></div>' in table


def test_a_missing_module_says_the_code_tab_can_install_it() -> None:
    result = CodeResult("import cv2", ERROR, stderr="ModuleNotFoundError: No module named 'cv2'\n")
    assert "the Code tab offers to install opencv-python into venvs/jupyter" in code_markdown(result)
    button, package = install_offer(result)
    assert package == "opencv-python"
    assert button["visible"] is True and button["value"] == "Install opencv-python into venvs/jupyter"
    hidden, none = install_offer(CodeResult("print(1)", OK, stdout="1\n"))
    assert hidden["visible"] is False and none == ""
    tk = CodeResult("import tkinter", ERROR, stderr="ModuleNotFoundError: No module named 'tkinter'\n")
    assert install_offer(tk)[0]["visible"] is False and "python3-tk" in code_markdown(tk)


class _Journal:
    def __init__(self) -> None:
        self.runs: list[tuple] = []

    def record_code_run(self, run_id, seq, source, result) -> int:
        self.runs.append((run_id, seq, source, result))
        return len(self.runs)


class _Services:
    def __init__(self) -> None:
        self.journal = _Journal()


def test_the_install_button_runs_pip_shows_its_output_and_journals_it() -> None:
    services = _Services()
    asked: list[str] = []

    def fake_pip(package: str, on_output) -> CodeResult:
        asked.append(package)
        on_output("Collecting opencv-python\n")
        return CodeResult("pip install opencv-python", OK, stdout="Collecting opencv-python\nSuccessfully installed\n",
                          seconds=2.0)

    steps = list(install_missing(services, "opencv-python", install=fake_pip))
    assert asked == ["opencv-python"]
    assert steps[0][0]["interactive"] is False and "Installing **opencv-python**" in steps[0][1]
    button, log = steps[-1]
    assert button["visible"] is False  # installed: nothing more to offer
    assert log.startswith("✅ Installed **opencv-python** into venvs/jupyter") and "Successfully installed" in log
    (run_id, seq, source, result), = services.journal.runs
    assert (run_id, seq, source, result.status) == (None, None, "pip install opencv-python", OK)


def test_a_failed_install_keeps_the_button_and_says_why() -> None:
    services = _Services()

    def failing_pip(package: str, on_output) -> CodeResult:
        return CodeResult("pip install nope", ERROR, stdout="ERROR: No matching distribution found for nope\n",
                          message="pip ended with exit code 1")

    button, log = list(install_missing(services, "nope", install=failing_pip))[-1]
    assert button["visible"] is True and log.startswith("⚠️ pip could not install **nope**")
    assert "No matching distribution" in log and len(services.journal.runs) == 1
    assert list(install_missing(services, "--index-url=x", install=failing_pip))[-1][1].startswith(
        "⚠️ There is no missing package")


def test_the_page_script_gets_plotlys_address_from_the_studio() -> None:
    script = frames_js()
    assert "__" not in script.replace("__proto__", "")
    assert '"chain-studio-plotly.min.js"' in script
    url = plotly_url()
    assert url.startswith("/gradio_api/file=") and url.endswith("/plotly/package_data/plotly.min.js")
    assert json.dumps(url) in script


def test_a_chain_whose_code_lacks_a_module_shows_the_install_button() -> None:
    import gradio as gr

    from app.core.events import CodeFinished
    from app.ui.panels.code_panel import CodeRunView, build

    with gr.Blocks():
        panel = build()
    assert panel.run_outputs() == [panel.output, panel.install, panel.install_package]
    view = CodeRunView(panel)
    missing = CodeResult("import yaml", ERROR, stderr="ModuleNotFoundError: No module named 'yaml'\n")
    view.on_event(CodeFinished(1, missing, "answer"))
    shown = view.values(complete=True)
    assert shown[panel.install]["visible"] is True and shown[panel.install_package] == "pyyaml"
    assert view.values(complete=False) == {}  # nothing new since
    view.on_event(CodeFinished(2, CodeResult("print(1)", OK, stdout="1\n"), "answer"))
    assert view.values(complete=True)[panel.install]["visible"] is False
