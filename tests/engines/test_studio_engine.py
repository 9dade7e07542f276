"""Another Chain Studio as an engine: `python -m app serve` (its OpenAI-compatible /v1 with its
token) reached by this studio's chain, with the studio's own sampler fields and learning mode."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.core.chain import ChainSpec
from app.core.events import AnswerFinished, EngineConnected
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.engines.config import EngineConfig
from app.engines.members import Engines
from app.engines.store import EngineStore
from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO
from app.models.local_backend import LocalBackend
from tests.api.conftest import TOKEN, serve_api
from tests.engine_servers import FaultProxy


def test_another_studio_is_an_engine(backend: LocalBackend, demo_model: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTHER_STUDIO_TOKEN", TOKEN)
    with serve_api(tmp_path / "other-studio") as other:
        engines = Engines(extra=(EngineConfig("other", other.v1, key_env="OTHER_STUDIO_TOKEN", concurrency=2),))
        params = SamplingParams(seed=9, top_n_sigma=2.0, dry_multiplier=0.5)
        spec = ChainSpec(models=("other/chain-studio-demo.gguf", str(demo_model)), prompts="Say hello\nCode %",
                         learning_top=2, sampling=params)
        events = list(ChainRunner(backend, engines=engines).run(spec))
    connected = [e for e in events if isinstance(e, EngineConnected)]
    assert [(e.model, e.kind) for e in connected] == [("other/chain-studio-demo.gguf", "chain-studio")]
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert [(a.model, a.text) for a in answers] == [
        ("other/chain-studio-demo.gguf", SCRIPT_HELLO), ("other/chain-studio-demo.gguf", SCRIPT_CODE),
        ("chain-studio-demo.gguf", SCRIPT_HELLO), ("chain-studio-demo.gguf", SCRIPT_CODE)]
    remote = answers[0]
    assert remote.notes == ()  # every setting sent, and the usage counted the tokens
    assert remote.tokens == 5 and remote.prompt_tokens > 0
    assert remote.choices[0].remote and [c.piece for c in remote.choices[0].candidates] == ["Hello", "Greetings"]


def test_the_api_chain_route_runs_a_saved_engine(proxy: FaultProxy, tmp_path: Path) -> None:
    home = tmp_path / "api-home"
    home.mkdir()
    EngineStore(home).save(EngineConfig("remote", proxy.url))
    with serve_api(home) as api:
        with httpx.stream("POST", f"{api.base}/api/chain", json={"models": ["remote/demo", "chain-studio-demo"],
                                                                  "prompts": "Say hello", "feedback": True},
                          headers={"Authorization": f"Bearer {api.token}"}, timeout=120) as response:
            assert response.status_code == 200, response.read()
            lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[0]["models"][0] == "remote/demo"
    assert [(line["model"], line["text"]) for line in lines if line["type"] == "answer"] == [
        ("remote/demo", SCRIPT_HELLO), ("chain-studio-demo.gguf", SCRIPT_HELLO)]
    assert lines[-1]["reason"] == "completed"
