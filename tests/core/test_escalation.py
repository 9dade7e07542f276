"""Confidence-gated chaining: an item's `{escalate_entropy=…}` sends it on to the next model when an
answer's mean token entropy is above the threshold, and settles it (later models skip it) when not.
The demo model is sure (0.49 nats every step); the tiny random model is not (about 3 nats)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.chain import ChainSpec, is_independent, make_plan, next_in_line
from app.core.errors import PromptSyntaxError
from app.core.events import Answer, AnswerFinished, Escalation, RunFinished
from app.core.prompt_list import parse_prompt_list
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.models.benchmark_model import write_tiny_attention_model
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal
from app.ui.render import answer_footer

DEMO = "chain-studio-demo.gguf"  # the demo_model fixture's file
PROMPTS = "{escalate_entropy=1.5} Say hello\nSay hi"  # only the first item is gated


@pytest.fixture(scope="module")
def unsure_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_attention_model(tmp_path_factory.mktemp("models") / "unsure.gguf")


def test_the_setting_is_read_and_checked() -> None:
    item = parse_prompt_list("{escalate_entropy=2.5, temperature=0} Which?").items[0]
    assert item.overrides == {"escalate_entropy": 2.5, "temperature": 0}
    assert parse_prompt_list("{escalate_entropy=3} x").items[0].overrides == {"escalate_entropy": 3.0}
    for bad in ("0", "-1", "21", "'high'", "[1, 2]"):
        with pytest.raises(PromptSyntaxError) as caught:
            parse_prompt_list(f"{{escalate_entropy={bad}}} Which?")
        assert "escalate_entropy must be a number of nats above 0 and at most 20" in str(caught.value)
        assert "item 1" in str(caught.value)


def test_each_gated_answer_knows_the_answer_its_item_goes_on_to() -> None:
    prompts = parse_prompt_list("{escalate_entropy=2} a\nb")
    spec = ChainSpec(models=("cheap.gguf", "middle.gguf", "strong.gguf"), prompts="", responses=2, loops=2)
    plan = make_plan(spec, prompts, random.Random(0))
    following = next_in_line(plan)
    by_index = {p.index: p for p in plan}
    for index, later in following.items():
        earlier = by_index[index]
        assert earlier.item.number == later.item.number == 1  # only the gated item
        assert (earlier.loop, earlier.response) == (later.loop, later.response)
        assert later.model_slot == earlier.model_slot + 1
    # per loop and response: cheap -> middle -> strong, and strong has no one after it
    assert len(following) == 2 * 2 * 2
    assert not any(by_index[i].model == "strong.gguf" for i in following)
    assert not is_independent(spec, prompts.items[0]) and is_independent(spec, prompts.items[1])


def test_an_unsure_answer_sends_the_item_on_and_a_sure_one_settles_it(
        backend: LocalBackend, demo_model: Path, unsure_model: Path, journal: Journal) -> None:
    spec = ChainSpec(models=(str(unsure_model), str(demo_model)), prompts=PROMPTS,
                     sampling=SamplingParams(seed=1, max_tokens=8))
    events = list(ChainRunner(backend, journal).run(spec))
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert [(a.model, a.item) for a in answers] == [("unsure.gguf", 1), ("unsure.gguf", 2),
                                                    (DEMO, 1), (DEMO, 2)]
    unsure, plain, sure, _ = answers
    assert unsure.metrics is not None and unsure.metrics.entropy_mean is not None
    assert unsure.metrics.entropy_mean > 1.5
    assert unsure.escalation == Escalation(1.5, unsure.metrics.entropy_mean, True, DEMO)
    assert plain.escalation is None
    assert sure.escalation == Escalation(1.5, pytest.approx(0.49, abs=0.01), False, None)  # type: ignore[arg-type]
    # the transcript says why
    assert (f"⤴️ mean entropy {unsure.metrics.entropy_mean:.2f} nats &gt; escalate_entropy 1.5: "
            f"item 1 goes on to {DEMO}") in answer_footer(unsure)
    assert "✅ mean entropy 0.49 nats ≤ escalate_entropy 1.5: item 1 is settled here" in answer_footer(sure)
    kept = journal.stored_run(events[0].run_id)  # type: ignore[union-attr]
    assert kept is not None

    def kept_form(gates: list[Escalation | None]) -> list[dict | None]:
        return [gate.to_dict() if gate is not None else None for gate in gates]
    assert kept_form([a.escalation for a in kept.answers]) == kept_form([a.escalation for a in answers])


def test_a_sure_first_answer_spares_the_later_models(backend: LocalBackend, demo_model: Path,
                                                     unsure_model: Path, journal: Journal) -> None:
    spec = ChainSpec(models=(str(demo_model), str(unsure_model)), prompts=PROMPTS,
                     sampling=SamplingParams(seed=1, max_tokens=8))
    events = list(ChainRunner(backend, journal).run(spec))
    answers: list[Answer] = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert [(a.model, a.item) for a in answers] == [(DEMO, 1), (DEMO, 2), ("unsure.gguf", 2)]
    assert answers[0].escalation == Escalation(1.5, pytest.approx(0.49, abs=0.01), False,  # type: ignore[arg-type]
                                               "unsure.gguf")
    assert "item 1 is settled here; unsure.gguf and later models skip it" in answer_footer(answers[0])
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.reason == "completed" and finished.answers == 3


def test_an_engine_answer_with_no_entropy_is_not_known_to_be_sure() -> None:
    gate = Escalation.decide(2.5, None, "strong")
    assert gate.escalated
    assert gate.describe(3) == ("⤴️ entropy not measured (an engine's answer), so not known to be sure: "
                                "item 3 goes on to strong")
    assert Escalation.decide(2.5, 3.0, None).describe(1) == \
        "⤴️ mean entropy 3.00 nats > escalate_entropy 2.5: no model is left to take item 1"


def test_the_cli_answer_line_carries_the_escalation(demo_model: Path, unsure_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("{escalate_entropy=1.5, max_tokens=8} Say hello\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "app", "chain", "--model", str(unsure_model), "--model",
                           str(demo_model), "--prompts", str(prompts), "--seed", "1", "--jsonl"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    answers = [line for line in map(json.loads, done.stdout.splitlines()) if line["type"] == "answer"]
    assert [a["model"] for a in answers] == ["unsure.gguf", DEMO]
    first, second = (a["escalation"] for a in answers)
    assert first["escalated"] is True and first["next_model"] == DEMO and first["threshold"] == 1.5
    assert first["entropy"] == answers[0]["metrics"]["entropy_mean"] > 1.5
    assert second == {"threshold": 1.5, "entropy": answers[1]["metrics"]["entropy_mean"], "escalated": False,
                      "next_model": None}
