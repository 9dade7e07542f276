"""The previous response and the feedback loop keep user/assistant roles alternating, as Samantha
does: [system?, user "", assistant(previous), user(prompt)]. Checked with the published Gemma 2,
Gemma 3 and Mistral Nemo chat templates (tests/data/chat_templates), which refuse anything else,
written into copies of the demo model and run through the real worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core.backend import ChatMessage, GenerationRequest
from app.core.chain import ChainSpec
from app.core.events import AnswerFinished, Failure, RunFinished
from app.core.runner import ChainRunner
from app.models.demo_model import SCRIPT_HELLO, write_demo_model
from app.models.local_backend import LocalBackend
from app.store.journal import Journal

TEMPLATES = Path(__file__).resolve().parent / "data" / "chat_templates"
GEMMA_2 = "google-gemma-2-2b-it.jinja"
GEMMA_3 = "google-gemma-3-4b-it.jinja"
MISTRAL_NEMO = "mistralai-Mistral-Nemo-Instruct-2407.jinja"


def roles(messages: tuple[ChatMessage, ...] | list[dict]) -> list[str]:
    return [m.role if isinstance(m, ChatMessage) else m["role"] for m in messages]


def alternates(messages: tuple[ChatMessage, ...]) -> bool:
    """After an optional system message: user, assistant, user, …, ending with the user."""
    turns = roles(messages)
    if turns and turns[0] == "system":
        turns = turns[1:]
    return len(turns) % 2 == 1 and all(role == ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(turns))


def test_the_previous_response_comes_after_an_empty_user_turn() -> None:
    assert GenerationRequest.chat("now", previous="before").messages == (
        ChatMessage("user", ""), ChatMessage("assistant", "before"), ChatMessage("user", "now"))
    assert GenerationRequest.chat("now", system="be brief", previous="before").messages == (
        ChatMessage("system", "be brief"), ChatMessage("user", ""), ChatMessage("assistant", "before"),
        ChatMessage("user", "now"))
    assert GenerationRequest.chat("now").messages == (ChatMessage("user", "now"),)
    assert GenerationRequest.chat("now", system="be brief").messages == (
        ChatMessage("system", "be brief"), ChatMessage("user", "now"))


@pytest.mark.parametrize(("template", "system"), [
    (GEMMA_2, ""),  # Gemma 2 refuses any system message (its own rule, not about alternation)
    (GEMMA_3, ""),
    (GEMMA_3, "Answer in one sentence."),
    (MISTRAL_NEMO, ""),
    (MISTRAL_NEMO, "Answer in one sentence."),
])
def test_a_feedback_chain_runs_on_templates_that_enforce_alternating_roles(
    backend: LocalBackend, journal: Journal, tmp_path: Path, template: str, system: str
) -> None:
    model = write_demo_model(tmp_path / f"demo-{Path(template).stem}.gguf",
                             chat_template=(TEMPLATES / template).read_text(encoding="utf-8"))
    spec = ChainSpec(models=(str(model),), prompts="first\nsecond\nthird", system=system, feedback=True)
    events = list(ChainRunner(backend, journal).run(spec))
    assert [e for e in events if isinstance(e, Failure)] == []
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert [a.text for a in answers] == [SCRIPT_HELLO] * 3
    assert dataclasses.replace(events[-1], metrics=None) == RunFinished(events[0].run_id, "completed", 3, 0)
    assert all(alternates(a.messages) for a in answers)
    assert [len(a.messages) for a in answers] == [1 + bool(system), 3 + bool(system), 3 + bool(system)]
    for earlier, later in zip(answers, answers[1:], strict=False):
        assert [m.content for m in later.messages if m.role == "assistant"] == [earlier.text]
        assert earlier.text in later.sent  # rendered by the model's own template, previous answer included
    assert all(a.prompt_format == "model" for a in answers)
    if template != MISTRAL_NEMO:
        assert answers[1].sent.endswith("<start_of_turn>user\nsecond<end_of_turn>\n<start_of_turn>model\n")
        assert f"<start_of_turn>model\n{SCRIPT_HELLO}<end_of_turn>\n" in answers[1].sent
    else:
        assert f"[/INST]{SCRIPT_HELLO}</s>[INST]" in answers[1].sent
    stored = journal.run(events[0].run_id)
    assert stored is not None
    assert roles(stored[2][1]["messages"]) == roles(answers[1].messages)  # the journal keeps what was sent
