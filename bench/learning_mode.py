"""Learning mode vs normal mode on the random-weight benchmark models (152k and 262k vocabularies), one run.

Both modes generate from the same prompt with the same stochastic settings through the studio's
worker; learning mode also records 10 or 100 candidates per token with their probability after
every sampler stage. Decode speed is (tokens - 1) / (time of last token - time of first token),
timed where the studio receives the tokens. Rounds alternate normal, learning with 10 candidates
and learning with 100 (and the reverse order); each reported ratio is the median of the per-round
ratios, which cancels the machine's slow drifts. Peak resident
memory of the worker (a fresh one per mode, n_ctx 4096) compares normal mode with learning mode at
100 candidates. Also prints, as a reference line, the original tool's per-token method on each
model (detokenize the whole vocabulary and copy every logit, each token).

Models: the 152k-vocabulary one (24 layers, width 896, Q8_0, about 530 MB) and one shaped like a
small modern model (18 layers, width 640, 262,144-token vocabulary, Q8_0, about 280 MB, written in
a few seconds), both written once into bench/.cache/; or `--model PATH` for any GGUF file.
Prints {"metric": "learning_tok_s_ratio", "value": the lowest median ratio, "target": 0.90} last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import cached_benchmark_model, cached_small_modern_model, median, report

PROMPT = "Write a short story about a lighthouse keeper who collects sea glass."
TARGET = 0.90
MEMORY_TARGET = 1.05
CANDIDATES = (10, 100)


def decode_rate(backend, tokens: int, learning_top: int) -> float:
    from app.core.backend import GenerationRequest, TokenEvent
    from app.core.sampling import SamplingParams

    params = SamplingParams(max_tokens=tokens, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=7)
    # A chat request: a real model (--model) answers in its own template; the random benchmark
    # models have none, so they get the prompt as raw completion.
    request = GenerationRequest(messages=GenerationRequest.chat(PROMPT).messages, params=params,
                                learning_top=learning_top)
    stamps = []
    for event in backend.generate(request):
        if isinstance(event, TokenEvent):
            stamps.append(time.perf_counter())
    if len(stamps) < 8:
        raise SystemExit(f"the model ended its answer after {len(stamps)} tokens: too few to time")
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


def measure(model: Path, name: str, tokens: int, rounds: int, reference: bool) -> dict:
    """Peak memory in both modes, then alternating rounds; prints one line per round."""
    from app.core.sampling import LoadParams
    from app.models.local_backend import LocalBackend

    backend = LocalBackend()
    peaks: dict[str, int | None] = {}
    rates: dict[int, list[float]] = {0: [], **{k: [] for k in CANDIDATES}}
    ratios: dict[int, list[float]] = {k: [] for k in CANDIDATES}
    try:
        for mode, top in (("normal", 0), ("learning", max(CANDIDATES))):  # fresh workers: separate peaks
            backend.unload()
            info = backend.load(model, LoadParams(n_ctx=4096))
            decode_rate(backend, tokens, top)
            peaks[mode] = peak_resident(backend)
        print(f"{name}: {model.name}, {info.n_vocab:,}-token vocabulary", flush=True)
        decode_rate(backend, 16, 0)  # warm up
        for round_no in range(rounds):
            # Normal first, then 10 and 100 candidates; every other round the reverse order, so a
            # drift of the machine's speed does not favour one mode.
            order = (0, *CANDIDATES) if round_no % 2 == 0 else (*reversed(CANDIDATES), 0)
            measured = {top: decode_rate(backend, tokens, top) for top in order}
            normal = measured[0]
            rates[0].append(normal)
            line = [f"normal {normal:.2f} tok/s"]
            for k in CANDIDATES:
                rates[k].append(measured[k])
                ratios[k].append(measured[k] / normal)
                line.append(f"learning/{k} {measured[k]:.2f} tok/s (ratio {measured[k] / normal:.3f})")
            print(f"  round {round_no + 1}: " + ", ".join(line), flush=True)
    finally:
        backend.close()
    result: dict = {"normal_tok_s": round(median(rates[0]), 2)}
    for k in CANDIDATES:
        result[f"ratio_{k}"] = round(median(ratios[k]), 4)
        result[f"learning_{k}_tok_s"] = round(median(rates[k]), 2)
    summary = f"  medians: normal {median(rates[0]):.2f} tok/s, " + ", ".join(
        f"learning with {k} candidates {median(rates[k]):.2f} tok/s (ratio {median(ratios[k]):.3f})"
        for k in CANDIDATES)
    if peaks["normal"] and peaks["learning"]:
        result["peak_rss_ratio"] = round(peaks["learning"] / peaks["normal"], 4)
        summary += (f"; peak memory normal {peaks['normal'] / 2**20:.0f} MiB, learning "
                    f"{peaks['learning'] / 2**20:.0f} MiB ({peaks['learning'] / peaks['normal'] - 1:+.1%})")
    print(summary, flush=True)
    if reference:
        rate = original_method_rate(model, 3)
        result["original_method_tok_s"] = round(rate, 3)
        print(f"  reference, the original's per-token method on this model: {rate:.2f} tok/s "
              f"(ratio {rate / median(rates[0]):.3f})", flush=True)
    return result


STAGE_SETTINGS = (
    ("default order, top_k 40, top_p 0.95, min_p 0.05 (this benchmark)", dict(top_k=40, top_p=0.95, min_p=0.05)),
    ("greedy (temperature 0, the deterministic preset)", dict(temperature=0.0)),
    ("greedy with repeat_penalty 1.1", dict(temperature=0.0, repeat_penalty=1.1)),
    ("top_k 40 + repeat_penalty 1.1", dict(top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1)),
    ("top_k 40 + DRY", dict(top_k=40, top_p=0.95, dry_multiplier=0.8)),
    ("top_k 40 + tfs_z, typical_p, XTC, top-n-sigma", dict(top_k=40, tfs_z=0.95, typical_p=0.9, top_p=0.95,
                                                          xtc_probability=0.5, top_n_sigma=2.0)),
    ("top_k 0, min_p 0.05", dict(top_k=0, min_p=0.05)),
    ("top_k 0, top_n_sigma 1.5", dict(top_k=0, top_n_sigma=1.5)),
    ("top_k 0, top_p 0.95 (peaked logits)", dict(top_k=0, top_p=0.95)),
    ("top_k 0, top_p 0.95 (flat logits: most of the vocabulary)", dict(top_k=0, top_p=0.95)),
    ("top_k 0, nothing else (sampling from the whole vocabulary)", dict(top_k=0)),
    ("top_k 0, tfs_z 0.95", dict(top_k=0, tfs_z=0.95)),
    ("top_k 0, typical_p 0.9", dict(top_k=0, typical_p=0.9)),
    ("Mirostat 2", dict(mirostat=2)),
    ("Mirostat 1", dict(mirostat=1)),
)


def stage_costs(n_vocab: int, candidates: int, tokens: int = 60) -> None:
    """Per-token time of the learning-mode work alone (pick, describe, pickle) on random float32
    logits of a 262k vocabulary, for the settings in STAGE_SETTINGS: which stages cost more."""
    import pickle

    import numpy as np

    from app.core.learning import describe_pick
    from app.core.sampler_pipeline import SamplerPipeline
    from app.core.sampling import SamplingParams

    rng = np.random.default_rng(0)
    flat = [(rng.standard_normal(n_vocab) * 2.5).astype(np.float32) for _ in range(8)]
    peaked = [(rng.standard_normal(n_vocab) * 2.5).astype(np.float32) for _ in range(8)]
    for logits in peaked:  # five tokens hold 99% of the mass, as often with a real model
        logits[rng.choice(n_vocab, 5, replace=False)] += np.float32(20.0)
    words = [f"w{i}" for i in range(n_vocab)]
    print(f"learning-mode work per token, {n_vocab:,}-token vocabulary, {candidates} candidates "
          "(random logits; median of", tokens, "tokens):")
    for label, settings in STAGE_SETTINGS:
        params = SamplingParams(**{"temperature": 0.8, "seed": 7, **settings})
        pipeline = SamplerPipeline(params, 7)
        source = flat if "flat" in label else peaked
        times, recent = [], []
        for index in range(tokens):
            logits = source[index % len(source)]
            started = time.perf_counter()
            pick = pipeline.pick(logits, recent, record=True, candidates=candidates)
            pickle.dumps(describe_pick(logits, pick, words, index, candidates))
            times.append(time.perf_counter() - started)
            recent.append(pick.token_id)
        print(f"  {median(times) * 1e3:8.2f} ms  {label}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="measure this GGUF file instead of the benchmark models")
    parser.add_argument("--vocab", choices=("152k", "262k", "both"), default="both",
                        help="which benchmark model(s) to measure (without --model)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per model")
    parser.add_argument("--no-reference", action="store_true", help="skip the original method's reference line")
    parser.add_argument("--stage-costs", action="store_true",
                        help="only time the learning-mode work per token for various sampler settings (no model)")
    args = parser.parse_args()
    if args.stage_costs:
        stage_costs(262_144, max(CANDIDATES))
        return 0

    if args.model:
        if not args.model.is_file():
            parser.error(f"no such model file: {args.model}")
        models = {args.model.stem: args.model}
    else:
        models = {}
        if args.vocab in ("152k", "both"):
            models["152k"] = cached_benchmark_model()
        if args.vocab in ("262k", "both"):
            models["262k"] = cached_small_modern_model()
    results = {name: measure(path, name, args.tokens, args.rounds, not args.no_reference)
               for name, path in models.items()}
    worst = min(results.values(), key=lambda r: min(r[f"ratio_{k}"] for k in CANDIDATES))
    value = min(worst[f"ratio_{k}"] for k in CANDIDATES)
    extra: dict[str, object] = {}
    for name, result in results.items():
        extra.update({f"{name}_{key}": item for key, item in result.items()})
    peaks = [r["peak_rss_ratio"] for r in results.values() if "peak_rss_ratio" in r]
    if peaks:
        extra["peak_rss_ratio_max"] = max(peaks)
        extra["peak_rss_target"] = MEMORY_TARGET
    report("learning_tok_s_ratio", value, TARGET, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
