"""An engine's answers behave as a local model's: their code runs (and STOP_SAMANTHA ends the run,
dropping the answers sent ahead), and a final [[…]] prompt collects them."""

from __future__ import annotations

from typing import Iterator

import pytest

from app.core.chain import ChainSpec
from app.core.code_exec import CodeOptions
from app.core.events import AnswerFinished, CodeFinished, RunFinished
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.engines.config import EngineConfig
from app.engines.members import Engines
from app.execution.pool import KernelPool
from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO, SCRIPT_STOP
from app.models.local_backend import LocalBackend
from app.store.journal import Journal
from tests.engine_servers import FaultProxy


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelPool]:
    runner = KernelPool(workdir=tmp_path_factory.mktemp("code"))
    yield runner
    runner.close()


def test_engine_code_runs_and_stop_samantha_ends_the_run(backend: LocalBackend, proxy: FaultProxy, pool: KernelPool,
                                                         journal: Journal) -> None:
    engines = Engines(extra=(EngineConfig("remote", proxy.url, concurrency=3),))
    spec = ChainSpec(models=("remote/demo",), prompts="Write code %\nRun #\nSay hello\nSay hi",
                     code=CodeOptions(run_code=True), sampling=SamplingParams(seed=3))
    events = list(ChainRunner(backend, journal, pool, engines=engines).run(spec))
    answers = [e.answer.text for e in events if isinstance(e, AnswerFinished)]
    outputs = [e.result.stdout.strip() for e in events if isinstance(e, CodeFinished)]
    assert answers == [SCRIPT_CODE, SCRIPT_STOP] and outputs == ["42", "STOP_SAMANTHA"]
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "stop_signal"
    kept = journal.run(events[0].run_id)
    assert kept is not None and [a["text"] for a in kept[2]] == [SCRIPT_CODE, SCRIPT_STOP]


def test_a_final_prompt_collects_the_engines_answers(backend: LocalBackend, proxy: FaultProxy) -> None:
    engines = Engines(extra=(EngineConfig("remote", proxy.url, concurrency=3),))
    spec = ChainSpec(models=("remote/demo",), prompts="Say hello\nWrite code %\n[[Sum them up:]]")
    events = list(ChainRunner(backend, engines=engines).run(spec))
    assert [e.answer.text for e in events if isinstance(e, AnswerFinished)] == [SCRIPT_HELLO, SCRIPT_CODE,
                                                                                 SCRIPT_HELLO]
    last = [r["body"] for r in proxy.seen if r["path"] == "/v1/chat/completions"][-1]
    assert last["messages"][-1]["content"] == f"Sum them up:\n\n{SCRIPT_HELLO}\n\n{SCRIPT_CODE}"
