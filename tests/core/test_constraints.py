"""Constrained decoding per item: `{choices=…}`, `{regex=…}`, `{json_schema=…}` (inline or a file)
and `{grammar=…}`, read with the prompt list, refused before a run when llama.cpp cannot use them,
held by llama.cpp's grammar sampler in normal mode and shown as the "constraint" stage in learning
mode. The demo model wants "Hello…" (every other token at logit 0, so the constraint decides); the
tiny random model writes whatever its weights say, and the grammar keeps it valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from app.core.chain import ChainSpec
from app.core.constraints import choices_grammar, literal, make_constraint
from app.core.errors import GrammarError, PromptSyntaxError
from app.core.events import Answer, AnswerFinished, RunFinished
from app.core.prompt_list import parse_prompt_list
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.models.benchmark_model import write_tiny_attention_model
from app.models.local_backend import LocalBackend
from app.store.journal import Journal

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer"},
                                           "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2}},
          "required": ["name", "age"], "additionalProperties": False}


def answers_of(backend: LocalBackend, model: Path, prompts: str, **spec: object) -> list[Answer]:
    run = ChainSpec(models=(str(model),), prompts=prompts, **spec)  # type: ignore[arg-type]
    return [e.answer for e in ChainRunner(backend).run(run) if isinstance(e, AnswerFinished)]


def test_each_kind_is_read_from_an_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema_file = tmp_path / "person.json"
    schema_file.write_text(json.dumps(PERSON), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    items = parse_prompt_list(
        '{choices=["yes", "no"], temperature=0} Is it?\n'
        '{regex="[0-9]{3}-[0-9]{4}"} A phone number\n'
        '{json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}}} JSON\n'
        '{json_schema="person.json"} A person\n'
        "{grammar='root ::= \"a\" [b-c]*'} Letters\n"
        "Free text").items
    kinds = [item.constraint.kind if item.constraint else None for item in items]
    assert kinds == ["choices", "regex", "json_schema", "json_schema", "grammar", None]
    assert items[0].overrides["temperature"] == 0 and items[0].text == "Is it?"
    assert items[3].constraint is not None and items[3].constraint.schema == PERSON
    assert items[4].constraint is not None and items[4].constraint.gbnf == 'root ::= "a" [b-c]*'


@pytest.mark.parametrize(("source", "message"), [
    ('{choices=["a"], regex="b"} x', "choices and regex are both set: give one constraint per answer"),
    ('{choices="yes"} x', "choices must be a list of 1 to 1000 non-empty strings"),
    ('{choices=["yes", ""]} x', "choices must be a list of 1 to 1000 non-empty strings"),
    ('{regex="[a"} x', "regex '[a' is not a regular expression: unterminated character set"),
    ('{regex="(?=a)b"} x', "cannot be turned into a grammar"),
    ('{json_schema={"type": "object",}} x', "the schema is not valid JSON"),
    ('{json_schema="no-such-schema.json"} x', "cannot read the schema file 'no-such-schema.json'"),
    ('{json_schema=[1, 2]} x', "json_schema must be a JSON object"),
    ("{grammar=''} x", "grammar must be a quoted GBNF grammar with a root rule"),
    ('{json_schema={"properties": {"age": {"type": "integer", "minimum": 0}}}} x',
     "json_schema uses minimum, which decoding cannot enforce"),
])
def test_a_bad_constraint_is_refused_with_the_item_named(source: str, message: str) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list(source)
    assert message in str(caught.value) and str(caught.value).startswith("item 1 (")


def test_choices_are_exact_literals() -> None:
    assert literal('say "hi"\\\n') == '"say \\"hi\\"\\\\\\n"'
    assert choices_grammar(["yes", "no"]) == 'root ::= "yes" | "no"'
    assert make_constraint("regex", "[0-9]+").gbnf.startswith("root ::= ")


@pytest.mark.parametrize(("grammar", "reason"), [
    ("root ::= missing", "Undefined rule identifier 'missing'"),
    ('root ::= "unclosed', "unexpected end of input"),
    ('answer ::= "x"', "grammar does not contain a 'root' symbol"),
    ('root ::= root "a"', "left recursion"),
])
def test_an_impossible_grammar_is_refused_before_the_run(backend: LocalBackend, demo_model: Path, journal: Journal,
                                                          grammar: str, reason: str) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts=f"Fine\n{{grammar='{grammar}'}} Broken")
    with pytest.raises(GrammarError) as caught:
        next(iter(ChainRunner(backend, journal).run(spec)))
    assert str(caught.value).startswith("item 2 (grammar=") and reason in str(caught.value)
    assert journal.runs(5) == []  # nothing ran, nothing was journaled


def test_normal_mode_holds_the_demo_model_to_each_constraint(backend: LocalBackend, demo_model: Path) -> None:
    prompts = ('{choices=["yes", "no"]} Is it?\n{regex="[0-9]{3}-[0-9]{2}"} Number\n'
               f"{{json_schema={json.dumps(PERSON)}}} Who?")
    for seed in (1, 2):
        yes_no, number, person = answers_of(backend, demo_model, prompts,
                                            sampling=SamplingParams(seed=seed, temperature=1.0, max_tokens=200))
        assert yes_no.text in ("yes", "no") and yes_no.stop_reason == "eos"
        assert re.fullmatch(r"[0-9]{3}-[0-9]{2}", number.text), number.text
        jsonschema.validate(json.loads(person.text), PERSON)


def test_learning_mode_shows_what_the_constraint_did(backend: LocalBackend, demo_model: Path) -> None:
    (answer,) = answers_of(backend, demo_model, '{choices=["yes", "no"]} Is it?', learning_top=3,
                           sampling=SamplingParams(seed=4, temperature=1.0))
    assert answer.text in ("yes", "no")
    first = answer.choices[0]
    assert first.stages[0] == "constraint"
    hello = next(c for c in first.candidates if c.piece == "Hello")  # what the model wanted
    assert hello.prob > 0.8 and hello.stage_probs[0] == 0.0 and hello.removed_by == "constraint"
    valid = [c for c in first.candidates if c.removed_by is None]
    assert {c.piece for c in valid} == {"y", "n"} and first.candidates[:2] == tuple(valid)  # valid ones first
    assert [round(c.stage_probs[0], 6) for c in valid] == [0.5, 0.5]  # both at logit 0: an even split


def test_a_random_model_writes_json_valid_for_the_schema(backend: LocalBackend, tmp_path: Path) -> None:
    tiny = write_tiny_attention_model(tmp_path / "tiny.gguf")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}},
              "required": ["n", "ok"], "additionalProperties": False}
    prompt = f"{{json_schema={json.dumps(schema)}, max_tokens=300}} Anything"
    for seed in (1, 2, 3):
        (normal,) = answers_of(backend, tiny, prompt, sampling=SamplingParams(seed=seed, temperature=1.0))
        jsonschema.validate(json.loads(normal.text), schema)
        (learning,) = answers_of(backend, tiny, prompt, learning_top=5,
                                 sampling=SamplingParams(seed=seed, temperature=1.0))
        jsonschema.validate(json.loads(learning.text), schema)
        assert all(c.stages[0] == "constraint" for c in learning.choices)
        assert all(c.chosen_candidate.removed_by is None for c in learning.choices)


def test_a_constrained_run_journals_and_replays_like_any_other(backend: LocalBackend, demo_model: Path,
                                                               journal: Journal) -> None:
    spec = ChainSpec(models=(str(demo_model),), prompts='{choices=["red", "green", "blue"]} Colour?',
                     sampling=SamplingParams(temperature=1.0))
    events = list(ChainRunner(backend, journal).run(spec))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.reason == "completed"
    kept = journal.stored_run(events[0].run_id)  # type: ignore[union-attr]
    assert kept is not None and kept.answers[0].text in ("red", "green", "blue")
