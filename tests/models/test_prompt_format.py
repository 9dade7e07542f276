"""Prompt formats on the real demo model and llama.cpp: the model's own template, raw completion
(the default for a file without a template, instead of a made-up "User: … Assistant:" transcript)
and llama.cpp's built-in templates, per run and per item, journaled as sent."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from app.core.chain import ChainSpec
from app.core.errors import ChainStudioError, SettingsError
from app.core.events import AnswerFinished, Failure
from app.core.prompt_format import BUILTIN_TEMPLATES
from app.core.runner import ChainRunner
from app.models.demo_model import SCRIPT_HELLO, write_demo_model
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal
from app.ui.render import TranscriptBuilder


@pytest.fixture(scope="module")
def templateless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model written without a chat template (like many base models' files)."""
    return write_demo_model(tmp_path_factory.mktemp("bare") / "bare.gguf", chat_template=None)


@pytest.fixture
def runner(backend: LocalBackend, studio_home: Path) -> Iterator[ChainRunner]:
    journal = Journal()
    yield ChainRunner(backend, journal)
    journal.close()


def answers(runner: ChainRunner, spec: ChainSpec) -> list:
    events = list(runner.run(spec))
    failures = [e for e in events if isinstance(e, Failure)]
    assert not failures, failures
    return [e.answer for e in events if isinstance(e, AnswerFinished)]


def test_the_builtin_list_is_llama_cpp_s() -> None:
    import llama_cpp

    count = llama_cpp.llama_chat_builtin_templates(None, 0)
    names = (ctypes.c_char_p * count)()
    llama_cpp.llama_chat_builtin_templates(names, count)
    assert sorted(BUILTIN_TEMPLATES) == sorted(name.decode() for name in names)


def test_a_file_without_a_template_gets_raw_completion(runner: ChainRunner, templateless: Path) -> None:
    spec = ChainSpec(models=(str(templateless),), prompts="hi", system="Be brief.")
    answer = answers(runner, spec)[0]
    assert answer.prompt_format == "raw"
    assert answer.sent == "Be brief.\n\nhi"  # plain text the model continues: no roles made up
    assert answer.text == SCRIPT_HELLO and answer.stop_reason == "eos"
    builder = TranscriptBuilder([])
    builder.apply(AnswerFinished(answer))
    assert builder.entries == []  # (no AnswerStarted: nothing to update)
    from app.ui.render import finished_title

    assert finished_title(answer).endswith("· raw completion")


def test_the_model_s_own_template_is_the_default_when_there_is_one(runner: ChainRunner, demo_model: Path) -> None:
    answer = answers(runner, ChainSpec(models=(str(demo_model),), prompts="hi"))[0]
    assert answer.prompt_format == "model" and answer.sent == "hi"  # the demo template joins the contents


def test_a_builtin_template_per_item_and_per_run(runner: ChainRunner, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts='{template="chatml"} hi\nhello', template="raw")
    first, second = answers(runner, spec)
    assert first.prompt_format == "chatml"
    assert first.sent == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert second.prompt_format == "raw" and second.sent == "hello"
    assert "<|im_" not in first.text  # special tokens never reach the text
    journaled = Journal().stored_run(runner.recorder.runs(1)[0].id)  # type: ignore[union-attr]
    assert journaled is not None and [a.sent for a in journaled.answers] == [first.sent, second.sent]
    assert [a.prompt_format for a in journaled.answers] == ["chatml", "raw"]


def test_feedback_and_aggregate_items_work_in_raw_completion(runner: ChainRunner, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi\nhello\n[[sum up:]]", feedback=True, template="raw")
    first, second, summary = answers(runner, spec)
    assert second.sent == first.text + "\n\nhello"  # the previous answer, then the item
    assert summary.sent.startswith(second.text + "\n\nsum up:")
    assert summary.sent.count(first.text) >= 2  # [[…]] collected both answers


@pytest.mark.parametrize("bad", ["jinja", "chatml2", ""])
def test_an_unknown_format_is_refused_before_anything_runs(runner: ChainRunner, demo_model: Path, bad: str) -> None:
    with pytest.raises(ChainStudioError, match="template must be auto, model, raw or one of llama.cpp's 54 templates"):
        runner.plan(ChainSpec(models=(str(demo_model),), prompts=f'{{template="{bad}"}} hi'))
    with pytest.raises(SettingsError, match="template must be"):
        ChainSpec(models=(str(demo_model),), prompts="hi", template=bad)


def test_the_model_s_own_template_on_a_file_without_one_says_so(runner: ChainRunner, templateless: Path) -> None:
    events = list(runner.run(ChainSpec(models=(str(templateless),), prompts="hi", template="model")))
    failure = next(e for e in events if isinstance(e, Failure))
    assert "has no chat template of its own" in failure.message and "raw completion" in failure.message


def test_the_cli_takes_template_and_reports_the_format(templateless: Path, studio_home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "chain", "--model", str(templateless), "--template", "chatml", "--jsonl",
         "--prompts", "-"], input="hi", cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    answer = next(line for line in lines if line.get("type") == "answer")
    assert answer["prompt_format"] == "chatml" and answer["text"] == SCRIPT_HELLO


def test_a_format_per_model_with_the_item_winning(runner: ChainRunner, demo_model: Path, templateless: Path) -> None:
    from app.core.prompt_format import split_model_line

    assert split_model_line('bare.gguf {template="chatml"}') == ("bare.gguf", "chatml")
    assert split_model_line("bare.gguf") == ("bare.gguf", None)
    with pytest.raises(SettingsError, match="bare.gguf: template must be"):
        split_model_line("bare.gguf {template=nope}")
    spec = ChainSpec(models=(str(templateless), str(demo_model)), prompts='hi\n{template="raw"} hello',
                     model_templates=((str(templateless), "chatml"),))
    formats = [(a.model, a.item, a.prompt_format) for a in answers(runner, spec)]
    assert formats == [("bare.gguf", 1, "chatml"), ("bare.gguf", 2, "raw"),
                       ("chain-studio-demo.gguf", 1, "model"), ("chain-studio-demo.gguf", 2, "raw")]


def test_the_models_field_takes_a_format_per_line(studio_home: Path, demo_model: Path) -> None:
    from app.ui.panels.models_panel import model_lines

    folder = str(demo_model.parent)
    assert model_lines('chain-studio-demo.gguf {template="llama3"}\n---x\nchain-studio-demo.gguf', folder) == [
        (str(demo_model), "llama3"), (str(demo_model), None)]
