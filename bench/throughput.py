"""Studio worker throughput vs bare llama-cpp-python: same model, prompt and settings, one run.

Both sides run llama.cpp in a process of their own: the bare side is a plain llama-cpp-python
script (`_bare_llama.py`), the studio side is `LocalBackend` and its worker, timed where the studio
receives the tokens. They generate the same greedy tokens from the 152k-vocabulary random-weight
benchmark model. Decode speed is (tokens - 1) / (time of last token - time of first token), so
prompt evaluation does not blur it. Rounds alternate between the sides; the reported value is the
median of the per-round ratios, which cancels the machine's slow drifts.
Prints {"metric": "worker_tok_s_ratio", "value": worker / bare, "target": 0.97} last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import cached_benchmark_model, median, report

PROMPT = "Write a short story about a lighthouse keeper who collects sea glass."
TARGET = 0.97


class BareLlama:
    """The baseline process."""

    def __init__(self, model: Path, n_ctx: int, threads: int) -> None:
        script = Path(__file__).with_name("_bare_llama.py")
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(model), str(n_ctx), str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert json.loads(self.process.stdout.readline())["ready"]  # type: ignore[union-attr]

    def decode(self, tokens: int) -> tuple[float, str]:
        self.process.stdin.write(json.dumps({"prompt": PROMPT, "tokens": tokens}) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        answer = json.loads(self.process.stdout.readline())  # type: ignore[union-attr]
        return answer["rate"], answer["text"]

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(10)


def worker_decode(backend, tokens: int, grammar: str = "") -> tuple[float, str]:
    """Decode speed (tokens after the first, over the time after it) and text of one greedy answer
    to PROMPT, under `grammar` when given (bench/constrained.py)."""
    from app.core.backend import GenerationRequest, TokenEvent
    from app.core.sampling import SamplingParams

    stamps: list[float] = []
    texts: list[str] = []
    request = GenerationRequest(prompt=PROMPT, params=SamplingParams(max_tokens=tokens, temperature=0.0, top_k=40),
                                grammar=grammar)
    for event in backend.generate(request):
        if isinstance(event, TokenEvent):
            stamps.append(time.perf_counter())
            texts.append(event.text)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), "".join(texts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per side")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from app.core.sampling import LoadParams
    from app.models.local_backend import LocalBackend

    model = cached_benchmark_model()
    bare = BareLlama(model, args.n_ctx, args.threads)
    backend = LocalBackend()
    backend.load(model, LoadParams(n_ctx=args.n_ctx, n_batch=512, n_threads=args.threads))
    ratios, bare_rates, worker_rates = [], [], []
    try:
        bare.decode(4)  # warm both sides up (page cache, thread pools)
        worker_decode(backend, 4)
        for round_no in range(args.rounds):
            rate_b, text_b = bare.decode(args.tokens)
            rate_w, text_w = worker_decode(backend, args.tokens)
            if text_b != text_w:
                print("warning: the two sides generated different text", file=sys.stderr)
            bare_rates.append(rate_b)
            worker_rates.append(rate_w)
            ratios.append(rate_w / rate_b)
            print(f"round {round_no + 1}: bare {rate_b:.2f} tok/s, worker {rate_w:.2f} tok/s, "
                  f"ratio {rate_w / rate_b:.3f}", flush=True)
    finally:
        backend.close()
        bare.close()
    print(f"medians: bare {median(bare_rates):.2f} tok/s, worker {median(worker_rates):.2f} tok/s "
          f"({args.tokens} tokens, {args.threads} threads, {args.rounds} rounds)")
    report("worker_tok_s_ratio", median(ratios), TARGET,
           worker_tok_s=round(median(worker_rates), 2), bare_tok_s=round(median(bare_rates), 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
