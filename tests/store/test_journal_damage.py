"""A damaged journal is moved aside and a fresh one started; its readable rows can be salvaged; a
journal that cannot be opened or written is one clear StorageError, and is left where it is."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from app.core.chain import ChainSpec
from app.core.errors import StorageError
from app.core.events import Answer, ChatMessage
from app.core.sampling import SamplingParams
from app.store import journal as journal_module
from app.store.journal import Journal

PAGE = 4096
RUNS = 40


def answer(index: int, text: str) -> Answer:
    return Answer(index, "a.gguf", "/models/a.gguf", 1, 1, 1, "hello", (ChatMessage("user", "hello"),),
                  SamplingParams(), text, 3, 4, 0.1, "stop", 1)


def write_journal(path: Path, runs: int = RUNS) -> None:
    """A real journal: `runs` finished runs of two answers each, big enough to span ~80 pages."""
    journal = Journal(path)
    for n in range(1, runs + 1):
        run_id = journal.start_run(ChainSpec(models=("/models/a.gguf",), prompts=f"prompt {n} " + "x" * 500), 2)
        for seq in (1, 2):
            journal.record_answer(run_id, answer(seq, f"answer {n}.{seq} " + "y" * 800))
        journal.finish_run(run_id, "completed")
    journal.close()  # checkpoints the WAL: every row is in the main file


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def random_bytes(data: bytes) -> bytes:
    return os.urandom(len(data))


def zeros(data: bytes) -> bytes:
    return bytes(len(data))


def damaged_pages(data: bytes) -> bytes:
    """Pages 23-25 zeroed: the header and the schema page are intact, a few runs and answers are not
    (the first runs and answers are on pages 20-22, after the tables' root pages)."""
    return data[: 22 * PAGE] + bytes(3 * PAGE) + data[25 * PAGE:]


@pytest.mark.parametrize("damage", [truncated, random_bytes, zeros, damaged_pages])
def test_a_damaged_journal_is_moved_aside_and_a_fresh_one_started(tmp_path: Path, damage) -> None:
    path = tmp_path / "journal.sqlite3"
    write_journal(path)
    broken = damage(path.read_bytes())
    path.write_bytes(broken)

    journal = Journal(path)

    assert journal.moved_aside is not None and journal.moved_aside.parent == tmp_path
    assert re.fullmatch(r"journal\.corrupt-\d{8}T\d{6}Z", journal.moved_aside.name)
    assert journal.moved_aside.read_bytes() == broken  # kept byte for byte
    assert journal.notice is not None and str(journal.moved_aside) in journal.notice
    assert "journal salvage" in journal.notice and "\n" not in journal.notice
    assert journal.runs() == []
    run_id = journal.start_run(ChainSpec(models=("/models/a.gguf",), prompts="hi"), 1)
    journal.close()
    reopened = Journal(path)  # the fresh journal is healthy: no second move
    assert reopened.moved_aside is None and reopened.notice is None
    assert [run.id for run in reopened.runs()] == [run_id]
    assert reopened.set_aside_files() == [journal.moved_aside]
    reopened.close()


def test_wal_and_shm_files_move_with_the_damaged_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(bytes(PAGE))
    path.with_name("journal.sqlite3-wal").write_bytes(b"old wal")
    path.with_name("journal.sqlite3-shm").write_bytes(b"old shm")
    journal = Journal(path)
    aside = journal.moved_aside
    assert aside is not None
    # sqlite pairs a database with its WAL by name, so the pair stays together. (The -shm file is
    # only an index sqlite rebuilds from the WAL; sqlite rewrote it while checking the file.)
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"old wal"
    assert aside.with_name(aside.name + "-shm").exists()
    assert journal.set_aside_files() == [aside]  # the siblings are not offered separately
    journal.close()


def test_salvage_brings_back_the_rows_around_damaged_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # the row-by-row reader, whatever is installed
    path = tmp_path / "journal.sqlite3"
    write_journal(path)
    path.write_bytes(damaged_pages(path.read_bytes()))
    journal = Journal(path)
    assert journal.moved_aside is not None

    report = journal.salvage(journal.moved_aside)

    assert report.method == "row by row" and report.damaged_regions >= 1
    assert 30 <= report.copied["runs"] < RUNS and report.copied["answers"] >= 60
    assert report.copied["inputs"] == RUNS  # every prompt version (one per run) was on a healthy page
    runs = {run.id: run for run in journal.runs(1000)}
    assert {1, RUNS} <= runs.keys()  # rows before and after the damage
    for run_id in (1, RUNS):
        summary, spec, answers, _ = journal.run(run_id)
        assert summary.end_reason == "completed" and spec["prompts"].startswith(f"prompt {run_id} ")
        assert [a["text"].split(" ")[1] for a in answers] == [f"{run_id}.1", f"{run_id}.2"]
    stand_ins = [run for run in runs.values() if run.end_reason == "salvaged"]
    assert all(run.answers >= 1 for run in stand_ins)  # answers whose run record was lost keep a run
    assert "Salvaged from" in report.describe() and "unreadable" in report.describe()
    assert journal.set_aside_files() == []
    with pytest.raises(StorageError, match="already salvaged"):
        journal.salvage(journal.moved_aside)
    journal.close()


def test_salvage_of_a_truncated_journal_keeps_its_first_half(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    path = tmp_path / "journal.sqlite3"
    write_journal(path)
    path.write_bytes(truncated(path.read_bytes()))
    journal = Journal(path)
    report = journal.salvage(journal.moved_aside)
    ids = sorted(run.id for run in journal.runs(1000))
    assert ids[:10] == list(range(1, 11)) and report.copied["answers"] >= 20
    journal.close()


def test_salvaged_runs_get_new_numbers_when_theirs_are_taken(tmp_path: Path) -> None:
    source = tmp_path / "journal.corrupt-20260101T000000Z"
    write_journal(source, runs=2)
    kept = Journal(source)
    kept.rate(1, 2, 4, "you")  # a grid score goes with its run too
    kept.close()
    journal = Journal(tmp_path / "journal.sqlite3")
    mine = journal.start_run(ChainSpec(models=("/models/b.gguf",), prompts="new"), 1)  # takes number 1

    report = journal.salvage(source)

    assert report.copied["runs"] == 2 and report.copied["answers"] == 4 and report.renumbered == 1
    assert report.copied["ratings"] == 1 and report.damaged_regions == 0
    assert journal.run(mine)[0].models == ["b.gguf"]
    moved = max(run.id for run in journal.runs())
    assert [a["text"][:10] for a in journal.run(moved)[2]] == ["answer 1.1", "answer 1.2"]  # answers follow their run
    assert journal.ratings(moved) == {2: (4.0, "you")} and journal.ratings(mine) == {}
    assert [a["text"][:10] for a in journal.run(2)[2]] == ["answer 2.1", "answer 2.2"]
    journal.close()


def fake_sqlite3(folder: Path, works: bool) -> None:
    """A stand-in `sqlite3` tool: `.recover` as a dump (or, when not `works`, partial SQL and exit 1,
    as Debian's build without sqlite_dbpage does); without arguments it runs SQL from stdin."""
    folder.mkdir()
    tool = folder / "sqlite3"
    tool.write_text(f"""#!{sys.executable}
import sqlite3, sys
args = [a for a in sys.argv[1:] if a not in ("-batch", "-init") and a != {os.devnull!r}]
if args[-1] == ".recover":
    if not {works}:
        print("BEGIN;")
        sys.exit(1)
    print("\\n".join(sqlite3.connect(args[0]).iterdump()))
else:
    sqlite3.connect(args[0]).executescript(sys.stdin.read())
""")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in tool is a script with a #! line")
@pytest.mark.parametrize("works", [True, False])
def test_salvage_uses_sqlite_recover_only_when_it_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          works: bool) -> None:
    fake_sqlite3(tmp_path / "bin", works)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    source = tmp_path / "journal.corrupt-20260101T000000Z"
    write_journal(source, runs=3)
    journal = Journal(tmp_path / "journal.sqlite3")
    report = journal.salvage(source)
    assert report.method == ("sqlite3 .recover" if works else "row by row")
    assert report.copied["runs"] == 3 and report.copied["answers"] == 6 and report.renumbered == 0
    journal.close()


def test_salvage_refuses_the_live_journal_and_a_missing_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    with pytest.raises(StorageError, match="in use"):
        journal.salvage(journal.path)
    with pytest.raises(StorageError, match="cannot read"):
        journal.salvage(tmp_path / "journal.corrupt-nothing")
    journal.close()


def test_a_journal_that_cannot_be_opened_is_left_where_it_is(tmp_path: Path) -> None:
    # A folder where the journal should be: unopenable, even for root (chmod does not stop root).
    path = tmp_path / "journal.sqlite3"
    path.mkdir()
    with pytest.raises(StorageError) as caught:
        Journal(path)
    assert str(path) in str(caught.value) and "CHAIN_STUDIO_HOME" in str(caught.value)
    assert path.is_dir() and list(tmp_path.iterdir()) == [path]  # nothing moved aside


def test_a_journal_that_cannot_be_written_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.sqlite3"
    write_journal(path, runs=1)
    # sqlite's own read-only mode: the same "attempt to write a readonly database" a read-only file or
    # folder gives, and it holds for root too (file permissions do not).
    monkeypatch.setattr(journal_module, "_open_database", lambda p: sqlite3.connect(
        f"file:{p}?mode=ro", uri=True, check_same_thread=False, isolation_level=None))
    with pytest.raises(StorageError, match="readonly database.*must be writable"):
        Journal(path)
    assert not [p for p in tmp_path.iterdir() if "corrupt" in p.name]  # not mistaken for damage


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_data_folder_is_a_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StorageError, match="must be writable"):
            Journal(folder / "journal.sqlite3")
    finally:
        folder.chmod(0o700)


def test_a_journal_from_before_the_ratings_table_salvages_without_damage(tmp_path: Path) -> None:
    source = tmp_path / "journal.corrupt-20260101T000000Z"
    write_journal(source, runs=2)
    with sqlite3.connect(source) as db:
        db.execute("DROP TABLE ratings")  # as an older version wrote it
    journal = Journal(tmp_path / "journal.sqlite3")
    report = journal.salvage(source)
    assert report.copied["runs"] == 2 and report.copied["ratings"] == 0 and report.damaged_regions == 0
    journal.close()
