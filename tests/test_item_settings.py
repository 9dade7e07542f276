"""Samantha's documented item settings: `{n_ctx=512, max_tokens=100, stop=STOP, …}` and
`{…, reset_model=True}` are read, and do what they say in a run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from app.core.backend import GenerationRequest, LoadedModel
from app.core.chain import ChainSpec, answer_fresh_context, answer_load, answer_params
from app.core.errors import PromptSyntaxError
from app.core.events import AnswerFinished, Failure, ModelLoaded, RunFinished
from app.core.prompt_list import parse_prompt_list
from app.core.runner import ChainRunner
from app.core.sampling import LoadParams, SamplingParams
from app.models.demo_model import SCRIPT_HELLO
from app.models.local_backend import LocalBackend

# Samantha's own words: the format its hyperparameter error message and app.py give, and the
# "Deterministic Settings" line under its user prompt field.
DOCUMENTED = ("{n_ctx=512, max_tokens=100, stop=STOP, temperature=1.0, tfs_z=1.0, top_p=1.0, min_p=0.1, "
              "typical_p=0.5, top_k=50, presence_penalty=0.0, frequency_penalty=0.0, repeat_penalty=1.0}")
DETERMINISTIC = ("{max_tokens=4000, temperature=0, tfs_z=0, top_p=0, min_p=1, typical_p=0, top_k=40, "
                 "presence_penalty=0, frequency_penalty=0, repeat_penalty=1, reset_model=True}")


def test_samantha_documented_settings_are_read() -> None:
    item = parse_prompt_list(f"{DOCUMENTED} Tell a story").items[0]
    assert item.text == "Tell a story"
    assert item.overrides == {
        "n_ctx": 512, "max_tokens": 100, "stop": "STOP", "temperature": 1.0, "tfs_z": 1.0, "top_p": 1.0,
        "min_p": 0.1, "typical_p": 0.5, "top_k": 50, "presence_penalty": 0.0, "frequency_penalty": 0.0,
        "repeat_penalty": 1.0,
    }
    deterministic = parse_prompt_list(f"{DETERMINISTIC} hi").items[0]
    assert deterministic.overrides["reset_model"] is True and deterministic.overrides["tfs_z"] == 0


def test_what_each_setting_does_to_an_answer() -> None:
    spec = ChainSpec(models=("m.gguf",), load=LoadParams(n_ctx=4096, n_threads=2))
    documented, deterministic, plain = parse_prompt_list(f"{DOCUMENTED} a\n{DETERMINISTIC} b\nc").items
    params = answer_params(spec, documented, random.Random(0))
    assert params.stop == ("STOP",) and params.max_tokens == 100 and params.top_k == 50
    assert answer_load(spec, documented) == LoadParams(n_ctx=512, n_threads=2)  # only n_ctx changes
    assert answer_load(spec, plain) is spec.load
    assert [answer_fresh_context(spec, i) for i in (documented, deterministic, plain)] == [False, True, False]
    assert answer_fresh_context(ChainSpec(models=("m.gguf",), reset=True), plain)  # the run's "reset"
    with_reset_false = parse_prompt_list("{reset_model=false} x").items[0]
    assert with_reset_false.overrides == {"reset_model": False}


@pytest.mark.parametrize(
    ("source", "stop"),
    [
        ("{stop=STOP} x", ["STOP"]),
        ("{stop=###} x", ["###"]),
        ("{stop=7} x", ["7"]),  # a bare word is the stop string itself, even when it reads as a number
        ('{stop="two words"} x', ["two words"]),
        ('{stop=["END", "\\n\\n"]} x', ["END", "\n\n"]),
    ],
)
def test_a_bare_stop_word_is_the_stop_string(source: str, stop: list[str]) -> None:
    item = parse_prompt_list(source).items[0]
    assert answer_params(ChainSpec(models=("m.gguf",)), item, random.Random(0)).stop == tuple(stop)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{temperature=STOP} x", "value of temperature: 'STOP' is not a number, a quoted string or a list"),
        ("{seed=random} x", "value of seed: 'random' is not a number"),
        ("{reset_model=1} x", "value of reset_model: '1' is not True or False"),
        ("{n_ctx=big} x", "value of n_ctx: 'big' is not a number"),
        ("{n_ctx=0.5} x", "n_ctx must be a whole number, got 0.5"),
        ("{n_ctx=2000000} x", "n_ctx=2000000 is out of range: allowed 0 to 1048576"),
        ("{nctx=512} x", "unknown setting nctx; known settings: "),
        ("{stop=open('x')} x", "value of stop: "),
    ],
)
def test_anything_else_is_refused_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list(source)
    assert message in str(caught.value)


def test_the_unknown_setting_message_lists_the_item_settings() -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list("{rest_model=True} x")
    known = str(caught.value).split("known settings: ")[1].split(", ")
    assert {"n_ctx", "reset_model", "template", "stop", "temperature"} <= set(known)


class RecordingBackend:
    """The shared worker backend, with the loads and requests of a run written down."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.loads: list[int] = []
        self.requests: list[GenerationRequest] = []

    @property
    def loaded(self) -> LoadedModel | None:
        return self.inner.loaded

    def load(self, path: str, params: LoadParams | None = None,
             progress: Callable[[float], None] | None = None) -> LoadedModel:
        self.loads.append((params or LoadParams()).n_ctx)
        return self.inner.load(path, params, progress)

    def generate(self, request: GenerationRequest) -> Iterator[Any]:
        self.requests.append(request)
        return self.inner.generate(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_run_reloads_for_n_ctx_resets_for_reset_model_and_stops_at_the_word(
    backend: LocalBackend, demo_model: Path
) -> None:
    recording = RecordingBackend(backend)
    runner = ChainRunner(recording)  # type: ignore[arg-type]
    prompts = "\n".join([
        "hi",
        "{n_ctx=256} " + "x" * 400,  # too long for 256 tokens: only this item's context is small
        "{n_ctx=512, reset_model=True} hi",
        "{stop=STOP} write the stop code #",  # the answer would print STOP_SAMANTHA and end the run
        "hi",
    ])
    spec = ChainSpec(models=(str(demo_model),), prompts=prompts, load=LoadParams(n_ctx=1024),
                     sampling=SamplingParams(max_tokens=40))
    events = list(runner.run(spec))
    assert [e.info.n_ctx for e in events if isinstance(e, ModelLoaded)] == [1024, 256, 512, 1024]
    assert recording.loads == [1024, 256, 512, 1024]
    failures = [e for e in events if isinstance(e, Failure)]
    assert len(failures) == 1 and "prompt has 401 tokens, context is 256" in failures[0].message
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    assert [a.item for a in answers] == [1, 3, 4, 5]
    assert [r.fresh_context for r in recording.requests] == [False, False, True, False, False]
    assert answers[1].text == SCRIPT_HELLO
    assert answers[2].text == "```python\nprint('" and answers[2].params.stop == ("STOP",)
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "completed"
