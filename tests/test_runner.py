"""The chain engine with the real worker and the demo model, checked through the journal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.core.chain import ChainSpec
from app.core.errors import PromptSyntaxError
from app.core.events import AnswerFinished, AnswerToken, Failure, RunFinished, RunStarted
from app.core.runner import ChainRunner
from app.core.sampling import LoadParams, SamplingParams
from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO, SCRIPT_STOP
from app.models.local_backend import LocalBackend
from app.store.journal import Journal


@pytest.fixture
def runner(backend: LocalBackend, journal: Journal) -> ChainRunner:
    return ChainRunner(backend, journal)


@pytest.fixture
def two_models(tmp_path: Path, demo_model: Path) -> tuple[str, str]:
    second = tmp_path / "second-demo.gguf"
    shutil.copy(demo_model, second)
    return str(demo_model), str(second)


def run_all(runner: ChainRunner, spec: ChainSpec) -> list:
    return list(runner.run(spec))


def answers_of(events: list) -> list:
    return [e.answer for e in events if isinstance(e, AnswerFinished)]


def finished(events: list) -> RunFinished:
    assert isinstance(events[-1], RunFinished)
    return events[-1]


def journal_answers(journal: Journal, run_id: int) -> list[dict]:
    found = journal.run(run_id)
    assert found is not None
    return found[2]


def test_counting_and_order_through_the_engine(runner: ChainRunner, journal: Journal, two_models) -> None:
    spec = ChainSpec(models=two_models, prompts="x\ny %\nz", responses=2, loops=2,
                     sampling=SamplingParams(max_tokens=8))
    events = run_all(runner, spec)
    answers = answers_of(events)
    assert len(answers) == 24
    names = [Path(m).name for m in two_models]
    expected = [(loop, name, item, response) for loop in (1, 2) for name in names
                for response in (1, 2) for item in (1, 2, 3)]
    assert [(a.loop, a.model, a.item, a.response) for a in answers] == expected
    assert [a.text for a in answers[:6]] == [SCRIPT_HELLO, SCRIPT_CODE, SCRIPT_HELLO] * 2
    run_id = events[0].run_id
    stored = journal_answers(journal, run_id)
    assert [(a["loop"], a["model"], a["item"], a["response"]) for a in stored] == expected
    assert finished(events).reason == "completed"


def test_single_response_three_models_two_items(runner: ChainRunner, two_models) -> None:
    events = run_all(runner, ChainSpec(models=(*two_models, two_models[0]), prompts="x\ny", single_response=True))
    assert [(a.model, a.item) for a in answers_of(events)] == [
        (Path(two_models[0]).name, 1), (Path(two_models[1]).name, 2)
    ]


def test_feedback_sends_each_answer_as_the_next_previous_response(
    runner: ChainRunner, journal: Journal, demo_model: Path
) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi\nrun %\nsing ~", loops=2, feedback=True,
                     previous="what came before", sampling=SamplingParams(max_tokens=6))
    events = run_all(runner, spec)
    stored = journal_answers(journal, events[0].run_id)
    assert len(stored) == 6
    assert stored[0]["messages"] == [  # an empty user turn first: roles alternate, as in Samantha
        {"role": "user", "content": ""}, {"role": "assistant", "content": "what came before"},
        {"role": "user", "content": "hi"},
    ]
    for earlier, later in zip(stored, stored[1:], strict=False):
        sent = [m for m in later["messages"] if m["role"] == "assistant"]
        assert sent == [{"role": "assistant", "content": earlier["text"]}]  # byte for byte


def test_feedback_with_two_responses_goes_through_the_list_twice(
    runner: ChainRunner, journal: Journal, demo_model: Path
) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi\nrun %", responses=2, feedback=True,
                     sampling=SamplingParams(max_tokens=12))
    answers = answers_of(run_all(runner, spec))
    assert [(a.item, a.response, a.text) for a in answers] == [
        (1, 1, SCRIPT_HELLO), (2, 1, SCRIPT_CODE), (1, 2, SCRIPT_HELLO), (2, 2, SCRIPT_CODE)
    ]
    previous = [[m.content for m in a.messages if m.role == "assistant"] for a in answers]
    assert previous == [[], [SCRIPT_HELLO], [SCRIPT_CODE], [SCRIPT_HELLO]]  # P1 of pass 2 reads P2 of pass 1


def test_cumulative_feedback_appends(runner: ChainRunner, journal: Journal, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi\nrun %\nagain", feedback=True, cumulative=True,
                     previous="start", sampling=SamplingParams(max_tokens=6))
    stored = journal_answers(journal, run_all(runner, spec)[0].run_id)
    previous_sent = [next(m["content"] for m in a["messages"] if m["role"] == "assistant") for a in stored]
    assert previous_sent == [
        "start",
        f"start\n\n{SCRIPT_HELLO}",
        f"start\n\n{SCRIPT_HELLO}\n\n{SCRIPT_CODE}",
    ]


def test_feedback_off_keeps_the_previous_field(runner: ChainRunner, journal: Journal, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="a\nb", previous="---old $$$ fixed text")
    stored = journal_answers(journal, run_all(runner, spec)[0].run_id)
    assert all(a["messages"][:2] == [{"role": "user", "content": ""}, {"role": "assistant", "content": "fixed text"}]
               for a in stored)


def test_stop_signal_ends_the_run(runner: ChainRunner, journal: Journal, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hello\nplease stop #\nnever asked\nnor this", loops=3)
    events = run_all(runner, spec)
    assert [a.text for a in answers_of(events)] == [SCRIPT_HELLO, SCRIPT_STOP]
    assert finished(events).reason == "stop_signal"
    run = journal.runs()[0]
    assert (run.end_reason, run.answers, run.planned) == ("stop_signal", 2, 12)


def test_a_missing_model_is_reported_and_the_others_answer(
    runner: ChainRunner, journal: Journal, two_models, tmp_path: Path
) -> None:
    missing = str(tmp_path / "not-downloaded.gguf")
    spec = ChainSpec(models=(two_models[0], missing, two_models[1]), prompts="x\ny")
    events = run_all(runner, spec)
    failures = [e for e in events if isinstance(e, Failure)]
    assert len(failures) == 1
    assert failures[0].model == "not-downloaded.gguf" and "no such file" in failures[0].message
    assert failures[0].skipped == 2
    assert [a.model for a in answers_of(events)] == [Path(two_models[0]).name] * 2 + [Path(two_models[1]).name] * 2
    assert finished(events).reason == "completed"
    found = journal.run(events[0].run_id)
    assert found is not None and found[3][0]["model"] == "not-downloaded.gguf"


@pytest.mark.parametrize(
    "prompts",
    ["{temperature=hot} hi", "{nope=1} hi", "{top_p=2} hi", "a\n[[Summarise:", "{temperature=0.5 hi"],
)
def test_malformed_prompt_lists_run_nothing(runner: ChainRunner, journal: Journal, demo_model: Path, prompts: str) -> None:
    with pytest.raises(PromptSyntaxError):
        run_all(runner, ChainSpec(models=(str(demo_model),), prompts=prompts))
    assert journal.runs() == []


def test_stop_current_moves_on_and_stop_all_ends(runner: ChainRunner, journal: Journal, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="sing ~\nhi\nsing ~\nhi",
                     sampling=SamplingParams(max_tokens=100_000), load=LoadParams(n_ctx=4096))
    events = []
    tokens_in_answer: dict[int, int] = {}
    for event in runner.run(spec):
        events.append(event)
        if isinstance(event, AnswerToken):
            tokens_in_answer[event.index] = tokens_in_answer.get(event.index, 0) + 1
            if event.index == 1 and tokens_in_answer[1] == 3:
                runner.control.stop_current()
            if event.index == 3 and tokens_in_answer[3] == 3:
                runner.control.stop_all()
    answers = answers_of(events)
    assert [(a.item, a.stop_reason) for a in answers] == [(1, "stopped"), (2, "eos"), (3, "stopped")]
    assert answers[0].text == " la" * 3
    assert finished(events).reason == "stopped"
    assert journal.runs()[0].end_reason == "stopped"


def test_context_overflow_is_reported_and_the_chain_goes_on(runner: ChainRunner, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="x" * 400 + "\nhi", load=LoadParams(n_ctx=256))
    events = run_all(runner, spec)
    failures = [e for e in events if isinstance(e, Failure)]
    assert len(failures) == 1 and "prompt has 401 tokens, context is 256" in failures[0].message
    assert [a.item for a in answers_of(events)] == [2]


def test_reset_with_a_seed_repeats_exactly(runner: ChainRunner, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="~", responses=3, reset=True,
                     sampling=SamplingParams(temperature=1.5, top_k=0, max_tokens=30, seed=5))
    texts = [a.text for a in answers_of(run_all(runner, spec))]
    assert len(set(texts)) == 1 and texts[0] != " la" * 30  # sampled, and identical each time


def test_random_params_are_recorded_per_answer(runner: ChainRunner, journal: Journal, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi", responses=3, random_params=True, seed=42,
                     sampling=SamplingParams(max_tokens=5))
    events = run_all(runner, spec)
    temps = [a.params.temperature for a in answers_of(events)]
    stored = journal_answers(journal, events[0].run_id)
    assert [a["params"]["temperature"] for a in stored] == temps
    assert len(set(temps)) == 3 and all(0.1 <= t <= 1.0 for t in temps)
    assert json.loads(json.dumps(stored[0]["params"]))["repeat_penalty"] >= 1.0


def test_run_started_reports_the_plan(runner: ChainRunner, demo_model: Path) -> None:
    first = next(iter(runner.run(ChainSpec(models=(str(demo_model),), prompts="a\nb", responses=2))))
    assert isinstance(first, RunStarted) and first.planned == 4 and first.items == 2


def test_learning_mode_keeps_every_token_choice_in_the_journal(
    runner: ChainRunner, journal: Journal, demo_model: Path
) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts="hi", learning_top=4)
    events = run_all(runner, spec)
    tokens = [e for e in events if isinstance(e, AnswerToken)]
    answer = answers_of(events)[0]
    assert answer.text == SCRIPT_HELLO and len(answer.choices) == answer.tokens == len(tokens) == 5
    assert all(t.choice is not None and t.choice.chosen == t.token_id for t in tokens)
    stored = journal.answer_choices(events[0].run_id, answer.index)
    assert [record["chosen"] for record in stored] == [t.token_id for t in tokens]
    assert stored[0]["candidates"][1][1] == "Greetings"  # the alternative, reopened from the journal
    assert journal.answer_choices(events[0].run_id, 99) == []


def test_branching_keeps_the_prefix_takes_the_candidate_and_keeps_the_original(
    runner: ChainRunner, journal: Journal, demo_model: Path
) -> None:
    from app.core.branching import BranchPoint, grow_branch

    events = run_all(runner, ChainSpec(models=(str(demo_model),), prompts="hi", learning_top=5))
    run_id = events[0].run_id
    original = answers_of(events)[0]
    ids = tuple(c.chosen for c in original.choices)
    at = 3  # the token " demo"; its alternative is " tiny"
    alternative = next(c for c in original.choices[at].candidates if c.piece == " tiny")
    base = BranchPoint(run_id, original.index, original.model_path, original.item, original.response,
                       original.loop, original.messages, original.params, ids)
    new_seq = journal.next_answer_seq(run_id)
    branch = list(grow_branch(runner.backend, base, at, alternative.token_id, new_seq, learning_top=5))[-1]
    assert branch.text == "Hello from the tiny model."
    assert tuple(c.chosen for c in branch.choices)[:at] == ids[:at]  # tokens 0..i-1 kept
    assert branch.choices[at].chosen == alternative.token_id  # j at i
    assert branch.choices[at].chosen_rank == 2  # shown with its real rank at that position
    journal.record_branch(run_id, branch, parent_seq=original.index, position=at, token=alternative.token_id)
    assert journal.branches_of(run_id) == [
        {"seq": new_seq, "parent_seq": original.index, "position": at, "token": alternative.token_id}
    ]
    stored = {a["index"]: a["text"] for a in journal.run(run_id)[2]}
    assert stored == {original.index: SCRIPT_HELLO, new_seq: "Hello from the tiny model."}  # both reachable
