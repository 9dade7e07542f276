"""One program run as the studio sees it: the process, its events journaled as they come (in
batches), its title and outcome. The page and `python -m app program` both drive programs
through `ProgramRun`."""

from __future__ import annotations

import time
from typing import Any, Iterator

from app.programs.process import ProgramLaunch, ProgramProcess
from app.store.journal import Journal

FLUSH_SECONDS = 0.5
FLUSH_EVENTS = 500


class ProgramRun:
    """Starts the program at once; iterate `events()` to drive it to its end."""

    def __init__(self, journal: Journal, launch: ProgramLaunch, name: str = "", origin: str = "page") -> None:
        self.journal = journal
        self.process = ProgramProcess(launch)
        self.title = ""
        self.error = ""
        self.outcome = ""
        self.run_id = journal.start_program_run(name, launch.source, launch.model or "", launch.seed, origin)
        self._pending: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()

    def _flush(self) -> None:
        if self._pending:
            self.journal.record_program_events(self.run_id, self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def events(self) -> Iterator[dict[str, Any]]:
        """The program's events (see ProgramProcess.events), each journaled; the journal entry is
        finished when the program ends, whatever the reason."""
        try:
            for event in self.process.events():
                kind = event["type"]
                if kind == "title":
                    self.title = str(event.get("title", ""))
                elif kind == "error":
                    self.error = str(event.get("message", ""))
                elif kind == "exit":
                    self.outcome = str(event["reason"])
                    if self.outcome == "time_limit":
                        self.error = self.error or (f"the program was stopped at its time limit "
                                                    f"({self.process.launch.time_limit:g} s)")
                self._pending.append(event)
                if len(self._pending) >= FLUSH_EVENTS or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                    self._flush()
                yield event
        finally:
            if not self.outcome:  # the consumer left early: the program must not outlive its run
                self.process.stop()
                self.outcome = "stopped"
            self._flush()
            self.journal.finish_program_run(self.run_id, self.outcome, self.title, self.error)

    def answer(self, text: str) -> None:
        self.process.answer(text)

    def no_input(self, why: str) -> None:
        self.process.no_input(why)

    def stop(self) -> None:
        self.process.stop()
