"""The comparison grid: a run's answers as a models x items table, with each answer's metrics and a
score (the person's 1-5 rating, or a judge model's number), sortable and exportable.

A grid run is a chain in which every model answers every item once, independently (`grid_spec`).
Any journaled run can be shown as a grid: its cells are its answers by model and item (the last
answer of a pair when a run gave it several).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from app.core.chain import ChainSpec
from app.core.events import Answer

SCORES = (1, 2, 3, 4, 5)
YOU = "you"
JUDGE_PROMPT = ("Rate how well the answer below answers the question, from 1 (wrong or useless) to 5 "
                "(correct and complete). Reply with the number only.")
"""The judge's default instruction; the question and the answer follow it, as `[[…]]` puts the
earlier answers after the final prompt."""
JUDGE_GRAMMAR = "root ::= [1-5]"
"""The judge's reply: one digit, 1 to 5 (constrained decoding makes any model give a score)."""
SORT_KEYS = ("model", "mean score", "decode tok/s", "first token", "tokens")
_SCORE = re.compile(r"(?<![\d.])([1-5])(?:\s*/\s*5)?(?!\d|\.\d)")


def grid_spec(spec: ChainSpec) -> ChainSpec:
    """`spec` as a grid: every model answers every item once, on its own (no feedback, one response,
    one loop, the list's order)."""
    return dataclasses.replace(spec, responses=1, loops=1, single_response=False, shuffle=False, feedback=False,
                               cumulative=False)


def parse_score(text: str) -> int | None:
    """The judge's score: the first number 1-5 standing alone in its reply ("4", "Score: 4/5"),
    or None."""
    match = _SCORE.search(text or "")
    return int(match.group(1)) if match else None


def judge_prompt(instruction: str, question: str, answer: str) -> str:
    """What the judge model is asked about one cell."""
    return f"{(instruction or JUDGE_PROMPT).strip()}\n\nQuestion:\n{question}\n\nAnswer:\n{answer}"


@dataclass(frozen=True)
class Cell:
    """One model's answer to one item, and its score (None until rated)."""

    answer: Answer
    score: float | None = None
    source: str = ""  # "you" or "judge: NAME"


@dataclass(frozen=True)
class Grid:
    """A run's answers by model (rows, in the run's order) and item (columns)."""

    run_id: int
    models: tuple[str, ...]
    items: tuple[tuple[int, str], ...]  # (number, prompt as sent)
    cells: dict[tuple[str, int], Cell]

    @classmethod
    def of(cls, run_id: int, answers: Iterable[Answer], ratings: dict[int, tuple[float, str]] | None = None,
           ) -> "Grid":
        """The grid of a run's answers (branches left out by the caller) and its ratings (by seq)."""
        ratings = ratings or {}
        models: dict[str, None] = {}
        items: dict[int, str] = {}
        cells: dict[tuple[str, int], Cell] = {}
        for answer in answers:
            models.setdefault(answer.model)
            items.setdefault(answer.item, answer.prompt)
            score, source = ratings.get(answer.index, (None, ""))
            cells[(answer.model, answer.item)] = Cell(answer, score, source)
        return cls(run_id, tuple(models), tuple(sorted(items.items())), cells)

    def cell(self, model: str, item: int) -> Cell | None:
        return self.cells.get((model, item))

    def mean_score(self, model: str) -> float | None:
        scores = [c.score for (m, _i), c in self.cells.items() if m == model and c.score is not None]
        return sum(scores) / len(scores) if scores else None

    def _mean_metric(self, model: str, name: str) -> float | None:
        values = [getattr(c.answer.metrics, name) for (m, _i), c in self.cells.items()
                  if m == model and c.answer.metrics is not None and getattr(c.answer.metrics, name) is not None]
        return sum(values) / len(values) if values else None

    def sorted_models(self, key: str) -> list[str]:
        """The models ordered by `key` (one of SORT_KEYS): best first; unknown values last."""
        if key == "model":
            return sorted(self.models, key=str.lower)
        if key == "tokens":
            return sorted(self.models, key=lambda m: -sum(c.answer.tokens for (x, _i), c in self.cells.items() if x == m))
        measure = {"mean score": (self.mean_score, True), "decode tok/s": (lambda m: self._mean_metric(m, "decode_tok_s"), True),
                   "first token": (lambda m: self._mean_metric(m, "ttft_s"), False)}
        if key not in measure:
            raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}")
        value_of, descending = measure[key]

        def order(model: str) -> tuple[bool, float]:
            value = value_of(model)
            return value is None, (-(value or 0.0) if descending else (value or 0.0))

        return sorted(self.models, key=order)

    def rows(self) -> list[dict[str, Any]]:
        """One row per cell, for export (CSV, JSON): the answer, its metrics and its score."""
        rows = []
        for model in self.models:
            for number, prompt in self.items:
                cell = self.cell(model, number)
                if cell is None:
                    continue
                metrics = cell.answer.metrics.to_dict() if cell.answer.metrics is not None else {}
                rows.append({
                    "run_id": self.run_id, "model": model, "item": number, "prompt": prompt,
                    "answer": cell.answer.text, "seq": cell.answer.index, "tokens": cell.answer.tokens,
                    "seconds": round(cell.answer.seconds, 4), "stop_reason": cell.answer.stop_reason,
                    "ttft_s": metrics.get("ttft_s"), "decode_tok_s": metrics.get("decode_tok_s"),
                    "peak_rss_bytes": metrics.get("peak_rss_bytes"), "entropy_mean": metrics.get("entropy_mean"),
                    "score": cell.score, "score_source": cell.source or None,
                })
        return rows

    def to_json(self) -> str:
        return json.dumps({"run_id": self.run_id, "models": list(self.models),
                           "items": [{"item": n, "prompt": p} for n, p in self.items], "cells": self.rows()},
                          ensure_ascii=False, indent=2)

    def to_csv(self) -> str:
        rows = self.rows()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["run_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
