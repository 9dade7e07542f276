"""Reasoning in answers: split from the text, shown folded, journaled apart, never acted on (no
STOP_SAMANTHA, no code run, not fed back unless asked). The demo model's '&' script reasons first."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.chain import ChainSpec
from app.core.code_exec import CodeOptions
from app.core.events import AnswerFinished, CodeStarted, RunFinished
from app.core.reasoning import split_reasoning
from app.core.runner import ChainRunner
from app.models.demo_model import SCRIPT_HELLO, THOUGHT
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal
from app.ui.render import TranscriptBuilder, render_transcript


@pytest.mark.parametrize(("text", "expected"), [
    ("<think>plan</think>Answer", ("plan", "Answer")),
    ("  <think>\nplan\n</think>\n\nAnswer", ("plan", "Answer")),
    ("plan opened by the template</think>Answer", ("plan opened by the template", "Answer")),
    ("<think>cut short", ("cut short", "")),
    ("[THINK]plan[/THINK]Answer", ("plan", "Answer")),
    ("No reasoning <think> here", ("", "No reasoning <think> here")),
])
def test_split_reasoning(text: str, expected: tuple[str, str]) -> None:
    assert split_reasoning(text) == expected


class _NoCode:
    def prepare(self, persistent: bool, offline: bool = False) -> None:
        pass

    def run(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("code inside reasoning must not run")


def test_reasoning_is_kept_apart_and_never_acted_on(backend: LocalBackend, studio_home: Path,
                                                    demo_model: Path) -> None:
    journal = Journal()
    runner = ChainRunner(backend, journal, _NoCode())  # type: ignore[arg-type]
    spec = ChainSpec(models=(str(demo_model),), prompts="think &\nhi", feedback=True,
                     code=CodeOptions(run_code=True))
    events = list(runner.run(spec))
    first, second = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert (first.reasoning, first.text) == (THOUGHT, SCRIPT_HELLO)
    assert dataclasses.replace(events[-1], metrics=None) == RunFinished(events[0].run_id, "completed", 2, 0)  # STOP_SAMANTHA in reasoning: no stop
    assert not any(isinstance(e, CodeStarted) for e in events)  # its code is not run
    assert second.messages[-2].content == SCRIPT_HELLO  # fed back without the reasoning
    stored = journal.stored_run(events[0].run_id)
    assert stored is not None and stored.answers[0].reasoning == THOUGHT
    builder = TranscriptBuilder([])
    for event in events:
        builder.apply(event)
    shown = render_transcript(builder.snapshot())
    assert '<details class="reasoning"><summary>Reasoning</summary>' in shown
    journal.close()


def test_feed_back_reasoning_when_asked(backend: LocalBackend, studio_home: Path, demo_model: Path) -> None:
    journal = Journal()
    runner = ChainRunner(backend, journal)
    events = list(runner.run(ChainSpec(models=(str(demo_model),), prompts="think &\nhi", feedback=True,
                                       feed_reasoning=True)))
    second = [e.answer for e in events if isinstance(e, AnswerFinished)][1]
    assert second.messages[-2].content == f"<think>\n{THOUGHT}\n</think>\n{SCRIPT_HELLO}"
    journal.close()


def test_the_streamed_answer_shows_reasoning_while_it_is_written() -> None:
    from app.core.events import AnswerStarted, AnswerToken
    from app.core.sampling import SamplingParams

    builder = TranscriptBuilder([])
    builder.apply(AnswerStarted(1, "m", 1, 1, 1, "p", SamplingParams()))
    builder.apply(AnswerToken(1, "<think>"))
    builder.apply(AnswerToken(1, "weighing it"))
    entry = builder.snapshot()[-1]
    assert (entry.reasoning, entry.text, entry.thinking) == ("weighing it", "", True)
    assert "<summary>Reasoning…</summary>" in render_transcript([entry])
    builder.apply(AnswerToken(1, "</think>Yes"))
    entry = builder.snapshot()[-1]
    assert (entry.reasoning, entry.text, entry.thinking) == ("weighing it", "Yes", False)


def test_the_cli_answer_line_carries_reasoning(demo_model: Path, studio_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "app", "chain", "--model", str(demo_model), "--jsonl",
                           "--prompts", "-"], input="think &", cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    answer = next(json.loads(line) for line in done.stdout.splitlines() if '"answer"' in line)
    assert (answer["reasoning"], answer["text"]) == (THOUGHT, SCRIPT_HELLO)
