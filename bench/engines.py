"""Remote engines: answers that do not depend on each other go to an engine concurrently.

One run. A real engine, llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`)
with the demo model, is reached through a loopback proxy that adds 250 ms each way, as a server on
another continent would. llama-cpp-python's server answers one request at a time (it has no
parallel slots), so two server processes stand behind the proxy, which hands requests to them in
turn: one engine entry, like one vLLM or llama-server address with several slots.

The chain: 8 prompt items of 32 tokens each (`max_tokens=32`, a prompt the demo model never ends),
no feedback, one engine member. Timed with the engine's concurrency limit at 1, then at 4, through
`ChainRunner` (the studio's own path: plan, journal-free events, answers in plan order).

Prints both times, then {"metric": "engine_concurrency_speedup", "value": time at 1 / time at 4,
"target": 2.5}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, report

TARGET = 2.5
ANSWERS = 8
TOKENS = 32
DELAY = 0.25


def timed_chain(engine_url: str, concurrency: int) -> tuple[float, list[str]]:
    """Seconds for the whole 8-answer chain, and its answers' texts in order."""
    from app.core.chain import ChainSpec
    from app.core.events import AnswerFinished
    from app.core.runner import ChainRunner
    from app.core.sampling import SamplingParams
    from app.engines.config import EngineConfig
    from app.engines.members import Engines

    engines = Engines(extra=(EngineConfig("far", engine_url, concurrency=concurrency),))
    prompts = "\n".join(f"Song {n} ~" for n in range(1, ANSWERS + 1))
    spec = ChainSpec(models=("far/demo",), prompts=prompts, sampling=SamplingParams(max_tokens=TOKENS, seed=1))
    started = time.perf_counter()
    events = list(ChainRunner(_NoLocalModel(), engines=engines).run(spec))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    answers = [e.answer for e in events if isinstance(e, AnswerFinished)]
    if len(answers) != ANSWERS or any(a.tokens != TOKENS for a in answers):
        raise SystemExit(f"expected {ANSWERS} answers of {TOKENS} tokens, got {[a.tokens for a in answers]}")
    return seconds, [a.text for a in answers]


class _NoLocalModel:
    """The chain has no local member: nothing is ever loaded."""

    loaded = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2, help="llama_cpp.server processes behind the proxy")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from app.models.demo_model import write_demo_model
    from tests.engine_servers import FaultProxy, LlamaServer

    with tempfile.TemporaryDirectory() as folder:
        model = write_demo_model(Path(folder) / "chain-studio-demo.gguf")
        servers = [LlamaServer(model) for _ in range(args.servers)]
        proxy = FaultProxy([s.url.removesuffix("/v1") for s in servers], delay=DELAY)
        try:
            timed_chain(proxy.url, 1)  # warm-up: the servers' first request
            alone, texts_alone = timed_chain(proxy.url, 1)
            together, texts_together = timed_chain(proxy.url, 4)
        finally:
            proxy.stop()
            for server in servers:
                server.stop()
    if texts_alone != texts_together:
        raise SystemExit("the answers differ between the two runs")
    print(f"{ANSWERS} answers of {TOKENS} tokens through a proxy adding {DELAY * 1000:.0f} ms each way, "
          f"{args.servers} server processes: concurrency 1 {alone:.2f} s, concurrency 4 {together:.2f} s")
    report("engine_concurrency_speedup", alone / together, TARGET, concurrency_1_s=round(alone, 3),
           concurrency_4_s=round(together, 3), servers=args.servers, delay_s=DELAY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
