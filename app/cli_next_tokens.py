"""`python -m app next-tokens`: several models' most likely next tokens at one prefix, side by
side, and where their greedy continuations part. Public interface: the `next_tokens` line's keys
stay stable once published."""

from __future__ import annotations

from typing import Any

from app.cli import emit, fail, model_argument
from app.core.errors import ChainStudioError
from app.core.next_tokens import NextTokenComparison, compare_next_tokens
from app.ui.learning_view import visible


def answer_prefix(reference: str, position: int) -> str:
    """The text a journaled answer's model had read before its token `position`: its prompt as sent
    and its first `position` tokens (raises ChainStudioError when there is no such answer)."""
    from app.cli_replay import parse_reference, stored_runs

    try:
        run_id, seq = parse_reference(reference)
    except ValueError as exc:
        raise ChainStudioError(str(exc)) from None
    if seq is None:
        raise ChainStudioError(f"{reference}: give an answer as RUN:SEQ, e.g. 12:3")
    stored = stored_runs([run_id])[run_id]
    answer = next((a for a in stored.answers if a.index == seq), None) if stored is not None else None
    if answer is None:
        raise ChainStudioError(f"there is no answer {seq} in run {run_id}")
    if not answer.sent:
        raise ChainStudioError(f"answer {reference} was journaled without the text its model read")
    if not 0 <= position <= len(answer.pieces):
        raise ChainStudioError(f"answer {reference} has {len(answer.pieces)} tokens: --position goes from 0 to that")
    return answer.sent + "".join(text for _token, text in answer.pieces[:position])


def cmd_next_tokens(args: Any, models_dir: str | None) -> int:
    """Compare the models at the prefix the arguments give."""
    from app.models.local_backend import LocalBackend

    try:
        models = [str(model_argument(m, models_dir)) for m in args.model]
        if args.answer:
            prefix, raw = answer_prefix(args.answer, args.position), True
        else:
            prefix, raw = (args.prompt, False) if args.prompt is not None else (args.text, True)
    except ChainStudioError as exc:
        return fail(str(exc))
    backend = LocalBackend()
    try:
        comparison = compare_next_tokens(backend, models, prefix, raw=raw, top=args.top, tokens=args.tokens,
                                         system=args.system)
    except ChainStudioError as exc:
        return fail(str(exc))
    finally:
        backend.close()
    if args.jsonl:
        emit({"type": "next_tokens", **comparison.to_dict()})
    else:
        print(readable(comparison))
    return 0


def readable(comparison: NextTokenComparison) -> str:
    """The comparison as text: a column per model, then each continuation with the parting token
    in brackets."""
    width = 24
    lines = ["rank  " + "".join(f"{side.model[:width - 1]:<{width}}" for side in comparison.sides)]
    rows = max((len(side.candidates) for side in comparison.sides), default=0)
    for rank in range(rows):
        cells = []
        for side in comparison.sides:
            if rank < len(side.candidates):
                _id, piece, prob = side.candidates[rank]
                cells.append(f"{visible(piece)[:width - 9]} {prob:6.1%}"[: width - 1].ljust(width))
            else:
                cells.append(" " * width)
        lines.append(f"{rank + 1:>4}  " + "".join(cells))
    lines.append("")
    for side in comparison.sides:
        if side.error:
            lines.append(f"{side.model}: {side.error}")
            continue
        parting = side.token_at(comparison.parts_at)
        shown = "".join(f"[{piece}]" if index == parting else piece for index, piece in enumerate(side.continuation))
        lines.append(f"{side.model}: {shown!r}")
    lines.append("The continuations are the same." if comparison.parts_at is None
                 else f"They part at character {comparison.parts_at} (the token in brackets).")
    return "\n".join(lines)
