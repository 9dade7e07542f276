"""A plain llama-cpp-python process: the baseline the studio's worker is measured against.

Reads one JSON request per line on stdin ({"prompt": ..., "tokens": N}) and answers one JSON line:
{"rate": decode tok/s, "text": ...}, timing each streamed chunk as an ordinary script would.
"""

from __future__ import annotations

import json
import sys
import time

import llama_cpp


def main(model: str, n_ctx: int, threads: int) -> None:
    llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, logits_all=False, verbose=False)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        stamps, texts = [], []
        for chunk in llm.create_completion(request["prompt"], max_tokens=request["tokens"],
                                           temperature=0.0, top_k=40, stream=True):
            stamps.append(time.perf_counter())
            texts.append(chunk["choices"][0]["text"])
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        print(json.dumps({"rate": rate, "text": "".join(texts)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
