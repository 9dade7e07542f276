"""Learning mode vs normal mode on the 152k-vocabulary benchmark model, one run.

Both modes generate from the same prompt with the same stochastic settings through the studio's
worker; learning mode also records 10 candidates per token with their probability after every
sampler stage. Also prints, as a reference line, the original tool's per-token method on the same
model (detokenize the whole vocabulary and copy every logit, each token), and compares the peak
resident memory of the worker in both modes at n_ctx 4096.
Prints {"metric": "learning_tok_s_ratio", "value": learning / normal, "target": 0.90} last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import cached_benchmark_model, median, report

PROMPT = "Write a short story about a lighthouse keeper who collects sea glass."
TARGET = 0.90


def decode_rate(backend, tokens: int, learning_top: int) -> float:
    from app.core.backend import GenerationRequest, TokenEvent
    from app.core.sampling import SamplingParams

    params = SamplingParams(max_tokens=tokens, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=7)
    stamps = []
    for event in backend.generate(GenerationRequest(prompt=PROMPT, params=params, learning_top=learning_top)):
        if isinstance(event, TokenEvent):
            stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def peak_resident(backend) -> int | None:
    status = Path(f"/proc/{backend._worker.process.pid}/status")
    if not status.exists():
        return None
    return int(status.read_text().split("VmHWM:")[1].split()[0]) * 1024


def original_method_rate(model: Path, tokens: int) -> float:
    """The original's way: every token, the whole vocabulary detokenized and all logits copied."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(str(model), n_ctx=4096, logits_all=False, verbose=False)
    n_vocab = llm.n_vocab()
    llm.eval(llm.tokenize(PROMPT.encode()))
    started = time.perf_counter()
    for _ in range(tokens):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,)).tolist()
        words = [llm.detokenize([i]).decode("utf-8", errors="replace") for i in range(n_vocab)]
        llm.eval([int(max(range(n_vocab), key=logits.__getitem__))])
        del words
    return tokens / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from app.core.sampling import LoadParams
    from app.models.local_backend import LocalBackend

    model = cached_benchmark_model()
    load = LoadParams(n_ctx=4096)
    backend = LocalBackend()
    peaks: dict[str, int | None] = {}
    try:
        for mode, top in (("normal", 0), ("learning", 10)):  # fresh workers: separate memory peaks
            backend.unload()
            backend.load(model, load)
            decode_rate(backend, args.tokens, top)
            peaks[mode] = peak_resident(backend)
        normal_rates, learning_rates, ratios = [], [], []
        for round_no in range(args.rounds):
            normal = decode_rate(backend, args.tokens, 0)
            learning = decode_rate(backend, args.tokens, 10)
            normal_rates.append(normal)
            learning_rates.append(learning)
            ratios.append(learning / normal)
            print(f"round {round_no + 1}: normal {normal:.2f} tok/s, learning {learning:.2f} tok/s, "
                  f"ratio {learning / normal:.3f}", flush=True)
    finally:
        backend.close()
    reference = original_method_rate(model, 3)
    print(f"reference, the original's per-token method on this model: {reference:.2f} tok/s "
          f"(ratio {reference / median(normal_rates):.3f})")
    memory = ""
    if peaks["normal"] and peaks["learning"]:
        memory = (f"; peak memory normal {peaks['normal'] / 2**20:.0f} MiB, learning "
                  f"{peaks['learning'] / 2**20:.0f} MiB ({peaks['learning'] / peaks['normal'] - 1:+.1%})")
    print(f"medians: normal {median(normal_rates):.2f} tok/s, learning {median(learning_rates):.2f} tok/s{memory}")
    extra = {}
    if peaks["normal"] and peaks["learning"]:
        extra["peak_rss_ratio"] = round(peaks["learning"] / peaks["normal"], 4)
    report("learning_tok_s_ratio", median(ratios), TARGET, normal_tok_s=round(median(normal_rates), 2),
           learning_tok_s=round(median(learning_rates), 2), original_method_tok_s=round(reference, 3), **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
