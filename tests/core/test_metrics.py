"""Answer and run metrics: derived figures, the entropy meter against numpy, and the demo model's
known distributions (every step: one token at logit 10, one at 8, the rest at 0) through the real
worker, the journal and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.chain import ChainSpec
from app.core.events import AnswerFinished, RunFinished
from app.core.metrics import AnswerMetrics, EntropyMeter, RunMetrics, answer_metrics, entropy_of
from app.core.runner import ChainRunner
from app.core.sampling import SamplingParams
from app.models.demo_model import ALTERNATIVE_LOGIT, INTENDED_LOGIT
from app.models.local_backend import LocalBackend
from app.settings import PROJECT_ROOT
from app.store.journal import Journal

METRIC_KEYS = {"prompt_tokens", "tokens", "ttft_s", "prompt_tok_s", "decode_tok_s", "peak_rss_bytes", "cpu_percent",
               "entropy_mean", "reused_tokens"}


def demo_entropy(n_vocab: int) -> float:
    """The entropy of one demo-model step: softmax of (10, 8, 0, 0, …)."""
    weights = [math.exp(INTENDED_LOGIT), math.exp(ALTERNATIVE_LOGIT)] + [1.0] * (n_vocab - 2)
    total = sum(weights)
    return entropy_of(w / total for w in weights)


def test_the_entropy_meter_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    meter = EntropyMeter()
    expected = []
    for scale in (0.1, 1.0, 8.0):
        logits = (rng.standard_normal(152_000) * scale).astype(np.float32)
        p = np.exp(logits.astype(np.float64) - logits.max())
        p /= p.sum()
        expected.append(float(-(p * np.log(p)).sum()))
        meter.add(logits)
    assert meter.mean == pytest.approx(sum(expected) / 3, abs=1e-4)
    certain = EntropyMeter()
    certain.add(np.array([0.0, 200.0, 0.0], dtype=np.float32))
    assert certain.mean == pytest.approx(0.0, abs=1e-6)


def test_derived_figures() -> None:
    metrics = answer_metrics(prompt_tokens=100, tokens=11, seconds=2.5, prompt_seconds=0.5, reused_tokens=60,
                             peak_rss_bytes=2**30, cpu_seconds=3.0, entropy_mean=1.25)
    assert metrics.prompt_tok_s == pytest.approx(80.0)  # 40 evaluated tokens in 0.5 s
    assert metrics.decode_tok_s == pytest.approx(5.0)  # 10 tokens after the first in 2 s
    assert metrics.cpu_percent == pytest.approx(120.0)
    assert metrics.describe() == ("first token 0.50 s · prompt 80 tok/s · 60 prompt tokens reused · peak 1,024 MiB · "
                                  "CPU 120% · entropy 1.25 nats")
    assert AnswerMetrics.from_dict(metrics.to_dict()) == metrics
    one = answer_metrics(5, 1, 0.2, 0.2)
    assert one.decode_tok_s is None and one.peak_rss_bytes is None
    run = RunMetrics.of([(metrics, 2.5), (answer_metrics(10, 3, 1.0, 0.5, entropy_mean=0.25), 1.0)])
    assert (run.answers, run.prompt_tokens, run.tokens) == (2, 110, 14)
    assert run.decode_tok_s == pytest.approx(12 / 2.5) and run.entropy_mean == pytest.approx((1.25 * 11 + 0.25 * 3) / 14)


def test_a_demo_answer_carries_its_metrics_into_the_journal(backend: LocalBackend, demo_model: Path,
                                                            studio_home: Path) -> None:
    journal = Journal()
    spec = ChainSpec(models=(str(demo_model),), prompts="Say hello\nSay hi", sampling=SamplingParams(seed=1))
    events = list(ChainRunner(backend, journal).run(spec))
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    n_vocab = backend.loaded.n_vocab  # type: ignore[union-attr]
    for answer in answers:
        m = answer.metrics
        assert m is not None and m.tokens == 5 and m.prompt_tokens == answer.prompt_tokens
        # Five tokens and the end token, each drawn from the same scripted distribution. (The norm's
        # epsilon moves the logits by about 0.002 from 10 and 8: a few 1e-4 nats.)
        assert m.entropy_mean == pytest.approx(demo_entropy(n_vocab), abs=1e-3)
        assert 0 < m.ttft_s < answer.seconds and m.decode_tok_s and m.decode_tok_s > 0
        assert m.peak_rss_bytes and m.peak_rss_bytes > 20 * 2**20 and m.cpu_percent is not None and m.cpu_percent > 0
        assert m.reused_tokens is not None
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.metrics is not None and finished.metrics.tokens == 10
    kept = journal.stored_run(events[0].run_id)
    assert kept is not None and kept.answers[0].metrics.to_dict() == answers[0].metrics.to_dict()  # type: ignore[union-attr]
    journal.close()


def test_the_cli_answer_line_has_a_metrics_object(demo_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("Say hello\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "app", "chain", "--model", str(demo_model), "--prompts", str(prompts),
                           "--jsonl"], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    answer = next(line for line in lines if line["type"] == "answer")
    assert set(answer["metrics"]) == METRIC_KEYS and answer["metrics"]["tokens"] == 5
    assert answer["metrics"]["entropy_mean"] == pytest.approx(0.49, abs=0.01)
    assert lines[-1]["type"] == "run_finished" and lines[-1]["metrics"]["tokens"] == 5


def test_the_transcript_shows_a_metrics_bar_and_each_answer_its_metrics(backend: LocalBackend,
                                                                         demo_model: Path) -> None:
    from app.ui.render import TranscriptBuilder, render_transcript

    spec = ChainSpec(models=(str(demo_model),), prompts="Say hello\nSay hi", learning_top=2)
    builder = TranscriptBuilder([])
    for event in ChainRunner(backend).run(spec):
        builder.apply(event)
    shown = render_transcript(builder.entries)
    bar = shown.split("####")[1]  # the run header, above the answers
    assert "📊 2 answers · " in bar and "10 generated tokens" in bar and "mean entropy 0.49 nats" in bar
    assert shown.count("entropy 0.49 nats") == 3 and shown.count("first token ") == 2
