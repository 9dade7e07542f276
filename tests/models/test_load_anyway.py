"""A model that needs more memory than is free is refused by default, with what would fit and how to
load it anyway; "load anyway" loads it (the system then swaps). Free memory is the one thing faked:
this machine cannot be made short of memory safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import ModelLoadError
from app.core.sampling import LoadParams
from app.models import local_backend
from app.models.local_backend import LocalBackend


def test_refused_by_default_and_loaded_anyway_when_asked(demo_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_backend, "available_memory", lambda: 1024)  # 1 KiB free
    backend = LocalBackend()
    try:
        with pytest.raises(ModelLoadError, match='tick "Load anyway".*the system will then swap'):
            backend.load(str(demo_model), LoadParams(n_ctx=512))
        assert backend.loaded is None
        loaded = backend.load(str(demo_model), LoadParams(n_ctx=512, load_anyway=True))
        assert loaded.n_ctx == 512
        again = backend.load(str(demo_model), LoadParams(n_ctx=512))  # the same model: not reloaded
        assert again is loaded
    finally:
        backend.close()
