"""The memory estimate against the worker's measured peak, on the realistic benchmark model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.backend import GenerationRequest
from app.core.errors import ModelLoadError
from app.core.sampling import LoadParams, SamplingParams
from app.models import local_backend as backend_module
from app.models.benchmark_model import ensure_benchmark_model
from app.models.gguf_file import inspect_gguf
from app.models.local_backend import LocalBackend
from app.models.memory import estimate_memory
from app.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def benchmark_model() -> Path:
    """The 0.5B-shape random-weight model (written once; shared with the benchmarks' cache)."""
    return ensure_benchmark_model(PROJECT_ROOT / "bench" / ".cache" / "random-0.5b-152k-q8_0.gguf")


def peak_resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_estimate_is_within_15_percent_of_the_measured_peak(benchmark_model: Path, tmp_path: Path) -> None:
    estimate = estimate_memory(inspect_gguf(benchmark_model), n_ctx=4096)
    backend = LocalBackend(log_dir=tmp_path)
    try:
        backend.load(benchmark_model, LoadParams(n_ctx=4096))
        # Use the context (a 3000-token prompt): the peak a person has to budget for.
        list(backend.generate(GenerationRequest(prompt="x" * 3000, params=SamplingParams(max_tokens=4))))
        measured = peak_resident_bytes(backend._worker.process.pid)  # type: ignore[union-attr]
    finally:
        backend.close()
    assert abs(estimate.total - measured) / measured <= 0.15, (estimate.describe(), measured / 2**20)


def test_trained_context_is_used_for_n_ctx_zero(demo_model: Path) -> None:
    info = inspect_gguf(demo_model)
    assert estimate_memory(info, 0).n_ctx == 4096
    assert estimate_memory(info, 8192).kv_cache == 2 * estimate_memory(info, 4096).kv_cache


def test_a_model_that_cannot_fit_is_refused_before_loading(demo_model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "available_memory", lambda: 50 * 2**20)
    backend = LocalBackend(log_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="but only 0.05 GB is available; not even n_ctx 256 would fit"):
        backend.load(demo_model, LoadParams(n_ctx=4096))
    assert backend._worker is None

