"""`python -m app engines` and `chain --engine`: engines saved from the command line, their key kept
out of every output, and a chain mixing the demo model with an engine's model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.models.demo_model import SCRIPT_CODE, SCRIPT_HELLO
from app.settings import PROJECT_ROOT
from tests.engine_servers import Fault, FaultProxy

KEY = "sk-cli-secret-42"


def run_app(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, input=stdin,
                          cwd=PROJECT_ROOT, timeout=120)


def lines(done: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_engines_are_saved_listed_and_removed_without_showing_the_key(proxy: FaultProxy, studio_home: Path) -> None:
    added = run_app("engines", "add", "remote", proxy.url, "--key-stdin", "--concurrency", "3", stdin=KEY + "\n")
    assert added.returncode == 0, added.stderr
    assert lines(added) == [{"type": "engine", "name": "remote", "url": proxy.url, "key": "saved", "concurrency": 3,
                             "idle_timeout": 120.0, "kind": "auto", "warning": ""}]
    assert (studio_home / "engine_keys.json").stat().st_mode & 0o777 == 0o600
    listed = run_app("engines", "list")
    assert [r["name"] for r in lines(listed)] == ["remote"] and KEY not in listed.stdout + listed.stderr
    models = run_app("engines", "models", "remote")
    assert lines(models) == [{"type": "engine_model", "engine": "remote", "id": "demo", "owned_by": "me",
                              "member": "remote/demo"}]
    assert proxy.seen[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    refused = run_app("engines", "add", "far", "http://203.0.113.9:8000/v1")
    assert refused.returncode == 0 and "warning: far uses plain http to 203.0.113.9" in refused.stderr
    bad = run_app("engines", "add", "x", "ftp://example.com/v1")
    assert bad.returncode == 1 and lines(bad) == [
        {"error": "an engine URL must start with http:// or https://, not 'ftp://example.com/v1'"}]
    gone = run_app("engines", "remove", "remote")
    assert gone.returncode == 0 and [r["name"] for r in lines(run_app("engines"))] == ["far"]
    assert not (studio_home / "engine_keys.json").exists()


def test_a_chain_mixes_the_demo_model_and_an_engine(tmp_path: Path, demo_model: Path, proxy: FaultProxy) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Say hello\nWrite code %\n", encoding="utf-8")
    done = run_app("chain", "--model", str(demo_model), "--model", "remote/demo", "--engine", f"remote={proxy.url}",
                   "--engine-concurrency", "2", "--feedback", "--prompts", str(prompts), "--jsonl", "--seed", "1")
    assert done.returncode == 0, done.stderr
    records = lines(done)
    assert records[0]["models"] == ["chain-studio-demo.gguf", "remote/demo"]
    assert [r for r in records if r["type"] == "engine_connected"] == [
        {"type": "engine_connected", "model": "remote/demo", "url": proxy.url, "kind": "llama-cpp-python",
         "seconds": records[1]["seconds"], "warning": ""}]
    answers = [(r["model"], r["text"]) for r in records if r["type"] == "answer"]
    assert answers == [("chain-studio-demo.gguf", SCRIPT_HELLO), ("chain-studio-demo.gguf", SCRIPT_CODE),
                       ("remote/demo", SCRIPT_HELLO), ("remote/demo", SCRIPT_CODE)]
    planned = run_app("chain", "--model", "remote/demo", "--engine", f"remote={proxy.url}", "--prompts", str(prompts),
                      "--dry-run", "--jsonl")
    assert [r["model"] for r in lines(planned)] == ["remote/demo", "remote/demo"]
    proxy.fault = Fault("status", 503, {"error": {"message": "overloaded"}})
    failed = run_app("chain", "--model", "remote/demo", "--model", str(demo_model), "--engine", f"remote={proxy.url}",
                     "--prompts", str(prompts))
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout.count("!! remote/demo: engine remote failed (HTTP 503: overloaded)") == 2
    assert failed.stdout.count(SCRIPT_HELLO) == 1
