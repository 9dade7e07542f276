"""One answer's metrics (`AnswerMetrics`) and a run's (`RunMetrics`): token counts, time to first
token, prompt and decode speeds, the worker's peak memory and CPU use while it answered, the mean
entropy of its token distributions, and the prompt tokens saved by prefix reuse.

Entropy is in nats (natural logarithm) of the model's full next-token distribution before sampling
(softmax of the raw logits): 0 when the model is certain, ln(vocabulary size) when it has no idea.
CPU use is the worker's CPU time over the answer's wall time: 100 means one core busy all along.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:
    from app.core.backend import GenerationResult


@dataclass(frozen=True)
class AnswerMetrics:
    """What one answer cost and how sure its model was (None: not known for this answer)."""

    prompt_tokens: int
    tokens: int
    ttft_s: float
    prompt_tok_s: float | None
    decode_tok_s: float | None
    peak_rss_bytes: int | None = None
    cpu_percent: float | None = None
    entropy_mean: float | None = None
    reused_tokens: int | None = None  # prompt tokens whose evaluation was kept from before

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `metrics` object and the journal's (rounded for reading)."""
        return rounded(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnswerMetrics":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> str:
        """The answer footer's metrics line."""
        parts = [f"first token {self.ttft_s:.2f} s"]
        if self.prompt_tok_s is not None:
            parts.append(f"prompt {self.prompt_tok_s:,.0f} tok/s")
        if self.reused_tokens:
            parts.append(f"{self.reused_tokens:,} prompt tokens reused")
        if self.peak_rss_bytes is not None:
            parts.append(f"peak {self.peak_rss_bytes / 2**20:,.0f} MiB")
        if self.cpu_percent is not None:
            parts.append(f"CPU {self.cpu_percent:.0f}%")
        if self.entropy_mean is not None:
            parts.append(f"entropy {self.entropy_mean:.2f} nats")
        return " · ".join(parts)


def rounded(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its floats at four decimals (counts and byte sizes are ints, kept whole)."""
    return {name: round(value, 4) if isinstance(value, float) else value for name, value in data.items()}


def answer_metrics(prompt_tokens: int, tokens: int, seconds: float, prompt_seconds: float,
                   reused_tokens: int | None = None, peak_rss_bytes: int | None = None,
                   cpu_seconds: float | None = None, entropy_mean: float | None = None) -> AnswerMetrics:
    """Metrics from a generation's raw figures. Prompt speed counts only the tokens evaluated (not
    the reused ones); decode speed the tokens after the first, over the time after it."""
    evaluated = prompt_tokens - (reused_tokens or 0)
    prompt_tok_s = evaluated / prompt_seconds if prompt_seconds > 0 and evaluated > 0 else None
    decode_seconds = seconds - prompt_seconds
    decode_tok_s = (tokens - 1) / decode_seconds if tokens > 1 and decode_seconds > 0 else None
    cpu_percent = 100.0 * cpu_seconds / seconds if cpu_seconds is not None and seconds > 0 else None
    return AnswerMetrics(prompt_tokens, tokens, prompt_seconds, prompt_tok_s, decode_tok_s, peak_rss_bytes,
                         cpu_percent, entropy_mean, reused_tokens)


def metrics_of(result: "GenerationResult", remote: bool = False) -> AnswerMetrics:
    """The metrics of a finished generation. A remote engine's prefix reuse, memory and CPU are its
    own business: not known here. Its first-token time includes the network."""
    return answer_metrics(result.prompt_tokens, result.generated_tokens, result.seconds, result.prompt_seconds,
                          None if remote else result.reused_tokens, result.peak_rss_bytes, result.cpu_seconds,
                          result.entropy_mean)


class EntropyMeter:
    """Sums the entropy of each token's distribution from its raw logits. The vocabulary is taken in
    slices through two small buffers that stay in the CPU's cache: whole-vocabulary temporaries (600 KB
    each at 152k tokens) would push llama.cpp's own data out of it and slow the next decode."""

    CHUNK = 32_768

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self._shifted = np.empty(self.CHUNK, dtype=np.float32)
        self._weights = np.empty(self.CHUNK, dtype=np.float32)

    def add(self, logits: np.ndarray) -> None:
        top = float(logits.max())
        norm = 0.0
        weighted = 0.0  # sum of exp(l - top) * (l - top)
        for start in range(0, len(logits), self.CHUNK):
            part = logits[start:start + self.CHUNK]
            shifted, weights = self._shifted[: len(part)], self._weights[: len(part)]
            np.subtract(part, top, out=shifted)
            np.exp(shifted, out=weights)
            norm += float(weights.sum())
            weighted += float(np.dot(weights, shifted))
        # H = ln Z - E[l - top], with Z the sum of exp(l - top)
        self.total += max(math.log(norm) - weighted / norm, 0.0)
        self.count += 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def entropy_of(probabilities: Iterable[float]) -> float:
    """The entropy (nats) of a distribution given as probabilities (zeros skipped)."""
    return -sum(p * math.log(p) for p in probabilities if p > 0)


@dataclass(frozen=True)
class RunMetrics:
    """A run's totals over its answers, for the bar above the transcript."""

    answers: int
    prompt_tokens: int
    tokens: int
    seconds: float
    decode_tok_s: float | None
    peak_rss_bytes: int | None
    entropy_mean: float | None

    @classmethod
    def of(cls, answers: Iterable[tuple[AnswerMetrics, float]]) -> "RunMetrics":
        """Totals of (metrics, seconds) pairs: decode speed over every answer's decode time."""
        listed = list(answers)
        decode_tokens = sum(max(m.tokens - 1, 0) for m, _s in listed)
        decode_seconds = sum(max(s - m.ttft_s, 0.0) for m, s in listed)
        peaks = [m.peak_rss_bytes for m, _s in listed if m.peak_rss_bytes is not None]
        weighted = [(m.entropy_mean, m.tokens) for m, _s in listed if m.entropy_mean is not None and m.tokens]
        entropy = (sum(e * n for e, n in weighted) / sum(n for _e, n in weighted)) if weighted else None
        return cls(len(listed), sum(m.prompt_tokens for m, _s in listed), sum(m.tokens for m, _s in listed),
                   sum(s for _m, s in listed), decode_tokens / decode_seconds if decode_seconds > 0 else None,
                   max(peaks) if peaks else None, entropy)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `run_finished` metrics object (rounded for reading)."""
        return rounded(asdict(self))

    def describe(self) -> str:
        """The metrics bar's text."""
        parts = [f"{self.answers} answers", f"{self.prompt_tokens:,} prompt + {self.tokens:,} generated tokens",
                 f"{self.seconds:.1f} s"]
        if self.decode_tok_s is not None:
            parts.append(f"decode {self.decode_tok_s:.1f} tok/s")
        if self.peak_rss_bytes is not None:
            parts.append(f"worker peak {self.peak_rss_bytes / 2**20:,.0f} MiB")
        if self.entropy_mean is not None:
            parts.append(f"mean entropy {self.entropy_mean:.2f} nats")
        return " · ".join(parts)
