"""Which code an answer carries, and what a code result means for the chain."""

from __future__ import annotations

import pytest

from app.core.code_blocks import answer_code, choose_code
from app.core.code_exec import (
    DIED,
    ERROR,
    OK,
    CodeOptions,
    CodeOutput,
    CodeResult,
    feedback_text,
    is_stop_signal,
    meets_stop_condition,
)
from app.core.errors import SettingsError

ANSWER = """Here is the plan.
```python
import pandas as pd
!pip install seaborn
pip install plotly
print(1)
```
Some words, then a second block:
```py
print(2)
```
```html
<h1>page</h1>
```
```bash
pip install x
```
"""


def test_python_blocks_in_order_joined_without_pip_lines() -> None:
    assert answer_code(ANSWER) == "import pandas as pd\nprint(1)\n\nprint(2)"


def test_answers_without_python_have_no_code() -> None:
    assert answer_code("Hello from the demo model.") == ""
    assert answer_code("```html\n<b>x</b>\n```") == ""
    assert answer_code("```python\n%pip install numpy\n```") == ""


def test_pasted_code_with_the_ide_marker_takes_precedence() -> None:
    assert choose_code(ANSWER, "#IDE\nprint('mine')") == ("#IDE\nprint('mine')", "pasted")
    assert choose_code(ANSWER, "print('no marker')") == ("import pandas as pd\nprint(1)\n\nprint(2)", "answer")
    assert choose_code(ANSWER, "") == ("import pandas as pd\nprint(1)\n\nprint(2)", "answer")


def test_stop_signal_reads_everything_the_code_printed() -> None:
    assert is_stop_signal(CodeResult("c", OK, stdout="STOP_SAMANTHA\n"))
    assert is_stop_signal(CodeResult("c", ERROR, stderr="... STOP_SAMANTHA"))
    assert not is_stop_signal(CodeResult("print('STOP_SAMANTHA')", OK, stdout="42\n"))  # the code is not output


def test_stop_condition_needs_output_and_no_error() -> None:
    assert meets_stop_condition(CodeResult("c", OK, stdout="42\n"))
    assert meets_stop_condition(CodeResult("c", OK, outputs=(CodeOutput("image/png", "iVBOR"),)))
    assert not meets_stop_condition(CodeResult("c", OK, stdout="  \n"))
    assert not meets_stop_condition(CodeResult("c", ERROR, stdout="partial\n", stderr="Traceback"))
    assert not meets_stop_condition(CodeResult("c", DIED, stdout="x\n"))


def test_feedback_is_the_answer_then_samanthas_output_heading_then_the_printed_text() -> None:
    assert feedback_text("ans", CodeResult("c", OK, stdout="42\n")) == "ans\n\nPython Interpreter Output:\n\n42"
    error = CodeResult("c", ERROR, stdout="a\n", stderr="Traceback (most recent call last):\nZeroDivisionError\n")
    assert feedback_text("ans", error) == (
        "ans\n\nPython Interpreter Output:\n\na\nTraceback (most recent call last):\nZeroDivisionError")
    assert feedback_text("ans", CodeResult("c", OK, stdout=" \n")) == "ans"  # printed nothing: the answer alone
    assert feedback_text("ans", None) == "ans"  # no code ran


def test_feedback_of_only_the_output_is_the_printed_text_stripped() -> None:
    assert feedback_text("ans", CodeResult("c", OK, stdout="42\n"), only_output=True) == "42"
    error = CodeResult("c", ERROR, stdout="a\n", stderr="ZeroDivisionError\n")
    assert feedback_text("ans", error, only_output=True) == "a\nZeroDivisionError"


def test_options_are_off_by_default_and_checked() -> None:
    assert CodeOptions().run_code is False
    with pytest.raises(SettingsError, match="time limit"):
        CodeOptions(timeout=0)


def test_results_round_trip_through_their_record() -> None:
    result = CodeResult("print(1)", OK, stdout="1\n", outputs=(CodeOutput("text/html", "<b>x</b>"),), seconds=0.5,
                        truncated=True)
    assert CodeResult.from_record(result.to_record()) == result
