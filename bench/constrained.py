"""Decode speed under a JSON schema against the same answers unconstrained: normal mode, one worker.

The 152k-vocabulary random-weight benchmark model answers the same prompt with and without a JSON
schema (an object with one free string, so every answer runs to its token limit inside the string),
greedy with top_k 40, in alternating rounds. Under the schema llama.cpp's grammar sampler checks
the candidates of every token against the grammar; the decode speed is (tokens - 1) / (time of last
token - time of first token), so prompt evaluation does not blur it. The value is the median of the
per-round ratios (constrained / free). Each constrained answer is checked to be the schema's JSON
so far (it is cut at the token limit, so it is a prefix of a valid document).
Prints {"metric": "constrained_tok_s_ratio", "value": constrained / free, "target": 0.9} last.
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import cached_benchmark_model, median, report
from throughput import worker_decode as decode

SCHEMA = {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"],
          "additionalProperties": False}
TARGET = 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="tokens per generation")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per side")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    from app.core.constraints import check_grammar, json_schema_grammar
    from app.core.sampling import LoadParams
    from app.models.local_backend import LocalBackend

    grammar = json_schema_grammar(SCHEMA)
    check_grammar(grammar)
    backend = LocalBackend()
    backend.load(cached_benchmark_model(), LoadParams(n_ctx=2048, n_batch=512, n_threads=args.threads))
    ratios, free_rates, constrained_rates = [], [], []
    try:
        decode(backend, 4, "")  # warm up (page cache, thread pools)
        decode(backend, 4, grammar)
        for round_no in range(args.rounds):
            free, _ = decode(backend, args.tokens, "")
            held, text = decode(backend, args.tokens, grammar)
            if not text.replace(' ', '').startswith('{"story":"'):
                print(f"warning: the constrained answer left the schema: {text[:80]!r}", file=sys.stderr)
            free_rates.append(free)
            constrained_rates.append(held)
            ratios.append(held / free)
            print(f"round {round_no + 1}: free {free:.2f} tok/s, JSON schema {held:.2f} tok/s, "
                  f"ratio {held / free:.3f}", flush=True)
    finally:
        backend.close()
    print(f"medians: free {median(free_rates):.2f} tok/s, JSON schema {median(constrained_rates):.2f} tok/s "
          f"({args.tokens} tokens, {args.threads} threads, {args.rounds} rounds)")
    report("constrained_tok_s_ratio", median(ratios), TARGET, free_tok_s=round(median(free_rates), 2),
           constrained_tok_s=round(median(constrained_rates), 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
