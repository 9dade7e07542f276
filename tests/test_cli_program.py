"""`python -m app program FILE.py`: the shipped example programs run headless on the demo model, with
JSON lines per event, stdin answering user_input, and the run in the journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT
from app.store.journal import Journal

EXAMPLES = PROJECT_ROOT / "app" / "programs" / "examples"


def run_program_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "program", *args], input=stdin, capture_output=True,
                          text=True, cwd=PROJECT_ROOT, env=dict(os.environ), timeout=600)


def test_the_chatbot_example_answers_two_messages_from_stdin(studio_home: Path) -> None:
    done = run_program_cli(str(EXAMPLES / "chatbot.py"), "--model", "chain-studio-demo", "--jsonl",
                           stdin="hello\nhow are you?\n\n")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["label"] for line in lines if line["type"] == "user_input"] == ["Write a message"] * 3
    assert [line["text"] for line in lines if line["type"] == "sampled"] == ["Hello from the demo model."] * 2
    final = lines[-1]
    assert final["type"] == "program_done" and final["ok"] is True and final["outcome"] == "finished"
    run, events = Journal().program_run(final["run_id"])
    assert run["origin"] == "cli" and run["name"] == "chatbot.py" and run["outcome"] == "finished"
    assert run["source"] == (EXAMPLES / "chatbot.py").read_text(encoding="utf-8")
    assert [e["type"] for e in events if e["type"] in ("user_input", "sampled")] == [
        "user_input", "sampled", "user_input", "sampled", "user_input"]


def test_without_jsonl_the_program_prints_and_samples_on_stdout(studio_home: Path) -> None:
    done = run_program_cli(str(EXAMPLES / "csv_batch.py"), "--file", str(EXAMPLES / "questions.csv"))
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert "What is the capital of France? -> Hello from the demo model." in printed
    assert "Who wrote Hamlet? -> Hello from the demo model." in printed
    assert "# CSV batch" in done.stderr


def test_a_program_that_asks_with_stdin_ended_gets_a_clear_error(studio_home: Path, tmp_path: Path) -> None:
    program = tmp_path / "asks.py"
    program.write_text('name = await user_input("Name?")\n', encoding="utf-8")
    done = run_program_cli(str(program), "--jsonl")
    assert done.returncode == 1
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["outcome"] == "failed"
    assert final["error"] == "NoUserInput: user_input('Name?'): standard input has ended"


def test_a_missing_program_or_an_oversized_file_is_refused_before_anything_runs(studio_home: Path,
                                                                              tmp_path: Path) -> None:
    missing = run_program_cli(str(tmp_path / "nowhere.py"))
    assert missing.returncode == 2 and "cannot read the program" in missing.stderr
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (5 * 2**20 + 1))
    program = tmp_path / "p.py"
    program.write_text("print(1)\n", encoding="utf-8")
    refused = run_program_cli(str(program), "--file", str(big))
    assert refused.returncode == 2 and "big.bin is 5.0 MiB: a program's files may be at most 5 MiB each" in \
        refused.stderr
