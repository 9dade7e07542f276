"""Programs run for real: the studio's API (`python -m app serve`, demo model) and a program
process started as the page and the CLI start it (app/programs/process.py)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from app.programs.process import ProgramLaunch, ProgramProcess
from tests.api.conftest import RunningApi, serve_api

DEMO = "chain-studio-demo.gguf"


@dataclass
class ProgramOutcome:
    events: list[dict[str, Any]]
    output: str

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def exit(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def printed(self) -> list[str]:
        return self.output.splitlines()


def run_program(api: RunningApi, source: str, answers: Sequence[str | None] = (), files: Sequence[Path] = (),
                model: str | None = DEMO, seed: int | None = None, time_limit: float = 120.0,
                stop_after: str | None = None) -> ProgramOutcome:
    """Run `source` (dedented) to its end against `api`; each user_input gets the next answer
    (None: "no input"); with `stop_after`, Stop is pressed at the first event of that type."""
    launch = ProgramLaunch(source=textwrap.dedent(source).lstrip("\n"), api_url=api.base, token=api.token, model=model,
                           files=tuple(files), seed=seed, time_limit=time_limit)
    process = ProgramProcess(launch)
    pending = list(answers)
    events: list[dict[str, Any]] = []
    output = []
    for event in process.events():
        if event["type"] == "output":
            output.append(event["text"])
            continue
        events.append(event)
        if event["type"] == "user_input":
            answer = pending.pop(0) if pending else None
            if answer is None:
                process.no_input("the test has no more answers")
            else:
                process.answer(answer)
        if stop_after is not None and event["type"] == stop_after:
            process.stop()
    assert events[-1]["type"] == "exit"
    return ProgramOutcome(events, "".join(output))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with serve_api(tmp_path_factory.mktemp("sdk-home")) as running:
        yield running
