"""`python -m app replay RUN_ID` and `python -m app diff A B`: run a journaled run again with its
seeds and settings and say whether it came out token for token the same; compare any two runs or
answers. Public interface: line types and keys stay stable once published."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.cli import emit, fail, warn_if_journal_was_replaced
from app.core.errors import ChainStudioError
from app.core.events import Answer
from app.core.replay import (
    AnswerPair,
    compare_answers,
    difference_record,
    pair_answers,
    prepare_replay,
    replay_sentence,
    replay_verdict,
    text_diff,
    token_words,
)

if TYPE_CHECKING:
    from app.store.journal import StoredRun

_REFERENCE = re.compile(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?")


def cmd_replay(run_id: int, jsonl: bool, run_code: bool, models_dir: str | None) -> int:
    """Replay run `run_id`: its settings, each answer with the seed it had; the last line says
    whether every answer came out token for token the same, or where the first one parted."""
    from app.cli_chain import _JsonPrinter, _TranscriptPrinter, execute_chain
    from app.cli_engines import engines_from_args

    stored = stored_runs([run_id])[run_id]
    if stored is None:
        return fail(f"run {run_id} is not in the journal (`python -m app runs` lists the runs)")
    try:
        setup = prepare_replay(stored.spec, stored.answers, lambda seq: stored.branch_of(seq) is not None, run_code)
        engines = engines_from_args(None)
    except ChainStudioError as exc:
        return fail(f"run {run_id} cannot be replayed: {exc}")
    spec = setup.spec
    printer = _JsonPrinter() if jsonl else _TranscriptPrinter(show_params=spec.random_params,
                                                              hide_code=spec.code.hide_output)
    outcome = execute_chain(spec, engines, printer, models_dir, origin="replay", seeds=setup.seeds)
    if outcome.exit_code == 130:
        return 130
    line = replay_verdict(run_id, outcome.run_id, setup, outcome.answers)
    if jsonl:
        emit(line)
    else:
        print()
        print(replay_sentence(line))
    return 0


def stored_runs(run_ids: list[int]) -> dict[int, "StoredRun | None"]:
    """The journaled runs `run_ids` (None for one that is not there), read in one opening of the
    journal (with its warning when it was replaced)."""
    from app.store.journal import Journal

    journal = Journal()
    warn_if_journal_was_replaced(journal)
    try:
        return {run_id: journal.stored_run(run_id) for run_id in run_ids}
    finally:
        journal.close()


def parse_reference(text: str) -> tuple[int, int | None]:
    """`12` (run 12) or `12:3` (answer 3 of run 12)."""
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r}: give a run id (12) or a run and an answer (12:3)")
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def cmd_diff(first: str, second: str, jsonl: bool) -> int:
    """Compare two runs (answers paired by index) or two answers: where each pair parts, and a
    unified diff of their texts."""
    try:
        references = [parse_reference(first), parse_reference(second)]
    except ValueError as exc:
        return fail(str(exc))
    if (references[0][1] is None) != (references[1][1] is None):
        return fail("compare a run with a run (12 13) or an answer with an answer (12:1 13:1)")
    kept = stored_runs([run_id for run_id, _seq in references])
    sides: list[list[Answer]] = []
    for run_id, seq in references:
        stored = kept[run_id]
        if stored is None:
            return fail(f"run {run_id} is not in the journal (`python -m app runs` lists the runs)")
        answers = [a for a in stored.answers if seq is None or a.index == seq]
        if seq is not None and not answers:
            return fail(f"run {run_id} has no answer {seq}")
        sides.append(answers)
    if references[0][1] is not None:  # two answers: compared whatever their indices
        a, b = sides[0][0], sides[1][0]
        pairs = [AnswerPair(a.index, a, b, compare_answers(a, b))]
    else:
        pairs = pair_answers(sides[0], sides[1])
    for pair in pairs:
        _show_pair(pair, first, second, jsonl)
    differing = sum(1 for pair in pairs if not pair.identical)
    summary = {"type": "diff", "a": first, "b": second, "identical": differing == 0, "answers": len(pairs),
               "differing": differing}
    if jsonl:
        emit(summary)
    else:
        print(f"{first} and {second}: " + ("identical." if differing == 0 else
                                            f"{differing} of {len(pairs)} answers differ."))
    return 0


def _show_pair(pair: AnswerPair, first: str, second: str, jsonl: bool) -> None:
    lines = text_diff(pair.a.text if pair.a else "", pair.b.text if pair.b else "", first, second)
    record: dict[str, Any] = {"type": "answer_diff", "index": pair.index, "identical": pair.identical,
                              "a": _answer_ref(pair.a), "b": _answer_ref(pair.b),
                              "first_difference": None if pair.identical else difference_record(pair, "a", "b"),
                              "text_diff": lines}
    if jsonl:
        emit(record)
        return
    known = pair.a or pair.b
    assert known is not None
    print(f"— answer {pair.index} · {known.model} · item {known.item}: "
          + ("identical" if pair.identical else "differs"))
    difference = record["first_difference"]
    if difference is not None and "missing" in difference:
        print(f"  missing in {first if difference['missing'] == 'a' else second}")
    elif difference is not None:
        unit = "token" if difference["by"] == "tokens" else "character"
        print(f"  parts at {unit} {difference['position']}, after {difference['common'][-40:]!r}:")
        print(f"    {first}: {token_words(difference['a'])}")
        print(f"    {second}: {token_words(difference['b'])}")
        for text in lines:
            print(f"  {text}")


def _answer_ref(answer: Answer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {"index": answer.index, "model": answer.model, "item": answer.item, "response": answer.response,
            "loop": answer.loop, "seed": answer.seed, "tokens": answer.tokens}
