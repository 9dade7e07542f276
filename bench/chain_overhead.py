"""Chain engine overhead: a 3 models x 3 items chain through the engine (with its journal) vs the
same 9 generations done with bare calls to the worker, in one run.

The three models are hard links to the random-weight benchmark model (three paths, so each is
loaded in turn as in a real chain, without three copies on disk). Repetitions alternate between the
two sides; the reported value is the median of the per-repetition time ratios.
Prints {"metric": "chain_engine_time_ratio", "value": engine / bare, "target": 1.05} last.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, cached_benchmark_model, median, report

ITEMS = ["Describe a lighthouse.", "List three sea birds.", "Write a haiku about fog."]
TARGET = 1.05


def model_links(source: Path) -> list[str]:
    paths = []
    for n in (1, 2, 3):
        link = CACHE / f"chain-model-{n}.gguf"
        if not link.exists():
            try:
                os.link(source, link)
            except OSError:  # file systems without hard links: a symlink would resolve to one file
                import shutil

                shutil.copy(source, link)
        paths.append(str(link))
    return paths


def engine_seconds(backend, models: list[str], tokens: int, journal_dir: Path) -> float:
    from app.core.chain import ChainSpec
    from app.core.events import RunFinished
    from app.core.runner import ChainRunner
    from app.core.sampling import LoadParams, SamplingParams
    from app.store.journal import Journal

    journal = Journal(journal_dir / "journal.sqlite3")
    spec = ChainSpec(models=tuple(models), prompts="\n".join(ITEMS), load=LoadParams(n_ctx=2048),
                     sampling=SamplingParams(max_tokens=tokens))
    started = time.perf_counter()
    events = list(ChainRunner(backend, journal).run(spec))
    elapsed = time.perf_counter() - started
    journal.close()
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.answers == 9, finished
    return elapsed


def bare_seconds(backend, models: list[str], tokens: int) -> float:
    from app.core.backend import GenerationRequest
    from app.core.sampling import LoadParams, SamplingParams

    started = time.perf_counter()
    for model in models:
        backend.load(model, LoadParams(n_ctx=2048))
        for item in ITEMS:
            for _ in backend.generate(GenerationRequest.chat(item, params=SamplingParams(max_tokens=tokens))):
                pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32, help="tokens per answer")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repetitions per side")
    args = parser.parse_args()

    from app.models.local_backend import LocalBackend

    models = model_links(cached_benchmark_model())
    backend = LocalBackend()
    ratios, engine_times, bare_times = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CHAIN_STUDIO_HOME"] = scratch  # the engine's journal goes to a scratch folder
        try:
            bare_seconds(backend, models[:1], 4)  # warm up: page cache, first load
            for repeat in range(args.repeats):
                bare = bare_seconds(backend, models, args.tokens)
                engine = engine_seconds(backend, models, args.tokens, Path(scratch))
                bare_times.append(bare)
                engine_times.append(engine)
                ratios.append(engine / bare)
                print(f"repeat {repeat + 1}: bare {bare:.2f} s, engine {engine:.2f} s, ratio {engine / bare:.3f}",
                      flush=True)
        finally:
            backend.close()
    print(f"medians: bare {median(bare_times):.2f} s, engine {median(engine_times):.2f} s "
          f"(3 models x 3 items, {args.tokens} tokens each)")
    report("chain_engine_time_ratio", median(ratios), TARGET,
           engine_seconds=round(median(engine_times), 3), bare_seconds=round(median(bare_times), 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
