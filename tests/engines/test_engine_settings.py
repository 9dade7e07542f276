"""Engine settings checked where they are made, the request fields each kind of engine is sent,
and an answer's notes in its footer."""

from __future__ import annotations

import pytest

from app.core.errors import EngineError
from app.core.events import Answer
from app.core.sampling import SamplingParams
from app.engines.config import EngineConfig, is_loopback
from app.engines.members import Engines
from app.engines.params import kind_from_owner, request_fields
from app.ui.render import answer_footer


@pytest.mark.parametrize(("url", "said"), [
    ("ftp://example.com/v1", "an engine URL must start with http:// or https://, not 'ftp://example.com/v1'"),
    ("file:///etc/passwd", "an engine URL must start with http:// or https://, not 'file:///etc/passwd'"),
    ("http://user:pw@example.com/v1", "an engine URL must not carry a user name or password; give the key separately"),
    ("http://example.com:8080", "the URL goes up to and including /v1, e.g. http://example.com:8080/v1"),
    ("http://example.com/v1?x=1", "an engine URL has no query or fragment: 'http://example.com/v1?x=1'"),
    ("http:///v1", "'http:///v1' names no host"),
    ("http://example.com:99999/v1", "'http://example.com:99999/v1' is not a valid URL: Port out of range 0-65535"),
])
def test_refused_urls_say_why(url: str, said: str) -> None:
    with pytest.raises(EngineError) as refused:
        EngineConfig("x", url)
    assert str(refused.value) == said


def test_names_limits_and_warnings() -> None:
    with pytest.raises(EngineError, match="must be 1 to 40 letters"):
        EngineConfig("no spaces", "http://127.0.0.1:1/v1")
    with pytest.raises(EngineError, match="concurrency must be a whole number from 1 to 64"):
        EngineConfig("a", "http://127.0.0.1:1/v1", concurrency=0)
    with pytest.raises(EngineError, match="not an environment variable name"):
        EngineConfig("a", "http://127.0.0.1:1/v1", key_env="$(rm -rf)")
    assert EngineConfig("a", "http://localhost:8080/v1/").url == "http://localhost:8080/v1"
    assert EngineConfig("a", "http://[::1]:8080/v1").warning == ""
    assert EngineConfig("a", "https://gpu.example.com/v1").warning == ""
    assert EngineConfig("a", "http://gpu.example.com/v1").warning.startswith(
        "a uses plain http to gpu.example.com: prompts, answers and its key travel unencrypted")
    assert is_loopback("127.0.0.2") and not is_loopback("10.0.0.1")


def test_members_are_saved_engine_names_before_a_slash() -> None:
    engines = Engines(extra=(EngineConfig("gpu", "http://127.0.0.1:1/v1"),))
    member = engines.member("gpu/meta-llama/Llama-3.1-70B")
    assert member is not None and member.model_id == "meta-llama/Llama-3.1-70B" and member.name == "gpu/meta-llama/Llama-3.1-70B"
    assert engines.member("models/x.gguf") is None  # no engine of that name: a local path
    assert engines.member("/abs/gpu/x.gguf") is None and engines.member("gpu/") is None
    assert engines.member("https://huggingface.co/gpu/x") is None


def test_each_kind_gets_its_own_field_names_and_the_rest_is_named() -> None:
    params = SamplingParams(temperature=0.7, top_k=20, min_p=0.1, repeat_penalty=1.15, seed=5, max_tokens=64,
                            stop=("a", "b", "c", "d", "e"), mirostat=2)
    vllm = request_fields(params, "vllm")
    assert vllm.fields == {"temperature": 0.7, "top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
                           "seed": 5, "max_tokens": 64, "stop": ["a", "b", "c", "d", "e"], "top_k": 20, "min_p": 0.1,
                           "repetition_penalty": 1.15}
    assert vllm.not_sent == ("mirostat=2", "repeat_last_n=64")
    lcp = request_fields(params, "llama-cpp-python")
    assert lcp.fields["mirostat_mode"] == 2 and lcp.fields["repeat_penalty"] == 1.15
    assert lcp.not_sent == ("repeat_last_n=64",)
    openai = request_fields(params, "openai")
    assert openai.fields["stop"] == ["a", "b", "c", "d"]
    assert openai.not_sent == ("stop strings beyond the first 4 (1)", "top_k=20", "min_p=0.1", "repeat_penalty=1.15",
                               "mirostat=2")
    drawn = request_fields(SamplingParams(), "openai")
    assert 0 <= drawn.seed < 2**31 and drawn.fields["seed"] == drawn.seed and drawn.not_sent == ("top_k=40",)
    assert kind_from_owner("llamacpp") == "llama.cpp" and kind_from_owner("anything") == "openai"


def test_notes_show_escaped_in_the_footer() -> None:
    answer = Answer(1, "gpu/m", "gpu/m", 1, 1, 1, "p", (), SamplingParams(), "text", 3, 2, 1.0, "cut", 1,
                    notes=("engine gpu failed (HTTP 500: <b>boom</b>)",))
    footer = answer_footer(answer)
    assert "the engine's stream was cut" in footer
    assert '<span class="answer-note">⚠️ engine gpu failed (HTTP 500: &lt;b&gt;boom&lt;/b&gt;)</span>' in footer
