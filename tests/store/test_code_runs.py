"""Code runs in the journal: kept with the answer they came from, or on their own when run by hand."""

from __future__ import annotations

from pathlib import Path

from app.core.chain import ChainSpec
from app.core.code_exec import OK, TIMEOUT, CodeOptions, CodeOutput, CodeResult
from app.store.journal import Journal


def test_code_runs_are_kept_with_their_answer_and_by_hand(studio_home: Path) -> None:
    journal = Journal()
    spec = ChainSpec(models=("m.gguf",), prompts="x %", code=CodeOptions(run_code=True, timeout=5))
    run_id = journal.start_run(spec, 2)
    first = CodeResult("print(42)", OK, stdout="42\n", outputs=(CodeOutput("image/png", "iVBOR"),), seconds=0.25)
    journal.record_code_run(run_id, 2, "answer", CodeResult("while True: pass", TIMEOUT, seconds=5.0,
                                                            message="timed out after 5 s"))
    journal.record_code_run(run_id, 1, "pasted", first)
    journal.record_code_run(None, None, "manual", CodeResult("print(1)", OK, stdout="1\n"))
    journal.close()

    reopened = Journal()
    runs = reopened.code_runs(run_id)
    assert [(r["seq"], r["source"], r["status"]) for r in runs] == [(1, "pasted", "ok"), (2, "answer", "timeout")]
    assert CodeResult.from_record(runs[0]) == first
    assert runs[1]["message"] == "timed out after 5 s"
    recent = reopened.code_runs()
    assert [r["source"] for r in recent] == ["manual", "pasted", "answer"]
    assert recent[0]["run_id"] is None
    spec_stored = reopened.run(run_id)[1]
    assert spec_stored["code"]["run_code"] is True and spec_stored["code"]["timeout"] == 5
    reopened.close()
