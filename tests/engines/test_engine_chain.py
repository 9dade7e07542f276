"""Remote engines as chain members: a real llama-cpp-python server with the demo model, local and
remote members mixed, feedback, learning mode, Stop/Next and the journal."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from app.core.branching import BranchPoint
from app.core.chain import ChainSpec
from app.core.errors import EngineError
from app.core.events import AnswerFinished, AnswerToken, BranchFinished, EngineConnected, Failure, RunFinished
from app.core.learning import TokenChoice
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.engines.config import EngineConfig
from app.engines.members import Engines
from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO
from app.models.local_backend import LocalBackend
from app.store.journal import Journal
from app.ui.learning_view import candidates_table, rank_rows, token_view, unlikely_picks
from tests.engine_servers import FaultProxy


@pytest.fixture
def journal(studio_home: Path):
    opened = Journal()
    yield opened
    opened.close()


def answers_of(events: list) -> list:
    return [e.answer for e in events if isinstance(e, AnswerFinished)]


def test_a_local_and_a_remote_member_with_feedback_answer_in_order(
        backend: LocalBackend, journal: Journal, engines: Engines, proxy: FaultProxy, demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model), "remote/demo"), prompts="Say hello\nWrite code %", feedback=True,
                     sampling=SamplingParams(seed=7))
    events = list(ChainRunner(backend, journal, engines=engines).run(spec))
    answers = answers_of(events)
    assert [(a.model, a.text) for a in answers] == [
        ("chain-studio-demo.gguf", SCRIPT_HELLO), ("chain-studio-demo.gguf", SCRIPT_CODE),
        ("remote/demo", SCRIPT_HELLO), ("remote/demo", SCRIPT_CODE)]
    connected = [e for e in events if isinstance(e, EngineConnected)]
    assert [(e.model, e.kind, e.warning) for e in connected] == [("remote/demo", "llama-cpp-python", "")]
    # Feedback reached the engine: its first answer read the local model's last one.
    chats = [r["body"] for r in proxy.seen if r["path"] == "/v1/chat/completions"]
    assert chats[0]["messages"][-2:] == [{"role": "assistant", "content": SCRIPT_CODE},
                                         {"role": "user", "content": "Say hello"}]
    assert chats[1]["messages"][-2] == {"role": "assistant", "content": SCRIPT_HELLO}
    assert chats[0]["seed"] == answers[2].seed and chats[0]["stream"] is True
    assert chats[0]["top_k"] == 40 and chats[0]["temperature"] == 0.0
    remote = answers[2]
    assert remote.tokens == 5 and remote.stop_reason == "eos" and remote.prompt_format == "engine"
    run_id = events[0].run_id
    kept = journal.run(run_id)
    assert kept is not None
    assert [(a["model"], a["text"]) for a in kept[2]] == [(a.model, a.text) for a in answers]
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "completed"


def test_learning_mode_shows_the_engines_candidates(engines: Engines, backend: LocalBackend, journal: Journal) -> None:
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello", learning_top=3, sampling=SamplingParams(seed=1))
    events = list(ChainRunner(backend, journal, engines=engines).run(spec))
    answer = answers_of(events)[0]
    assert answer.text == SCRIPT_HELLO and len(answer.choices) == 5
    first = answer.choices[0]
    assert first.remote and first.stages == () and first.chosen_rank == 1
    pieces = [c.piece for c in first.candidates]
    assert pieces[:2] == ["Hello", "Greetings"]  # the demo model's scripted alternative, as the engine reports it
    assert first.candidates[0].prob == pytest.approx(0.87, abs=0.01)
    tokens = [e for e in events if isinstance(e, AnswerToken)]
    assert "".join(t.text for t in tokens) == SCRIPT_HELLO and all(t.choice is not None for t in tokens)
    kept = journal.answer_choices(events[0].run_id, 1)
    again = TokenChoice.from_record(kept[0])
    assert again.remote and [c.piece for c in again.candidates] == pieces and again.chosen == first.chosen


def test_raw_format_uses_completions_with_logprobs(engines: Engines, backend: LocalBackend, proxy: FaultProxy) -> None:
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello", learning_top=2, template="raw",
                     sampling=SamplingParams(seed=3, max_tokens=3))
    answer = answers_of(list(ChainRunner(backend, engines=engines).run(spec)))[0]
    assert answer.text == "Hello from the" and answer.stop_reason == "max_tokens"
    assert answer.prompt_format == "raw" and answer.sent == "Say hello"
    body = next(r["body"] for r in proxy.seen if r["path"] == "/v1/completions")
    assert body["prompt"] == "Say hello" and body["logprobs"] == 2 and body["max_tokens"] == 3
    assert [c.chosen_candidate.piece for c in answer.choices] == ["Hello", " from", " the"]


def test_settings_the_engine_does_not_take_are_named_in_the_footer(
        engines: Engines, backend: LocalBackend, proxy: FaultProxy) -> None:
    params = SamplingParams(seed=3, top_n_sigma=1.5, repeat_penalty=1.2, dry_multiplier=0.8)
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello", sampling=params)
    answer = answers_of(list(ChainRunner(backend, engines=engines).run(spec)))[0]
    assert answer.notes == ("not sent to remote (it does not take them): top_n_sigma=1.5, dry_multiplier=0.8, "
                            "repeat_last_n=64",
                            # llama-cpp-python's server sends no usage in a stream
                            "token count: the engine sent no usage; counted from the stream's pieces")
    body = next(r["body"] for r in proxy.seen if r["path"] == "/v1/chat/completions")
    assert body["repeat_penalty"] == 1.2 and "top_n_sigma" not in body and "dry_multiplier" not in body


def test_stop_next_closes_the_stream_and_keeps_the_text(engines: Engines, backend: LocalBackend,
                                                        journal: Journal) -> None:
    spec = ChainSpec(models=("remote/demo",), prompts="Sing ~\n{max_tokens=5} Say hi",
                     sampling=SamplingParams(max_tokens=3000))
    # The second answer waits behind the first on the one-request-at-a-time server, which may write
    # on after the first is stopped: a longer idle timeout than the fixture's 2 s.
    patient = Engines(extra=(dataclasses.replace(engines.config("remote"), idle_timeout=120),))  # type: ignore[type-var]
    runner = ChainRunner(backend, journal, engines=patient)
    events = []
    for event in runner.run(spec):
        events.append(event)
        if isinstance(event, AnswerToken) and sum(isinstance(e, AnswerToken) for e in events) == 20:
            threading.Thread(target=runner.control.stop_current).start()
    assert [e for e in events if isinstance(e, Failure)] == []
    first, second = answers_of(events)
    assert first.stop_reason == "stopped" and first.text.startswith(" la la") and 20 <= first.tokens < 3000
    assert second.text == SCRIPT_HELLO and second.stop_reason == "max_tokens"  # the chain went on


def test_independent_answers_run_concurrently_up_to_the_limit_and_stay_in_order(
        backend: LocalBackend, journal: Journal, proxy: FaultProxy, demo_model: Path) -> None:
    proxy.delay = 0.2  # each request stays open long enough for the next ones to overlap it
    engines = Engines(extra=(EngineConfig("remote", proxy.url, concurrency=3),))
    prompts = "\n".join(["Say hello", "Write code %", "Say hello again", "Code %", "Hi", "Sing ~"])
    spec = ChainSpec(models=("remote/demo", str(demo_model), "remote/demo"), prompts=prompts,
                     sampling=SamplingParams(seed=2, max_tokens=6))
    events = list(ChainRunner(backend, journal, engines=engines).run(spec))
    answers = answers_of(events)
    assert [a.index for a in answers] == list(range(1, 19))
    expected = [SCRIPT_HELLO, SCRIPT_CODE, SCRIPT_HELLO, SCRIPT_CODE, SCRIPT_HELLO, " la la la la la la"]
    cut = [e[: len(a.text)] for e, a in zip(expected * 3, answers, strict=True)]
    assert [a.text for a in answers] == cut
    assert proxy.most_in_flight == 3  # the engine's limit, reached and never passed
    kept = journal.run(events[0].run_id)
    assert kept is not None and [a["index"] for a in kept[2]] == list(range(1, 19))
    tokens = [e.index for e in events if isinstance(e, AnswerToken)]
    assert tokens == sorted(tokens)  # the transcript streams answer after answer, in plan order


def test_answers_that_depend_on_each_other_go_one_at_a_time(backend: LocalBackend, proxy: FaultProxy) -> None:
    proxy.delay = 0.1
    engines = Engines(extra=(EngineConfig("remote", proxy.url, concurrency=4),))
    spec = ChainSpec(models=("remote/demo",), prompts="One\nTwo\nThree", feedback=True)
    answers = answers_of(list(ChainRunner(backend, engines=engines).run(spec)))
    assert len(answers) == 3 and proxy.most_in_flight == 1
    chats = [r["body"] for r in proxy.seen if r["path"] == "/v1/chat/completions"]
    assert chats[2]["messages"][-2] == {"role": "assistant", "content": answers[1].text}


def test_branching_an_engines_raw_answer_continues_on_the_engine(engines: Engines, backend: LocalBackend,
                                                                  journal: Journal, proxy: FaultProxy) -> None:
    runner = ChainRunner(backend, journal, engines=engines)
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello", learning_top=3, template="raw",
                     sampling=SamplingParams(seed=4))
    events = list(runner.run(spec))
    answer = answers_of(events)[0]
    assert answer.text == SCRIPT_HELLO
    again = next(c for c in answer.choices[1].candidates if c.piece == " again")
    branched = list(runner.branch(BranchPoint.from_answer(events[0].run_id, answer), 1, again.token_id, 3))
    done = branched[-1]
    assert isinstance(done, BranchFinished)
    # The engine reads the text back ("Say helloHello again"); the demo model then starts its script over.
    assert done.answer.text == "Hello again" + SCRIPT_HELLO and done.answer.model == "remote/demo"
    assert [c.position for c in done.answer.choices] == list(range(len(done.answer.choices)))
    assert done.answer.choices[1].chosen_candidate.piece == " again" and done.answer.choices[1].chosen_rank == 2
    body = [r["body"] for r in proxy.seen if r["path"] == "/v1/completions"][-1]
    assert body["prompt"] == "Say hello" + "Hello again"
    assert journal.branches_of(events[0].run_id) == [
        {"seq": 2, "parent_seq": 1, "position": 1, "token": again.token_id}]
    chat = answers_of(list(runner.run(dataclasses.replace(spec, template="auto"))))[0]
    with pytest.raises(EngineError, match="branching an engine's answer needs the raw prompt format"):
        list(runner.branch(BranchPoint.from_answer(2, chat), 1, chat.choices[1].candidates[1].token_id, 3))


def test_the_learning_view_says_what_cannot_be_seen_remotely(engines: Engines, backend: LocalBackend) -> None:
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello", learning_top=3, sampling=SamplingParams(seed=1))
    answer = answers_of(list(ChainRunner(backend, engines=engines).run(spec)))[0]
    table = candidates_table(answer.choices[0])
    assert "Seen remotely: the engine reports only the top log-probabilities" in table
    assert "<td>—</td>" in table and "logprob" in table
    assert "id -" not in token_view(answer.choices)
    assert rank_rows(answer.choices) == [{"position": i, "rank": 1} for i in range(5)]
    assert unlikely_picks(answer.choices) == "*Every token so far was the most likely one.*"


def test_stop_all_ends_the_answer_shown_and_those_sent_ahead(backend: LocalBackend, journal: Journal,
                                                             proxy: FaultProxy) -> None:
    engines = Engines(extra=(EngineConfig("remote", proxy.url, concurrency=3, idle_timeout=120),))
    spec = ChainSpec(models=("remote/demo",), prompts="Sing ~\nSing again ~\nOnce more ~",
                     sampling=SamplingParams(max_tokens=1500))
    runner = ChainRunner(backend, journal, engines=engines)
    events = []
    for event in runner.run(spec):
        events.append(event)
        if isinstance(event, AnswerToken) and sum(isinstance(e, AnswerToken) for e in events) == 10:
            threading.Thread(target=runner.control.stop_all).start()
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "stopped"
    answers = answers_of(events)
    assert len(answers) == 1 and answers[0].stop_reason == "stopped"
    kept = journal.run(events[0].run_id)
    assert kept is not None and len(kept[2]) == 1
    deadline = time.monotonic() + 60
    while proxy.in_flight and time.monotonic() < deadline:  # the streams sent ahead were closed too
        time.sleep(0.1)
    assert proxy.in_flight == 0
