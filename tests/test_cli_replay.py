"""`python -m app replay RUN_ID` runs a journaled run again with each answer's seed and settings and
says whether it came out token for token the same; `python -m app diff A B` compares two runs or
answers. The demo model and a tiny random model sampled at a high temperature (so a seed matters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.chain import ChainSpec
from app.core.events import Answer, AnswerFinished
from app.core.replay import compare_answers, spec_from_record
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.models.benchmark_model import write_tiny_attention_model
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal

PROMPTS = "Say hello\n{temperature=1.5} Say hi\n"


def app_lines(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines, done.stdout + done.stderr


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_attention_model(tmp_path / "tiny.gguf")


def test_a_run_with_random_seeds_replays_token_for_token(demo_model: Path, tiny: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPTS, encoding="utf-8")
    code, lines, output = app_lines("chain", "--model", str(demo_model), "--model", str(tiny), "--prompts",
                                    str(prompts), "--set", "max_tokens=12", "--jsonl")
    assert code == 0, output
    original = [line for line in lines if line["type"] == "answer"]
    assert len(original) == 4 and all(a["params"]["seed"] == -1 for a in original)  # drawn by the worker

    code, lines, output = app_lines("replay", "1", "--jsonl")
    assert code == 0, output
    replayed = [line for line in lines if line["type"] == "answer"]
    assert [a["text"] for a in replayed] == [a["text"] for a in original]
    assert lines[-1] == {"type": "replay", "run_id": 1, "replay_run_id": 2, "identical": True, "answers": 4,
                         "differing": 0, "first_difference": None, "notes": []}

    code, lines, output = app_lines("diff", "1", "2", "--jsonl")
    assert code == 0, output
    assert [line["type"] for line in lines] == ["answer_diff"] * 4 + ["diff"]
    assert lines[-1] == {"type": "diff", "a": "1", "b": "2", "identical": True, "answers": 4, "differing": 0}
    journal = Journal()
    assert [run.origin for run in journal.runs(5)] == ["replay", "cli"]
    journal.close()


def test_a_replay_after_the_model_changed_names_the_first_token_that_differs_with_both_distributions(
        backend: LocalBackend, tiny: Path, journal: Journal) -> None:
    spec = ChainSpec(models=(str(tiny),), prompts="Say hi", learning_top=3,
                     sampling=SamplingParams(max_tokens=6, temperature=1.5))
    events = list(ChainRunner(backend, journal).run(spec))
    first = next(e.answer for e in events if isinstance(e, AnswerFinished))
    assert len(first.pieces) == 6 and len(first.choices) == 6
    backend.unload()
    write_tiny_attention_model(tiny, seed=7)  # other weights under the same name

    code, lines, output = app_lines("replay", "1", "--jsonl")
    assert code == 0, output
    verdict = lines[-1]
    assert verdict["type"] == "replay" and verdict["identical"] is False and verdict["differing"] == 1
    difference = verdict["first_difference"]
    assert difference["answer"] == 1 and difference["model"] == "tiny.gguf" and difference["by"] == "tokens"
    position = difference["position"]
    assert difference["original"]["token_id"] == first.pieces[position][0]
    assert difference["original"]["token_id"] != difference["replay"]["token_id"]
    for side in ("original", "replay"):  # learning mode kept the distributions on both sides
        candidates = difference[side]["candidates"]
        # the top 3 and, when it was not among them, the token drawn
        assert 3 <= len(candidates) <= 4 and candidates[0]["probability"] >= candidates[-1]["probability"]
        assert difference[side]["token_id"] in [c["token_id"] for c in candidates]
    assert difference["common"] == "".join(text for _id, text in first.pieces[:position])

    code, _lines, output = app_lines("replay", "1")
    assert code == 0 and "1 of 1 answers differ; the first is answer 1 (tiny.gguf, item 1), at token" in output


def test_diff_compares_two_answers_and_refuses_what_is_not_there(demo_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("Say hello\nA poem ^\n", encoding="utf-8")  # "^": the demo model's three lines
    code, _lines, output = app_lines("chain", "--model", str(demo_model), "--prompts", str(prompts), "--jsonl")
    assert code == 0, output
    code, lines, output = app_lines("diff", "1:1", "1:2", "--jsonl")
    assert code == 0, output
    pair, summary = lines
    assert pair["identical"] is False and pair["a"]["index"] == 1 and pair["b"]["index"] == 2
    assert pair["text_diff"][:2] == ["--- 1:1", "+++ 1:2"]
    assert summary == {"type": "diff", "a": "1:1", "b": "1:2", "identical": False, "answers": 1, "differing": 1}
    for args, message in ((("diff", "1", "1:2"), "compare a run with a run"),
                          (("diff", "1:9", "1:1"), "run 1 has no answer 9"),
                          (("diff", "x", "1"), "give a run id (12) or a run and an answer (12:3)"),
                          (("replay", "7"), "run 7 is not in the journal")):
        code, _lines, output = app_lines(*args)
        assert code == 1 and message in output and "Traceback" not in output


def test_answers_kept_without_their_tokens_are_compared_by_text() -> None:
    def answer(text: str) -> Answer:
        return Answer(1, "m", "m.gguf", 1, 1, 1, "p", (), SamplingParams(), text, 1, 1, 0.1, "eos", 1)

    assert compare_answers(answer("Hello there"), answer("Hello there")) is None
    difference = compare_answers(answer("Hello there"), answer("Hello world"))
    assert difference is not None and difference.by == "text" and difference.position == 6
    assert difference.common == "Hello " and difference.a.text == "there" and difference.b.text == "world"


def test_a_journaled_spec_comes_back_as_it_was(demo_model: Path) -> None:
    spec = ChainSpec(models=(str(demo_model), "org/repo:file.gguf"), prompts="a\nb", responses=2, loops=3,
                     feedback=True, seed=5, learning_top=4, sampling=SamplingParams(temperature=0.3, stop=("x",)),
                     model_templates=((str(demo_model), "chatml"),))
    assert spec_from_record(json.loads(json.dumps(spec.to_dict()))) == spec
    older = {**spec.to_dict(), "retired_option": True}  # a field this version does not know
    assert spec_from_record(older) == spec
