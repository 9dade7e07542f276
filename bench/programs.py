"""Programs: concurrent prompt_fns decode together, and a sub-context reuses a shared prefix.

One run, on the random-weight benchmark model (24 layers, width 896, 152k vocabulary, Q8_0) or
`--model PATH`:

1. llama.cpp's own limit: a bare llama-cpp-python process decodes 64 tokens of 4 sequences in one
   batch per step vs 64 tokens of 1 sequence (tokens per second, 4 vs 1): the speed-up batching
   can give on this machine and model.
2. The studio: `python -m app program` runs a program that times 4 prompt_fns of 64 sampled tokens
   each, one after another, then the same 4 under asyncio.gather (after a warm-up), through the
   real API and program process.
3. The same program times sample(max_len=1) in a sub-context that starts with the 1,000-token
   prefix its caller evaluated, against the same on a fresh 1,000-token prefix.

Prints both speed-ups, then {"metric": "programs_batching_ratio", "value": studio speed-up /
llama.cpp speed-up, "target": 0.9}; extra fields carry the prefix figure (target <= 0.10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import ROOT, cached_benchmark_model, report

TARGET = 0.90
PREFIX_TARGET = 0.10
SEQUENCES = 4
TOKENS = 64

BARE = """
import sys, time
import llama_cpp
from llama_cpp import llama_cpp as low

defaults = low.llama_context_default_params
def slots():
    params = defaults(); params.n_seq_max = 8; params.kv_unified = True; return params
low.llama_context_default_params = slots
llm = llama_cpp.Llama(sys.argv[1], n_ctx=4096, n_batch=512, n_threads={threads}, n_threads_batch={threads},
                      logits_all=False, verbose=False)
ctx = llm._ctx.ctx
memory = low.llama_get_memory(ctx)
prompt = llm.tokenize(b"Once upon a time there was a lighthouse", add_bos=True)

def rate(sequences, steps):
    low.llama_memory_clear(memory, True)
    batch = low.llama_batch_init(512, 0, 1)
    n = 0
    for seq in range(sequences):
        for i, token in enumerate(prompt):
            batch.token[n] = token; batch.pos[n] = i; batch.n_seq_id[n] = 1; batch.seq_id[n][0] = seq
            batch.logits[n] = i == len(prompt) - 1; n += 1
    batch.n_tokens = n
    assert low.llama_decode(ctx, batch) == 0
    started = time.perf_counter()
    for step in range(steps):
        for seq in range(sequences):
            batch.token[seq] = 100 + step; batch.pos[seq] = len(prompt) + step; batch.n_seq_id[seq] = 1
            batch.seq_id[seq][0] = seq; batch.logits[seq] = True
        batch.n_tokens = sequences
        assert low.llama_decode(ctx, batch) == 0
    seconds = time.perf_counter() - started
    low.llama_batch_free(batch)
    return sequences * steps / seconds

rate(1, 8)
one = (rate(1, {tokens}) + rate(1, {tokens})) / 2
many = (rate({sequences}, {tokens}) + rate({sequences}, {tokens})) / 2
print(many / one)
"""

PROGRAM = """
import asyncio
import json
import time

@prompt_fn
async def item(number):
    await prompt(f"Item {{number}} of the list, described in detail:")
    result = await sample(max_len={tokens}, temperature=1.0, nucleus_p=0.9, rng_seed=number)
    return len(result.tokens), result.extra["batch"]

await item(100)  # warm-up: the model is loaded and the pipeline's tables are made
started = time.perf_counter()
one_by_one = [await item(n) for n in range({sequences})]
sequential = time.perf_counter() - started
started = time.perf_counter()
together = await asyncio.gather(*(item(n) for n in range({sequences})))
concurrent = time.perf_counter() - started

words = "harbour lantern keeper tide pebble gull rope salt wave shore".split()

def prefix_of(seed):
    # this vocabulary makes each character one token (a space three): about 1,000 tokens
    return " ".join(words[(seed + n * 7) % len(words)] for n in range(200))[:750]

@prompt_fn
async def first_token(text):
    await prompt(text)
    started = time.perf_counter()
    await sample(max_len=1, temperature=1.0)
    return time.perf_counter() - started, len(get_context().tokens)

shared = prefix_of(1)
await prompt(shared)
tokens = len(get_context().tokens)
fresh_seconds, _ = await first_token(prefix_of(2))  # a prefix nobody evaluated yet
await sample(max_len=1)  # the caller evaluates its own 1,000-token context
reused_seconds, _ = await first_token(shared + " and then")  # a sub-context starting with it
print(json.dumps({{"sequential": sequential, "concurrent": concurrent, "tokens": [n for n, _ in one_by_one + together],
                  "batches": [b for _, b in together], "prefix_tokens": tokens, "fresh_first_token": fresh_seconds,
                  "reused_first_token": reused_seconds}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF model (default: the random-weight benchmark model)")
    args = parser.parse_args()
    model = Path(args.model) if args.model else cached_benchmark_model()
    threads = os.cpu_count() or 1
    bare = subprocess.run([sys.executable, "-c", BARE.format(threads=threads, tokens=TOKENS, sequences=SEQUENCES),
                           str(model)], capture_output=True, text=True, check=True)
    llama_speedup = float(bare.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory(prefix="bench-programs-") as home:
        program = Path(home) / "bench_program.py"
        program.write_text(textwrap.dedent(PROGRAM.format(tokens=TOKENS, sequences=SEQUENCES)), encoding="utf-8")
        env = dict(os.environ, CHAIN_STUDIO_HOME=home)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "app", "program", str(program), "--model", model.name,
                               "--models-dir", str(model.parent), "--time-limit", "3600"],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        if done.returncode != 0:
            sys.exit(f"the program failed after {time.perf_counter() - started:.0f} s:\n{done.stderr[-3000:]}")
    figures = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    studio_speedup = figures["sequential"] / figures["concurrent"]
    prefix_ratio = figures["reused_first_token"] / figures["fresh_first_token"]
    print(f"llama.cpp alone, {SEQUENCES} sequences in one batch vs 1: {llama_speedup:.2f}x", flush=True)
    print(f"studio, {SEQUENCES} prompt_fns under asyncio.gather vs one after another: {studio_speedup:.2f}x "
          f"({figures['sequential']:.2f} s vs {figures['concurrent']:.2f} s; batches {figures['batches']})", flush=True)
    print(f"first token of a sub-context sharing a {figures['prefix_tokens']}-token prefix: "
          f"{figures['reused_first_token'] * 1000:.0f} ms vs {figures['fresh_first_token'] * 1000:.0f} ms fresh "
          f"({prefix_ratio:.3f})", flush=True)
    report("programs_batching_ratio", studio_speedup / llama_speedup, TARGET, model=model.name,
           llama_speedup=round(llama_speedup, 3), studio_speedup=round(studio_speedup, 3),
           prefix_first_token_ratio=round(prefix_ratio, 4), prefix_target=PREFIX_TARGET,
           prefix_tokens=figures["prefix_tokens"])


if __name__ == "__main__":
    main()
