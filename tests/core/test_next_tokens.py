"""Cross-model next-token comparison: the demo model's known distribution (Hello 0.87, Greetings
0.12) beside a tiny random model's, where their greedy continuations part, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.next_tokens import ModelNextTokens, compare_next_tokens, parting_character
from app.models.benchmark_model import write_tiny_attention_model
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_attention_model(tmp_path_factory.mktemp("models") / "tiny.gguf")


def test_the_parting_character() -> None:
    assert parting_character(["Hello there", "Hello world"]) == 6
    assert parting_character(["Hello", "Hello there"]) == 5  # one ends: they part there
    assert parting_character(["same", "same", "same"]) is None and parting_character(["alone"]) is None
    side = ModelNextTokens("m", continuation=("Hel", "lo", " the", "re"))
    assert [side.token_at(i) for i in (0, 3, 5, 6, 9, 10, 11, None)] == [0, 1, 2, 2, 3, 3, None, None]


def test_two_models_side_by_side_at_a_prompt(backend: LocalBackend, demo_model: Path, tiny: Path) -> None:
    comparison = compare_next_tokens(backend, [str(demo_model), str(tiny)], "hi", top=3, tokens=5)
    demo, random = comparison.sides
    assert demo.model == demo_model.name and random.model == "tiny.gguf"
    assert [(piece, round(prob, 3)) for _id, piece, prob in demo.candidates[:2]] == [("Hello", 0.871),
                                                                                  ("Greetings", 0.118)]
    assert len(random.candidates) == 3 and sum(p for *_x, p in random.candidates) <= 1
    assert demo.text == "Hello from the demo model."
    assert comparison.parts_at == parting_character([demo.text, random.text])
    assert demo.token_at(comparison.parts_at) == 0  # the random model does not say "Hello"


def test_the_same_model_twice_never_parts_and_raw_text_is_sent_as_is(backend: LocalBackend,
                                                                      demo_model: Path) -> None:
    comparison = compare_next_tokens(backend, [str(demo_model), str(demo_model)], "A poem ^", raw=True, tokens=8)
    assert comparison.parts_at is None and comparison.raw
    assert comparison.sides[0].text.startswith("Roses are red")  # the raw text's last character chose the script


def test_a_model_that_cannot_load_has_its_message_and_the_others_answer(backend: LocalBackend, demo_model: Path,
                                                                       tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    comparison = compare_next_tokens(backend, [str(broken), str(demo_model)], "hi", tokens=3)
    assert comparison.sides[0].error and not comparison.sides[0].candidates
    assert comparison.sides[1].candidates[0][1] == "Hello" and comparison.parts_at is None
    data = comparison.to_dict()
    assert data["models"][0]["error"] and data["models"][1]["parts_at_token"] is None


def test_the_cli_compares_at_a_prompt_and_at_a_journaled_answer(demo_model: Path, tiny: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                              cwd=PROJECT_ROOT, timeout=300)

    done = run("next-tokens", "--model", str(demo_model), "--model", str(tiny), "--prompt", "hi", "--top", "2",
               "--tokens", "4", "--jsonl")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line["type"] == "next_tokens" and line["raw"] is False and line["parts_at"] == 0
    assert [c["text"] for c in line["models"][0]["candidates"]] == ["Hello", "Greetings"]
    # the demo model's first token; the random model's first with text (a lone UTF-8 byte shows none yet)
    assert line["models"][0]["parts_at_token"] == 0 and line["models"][1]["parts_at_token"] is not None

    readable = run("next-tokens", "--model", str(demo_model), "--model", str(tiny), "--prompt", "hi", "--tokens", "3")
    assert readable.returncode == 0 and "[Hello] from the" in readable.stdout and "part at character 0" in readable.stdout

    prompts = tmp_path / "p.txt"
    prompts.write_text("Say hello\n", encoding="utf-8")
    assert run("chain", "--model", str(demo_model), "--prompts", str(prompts)).returncode == 0
    done = run("next-tokens", "--model", str(demo_model), "--answer", "1:1", "--position", "2", "--jsonl")
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["raw"] is True and line["prefix"].endswith("Hello from")  # the answer's first two tokens
    refused = run("next-tokens", "--model", str(demo_model), "--answer", "1:1", "--position", "99")
    assert refused.returncode == 1 and "has 5 tokens" in refused.stdout + refused.stderr
