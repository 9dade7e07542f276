"""POST /api/chain: a chain described in JSON, its events as NDJSON, journaled with "api" as origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from app.settings import PROJECT_ROOT
from tests.api.conftest import RunningApi

HELLO = "Hello from the demo model."


def chain(api: RunningApi, **body: Any) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{api.base}/api/chain", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {api.token}"}) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line) for line in response.iter_lines() if line]


def test_a_chain_streams_its_events_and_is_journaled_as_an_api_run(api: RunningApi) -> None:
    lines = chain(api, models=["chain-studio-demo", "chain-studio-demo.gguf"], prompts="hi\nthere",
                  sampling={"temperature": 0}, feedback=True)
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    answers = [line for line in lines if line["type"] == "answer"]
    assert [a["text"] for a in answers] == [HELLO] * 4 and [a["item"] for a in answers] == [1, 2, 1, 2]
    assert kinds.count("answer_started") == 4
    for answer in answers:  # the token lines of each answer add up to it
        assert "".join(t["text"] for t in lines if t["type"] == "token" and t["index"] == answer["index"]) == HELLO
    finished = lines[-1]
    assert (finished["reason"], finished["answers"], finished["failures"]) == ("completed", 4, 0)
    runs = subprocess.run([sys.executable, "-m", "app", "runs", "--jsonl"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=dict(os.environ, CHAIN_STUDIO_HOME=str(api.home)), timeout=120)
    journaled = [json.loads(line) for line in runs.stdout.splitlines()]
    mine = next(run for run in journaled if run["run_id"] == lines[0]["run_id"])
    assert (mine["origin"], mine["reason"], mine["answers"]) == ("api", "completed", 4)


def test_without_tokens_the_lines_are_the_cli_ones(api: RunningApi) -> None:
    kinds = {line["type"] for line in chain(api, models=["chain-studio-demo"], prompts="hi", tokens=False)}
    assert kinds <= {"run_started", "model_loading", "model_loaded", "answer", "run_finished"}


@pytest.mark.parametrize("body, status, param, words", [
    ({"models": ["nowhere"], "prompts": "hi"}, 404, "model", "no model named 'nowhere'"),
    ({"models": ["chain-studio-demo"], "prompts": "hi", "code": {"run_code": True}}, 400, "code",
     "not a field"),
    ({"models": ["chain-studio-demo"], "prompts": "hi", "sampling": {"temperature": 9}}, 400,
     "sampling.temperature", "out of range"),
    ({"models": ["chain-studio-demo"], "prompts": "hi", "load": {"warmth": 1}}, 400, "load", "unknown setting 'warmth'"),
    ({"models": ["chain-studio-demo"], "prompts": "[[never closed"}, 400, "prompts", "never closed"),
    ({"models": ["chain-studio-demo"], "prompts": "{grammar='root ::= nothing'} hi"}, 400, "prompts",
     "item 1 (grammar=root ::= nothing): the grammar cannot be used: Undefined rule identifier 'nothing'"),
    ({"models": [], "prompts": "hi"}, 400, "models", "models"),
])
def test_a_bad_chain_is_refused_before_it_runs(api: RunningApi, body, status, param, words) -> None:
    got, answer = api.call("POST", "/api/chain", body)
    assert got == status and answer["error"]["param"] == param and words in answer["error"]["message"], answer
