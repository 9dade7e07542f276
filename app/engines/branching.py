"""Branching an engine's answer in learning mode: the engine continues from the answer's text up
to a position, with another candidate there. That needs the exact text the model read, so it works
where the engine took a raw prompt (the raw format, `/v1/completions`); a chat engine renders its
own template, whose text the studio never sees. The engine reads the text back and tokenizes it
itself, so its tokens may split differently from the answer's."""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Union

from app.core.backend import GenerationRequest, GenerationResult, TokenEvent
from app.core.branching import BranchPoint
from app.core.errors import EngineError
from app.core.events import Answer
from app.core.learning import TokenChoice
from app.core.metrics import metrics_of
from app.core.prompt_format import RAW
from app.engines.backend import EngineAnswer, RemoteEngine
from app.engines.members import EngineMember


def grow_remote_branch(engine: RemoteEngine, member: EngineMember, base: BranchPoint, position: int, token: int,
                       new_seq: int, learning_top: int,
                       on_start: Callable[[EngineAnswer], None] | None = None) -> Iterator[Union[TokenEvent, Answer]]:
    """Stream the branch's tokens (the kept ones and the new candidate first), then its `Answer`."""
    if base.template != RAW:
        raise EngineError(f"{member.name}: branching an engine's answer needs the raw prompt format; the engine "
                          "applied its own chat template, so the text before the token cannot be sent back")
    if not 0 <= position < len(base.choices):
        raise ValueError(f"position {position} is outside the answer (0 to {len(base.choices) - 1})")
    at = base.choices[position]
    taken = next((c for c in at.candidates if c.token_id == token), None)
    if taken is None:
        raise EngineError(f"{member.name}: the engine did not list that candidate at position {position}")
    kept: list[TokenChoice] = list(base.choices[:position])
    rank = sorted(at.candidates, key=lambda c: -c.prob).index(taken) + 1
    kept.append(dataclasses.replace(at, chosen=token, chosen_rank=rank))
    for choice in kept:
        yield TokenEvent(choice.chosen, choice.chosen_candidate.piece, choice)
    prefix = "".join(c.chosen_candidate.piece for c in kept)
    request = GenerationRequest(prompt=base.sent + prefix, params=base.params, learning_top=learning_top)
    answer = engine.start(member.model_id, request)
    if on_start is not None:
        on_start(answer)
    choices = list(kept)
    result: GenerationResult | None = None
    for event in answer.events():
        if isinstance(event, TokenEvent):
            choice = event.choice
            if choice is not None:
                choice = dataclasses.replace(choice, position=len(choices))
                choices.append(choice)
            yield TokenEvent(event.token_id, event.text, choice)
        else:
            result = event
    assert result is not None
    yield Answer(
        index=new_seq, model=member.name, model_path=base.model_path, item=base.item, response=base.response,
        loop=base.loop, prompt=base.messages[-1].content if base.messages else "", messages=base.messages,
        params=base.params, text=prefix + result.text, prompt_tokens=result.prompt_tokens,
        tokens=len(kept) + result.generated_tokens, seconds=result.seconds, stop_reason=result.stop_reason,
        seed=result.seed, choices=tuple(choices), prompt_format=RAW, sent=base.sent, notes=result.notes,
        metrics=metrics_of(result, remote=True),
    )
