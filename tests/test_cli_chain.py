"""`python -m app chain | library | runs` as scripts use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO
from app.settings import PROJECT_ROOT

ANSWER_KEYS = {"model", "item", "response", "loop", "prompt", "params", "text", "prompt_tokens", "tokens", "seconds"}


def run_app(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, input=stdin, timeout=300)


def lines(done: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prompts.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_chain_jsonl(tmp_path: Path, demo_model: Path) -> None:
    prompts = write(tmp_path, "[Be brief]\nhello\ncompute %\n---skip\n[[Judge:]]")
    done = run_app("chain", "--model", str(demo_model), "--prompts", prompts, "--feedback", "--jsonl",
                   "--set", "max_tokens=50", "--set", "stop=['zzz']")
    assert done.returncode == 0, done.stderr
    records = lines(done)
    assert all("type" in r for r in records)
    answers = [r for r in records if r["type"] == "answer"]
    assert [a["text"] for a in answers] == [SCRIPT_HELLO, SCRIPT_CODE, SCRIPT_HELLO]
    assert all(ANSWER_KEYS <= a.keys() for a in answers)
    assert answers[0]["prompt"] == "Be brief\nhello"
    assert answers[2]["prompt"] == f"Judge:\n\n{SCRIPT_HELLO}\n\n{SCRIPT_CODE}"  # without the pre-prompt
    assert answers[0]["params"]["max_tokens"] == 50 and answers[0]["params"]["stop"] == ["zzz"]
    totals = records[-1].pop("metrics")
    assert records[-1] == {"type": "run_finished", "run_id": records[0]["run_id"], "reason": "completed",
                           "answers": 3, "failures": 0}
    assert totals["answers"] == 3 and totals["tokens"] == sum(a["tokens"] for a in answers)


def test_chain_transcript_is_readable(tmp_path: Path, demo_model: Path) -> None:
    done = run_app("chain", "--model", str(demo_model), "--prompts", "-", stdin="hi\n")
    assert done.returncode == 0, done.stderr
    assert f"== {demo_model.name} · item 1 · response 1 · loop 1 ==\n{SCRIPT_HELLO}\n[" in done.stdout
    assert "tok/s" in done.stdout and "Run finished: completed (1 answers, 0 failures)" in done.stdout


def test_random_settings_are_shown_with_each_answer(demo_model: Path) -> None:
    done = run_app("chain", "--model", str(demo_model), "--prompts", "-", "--random-params", "--seed", "3",
                   "--responses", "2", stdin="hi\n")
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stdout.splitlines() if line.startswith("(temperature=")]
    assert len(shown) == 2 and shown[0] != shown[1]
    assert "repeat_penalty=" in shown[0]


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path, demo_model: Path, studio_home: Path) -> None:
    prompts = write(tmp_path, "one\ntwo\n[[Summarise:]]")
    done = run_app("chain", "--model", str(demo_model), "--model", "other.gguf", "--prompts", prompts,
                   "--responses", "2", "--dry-run", "--jsonl")
    assert done.returncode == 0, done.stderr
    planned = lines(done)
    assert len(planned) == 12 and {p["type"] for p in planned} == {"planned"}
    assert {"model", "item", "response", "loop", "prompt", "params"} <= planned[0].keys()
    assert planned[-1]["prompt"] == "Summarise:\n\n⟪earlier answers go here⟫"
    assert [(p["item"], p["response"]) for p in planned[:6]] == [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)]
    assert not (studio_home / "journal.sqlite3").exists()


def test_dry_run_shows_that_each_response_repeats_the_whole_list(tmp_path: Path, demo_model: Path) -> None:
    done = run_app("chain", "--model", str(demo_model), "--prompts", write(tmp_path, "P1\nP2"), "--responses", "2",
                   "--dry-run")
    assert done.returncode == 0, done.stderr
    name = demo_model.name
    assert done.stdout.splitlines() == [
        "4 answers: for each loop (1), each model (1), each response (2), the whole prompt list (items 1-2)",
        f"   1. {name} · item 1 · response 1 · loop 1: 'P1'",
        f"   2. {name} · item 2 · response 1 · loop 1: 'P2'",
        f"   3. {name} · item 1 · response 2 · loop 1: 'P1'",
        f"   4. {name} · item 2 · response 2 · loop 1: 'P2'",
    ]


def test_bad_input_runs_nothing_and_says_why(tmp_path: Path, demo_model: Path) -> None:
    done = run_app("chain", "--model", str(demo_model), "--prompts", write(tmp_path, "{top_p=3} hi"), "--jsonl")
    assert done.returncode == 1
    assert "top_p=3" in lines(done)[0]["error"] and "allowed 0 to 1" in done.stderr
    bad_set = run_app("chain", "--model", str(demo_model), "--set", "temperature", "--jsonl")
    assert bad_set.returncode == 1 and "expected key=value" in bad_set.stderr


def test_failed_model_gives_error_reason_and_exit_code(tmp_path: Path) -> None:
    done = run_app("chain", "--model", str(tmp_path / "missing.gguf"), "--jsonl")
    assert done.returncode == 1
    records = lines(done)
    assert records[1]["type"] == "failure" and "no such file" in records[1]["message"]
    assert records[-1]["reason"] == "error"


def test_library_lists_entries(tmp_path: Path) -> None:
    library = tmp_path / "library.txt"
    library.write_text("first\nsecond\n$-$-$\n[pre]\nonly\n$-$-$\n{bad=1} x\n", encoding="utf-8")
    records = lines(run_app("library", str(library), "--jsonl"))
    assert records[0] == {"type": "entry", "index": 1, "first_line": "first", "items": 2}
    assert records[1] == {"type": "entry", "index": 2, "first_line": "[pre]", "items": 1}
    assert records[2]["items"] is None and "unknown setting bad" in records[2]["error"]


def test_killed_mid_chain_keeps_every_finished_answer(tmp_path: Path, demo_model: Path) -> None:
    prompts = write(tmp_path, "hello\ncompute %\n{max_tokens=0} sing ~\nnever reached")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "chain", "--model", str(demo_model), "--prompts", prompts, "--jsonl",
         "--loops", "50"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    seen = []
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(json.loads(line))
            if sum(1 for r in seen if r["type"] == "answer") == 2:
                break
        os.kill(process.pid, signal.SIGKILL)  # while the third answer is being generated
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    run_id = seen[0]["run_id"]
    shown = lines(run_app("runs", "show", str(run_id), "--jsonl"))
    answers = [r for r in shown if r["type"] == "answer"]
    assert [a["text"] for a in answers] == [SCRIPT_HELLO, SCRIPT_CODE]
    assert shown[-1]["reason"] == "unfinished"
    listed = lines(run_app("runs", "--jsonl"))
    assert listed[0]["run_id"] == run_id and listed[0]["answers"] == 2


def test_runs_show_unknown_id(studio_home: Path) -> None:
    done = run_app("runs", "show", "999")
    assert done.returncode == 1 and "no run with id 999" in done.stderr


def test_download_and_chain_with_links(tmp_path: Path, demo_model: Path, studio_home: Path) -> None:
    from tests.hub_standin import StandInHub

    hub = StandInHub().start()
    hub.add("studio-tests/demo-GGUF", "demo-from-hub.gguf", demo_model.read_bytes())
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint}
    try:
        refused = subprocess.run([sys.executable, "-m", "app", "download", "http://huggingface.co/a/b/resolve/main/c.gguf"],
                                 capture_output=True, text=True, cwd=PROJECT_ROOT, env=env)
        assert refused.returncode == 1 and "plain http is refused" in refused.stderr
        assert hub.requests == []  # refused without a connection
        link = "https://huggingface.co/studio-tests/demo-GGUF/resolve/main/demo-from-hub.gguf?download=true"
        done = subprocess.run([sys.executable, "-m", "app", "download", link], capture_output=True, text=True,
                              cwd=PROJECT_ROOT, env=env)
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert record["type"] == "downloaded" and Path(record["path"]).name == "demo-from-hub.gguf"
        assert "Downloading demo-from-hub.gguf: 100%" in done.stderr
        chained = subprocess.run(
            [sys.executable, "-m", "app", "chain", "--model", "studio-tests/demo-GGUF:demo-from-hub.gguf",
             "--model", "studio-tests/demo-GGUF:missing.gguf", "--prompts", "-", "--jsonl"],
            capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, input="hi\n",
        )
        records = [json.loads(line) for line in chained.stdout.splitlines()]
        answers = [r for r in records if r["type"] == "answer"]
        failures = [r for r in records if r["type"] == "failure"]
        assert [a["model"] for a in answers] == ["demo-from-hub.gguf"] and answers[0]["text"] == SCRIPT_HELLO
        assert failures[0]["model"] == "missing.gguf" and "has no file missing.gguf" in failures[0]["message"]
        offline = subprocess.run([sys.executable, "-m", "app", "download", link], capture_output=True, text=True,
                                 cwd=PROJECT_ROOT, env={**env, "HF_HUB_OFFLINE": "1"})
        assert offline.returncode == 0, offline.stderr  # a verified copy works offline
        gets = [r for r in hub.requests if r.startswith("GET")]
        assert len(gets) == 1  # the chain reused the verified copy
        assert all("/resolve/" in r for r in hub.requests)  # nothing but downloads: no telemetry
    finally:
        hub.stop()


def test_set_refuses_huge_numbers_and_repeats_with_a_message(demo_model: Path) -> None:
    def refused(*pairs: str) -> str:
        args = [part for pair in pairs for part in ("--set", pair)]
        done = run_app("chain", "--model", str(demo_model), *args, "--dry-run", "--jsonl")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        return lines(done)[0]["error"]

    seed = refused("seed=" + "1" * 5000)  # beyond the 4,300 digits int() reads
    assert seed.startswith("--set seed=1111") and "seed=111111111111… (a number of 5,000 digits) is out of range: " \
        "allowed -1 to 4294967295" in seed and len(seed) < 300
    n_ctx = refused("n_ctx=" + "9" * 5000)
    assert "n_ctx=999999999999… (a number of 5,000 digits) is out of range: allowed 0 to 1048576" in n_ctx
    twice = refused("temperature=0", "temperature=5")
    assert twice == "--set temperature=5: temperature is already set; give each setting once"
    inline = refused("temperature=0, temperature=5")
    assert "temperature is set twice" in inline
