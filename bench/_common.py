"""Helpers shared by the benchmark scripts (run them from the project root with venvs/app)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the scripts are run as files: make the app package importable
    sys.path.insert(0, str(ROOT))

CACHE = ROOT / "bench" / ".cache"


def cached_benchmark_model() -> Path:
    """The realistic random-weight model, written once into bench/.cache."""
    from app.models.benchmark_model import ensure_benchmark_model

    path = CACHE / "random-0.5b-152k-q8_0.gguf"
    if not path.exists():
        print(f"writing the benchmark model to {path} (once)...", file=sys.stderr, flush=True)
    return ensure_benchmark_model(path)


def cached_small_modern_model() -> Path:
    """The random-weight model shaped like a small modern one (18 layers, width 640, 262,144-token
    vocabulary, Q8_0, about 280 MB), written once into bench/.cache."""
    from app.models.benchmark_model import SMALL_MODERN_SHAPE, ensure_benchmark_model

    path = CACHE / "random-0.27b-262k-q8_0.gguf"
    if not path.exists():
        print(f"writing the 262k-vocabulary benchmark model to {path} (once)...", file=sys.stderr, flush=True)
    return ensure_benchmark_model(path, SMALL_MODERN_SHAPE)


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(metric: str, value: float, target: float, **extra: object) -> None:
    """The closing JSON line every benchmark prints."""
    print(json.dumps({"metric": metric, "value": round(value, 4), "target": target, **extra}), flush=True)
