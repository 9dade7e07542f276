"""The page's run: the panels' fields become a ChainSpec, the tab's runner runs it, and its events
become the transcript and each panel's view. Module-level functions, so tests call them directly."""

from __future__ import annotations

import contextlib
import time
from typing import Any, ContextManager, Iterator, Sequence

import gradio as gr

from app.api.turns import API_HOLDER
from app.core.chain import ChainSpec, plan_of
from app.core.errors import ChainStudioError
from app.core.events import AnswerFinished, CodeFinished, CodeStarted, Failure, RunFinished, RunStarted
from app.services import Services
from app.ui.i18n import t
from app.ui.page import PageHandles, RunData, RunView
from app.ui.render import Entry, TranscriptBuilder, escape_markdown, plain_transcript, plural, render_transcript

UPDATE_INTERVAL_SECONDS = 0.05  # at most ~20 page updates a second while streaming
BUSY_MESSAGE = ("A run is going in this tab: it goes on. Stop/Next (Esc) skips the answer, Stop all "
                "(Shift+Esc) ends the run; then start again.")


def run_inputs(page: PageHandles) -> set[Any]:
    """Every component a run reads."""
    inputs = {page.entries, page.raw, page.fast}
    for panel in page.panels:
        inputs.update(panel.run_inputs())
    return inputs


def run_outputs(page: PageHandles) -> list[Any]:
    """Every component a run writes."""
    outputs = [page.transcript, page.entries, page.status, page.last_answer, page.all_answers, page.start,
               page.run_done, page.last_run_store]
    for panel in page.panels:
        outputs += [c for c in panel.run_outputs() if c not in outputs]
    return outputs


def build_spec(page: PageHandles, data: RunData) -> ChainSpec:
    """The ChainSpec the panels' fields describe (raises ChainStudioError for a bad value)."""
    fields: dict[str, Any] = {}
    for panel in page.panels:
        fields.update(panel.spec_fields(data))
    if not fields.get("models"):
        raise ChainStudioError("choose a model in Models, or paste a Hugging Face link in Model URLs")
    return ChainSpec(**fields)


def plan_preview(services: Services, page: PageHandles, data: RunData) -> str:
    """Under the prompt, before Start: how many items and answers the fields will run."""
    try:
        spec = build_spec(page, data)
        plan = plan_of(spec)
    except ChainStudioError as exc:
        return f"⚠️ {escape_markdown(str(exc))}"
    planned = len(plan)
    items = len({p.item.number for p in plan})
    models = len(spec.models)
    shape = f"{plural(items, 'prompt')} × {plural(models, 'model')}"
    if spec.responses > 1:
        shape += f" × {spec.responses} responses"
    if spec.loops > 1:
        shape += f" × {spec.loops} loops"
    return f"{shape} = {plural(planned, 'answer')}"


def model_source(page: PageHandles, data: RunData, services: Services) -> Any:
    """Where the run's model links download from (the Models panel gives it), or None."""
    return next((s for s in (p.model_source(data, services) for p in page.panels) if s is not None), None)


def engines_only(services: Services, models: Sequence[str]) -> bool:
    """Whether every model is on a remote engine: such a run leaves the local model to others
    (each engine limits itself)."""
    return all(services.engines.member(model) is not None for model in models)


def model_turn(services: Services, models: Sequence[str]) -> ContextManager[Any]:
    """The local model's turn for a run of `models` (none is needed for engines only)."""
    return contextlib.nullcontext() if engines_only(services, models) else services.run_lock


def must_wait(services: Services, models: Sequence[str]) -> bool:
    """Whether a run of `models` will wait for the local model (someone else has it)."""
    return services.run_lock.locked() and not engines_only(services, models)


def waiting_for(services: Services) -> str:
    """Who has the model while this tab waits: an API request, or another tab's run."""
    holder = services.run_lock.holder
    return "serving an API request" if holder == API_HOLDER else "another tab is running a chain"


def check_idle(services: Services, session: str) -> None:
    """Refuse a second start while this tab's run goes on (the first one keeps streaming)."""
    if services.runner_for(session).running:
        raise gr.Error(BUSY_MESSAGE, title="Already running")


def run_chain(services: Services, page: PageHandles, data: RunData, session: str,
              run_count: int = 0) -> Iterator[dict[Any, Any]]:
    """Run the chain the fields describe in tab `session`, yielding component values as it streams."""
    runner = services.runner_for(session)
    shown: list[Entry] = list(data[page.entries] or [])
    raw_mode, fast_mode = bool(data[page.raw]), bool(data[page.fast])
    try:
        spec = build_spec(page, data)
        runner.plan(spec)  # prompt-list syntax errors: a message, and nothing runs
        source = model_source(page, data, services)
    except ChainStudioError as exc:
        gr.Warning(str(exc))
        yield {page.transcript: render_transcript(shown, raw_mode), page.status: f"⚠️ {escape_markdown(str(exc))}"}
        return
    views = [view for view in (p.run_view(data, services) for p in page.panels) if view is not None]
    yield {page.start: gr.update(interactive=False, value=t("running"))}
    if must_wait(services, spec.models):
        yield {page.status: f"Waiting for the model: {waiting_for(services)}…"}
    with model_turn(services, spec.models):
        if services.is_closed(session):
            return
        yield from _stream(runner.run(spec, source), page, views, shown, spec.random_params, raw_mode, fast_mode,
                           run_count)


def _stream(events: Iterator[Any], page: PageHandles, views: list[RunView], shown: list[Entry],
            show_params: bool, raw_mode: bool, fast_mode: bool, run_count: int) -> Iterator[dict[Any, Any]]:
    builder = TranscriptBuilder(shown, show_params=show_params)
    run_id: int | None = None

    def update(complete: bool, done: bool = False) -> dict[Any, Any]:
        snapshot = builder.snapshot()
        values: dict[Any, Any] = {
            page.transcript: render_transcript(snapshot, raw_mode), page.entries: snapshot,
            page.status: builder.status, page.last_answer: builder.last_answer,
            page.all_answers: plain_transcript(snapshot),
        }
        for view in views:
            values.update(view.values(complete))
        if not done:
            # Said again with every update: a page that is slow to draw may see only the latest one
            # (CI saw Start enabled while the answer streamed).
            values[page.start] = gr.update(interactive=False, value=t("running"))
        if done:
            values[page.start] = gr.update(interactive=True, value=t("start"))
            values[page.run_done] = run_count + 1
            if run_id is not None:
                values[page.last_run_store] = run_id
        return values

    last_update = 0.0
    try:
        for event in events:
            if isinstance(event, RunStarted):
                run_id = event.run_id
            for view in views:
                view.on_event(event)
            boundary = builder.apply(event)
            now = time.monotonic()
            final = isinstance(event, (AnswerFinished, Failure, RunFinished))
            code_event = isinstance(event, (CodeStarted, CodeFinished))
            if final or code_event or (not fast_mode and (boundary or now - last_update >= UPDATE_INTERVAL_SECONDS)):
                last_update = now
                yield update(complete=final, done=isinstance(event, RunFinished))
    except ChainStudioError as exc:
        gr.Warning(str(exc))
        values = update(complete=True, done=True)
        values[page.status] = f"⚠️ {escape_markdown(str(exc))}"
        yield values


def stop_current(services: Services, session: str) -> None:
    """Stop/Next: end this tab's current answer (its code, or its model's download); the run goes on."""
    services.runner_for(session).control.stop_current()


def stop_everything(services: Services, session: str) -> str:
    """Stop all & reset: end this tab's run and unload the model (unless another tab is using it)."""
    services.runner_for(session).control.stop_all()
    if services.backend.busy:
        return "Run stopped. The model is busy with another tab, so it stays loaded."
    services.backend.unload()
    return "Run stopped and the model reset: it loads again at the next start."
