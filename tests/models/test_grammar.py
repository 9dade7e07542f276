"""Answers held to a grammar or a JSON schema in the worker: llama.cpp's grammar sampler in normal
mode, the "constraint" stage of the studio's pipeline in learning mode."""

from __future__ import annotations

import json

import pytest

from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.errors import GrammarError
from app.core.sampling import SamplingParams
from app.models.local_backend import LocalBackend


def test_the_json_string_rule_the_worker_tightens_is_the_converters() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    from app.core.constraints import JSON_CHAR_RULE, JSON_CHAR_RULE_STRICT

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
    assert answer(backend).text  # the next request is served


def test_learning_mode_shows_the_constraint_as_a_stage(backend: LocalBackend) -> None:
    """The demo model wants "Hello…" (logit 10, its alternative 8, every other token 0): under
    choices "yes"/"no" those two are ruled out, and the pick is drawn among the valid tokens."""
    events = list(backend.generate(GenerationRequest(
        prompt="hi", params=SamplingParams(max_tokens=10, temperature=1.0, seed=3), learning_top=3,
        grammar='root ::= "yes" | "no"')))
    result = events[-1]
    assert isinstance(result, GenerationResult) and result.text in ("yes", "no") and result.stop_reason == "eos"
    first = next(e.choice for e in events if isinstance(e, TokenEvent))
    assert first.stages[0] == "constraint"
    valid = [c for c in first.candidates if c.removed_by is None]
    ruled_out = [c for c in first.candidates if c.removed_by == "constraint"]
    assert valid and all(c.piece[:1] in "yn" for c in valid)  # the valid ones are listed first
    assert first.candidates[: len(valid)] == tuple(valid)
    # the model's favourites are ruled out: likely before the constraint, 0 after it
    assert ruled_out and ruled_out[0].prob > 0.8 and ruled_out[0].stage_probs[0] == 0.0
    assert sum(c.stage_probs[0] for c in valid) == pytest.approx(1.0, abs=1e-6)
    assert first.chosen in [c.token_id for c in valid] and first.chosen_rank > 2
