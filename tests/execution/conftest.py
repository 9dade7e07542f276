"""A code runner shared by the execution tests: real kernels from venvs/jupyter."""

from __future__ import annotations

from typing import Iterator

import pytest

from app.execution.pool import KernelPool


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelPool]:
    """One KernelPool for the session (its spare kernel keeps the tests quick)."""
    runner = KernelPool(workdir=tmp_path_factory.mktemp("code"))
    yield runner
    runner.close()
