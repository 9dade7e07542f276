"""The OpenAI-compatible routes, called by the official `openai` package (and by raw HTTP where a
client would hide what is tested), on the scripted demo model served by `python -m app serve`."""

from __future__ import annotations

import pytest

from tests.api.conftest import TOKEN, RunningApi

HELLO = "Hello from the demo model."
DEMO = "chain-studio-demo.gguf"


def test_the_models_folder_is_listed(api: RunningApi) -> None:
    assert DEMO in [model.id for model in api.client().models.list()]


def test_a_chat_answer_with_its_usage(api: RunningApi) -> None:
    reply = api.client().chat.completions.create(model="chain-studio-demo",
                                                 messages=[{"role": "user", "content": "hi"}], temperature=0)
    assert reply.choices[0].message.content == HELLO
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == DEMO and reply.usage.completion_tokens == 5 and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_a_streamed_chat_answer_adds_up_to_the_whole_one(api: RunningApi) -> None:
    stream = api.client().chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "hi"}],
                                                  stream=True, stream_options={"include_usage": True}, temperature=0)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5


def test_logprobs_with_top_alternatives(api: RunningApi) -> None:
    reply = api.client().chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "hi"}],
                                                 logprobs=True, top_logprobs=3, temperature=0)
    entries = reply.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == HELLO
    for entry in entries:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
        assert entry.top_logprobs[0].token == entry.token  # greedy: the most likely token was taken
    assert entries[0].top_logprobs[1].token == "Greetings"


def test_a_stop_string_ends_the_answer_before_it(api: RunningApi) -> None:
    reply = api.client().chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "hi"}],
                                                 stop=[" demo"], temperature=0)
    assert reply.choices[0].message.content == "Hello from the"
    assert reply.choices[0].finish_reason == "stop"


def test_a_token_limit_says_length(api: RunningApi) -> None:
    reply = api.client().completions.create(model=DEMO, prompt="hi", max_tokens=2)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 2


def test_the_same_seed_gives_the_same_answers_and_n_answers_come_back(api: RunningApi) -> None:
    def sample(seed: int) -> list[str]:
        reply = api.client().chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "hi"}], temperature=2.0, seed=seed, n=6,
            extra_body={"top_k": 0})
        return [choice.message.content for choice in reply.choices]

    first = sample(7)
    assert len(first) == 6 and first == sample(7)
    assert len(set(first + sample(8))) > 1  # at temperature 2 the seeds do matter


def test_raw_completion_and_echo(api: RunningApi) -> None:
    reply = api.client().completions.create(model=DEMO, prompt="hi", echo=True, logprobs=2, temperature=0)
    choice = reply.choices[0]
    assert choice.text == "hi" + HELLO
    assert "".join(choice.logprobs.tokens) == HELLO and len(choice.logprobs.top_logprobs[0]) == 2


@pytest.mark.parametrize("token", [None, "cs-wrong"])
def test_a_request_without_the_token_is_refused(api: RunningApi, token: str | None) -> None:
    for method, path, body in [("GET", "/v1/models", None), ("POST", "/api/tokenize", {"model": DEMO, "text": "x"}),
                               ("POST", "/v1/chat/completions", {"model": DEMO, "messages": []})]:
        status, answer = api.call(method, path, body, token=token)
        assert status == 401 and answer["error"]["code"] == "invalid_api_key", (path, answer)
        assert TOKEN not in str(answer)


@pytest.mark.parametrize("body, raw, param, words", [
    (None, b"{not json", None, "not valid JSON"),
    ({"model": DEMO}, None, "messages", "messages is required"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, None, "temperature",
     "valid number"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "temperature": 9}, None, "temperature",
     "out of range"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "top_k": -3}, None, "top_k", "out of range"),
    ({"model": DEMO, "messages": [{"role": "wizard", "content": "x"}]}, None, "messages.0.role", "messages.0.role"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, None,
     "tools", "not supported"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}},
     None, "response_format.json_schema", "needs a json_schema"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "logprobs": True,
      "response_format": {"type": "json_object"}}, None, "response_format", "cannot be combined with logprobs"),
    ({"model": DEMO, "messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "wizard"}}}},
     None, "response_format", "cannot be turned into a grammar"),
])
def test_a_bad_body_is_a_400_naming_the_field(api: RunningApi, body, raw, param, words) -> None:
    status, answer = api.call("POST", "/v1/chat/completions", body, raw=raw)
    assert status == 400, answer
    assert answer["error"]["param"] == param and words in answer["error"]["message"]
    assert "Traceback" not in str(answer)


def test_an_unknown_model_is_a_404(api: RunningApi) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as refused:
        api.client().chat.completions.create(model="nowhere.gguf", messages=[{"role": "user", "content": "hi"}])
    assert "no model named 'nowhere.gguf'" in str(refused.value)


def test_a_prompt_longer_than_the_context_is_a_400(api: RunningApi) -> None:
    status, answer = api.call("POST", "/v1/completions", {"model": DEMO, "prompt": "hello " * 6000})
    assert status == 400 and answer["error"]["code"] == "context_length_exceeded", answer
    # and the studio goes on
    assert api.client().completions.create(model=DEMO, prompt="hi", temperature=0).choices[0].text == HELLO


def test_a_request_for_another_model_loads_it_in_place_of_the_first(api: RunningApi) -> None:
    from app.models.demo_model import write_demo_model

    write_demo_model(api.home / "models" / "second-demo.gguf")
    client = api.client()
    client.completions.create(model=DEMO, prompt="hi", max_tokens=1)
    assert api.call("GET", "/api/models")[1]["loaded"]["id"] == DEMO
    reply = client.completions.create(model="second-demo", prompt="hi", temperature=0)
    assert reply.model == "second-demo.gguf" and reply.choices[0].text == HELLO
    status, models = api.call("GET", "/api/models")
    assert status == 200 and models["loaded"]["id"] == "second-demo.gguf"
    assert [m["id"] for m in models["data"] if m["loaded"]] == ["second-demo.gguf"]
    status, unloaded = api.call("POST", "/api/models", {"action": "unload"})
    assert (status, unloaded, api.call("GET", "/api/models")[1]["loaded"]) == (200, {"loaded": None}, None)
    status, loaded = api.call("POST", "/api/models", {"action": "load", "model": DEMO})
    assert status == 200 and loaded["loaded"]["id"] == DEMO


def test_an_answer_in_a_json_schema_is_valid_json_for_it(api: RunningApi) -> None:
    import json

    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
              "additionalProperties": False}
    for seed in range(4):
        reply = api.client().chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "hi"}], max_tokens=60, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}})
        assert reply.choices[0].finish_reason == "stop"
        assert json.loads(reply.choices[0].message.content) in ({"answer": "yes"}, {"answer": "no"})
    finished = 0
    for seed in range(200, 220):  # the demo model can also write one long string until max_tokens
        reply = api.client().chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "hi"}],
                                                     max_tokens=100, seed=seed, response_format={"type": "json_object"})
        text = reply.choices[0].message.content
        assert not any(ord(char) < 0x20 for char in text)  # no raw control character, even unfinished
        if reply.choices[0].finish_reason == "stop":
            finished += 1
            assert isinstance(json.loads(text), dict)
    assert finished >= 3
