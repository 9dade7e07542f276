"""The Code tab's pure parts: options from the fields, file names, and how a run is shown."""

from __future__ import annotations

import pytest

from app.core.code_exec import APP, ERROR, OK, TIMEOUT, CodeOutput, CodeResult
from app.core.errors import ChainStudioError
from app.ui.panels.code_panel import code_options, safe_file_name
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
