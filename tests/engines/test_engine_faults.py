"""Every engine fault gives one clear message in place and the chain goes on with the next member;
a stream cut mid-answer is kept as a partial answer. Faults come from a loopback proxy in front of
a real llama-cpp-python server; the studio's client is not mocked."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.chain import ChainSpec
from app.core.events import AnswerFinished, Failure, RunFinished
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.engines.config import EngineConfig
from app.engines.members import Engines
from app.engines.store import EngineStore
from app.models.demo_model import SCRIPT_HELLO
from app.models.local_backend import LocalBackend
from app.store.journal import Journal
from tests.engine_servers import Fault, FaultProxy, free_port

KEY = "sk-test-0123456789abcdef"


def run(backend: LocalBackend, engines: Engines, demo_model: Path, journal: Journal | None = None,
        prompts: str = "Say hello", max_tokens: int = 4000) -> tuple[list, list[Failure], list]:
    """The remote member first, then the local demo: the local answer must always come."""
    spec = ChainSpec(models=("remote/demo", str(demo_model)), prompts=prompts,
                     sampling=SamplingParams(seed=5, max_tokens=max_tokens))
    events = list(ChainRunner(backend, journal, engines=engines).run(spec))
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    failures = [e for e in events if isinstance(e, Failure)]
    assert isinstance(events[-1], RunFinished)
    assert answers and answers[-1].model == "chain-studio-demo.gguf" and answers[-1].text == SCRIPT_HELLO
    return answers, failures, events


def one_message(failures: list[Failure]) -> str:
    assert len(failures) == 1, failures
    return failures[0].message


@pytest.mark.parametrize(("status", "said"), [
    (401, "engine remote refused the request (HTTP 401: invalid key); check its API key"),
    (403, "engine remote refused the request (HTTP 403: invalid key); check its API key"),
    (500, "engine remote failed (HTTP 500: invalid key)"),
    (503, "engine remote failed (HTTP 503: invalid key)"),
])
def test_a_refusing_or_failing_engine_is_one_message(status: int, said: str, backend: LocalBackend, engines: Engines,
                                                     proxy: FaultProxy, demo_model: Path) -> None:
    proxy.fault = Fault("status", status, {"error": {"message": "invalid key"}})
    answers, failures, _ = run(backend, engines, demo_model)
    assert one_message(failures) == said and failures[0].index == 1
    assert len(answers) == 1


def test_an_unknown_model_is_named_before_the_run_uses_it(backend: LocalBackend, engines: Engines,
                                                          demo_model: Path) -> None:
    spec = ChainSpec(models=("remote/llama-70b", str(demo_model)), prompts="Say hello\nAgain")
    events = list(ChainRunner(backend, engines=engines).run(spec))
    failures = [e for e in events if isinstance(e, Failure)]
    assert one_message(failures) == "engine remote has no model 'llama-70b' (it lists: demo)"
    assert failures[0].skipped == 2
    assert [e.answer.model for e in events if isinstance(e, AnswerFinished)] == ["chain-studio-demo.gguf"] * 2


def test_a_404_for_the_model_names_it(backend: LocalBackend, engines: Engines, proxy: FaultProxy,
                                      demo_model: Path) -> None:
    proxy.fault = Fault("status", 404, {"error": {"message": "The model `demo` does not exist."}})
    _, failures, _ = run(backend, engines, demo_model)
    assert one_message(failures) == "engine remote has no model 'demo' (HTTP 404: The model `demo` does not exist.)"


def test_429_is_retried_once_after_retry_after(backend: LocalBackend, engines: Engines, proxy: FaultProxy,
                                               demo_model: Path) -> None:
    proxy.fault = Fault("status", 429, {"error": "slow down"}, {"Retry-After": "1"}, times=1)
    started = time.monotonic()
    answers, failures, _ = run(backend, engines, demo_model)
    assert failures == [] and answers[0].model == "remote/demo" and answers[0].text == SCRIPT_HELLO
    assert time.monotonic() - started >= 1.0
    chat = [r for r in proxy.seen if r["path"] == "/v1/chat/completions"]
    assert len(chat) == 2  # the refused request and its one retry


def test_429_twice_is_a_message(backend: LocalBackend, engines: Engines, proxy: FaultProxy, demo_model: Path) -> None:
    proxy.fault = Fault("status", 429, {"error": "slow down"}, {"Retry-After": "0"})
    _, failures, _ = run(backend, engines, demo_model)
    assert one_message(failures) == "engine remote is rate limiting (HTTP 429: slow down), still after one retry"


def test_an_unreachable_engine_skips_its_answers_with_one_message(backend: LocalBackend, demo_model: Path) -> None:
    port = free_port()
    engines = Engines(extra=(EngineConfig("remote", f"http://127.0.0.1:{port}/v1"),))
    _, failures, _ = run(backend, engines, demo_model, prompts="Say hello\nAgain")
    message = one_message(failures)
    assert message.startswith(f"engine remote (http://127.0.0.1:{port}/v1) is unreachable: ")
    assert failures[0].skipped == 2


def test_a_tls_failure_is_named(backend: LocalBackend, proxy: FaultProxy, demo_model: Path) -> None:
    engines = Engines(extra=(EngineConfig("remote", proxy.url.replace("http://", "https://")),))
    _, failures, _ = run(backend, engines, demo_model)
    assert one_message(failures).startswith(f"TLS failure talking to engine remote (https://127.0.0.1:{proxy.port}/v1): ")


def test_a_stream_cut_mid_answer_is_kept_as_a_partial_answer(backend: LocalBackend, engines: Engines,
                                                             proxy: FaultProxy, demo_model: Path,
                                                             journal: Journal) -> None:
    proxy.fault = Fault("cut", after=3)
    answers, failures, events = run(backend, engines, demo_model, journal)
    assert failures == []
    cut = answers[0]
    assert cut.model == "remote/demo" and cut.stop_reason == "cut"
    assert cut.text == "Hello from"  # the role chunk, then two tokens, then the connection dropped
    assert cut.notes[-1].startswith("the stream from engine remote was cut mid-answer (")
    assert cut.notes[-1].endswith("; 2 tokens were received and are kept")
    kept = journal.run(events[0].run_id)
    assert kept is not None and kept[2][0]["stop_reason"] == "cut" and kept[2][0]["text"] == "Hello from"


def test_a_silent_stream_ends_at_the_idle_timeout(backend: LocalBackend, engines: Engines, proxy: FaultProxy,
                                                  demo_model: Path) -> None:
    proxy.fault = Fault("silent", after=2)
    started = time.monotonic()
    answers, failures, _ = run(backend, engines, demo_model)
    assert failures == [] and answers[0].stop_reason == "cut" and answers[0].text == "Hello"
    assert answers[0].notes[-1] == ("engine remote sent nothing for 2 s (its idle timeout); the answer was cut; "
                                    "1 tokens were received and are kept")
    assert time.monotonic() - started >= 2


def test_a_silent_engine_before_any_token_is_a_message(backend: LocalBackend, engines: Engines, proxy: FaultProxy,
                                                       demo_model: Path) -> None:
    proxy.fault = Fault("silent", after=0)
    _, failures, _ = run(backend, engines, demo_model)
    assert one_message(failures) == "engine remote sent nothing for 2 s (its idle timeout); the answer was cut"


def test_a_redirect_to_another_host_is_refused_and_the_key_stays_home(
        backend: LocalBackend, proxy: FaultProxy, demo_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = FaultProxy([proxy.url.removesuffix("/v1")])
    try:
        monkeypatch.setenv("REMOTE_KEY", KEY)
        engines = Engines(extra=(EngineConfig("remote", proxy.url, key_env="REMOTE_KEY"),))
        proxy.fault = Fault("redirect", location=f"http://localhost:{elsewhere.port}/v1/chat/completions")
        _, failures, _ = run(backend, engines, demo_model)
        assert one_message(failures) == (f"engine remote redirected to 'localhost:{elsewhere.port}', another host: "
                                         "refused (the key is sent only to its engine)")
        assert elsewhere.seen == []
        assert all(r["headers"].get("Authorization") == f"Bearer {KEY}" for r in proxy.seen)
    finally:
        elsewhere.stop()


def test_the_key_is_never_journaled_logged_or_in_a_message(
        backend: LocalBackend, proxy: FaultProxy, demo_model: Path, journal: Journal, studio_home: Path) -> None:
    store = EngineStore()
    store.save(EngineConfig("remote", proxy.url), key=KEY)
    assert (studio_home / "engine_keys.json").stat().st_mode & 0o777 == 0o600
    assert KEY not in (studio_home / "engines.json").read_text()
    engines = Engines(store)
    proxy.fault = Fault("status", 401, {"error": {"message": "bad key"}})
    _, failures, events = run(backend, engines, demo_model, journal)
    assert KEY not in failures[0].message
    proxy.fault = None
    answers, _, _ = run(backend, engines, demo_model, journal)
    assert answers[0].model == "remote/demo"
    assert proxy.seen[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    journal.close()
    for path in studio_home.rglob("*"):
        if path.is_file() and path.name != "engine_keys.json":
            assert KEY.encode() not in path.read_bytes(), path
