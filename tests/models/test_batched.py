"""Several generations decoded together in one llama.cpp batch (app/models/batched.py), on the demo
model: each answer is the one it gives alone, a shared prefix is evaluated once, an answer no longer
wanted ends early, and what does not fit waits for a later batch."""

from __future__ import annotations

from collections import defaultdict

import pytest

from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.sampling import LoadParams, SamplingParams
from app.models.local_backend import LocalBackend


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from app.models.demo_model import write_demo_model

    path = write_demo_model(tmp_path_factory.mktemp("models") / "demo.gguf")
    loaded = LocalBackend()
    loaded.load(str(path), LoadParams(n_ctx=512))
    yield loaded
    loaded.close()


def request(backend: LocalBackend, text: str, **params) -> GenerationRequest:
    tokens = tuple(backend.tokenize(text, True))
    return GenerationRequest(prompt_tokens=tokens, learning_top=5,
                             params=SamplingParams(**{"max_tokens": 40, "temperature": 1.0, "seed": 5, **params}))


def alone(backend: LocalBackend, one: GenerationRequest) -> GenerationResult:
    return [e for e in backend.generate(one) if isinstance(e, GenerationResult)][0]


def together(backend: LocalBackend, requests, unwanted=set):
    tokens: dict[int, list[TokenEvent]] = defaultdict(list)
    results: dict[int, GenerationResult | None] = {}
    for index, event in backend.generate_many(requests, unwanted):
        if isinstance(event, TokenEvent):
            tokens[index].append(event)
        else:
            results[index] = event
    return tokens, results


def test_each_answer_of_a_batch_is_the_one_it_gives_alone(demo: LocalBackend) -> None:
    requests = [request(demo, "question ^"), request(demo, "hi"), request(demo, "code %", seed=11),
                request(demo, "hi", temperature=3.0, top_k=0, seed=2)]
    tokens, results = together(demo, requests)
    for index, one in enumerate(requests):
        single = alone(demo, one)
        result = results[index]
        assert result is not None
        assert (result.text, result.token_ids, result.stop_reason) == (single.text, single.token_ids,
                                                                      single.stop_reason)
        assert "".join(e.text for e in tokens[index]) == result.text
        # learning-mode records come with every token, as alone
        assert all(e.choice is not None and e.choice.chosen == e.token_id for e in tokens[index])
    assert results[0].text == "Roses are red\nViolets are blue\nThe end."


def test_a_prefix_every_prompt_shares_is_evaluated_once_and_reused(demo: LocalBackend) -> None:
    preamble = "a preamble every context starts with, " * 4
    requests = [request(demo, preamble + ending) for ending in ("one?", "two ^", "three %")]
    shared = len(demo.tokenize(preamble, True))
    _tokens, results = together(demo, requests)
    assert all(r is not None and r.reused_tokens >= shared for r in results.values())
    # the next single generation with the same beginning reuses it too
    follow = alone(demo, request(demo, preamble + "four?"))
    assert follow.reused_tokens >= shared


def test_an_answer_no_longer_wanted_ends_while_the_others_go_on(demo: LocalBackend) -> None:
    requests = [request(demo, "sing ~", temperature=0, max_tokens=400), request(demo, "hi", temperature=0)]
    _tokens, results = together(demo, requests, unwanted=lambda: {0})
    assert results[0] is not None and results[0].stop_reason == "stopped" and results[0].generated_tokens < 40
    assert results[1] is not None and results[1].text == "Hello from the demo model."


def test_requests_that_do_not_fit_together_are_handed_back(demo: LocalBackend) -> None:
    long_prompt = "x" * 150
    requests = [request(demo, long_prompt + "~", max_tokens=200, temperature=0) for _ in range(3)]
    _tokens, results = together(demo, requests)
    ran = [r for r in results.values() if r is not None]
    assert 1 <= len(ran) < 3 and all(r.generated_tokens == 200 for r in ran)
    assert sum(r is None for r in results.values()) == 3 - len(ran)
