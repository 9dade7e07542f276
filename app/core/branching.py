"""Branching in learning mode: take another candidate at some position of an answer and let the
model go on from there, keeping everything before it. The original answer is untouched; a branch
is a new answer of the same run, linked to its parent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Union

from app.core.backend import Backend, ChatMessage, GenerationRequest, GenerationResult, TokenEvent
from app.core.events import Answer
from app.core.hub_links import display_name
from app.core.metrics import metrics_of
from app.core.sampling import LoadParams, SamplingParams


@dataclass(frozen=True)
class BranchPoint:
    """The answer a branch grows from, as the journal or the live run knows it."""

    run_id: int
    seq: int
    model_path: str
    item: int
    response: int
    loop: int
    messages: tuple[ChatMessage, ...]
    params: SamplingParams
    token_ids: tuple[int, ...]
    template: str = "auto"  # the prompt format the answer was written in
    choices: tuple[Any, ...] = ()  # its learning-mode TokenChoices (a remote engine's branch needs the pieces)
    sent: str = ""  # exactly the text the model read

    @classmethod
    def from_answer(cls, run_id: int, answer: Answer) -> "BranchPoint":
        """The branch point of a finished learning-mode answer of run `run_id`."""
        return cls(run_id, answer.index, answer.model_path, answer.item, answer.response, answer.loop,
                   answer.messages, answer.params, tuple(c.chosen for c in answer.choices),
                   answer.prompt_format or "auto", tuple(answer.choices), answer.sent)


def grow_branch(
    backend: Backend, base: BranchPoint, position: int, token: int, new_seq: int, learning_top: int,
    load: LoadParams | None = None,
) -> Iterator[Union[TokenEvent, Answer]]:
    """Stream the branch's tokens (the kept ones first), then its `Answer`."""
    if not 0 <= position <= len(base.token_ids):
        raise ValueError(f"position {position} is outside the answer (0 to {len(base.token_ids)})")
    backend.load(base.model_path, load)
    forced = base.token_ids[:position] + (token,)
    request = GenerationRequest(messages=base.messages, params=base.params, learning_top=learning_top,
                                forced_tokens=forced, template=base.template)
    choices = []
    result: GenerationResult | None = None
    for event in backend.generate(request):
        if isinstance(event, TokenEvent):
            if event.choice is not None:
                choices.append(event.choice)
            yield event
        else:
            result = event
    assert result is not None
    yield Answer(
        index=new_seq, model=display_name(base.model_path), model_path=base.model_path, item=base.item,
        response=base.response, loop=base.loop, prompt=base.messages[-1].content, messages=base.messages,
        params=base.params, text=result.text, prompt_tokens=result.prompt_tokens, tokens=result.generated_tokens,
        seconds=result.seconds, stop_reason=result.stop_reason, seed=result.seed,
        choices=tuple(choices[: result.generated_tokens]), prompt_format=result.prompt_format,
        sent=result.prompt_text, metrics=metrics_of(result),
    )
