"""Answers held to a grammar or a JSON schema in the worker (llama.cpp's grammar sampler)."""

from __future__ import annotations

import json

import pytest

from app.core.backend import GenerationRequest, GenerationResult
from app.core.errors import GrammarError
from app.core.sampling import SamplingParams
from app.models.local_backend import LocalBackend


def test_the_json_string_rule_the_worker_tightens_is_the_converters() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    from app.models.worker import JSON_CHAR_RULE, JSON_CHAR_RULE_STRICT

    converted = json_schema_to_gbnf(json.dumps({"type": "object"}))
    assert JSON_CHAR_RULE in converted  # else the replacement silently does nothing
    LlamaGrammar.from_string(converted.replace(JSON_CHAR_RULE, JSON_CHAR_RULE_STRICT), verbose=False)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory):
    from app.models.demo_model import write_demo_model

    path = write_demo_model(tmp_path_factory.mktemp("models") / "demo.gguf")
    loaded = LocalBackend()
    loaded.load(str(path))
    yield loaded
    loaded.close()


def answer(backend: LocalBackend, **fields) -> GenerationResult:
    request = GenerationRequest(prompt="hi", params=SamplingParams(max_tokens=60, temperature=1.0, seed=3), **fields)
    return [e for e in backend.generate(request) if isinstance(e, GenerationResult)][0]


def test_a_grammar_and_a_json_schema_hold_the_answer(backend: LocalBackend) -> None:
    assert answer(backend, grammar='root ::= "yes" | "no"').text in ("yes", "no")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    result = answer(backend, json_schema=json.dumps(schema))
    assert result.stop_reason == "eos" and json.loads(result.text) in ({"ok": True}, {"ok": False})


def test_a_grammar_that_cannot_be_used_is_refused_and_the_worker_goes_on(backend: LocalBackend) -> None:
    for broken in ("root ::= missing", 'root ::= "unclosed'):  # each crashed the worker before the check
        with pytest.raises(GrammarError, match="could not be parsed"):
            answer(backend, grammar=broken)
    with pytest.raises(GrammarError, match="cannot be turned into a grammar"):
        answer(backend, json_schema=json.dumps({"type": "wizard"}))
    with pytest.raises(GrammarError, match="learning mode"):
        answer(backend, grammar='root ::= "yes"', learning_top=5)
    assert answer(backend).text  # the next request is served
