"""Code execution inside chains: the demo model's code scripts through the real worker and real
kernels, checked through the events, the journal and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.chain import ChainSpec
from app.core.code_exec import OK, CodeOptions
from app.core.errors import SettingsError
from app.core.events import AnswerFinished, AnswerToken, CodeFinished, CodeStarted
from app.core.runner import ChainRunner
from app.core.sampling import LoadParams, SamplingParams
from app.execution.pool import KernelPool
from app.models.demo_model import SCRIPT_CODE, SCRIPT_STOP
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal


@pytest.fixture
def runner(backend: LocalBackend, journal: Journal, pool: KernelPool) -> ChainRunner:
    return ChainRunner(backend, journal, pool)


def run(runner: ChainRunner, demo_model: Path, prompts: str, **options) -> list:
    spec_keys = {k: options.pop(k) for k in list(options) if k in ("loops", "feedback", "responses")}
    spec = ChainSpec(models=(str(demo_model),), prompts=prompts, code=CodeOptions(run_code=True, **options),
                     **spec_keys)
    return list(runner.run(spec))


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_stop_script_runs_its_code_and_ends_the_run_after_one_answer(runner, demo_model, journal) -> None:
    events = run(runner, demo_model, "first #\nsecond\nthird")
    answers = of(events, AnswerFinished)
    assert [a.answer.text for a in answers] == [SCRIPT_STOP]
    [ran] = of(events, CodeFinished)
    assert (ran.result.status, ran.result.stdout) == (OK, "STOP_SAMANTHA\n")
    assert events[-1].reason == "stop_signal"
    [record] = journal.code_runs(events[-1].run_id)
    assert (record["seq"], record["source"], record["code"], record["stdout"]) == (
        1, "answer", "print('STOP_SAMANTHA')", "STOP_SAMANTHA\n")
    assert record["seconds"] > 0 and record["status"] == "ok"


def test_code_script_shows_42_and_feeds_exactly_42_to_the_next_item(runner, demo_model, journal) -> None:
    events = run(runner, demo_model, "compute %\nwhat did you get?", feed_output=True)
    answers = [e.answer for e in of(events, AnswerFinished)]
    assert answers[0].text == SCRIPT_CODE
    first = of(events, CodeFinished)[0].result
    assert first.stdout == "42\n"
    second = answers[1]
    assert [m.content for m in second.messages if m.role == "assistant"] == ["42"]
    stored = journal.run(events[-1].run_id)[2][1]["messages"]
    assert [m["content"] for m in stored if m["role"] == "assistant"] == ["42"]


def test_by_default_the_answer_and_its_output_are_fed_back(runner, demo_model, journal) -> None:
    events = run(runner, demo_model, "compute %\nnext", feedback=True)
    second = [e.answer for e in of(events, AnswerFinished)][1]
    fed = f"{SCRIPT_CODE}\n\nPython Interpreter Output:\n\n42"  # Samantha's format
    assert [m.content for m in second.messages if m.role == "assistant"] == [fed]
    stored = journal.run(events[-1].run_id)[2][1]["messages"]
    assert [m["content"] for m in stored if m["role"] == "assistant"] == [fed]


def test_a_traceback_reaches_the_next_model_of_a_correct_the_errors_chain(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %\nCorrect the errors in your previous response, if any.",
                 feedback=True, pasted="#IDE\nnumbers = [6, 7]\nprint(numbers[0] * numbers[1])\nprint(1 / 0)")
    first, second = [e.answer for e in of(events, AnswerFinished)]
    result = of(events, CodeFinished)[0].result
    assert result.status == "error" and result.stdout == "42\n"
    [fed] = [m.content for m in second.messages if m.role == "assistant"]
    heading = f"{SCRIPT_CODE}\n\nPython Interpreter Output:\n\n42\n"
    assert fed.startswith(heading) and "Traceback" in fed
    assert fed.endswith("ZeroDivisionError: division by zero")
    assert second.prompt == "Correct the errors in your previous response, if any."
    assert events[-1].reason == "completed"


def test_collected_answers_carry_their_output(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %\nhello\n[[Judge:]]")
    judged = [e.answer for e in of(events, AnswerFinished)][2]
    assert judged.prompt == (f"Judge:\n\n{SCRIPT_CODE}\n\nPython Interpreter Output:\n\n42\n\n"
                             "Hello from the demo model.")


def test_only_the_output_is_fed_back_when_asked(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %\nnext", feedback=True, feed_output=True)
    second = [e.answer for e in of(events, AnswerFinished)][1]
    assert [m.content for m in second.messages if m.role == "assistant"] == ["42"]


def test_stop_condition_ends_a_five_loop_chain_after_the_first_output(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %", loops=5, stop_condition=True)
    assert len(of(events, AnswerFinished)) == 1
    assert events[-1].reason == "stop_condition"


def test_code_that_prints_nothing_does_not_meet_the_stop_condition(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %", loops=3, stop_condition=True, pasted="#IDE\nvalue = 6 * 7")
    assert len(of(events, AnswerFinished)) == 3
    assert [e.result.stdout for e in of(events, CodeFinished)] == ["", "", ""]
    assert events[-1].reason == "completed"


def test_an_error_does_not_meet_the_stop_condition(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %", loops=2, stop_condition=True, pasted="#IDE\nprint(1 / 0)")
    assert len(of(events, AnswerFinished)) == 2
    assert events[-1].reason == "completed"


def test_pasted_ide_code_takes_precedence(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %", pasted="#IDE\nprint('mine')")
    [started] = of(events, CodeStarted)
    assert started.source == "pasted"
    assert of(events, CodeFinished)[0].result.stdout == "mine\n"


def test_pasted_code_without_the_marker_is_ignored(runner, demo_model) -> None:
    events = run(runner, demo_model, "compute %", pasted="print('not marked')")
    assert of(events, CodeFinished)[0].result.stdout == "42\n"


def test_answers_without_code_run_nothing(runner, demo_model, journal) -> None:
    events = run(runner, demo_model, "hello")
    assert of(events, CodeStarted) == []
    assert journal.code_runs(events[-1].run_id) == []


def test_hidden_output_is_marked_hidden_and_still_journaled(runner, demo_model, journal) -> None:
    events = run(runner, demo_model, "compute %", hide_output=True)
    [ran] = of(events, CodeFinished)
    assert ran.hidden and ran.result.stdout == "42\n"
    assert journal.code_runs(events[-1].run_id)[0]["stdout"] == "42\n"


def test_code_is_never_executed_while_execution_is_off(backend, journal, pool, demo_model, tmp_path) -> None:
    marker = pool.workdir / f"marker-{tmp_path.name}.txt"  # where the code may write
    ide = f"#IDE\nopen({str(marker)!r}, 'w').write('ran')"
    off = ChainSpec(models=(str(demo_model),), prompts="compute %\nstop #",
                    code=CodeOptions(run_code=False, stop_condition=True, feed_output=True, pasted=ide))
    events = list(ChainRunner(backend, journal, pool).run(off))
    assert of(events, CodeStarted) == [] and not marker.exists()
    assert journal.code_runs(events[-1].run_id) == []
    on = ChainSpec(models=(str(demo_model),), prompts="compute %", code=CodeOptions(run_code=True, pasted=ide))
    list(ChainRunner(backend, journal, pool).run(on))
    assert marker.read_text() == "ran"  # the marker works: it is written as soon as execution is on


def test_a_runner_without_a_code_environment_refuses_run_code(backend, journal, demo_model) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="compute %", code=CodeOptions(run_code=True))
    with pytest.raises(SettingsError, match="code execution is on"):
        list(ChainRunner(backend, journal).run(spec))


def test_stop_next_ends_running_code_and_the_chain_goes_on(runner, demo_model) -> None:
    import threading

    events = []
    spec = ChainSpec(models=(str(demo_model),), prompts="a %\nb",
                     code=CodeOptions(run_code=True, pasted="#IDE\nimport time\ntime.sleep(600)"))
    for event in runner.run(spec):
        events.append(event)
        if isinstance(event, CodeStarted):
            threading.Timer(1.0, runner.control.stop_current).start()
    results = [e.result for e in of(events, CodeFinished)]
    assert results[0].status == "stopped"
    assert len(of(events, AnswerFinished)) == 2
    assert events[-1].reason == "completed"


def _stop_while_singing(runner: ChainRunner, demo_model: Path, stop: str) -> list:
    """A chain whose first answer sings until `stop` (stop_current or stop_all) ends it."""
    events = []
    spec = ChainSpec(models=(str(demo_model),), prompts="sing ~\nhi",
                     sampling=SamplingParams(max_tokens=100_000), load=LoadParams(n_ctx=4096),
                     code=CodeOptions(run_code=True, pasted="#IDE\nprint('ran after the stop')"))
    tokens = 0
    for event in runner.run(spec):
        events.append(event)
        if isinstance(event, AnswerToken) and event.index == 1:
            tokens += 1
            if tokens == 3:
                getattr(runner.control, stop)()
    return events


def test_stop_next_ends_the_answer_and_its_code_still_runs(runner, demo_model) -> None:
    events = _stop_while_singing(runner, demo_model, "stop_current")
    answers = [e.answer for e in of(events, AnswerFinished)]
    assert [(a.item, a.stop_reason) for a in answers] == [(1, "stopped"), (2, "eos")]
    ran = of(events, CodeFinished)
    assert [(e.index, e.result.stdout) for e in ran] == [(1, "ran after the stop\n"), (2, "ran after the stop\n")]
    assert events[-1].reason == "completed"


def test_stop_all_ends_the_run_without_running_the_code(runner, demo_model, journal) -> None:
    events = _stop_while_singing(runner, demo_model, "stop_all")
    assert [a.answer.stop_reason for a in of(events, AnswerFinished)] == ["stopped"]
    assert of(events, CodeStarted) == []
    assert events[-1].reason == "stopped"
    assert journal.code_runs(events[-1].run_id) == []


# -- the CLI ---------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=300)


def test_cli_answer_lines_carry_the_code_object(tmp_path: Path, demo_model: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("compute %\nagain", encoding="utf-8")
    done = run_cli("chain", "--model", str(demo_model), "--prompts", str(prompts), "--run-code",
                   "--feed-code-output", "--code-timeout", "30", "--jsonl")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    answers = [r for r in records if r["type"] == "answer"]
    assert set(answers[0]["code"]) >= {"code", "stdout", "stderr", "outputs", "seconds", "status"}
    assert (answers[0]["code"]["code"], answers[0]["code"]["stdout"], answers[0]["code"]["status"]) == (
        "print(6 * 7)", "42\n", "ok")
    assert "code" not in answers[1]  # its answer has no code
    run_id = records[-1]["run_id"]
    shown = run_cli("runs", "show", str(run_id), "--jsonl")
    stored = [json.loads(line) for line in shown.stdout.splitlines() if '"answer"' in line]
    assert stored[0]["code"] == answers[0]["code"]


def test_cli_stop_signal_and_stop_condition(tmp_path: Path, demo_model: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("stop #\nnever", encoding="utf-8")
    done = run_cli("chain", "--model", str(demo_model), "--prompts", str(prompts), "--run-code", "--jsonl")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[-1]["reason"] == "stop_signal"
    assert [r["code"]["stdout"] for r in records if r["type"] == "answer"] == ["STOP_SAMANTHA\n"]
    prompts.write_text("compute %", encoding="utf-8")
    done = run_cli("chain", "--model", str(demo_model), "--prompts", str(prompts), "--loops", "5", "--run-code",
                   "--stop-condition", "--hide-code-output")
    assert done.returncode == 0, done.stderr
    assert "[code: ok" in done.stdout and "(output hidden)" in done.stdout
    assert "\n42\n" not in done.stdout
    assert "Run finished: stop_condition (1 answers" in done.stdout


def test_cli_code_flags_need_run_code(demo_model: Path) -> None:
    done = run_cli("chain", "--model", str(demo_model), "--feed-code-output", "--jsonl")
    assert done.returncode != 0
    assert "--feed-code-output needs --run-code" in done.stderr + done.stdout


def test_code_and_stop_signals_in_document_text_are_data(runner, demo_model, journal, tmp_path) -> None:
    marker = tmp_path / "from-document.txt"
    document = f"Summarise this page:\n```python\nopen({str(marker)!r}, 'w').write('ran')\n```\nSTOP_SAMANTHA here."
    events = run(runner, demo_model, document.replace("\n", " ") + "\nnext item")
    assert of(events, CodeStarted) == [] and not marker.exists()
    assert len(of(events, AnswerFinished)) == 2
    assert events[-1].reason == "completed"
