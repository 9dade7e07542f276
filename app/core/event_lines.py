"""A run's events as JSON-ready lines, each with a "type": what `python -m app chain --jsonl`
prints and what the API's /api/chain streams (the same public shapes).

An answer's line waits for its code to run, so it can carry the "code" object: `lines(event)` may
return nothing for an answer and the answer's line with the next event; `finish()` gives what is
still held at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.events import (
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    ChainEvent,
    CodeFinished,
    CodeStarted,
    EngineConnected,
    Failure,
    ModelDownloading,
    ModelLoaded,
    ModelLoading,
    ModelLoadProgress,
    RunFinished,
    RunStarted,
)

Line = dict[str, Any]


class EventLines:
    """Turns events into lines. `tokens` adds an "answer_started" line and a "token" line per token
    (the API streams them; the CLI's lines leave them out), and "model_downloading" lines."""

    def __init__(self, tokens: bool = False) -> None:
        self.tokens = tokens
        self.pending: Line | None = None
        self.load_step = -1  # the last tenth of a load given as a "model_loading" line

    def finish(self) -> list[Line]:
        """The answer line still waiting for its code, if any."""
        held, self.pending = self.pending, None
        return [held] if held is not None else []

    def lines(self, event: ChainEvent) -> list[Line]:
        """The lines `event` makes (perhaps none, perhaps the held answer's too)."""
        if isinstance(event, CodeStarted):
            return []
        if isinstance(event, CodeFinished):
            if self.pending is not None and self.pending["index"] == event.index:
                self.pending["code"] = event.result.to_record()
            return self.finish()
        out = self.finish()
        if isinstance(event, AnswerToken):
            if self.tokens:
                out.append({"type": "token", "index": event.index, "text": event.text})
        elif isinstance(event, AnswerFinished):
            self.pending = {"type": "answer", **event.answer.to_record()}
        elif isinstance(event, ModelDownloading):
            if self.tokens:
                out.append({"type": "model_downloading", "model": event.model, "text": event.text,
                            "fraction": event.fraction})
        elif isinstance(event, ModelLoading):
            self.load_step = -1
        elif isinstance(event, ModelLoadProgress):
            step = int(event.fraction * 10)  # a line per tenth: a long load does not flood the stream
            if step > self.load_step:
                self.load_step = step
                out.append({"type": "model_loading", "model": event.model, "fraction": round(event.fraction, 3)})
        elif isinstance(event, RunStarted):
            out.append({"type": "run_started", "run_id": event.run_id, "planned": event.planned,
                        "items": event.items,
                        "models": [m if m in event.engines else Path(m).name for m in event.models]})
        elif isinstance(event, ModelLoaded):
            out.append({"type": "model_loaded", "model": event.model, "n_ctx": event.info.n_ctx,
                        "load_seconds": round(event.info.load_seconds, 4)})
        elif isinstance(event, EngineConnected):
            out.append({"type": "engine_connected", "model": event.model, "url": event.url, "kind": event.kind,
                        "seconds": round(event.seconds, 4), "warning": event.warning})
        elif isinstance(event, AnswerStarted):
            if self.tokens:
                out.append({"type": "answer_started", "index": event.index, "model": event.model,
                            "item": event.item, "response": event.response, "loop": event.loop})
        elif isinstance(event, Failure):
            out.append({"type": "failure", **event.to_record()})
        elif isinstance(event, RunFinished):
            out.append({"type": "run_finished", "run_id": event.run_id, "reason": event.reason,
                        "answers": event.answers, "failures": event.failures,
                        "metrics": event.metrics.to_dict() if event.metrics is not None else None})
        return out
