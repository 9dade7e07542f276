"""The journal keeps inputs with versions and survives being reopened."""

from pathlib import Path

from app.core.chain import ChainSpec
from app.store.journal import Journal


def test_inputs_get_a_new_version_only_when_they_change(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    assert not journal.save_input("prompts", "")  # nothing typed yet: nothing to keep
    assert journal.save_input("prompts", "first draft")
    assert not journal.save_input("prompts", "first draft")
    assert journal.save_input("prompts", "second draft")
    assert journal.save_input("system", "be brief")
    assert [v.text for v in journal.input_versions("prompts")] == ["second draft", "first draft"]
    journal.close()


def test_runs_survive_reopening_and_unfinished_runs_show_as_such(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    spec = ChainSpec(models=("/models/a.gguf",), prompts="hi", system="sys")
    finished = journal.start_run(spec, 1)
    journal.finish_run(finished, "completed")
    unfinished = journal.start_run(spec, 3)
    journal.close()
    reopened = Journal(path)
    runs = {run.id: run for run in reopened.runs()}
    assert runs[finished].end_reason == "completed" and runs[finished].models == ["a.gguf"]
    assert runs[unfinished].end_reason is None and runs[unfinished].planned == 3
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [v.text for v in reopened.input_versions("system")] == ["sys"]  # saved once, not per run
    reopened.close()
