"""The comparison grid: a run's answers by model and item, their metrics and scores, sorting, the
judge's number, export, and a grid run on the demo and the tiny random model."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app.core.chain import ChainSpec, plan_of
from app.core.events import Answer, AnswerFinished
from app.core.grid import Grid, grid_spec, judge_prompt, parse_score
from app.core.metrics import answer_metrics
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.models.benchmark_model import write_tiny_attention_model
from app.models.local_backend import LocalBackend
from app.store.journal import Journal


def answer(index: int, model: str, item: int, text: str, tok_s: float, ttft: float) -> Answer:
    metrics = answer_metrics(prompt_tokens=10, tokens=5, seconds=ttft + 4 / tok_s, prompt_seconds=ttft)
    return Answer(index, model, f"{model}.gguf", item, 1, 1, f"question {item}", (), SamplingParams(), text, 10, 5,
                  1.0, "eos", 1, metrics=metrics)


@pytest.mark.parametrize(("reply", "score"), [
    ("4", 4), ("Score: 5/5", 5), (" 3.", 3), ("I'd say 2 out of 5", 2), ("10", None), ("4.5", None),
    ("none", None), ("", None), ("0 or 6", None),
])
def test_the_judges_number_is_parsed(reply: str, score: int | None) -> None:
    assert parse_score(reply) == score


def test_a_grid_run_is_every_model_on_every_item_once() -> None:
    spec = ChainSpec(models=("a.gguf", "b.gguf"), prompts="one\ntwo\nthree", responses=3, loops=2, feedback=True,
                     shuffle=True)
    plan = plan_of(grid_spec(spec))
    assert [(p.model, p.item.number) for p in plan] == [(m, i) for m in ("a.gguf", "b.gguf") for i in (1, 2, 3)]
    assert "Question:\nWhy?\n\nAnswer:\nBecause." in judge_prompt("", "Why?", "Because.")


def test_the_grid_sorts_scores_and_exports() -> None:
    answers = [answer(1, "fast", 1, "A1", 50.0, 0.1), answer(2, "fast", 2, "A2", 50.0, 0.1),
               answer(3, "slow", 1, "B1", 10.0, 0.5), answer(4, "slow", 2, 'B2, "quoted"\nline', 10.0, 0.5)]
    grid = Grid.of(7, answers, {1: (2.0, "you"), 3: (5.0, "judge: j.gguf"), 4: (4.0, "you")})
    assert grid.models == ("fast", "slow") and [n for n, _p in grid.items] == [1, 2]
    assert grid.mean_score("slow") == 4.5 and grid.mean_score("fast") == 2.0
    assert grid.sorted_models("mean score") == ["slow", "fast"]
    assert grid.sorted_models("decode tok/s") == ["fast", "slow"]
    assert grid.sorted_models("first token") == ["fast", "slow"]
    rows = list(csv.DictReader(io.StringIO(grid.to_csv())))
    assert [(r["model"], r["item"], r["score"], r["score_source"]) for r in rows] == [
        ("fast", "1", "2.0", "you"), ("fast", "2", "", ""), ("slow", "1", "5.0", "judge: j.gguf"),
        ("slow", "2", "4.0", "you")]
    assert rows[3]["answer"] == 'B2, "quoted"\nline' and float(rows[0]["decode_tok_s"]) == pytest.approx(50.0)
    data = json.loads(grid.to_json())
    assert data["run_id"] == 7 and len(data["cells"]) == 4 and data["items"][0] == {"item": 1, "prompt": "question 1"}


def test_scores_are_journaled_and_a_grid_run_fills_every_cell(backend: LocalBackend, demo_model: Path,
                                                              journal: Journal, tmp_path: Path) -> None:
    tiny = write_tiny_attention_model(tmp_path / "tiny.gguf")
    spec = grid_spec(ChainSpec(models=(str(demo_model), str(tiny)), prompts="Say hello\nA poem ^",
                               sampling=SamplingParams(max_tokens=8, seed=1), loops=3))
    events = list(ChainRunner(backend, journal).run(spec, origin="grid"))
    run_id = events[0].run_id  # type: ignore[union-attr]
    assert sum(isinstance(e, AnswerFinished) for e in events) == 4
    assert journal.runs(1)[0].origin == "grid"
    stored = journal.stored_run(run_id)
    assert stored is not None
    journal.rate(run_id, 2, 5, "you")
    journal.rate(run_id, 2, 3, "judge: tiny.gguf")  # a new score replaces the old one
    grid = Grid.of(run_id, stored.answers, journal.ratings(run_id))
    assert grid.models == (demo_model.name, "tiny.gguf") and len(grid.cells) == 4
    cell = grid.cell(demo_model.name, 2)
    assert cell is not None and cell.answer.text.startswith("Roses are red") and (cell.score, cell.source) == (
        3.0, "judge: tiny.gguf")
