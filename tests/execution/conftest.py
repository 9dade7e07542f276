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


def host_pids(inner_pids: list[int], root_pid: int) -> list[int]:
    """The pids, as this process sees them, of processes under `root_pid` that know themselves as
    `inner_pids`: code in the sandbox has its own PID namespace (the last NSpid entry is its own
    number); outside the sandbox both numbers are the same."""
    from app.execution.processes import descendants

    found: dict[int, int] = {}
    for proc in descendants(root_pid):
        try:
            with open(f"/proc/{proc.pid}/status", encoding="ascii") as handle:
                line = next(row for row in handle if row.startswith("NSpid:"))
        except (OSError, StopIteration):
            continue
        found.setdefault(int(line.split()[-1]), proc.pid)
    return [found[pid] for pid in inner_pids if pid in found]
