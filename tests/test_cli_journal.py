"""The command line over a damaged journal or an unusable data folder: one clear line, no traceback;
`journal salvage` brings the readable rows back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.models.demo_model import SCRIPT_HELLO
from app.settings import PROJECT_ROOT
from tests.store.test_journal_damage import damaged_pages, random_bytes, truncated, write_journal, zeros


def run_app(*args: str, stdin: str | None = None, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if home is not None:
        env["CHAIN_STUDIO_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          input=stdin, timeout=300, env=env)


def damage_journal(home: Path, damage) -> Path:
    path = home / "journal.sqlite3"
    home.mkdir(parents=True, exist_ok=True)
    write_journal(path)
    path.write_bytes(damage(path.read_bytes()))
    return path


def warned_once(done: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line about the journal (and no traceback)."""
    assert "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: The journal was damaged")]
    assert len(warnings) == 1, done.stderr
    return warnings[0]


@pytest.mark.parametrize("damage", [truncated, random_bytes, zeros])
def test_runs_and_chain_go_on_over_a_damaged_journal(studio_home: Path, demo_model: Path, damage) -> None:
    damage_journal(studio_home, damage)
    listed = run_app("runs")
    assert listed.returncode == 0 and listed.stdout == ""
    assert str(studio_home / "journal.corrupt-") in warned_once(listed)

    damage_journal(studio_home, damage)  # the fresh journal damaged in turn: `chain` meets it first
    chained = run_app("chain", "--model", str(demo_model), "--prompts", "-", stdin="hi\n")
    assert chained.returncode == 0 and SCRIPT_HELLO in chained.stdout
    assert "journal salvage" in warned_once(chained)
    assert len([p for p in studio_home.glob("journal.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]) == 2
    assert [r["reason"] for r in map(json.loads, run_app("runs", "--jsonl").stdout.splitlines())] == ["completed"]


def test_journal_salvage_brings_the_readable_runs_back(studio_home: Path) -> None:
    damage_journal(studio_home, damaged_pages)
    warned_once(run_app("runs"))
    aside = next(p for p in studio_home.glob("journal.corrupt-*") if not p.name.endswith(("-wal", "-shm")))

    done = run_app("journal", "salvage", str(aside), "--jsonl")

    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["type"] == "salvaged" and record["copied"]["runs"] >= 30 and record["copied"]["answers"] >= 60
    runs = [json.loads(line) for line in run_app("runs", "--jsonl", "--limit", "100").stdout.splitlines()]
    assert len(runs) >= record["copied"]["runs"] and runs[-1]["run_id"] == 1 and runs[-1]["answers"] == 2
    again = run_app("journal", "salvage", str(aside))
    assert again.returncode == 1 and "already salvaged" in again.stderr and "Traceback" not in again.stderr


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_data_folder_that_cannot_be_created_is_one_message(tmp_path: Path, demo_model: Path) -> None:
    # Tests run as root, where a chmod'ed folder is still writable; a data folder under a regular
    # file cannot be created by anyone, which is the same failure a read-only parent gives.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    home = blocker / "studio-home"
    for args in (("runs",), ("chain", "--model", str(demo_model), "--prompts", "-"), ("ui", "--no-browser")):
        message = one_error_line(run_app(*args, stdin="hi\n", home=home))
        assert f"cannot create the data folder {home}" in message and "CHAIN_STUDIO_HOME" in message


def test_a_journal_that_cannot_be_opened_is_one_message(studio_home: Path) -> None:
    (studio_home / "journal.sqlite3").mkdir(parents=True)
    message = one_error_line(run_app("runs"))
    assert f"cannot open or write the journal {studio_home / 'journal.sqlite3'}" in message
    assert not list(studio_home.glob("journal.corrupt-*"))
