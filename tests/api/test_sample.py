"""POST /api/sample: the Sampler SDK's sample() as an NDJSON stream, on the demo model."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import RunningApi

DEMO = "chain-studio-demo.gguf"


def sample(api: RunningApi, **body: Any) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{api.base}/api/sample", json={"model": DEMO, **body}, timeout=120,
                      headers={"Authorization": f"Bearer {api.token}"}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def test_tokens_stream_with_their_probability_and_alternatives(api: RunningApi) -> None:
    lines = sample(api, prompt="hi", alternatives=3, rng_seed=11)
    start, tokens, done = lines[0], lines[1:-1], lines[-1]
    assert start == {"type": "start", "model": DEMO, "seed": 11, "prompt_tokens": start["prompt_tokens"]}
    assert start["prompt_tokens"] > 0
    assert [t["type"] for t in tokens] == ["token"] * len(tokens) and done["type"] == "done"
    assert "".join(t["text"] for t in tokens) == done["text"] and done["tokens"] == len(tokens)
    assert done["stop_reason"] == "eos" and done["seed"] == 11
    for token in tokens:
        assert 0 < token["prob"] <= 1 and 0 < token["model_prob"] <= 1
        assert 1 <= len(token["top_k"]) <= 3
        probs = [alt["prob"] for alt in token["top_k"]]
        assert probs == sorted(probs, reverse=True)
        assert token["id"] in [alt["id"] for alt in token["top_k"]]  # the drawn token survived the stages
        assert "record" not in token


def test_seeds_derived_from_an_initial_seed_repeat_in_call_order(api: RunningApi) -> None:
    def run(call: int) -> tuple[int, str]:
        done = sample(api, prompt="hi", temperature=2.0, initial_rng_seed=42, call=call, top_k=0)[-1]
        return done["seed"], done["text"]

    calls = [run(call) for call in range(6)]
    assert [run(call) for call in range(6)] == calls  # the same order gives the same seeds and texts
    assert len({seed for seed, _ in calls}) == 6 and len({text for _, text in calls}) > 1


def test_a_stop_token_ends_without_it_and_one_that_is_not_a_single_token_is_ignored(api: RunningApi) -> None:
    done = sample(api, prompt="hi", temperature=0, stop_tokens=[" demo", "not a single token"])[-1]
    assert (done["text"], done["stop_reason"]) == ("Hello from the", "stop_token")
    second = sample(api, prompt="hi", temperature=0)[2]  # a token id works too
    assert second["piece"] == " from"
    from_id = second["id"]
    done = sample(api, prompt="hi", temperature=0, stop_tokens=[from_id])[-1]
    assert (done["text"], done["stop_reason"]) == ("Hello", "stop_token")


def test_a_stop_string_is_included_and_the_last_token_may_run_past_it(api: RunningApi) -> None:
    done = sample(api, prompt="hi", temperature=0, stop_strings=["fr"])[-1]
    assert (done["text"], done["stop_reason"]) == ("Hello from", "stop_string")


def test_token_ids_as_input_continue_exactly_like_the_text(api: RunningApi) -> None:
    status, tokenized = api.call("POST", "/api/tokenize", {"model": DEMO, "text": "hi"})
    assert status == 200
    by_ids = sample(api, inputs=[tokenized["tokens"]], temperature=0)
    by_text = sample(api, prompt="hi", temperature=0)
    assert by_ids[0]["prompt_tokens"] == by_text[0]["prompt_tokens"] == len(tokenized["tokens"])
    assert by_ids[-1]["text"] == by_text[-1]["text"] == "Hello from the demo model."
    status, text = api.call("POST", "/api/detokenize", {"model": DEMO, "tokens": tokenized["tokens"]})
    assert status == 200 and text["text"].endswith("hi")


def test_allowed_and_disallowed_tokens_limit_the_draw_with_their_whitespace_variants(api: RunningApi) -> None:
    allowed = sample(api, prompt="hi", temperature=0, max_len=2, allowed_tokens=["Greetings", "again"])
    assert allowed[-1]["text"] == "Greetings again"
    assert all(alt["piece"] in ("Greetings", " again") for line in allowed[1:-1] for alt in line["top_k"])
    plain = sample(api, prompt="hi", temperature=0, max_len=2, allowed_tokens=["Greetings", "again"],
                   augment_tokens=False)
    assert plain[-1]["text"] == "GreetingsGreetings"  # "again" alone is no token: only Greetings is left
    banned = sample(api, prompt="hi", temperature=0, max_len=2, disallowed_tokens=["Hello", "from"])
    assert banned[-1]["text"] == "Greetings again"


def test_a_prompt_that_starts_like_the_last_one_reuses_its_evaluation(api: RunningApi) -> None:
    status, tokenized = api.call("POST", "/api/tokenize", {"model": DEMO, "text": "a long shared beginning ~"})
    assert status == 200
    first = tokenized["tokens"]
    sample(api, inputs=[first], max_len=1, temperature=0)
    done = sample(api, inputs=[first + [120, 121]], max_len=1, temperature=0)[-1]
    assert done["reused_tokens"] >= len(first)  # the shared prefix (and the token sampled after it) was kept
    fresh = sample(api, inputs=[[1, 99, 98]], max_len=1, temperature=0)[-1]
    assert fresh["reused_tokens"] == 1  # only the BOS in common


def test_the_learning_record_comes_when_asked(api: RunningApi) -> None:
    token = sample(api, prompt="hi", temperature=0.8, top_k=5, record=True, max_len=1)[1]
    record = token["record"]
    assert record["chosen"] == token["id"] and "top_k" in record["stages"]
    assert all(len(candidate[4]) == len(record["stages"]) for candidate in record["candidates"])


@pytest.mark.parametrize("body, param, words", [
    ({"inputs": [[99999]]}, "inputs[0]", "outside the vocabulary"),
    ({"prompt": "hi", "allowed_tokens": ["yes"]}, "allowed_tokens", "none of allowed_tokens is a token"),
    ({"prompt": "hi", "allowed_tokens": ["Hello"], "disallowed_tokens": [1]}, "disallowed_tokens", "only one of"),
    ({"prompt": "hi", "nucleus_p": 3}, "nucleus_p", "out of range"),
    ({"prompt": "hi", "max_len": -1}, "max_len", "max_len"),
    ({"prompt": "hi", "grammar": "root ::= nothing"}, "grammar", "Undefined rule identifier 'nothing'"),
    ({"prompt": "hi", "choices": ["a"], "regex": "b"}, "choices", "give one constraint per answer"),
    ({"prompt": "hi", "json_schema": "{oops"}, "json_schema", "json_schema is not valid JSON"),
])
def test_a_bad_sample_request_is_a_400_naming_the_field(api: RunningApi, body, param, words) -> None:
    status, answer = api.call("POST", "/api/sample", {"model": DEMO, **body})
    assert status == 400 and answer["error"]["param"] == param and words in answer["error"]["message"], answer


def test_a_constraint_holds_the_sample_and_its_alternatives_are_the_valid_ones(api: RunningApi) -> None:
    lines = sample(api, prompt="hi", choices=["yes", "no"], temperature=1.0, rng_seed=5, alternatives=5,
                   record=True)
    tokens, done = lines[1:-1], lines[-1]
    assert done["text"] in ("yes", "no") and done["stop_reason"] == "eos"
    first = tokens[0]
    assert {alt["piece"] for alt in first["top_k"]} == {"y", "n"}  # only what the constraint allows
    assert first["prob"] == pytest.approx(0.5) and first["model_prob"] < 0.01  # after it, and before it
    assert first["record"]["stages"][0] == "constraint"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    done = sample(api, prompt="hi", json_schema=schema, temperature=1.0, rng_seed=5)[-1]
    assert json.loads(done["text"]) in ({"ok": True}, {"ok": False})
