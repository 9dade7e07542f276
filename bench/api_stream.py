"""Streaming over the API: tokens per second an `openai` streaming client receives vs the worker's
own rate, same model, prompt and settings, one run.

`python -m app serve` serves the random-weight benchmark model (24 layers, width 896, 152k
vocabulary, Q8_0) or `--model PATH`; the client is the official `openai` package calling
/v1/completions with `stream=True`. The worker's own side is the studio's LocalBackend driven
directly in this process with the same raw prompt and sampling settings (its own worker, loaded
once). Rounds alternate API and direct; every generation starts from a new prompt prefix, so
neither side reuses the other's cached prompt. Decode rate = (tokens - 1) / (last token time -
first token time), timed where the tokens arrive; time to first token from the call to the first
token. Each reported figure is the median over the rounds.
Prints {"metric": "api_tok_s_ratio", "value": API / worker, "target": 0.97} last; the extra
fields include the API's extra time to first token in milliseconds (target <= 20).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, cached_benchmark_model, median, report

TARGET = 0.97
TTFT_TARGET_MS = 20.0
PROMPT = "Write a short story about a lighthouse keeper who collects sea glass."
SETTINGS = {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "seed": 7}
TOKEN = "cs-bench-api-stream"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_round(client, model: str, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(decode tok/s, seconds to the first token, tokens) as the openai client receives them."""
    extra = {k: v for k, v in SETTINGS.items() if k not in ("temperature", "top_p", "seed")}
    started = time.perf_counter()
    stamps = []
    stream = client.completions.create(model=model, prompt=prompt, max_tokens=tokens, stream=True,
                                       temperature=SETTINGS["temperature"], top_p=SETTINGS["top_p"],
                                       seed=SETTINGS["seed"], extra_body=extra)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            stamps.append(time.perf_counter())
    return rate(stamps), stamps[0] - started, len(stamps)


def direct_round(backend, prompt: str, tokens: int) -> tuple[float, float, int]:
    """The same, from the worker itself."""
    from app.core.backend import GenerationRequest, TokenEvent
    from app.core.sampling import SamplingParams

    request = GenerationRequest(prompt=prompt, params=SamplingParams(max_tokens=tokens, **SETTINGS))
    started = time.perf_counter()
    stamps = [time.perf_counter() for event in backend.generate(request)
              if isinstance(event, TokenEvent) and event.text]
    return rate(stamps), stamps[0] - started, len(stamps)


def rate(stamps: list[float]) -> float:
    if len(stamps) < 8:
        raise SystemExit(f"the model ended its answer after {len(stamps)} tokens: too few to time")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="measure this GGUF file instead of the benchmark model")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--rounds", type=int, default=6, help="API/direct pairs (alternating order)")
    args = parser.parse_args()
    import openai

    from app.core.sampling import LoadParams
    from app.models.local_backend import LocalBackend

    model = (args.model or cached_benchmark_model()).resolve()
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        models = Path(home) / "models"
        models.mkdir()
        os.symlink(model, models / model.name)
        env = dict(os.environ, CHAIN_STUDIO_HOME=home, CHAIN_STUDIO_API_TOKEN=TOKEN)
        server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port),
                                   "--models-dir", str(models)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        backend = LocalBackend()
        try:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0,
                                   timeout=600)
            for _ in range(600):
                try:
                    client.models.list()
                    break
                except openai.APIConnectionError:
                    time.sleep(0.2)
            backend.load(str(model), LoadParams())
            api_round(client, model.name, f"warm-up. {PROMPT}", 16)  # the server loads the model
            direct_round(backend, f"warm-up. {PROMPT}", 16)
            api, direct = [], []
            for number in range(args.rounds):
                sides = [("api", lambda p: api_round(client, model.name, p, args.tokens)),
                         ("direct", lambda p: direct_round(backend, p, args.tokens))]
                for side, run in (sides if number % 2 == 0 else sides[::-1]):
                    measured = run(f"Round {number}, {side}. {PROMPT}")
                    (api if side == "api" else direct).append(measured)
                    print(f"round {number} {side}: {measured[0]:.1f} tok/s, first token after "
                          f"{measured[1] * 1000:.0f} ms, {measured[2]} tokens", file=sys.stderr)
        finally:
            backend.close()
            server.terminate()
            server.wait(30)
        shutil.rmtree(models, ignore_errors=True)

    ratios = [a[0] / d[0] for a, d in zip(api, direct, strict=True)]
    extra_ttft_ms = median([(a[1] - d[1]) * 1000 for a, d in zip(api, direct, strict=True)])
    print(f"API {median([a[0] for a in api]):.1f} tok/s vs worker {median([d[0] for d in direct]):.1f} tok/s; "
          f"first token {extra_ttft_ms:+.1f} ms over the API (model {model.name})")
    report("api_tok_s_ratio", median(ratios), TARGET, api_tok_s=round(median([a[0] for a in api]), 1),
           worker_tok_s=round(median([d[0] for d in direct]), 1), extra_ttft_ms=round(extra_ttft_ms, 1),
           ttft_target_ms=TTFT_TARGET_MS, model=model.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
