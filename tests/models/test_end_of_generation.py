"""Every end-of-generation token a model declares ends the answer, is never printed, and the answer
says it finished: the demo model rewritten so that its answers end with an <end_of_turn> control
token (declared as end-of-turn, as chat models declare theirs) instead of </s>."""

from __future__ import annotations

import pytest

from app.core.backend import GenerationRequest, GenerationResult
from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO, write_demo_model
from app.models.local_backend import LocalBackend


@pytest.fixture(scope="module")
def end_of_turn_backend(tmp_path_factory: pytest.TempPathFactory):
    path = write_demo_model(tmp_path_factory.mktemp("eot") / "eot.gguf", end_of_turn="<end_of_turn>")
    backend = LocalBackend()
    backend.load(str(path))
    yield backend
    backend.close()


@pytest.mark.parametrize(("prompt", "expected"), [("hi", SCRIPT_HELLO), ("compute %", SCRIPT_CODE)])
@pytest.mark.parametrize("learning_top", [0, 5])
def test_an_end_of_turn_token_ends_the_answer_unprinted(end_of_turn_backend: LocalBackend, prompt: str,
                                                        expected: str, learning_top: int) -> None:
    request = GenerationRequest.chat(prompt)
    if learning_top:
        request = GenerationRequest(request.messages, learning_top=learning_top)
    events = list(end_of_turn_backend.generate(request))
    result = events[-1]
    assert isinstance(result, GenerationResult)
    assert result.text == expected and "end_of_turn" not in result.text
    assert result.stop_reason == "eos"  # shown as "finished"
    assert "".join(e.text for e in events[:-1]) == expected  # nothing streamed beyond it either
    assert "<end_of_turn>" in end_of_turn_backend.vocabulary()  # it is in the vocabulary, as a control token
