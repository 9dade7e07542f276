"""Run a chain: parse the inputs, plan the answers, load models one at a time, generate, stream
events, and hand every finished answer to a recorder (the journal) as it happens."""

from __future__ import annotations

import queue
import random
import threading
from typing import Callable, Iterator, Protocol

from app.core.backend import Backend, GenerationRequest, GenerationResult, TokenEvent
from app.core.chain import ChainSpec, PlannedAnswer, answer_params, make_plan
from app.core.control import RunControl
from app.core.errors import ChainStudioError, ContextOverflowError, DownloadError
from app.core.hub_links import looks_like_link, parse_model_link
from app.core.events import (
    STOP_SIGNAL,
    Answer,
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    ChainEvent,
    Failure,
    ModelDownloading,
    ModelLoaded,
    ModelLoading,
    RunFinished,
    RunStarted,
)
from app.core.prompt_list import parse_prompt_list, parse_single_field


class RunRecorder(Protocol):
    """Where runs are kept as they happen (the journal)."""

    def start_run(self, spec: ChainSpec, planned: int) -> int: ...

    def record_answer(self, run_id: int, answer: Answer) -> None: ...

    def record_failure(self, run_id: int, failure: Failure) -> None: ...

    def finish_run(self, run_id: int, reason: str) -> None: ...


class ModelSource(Protocol):
    """Turns a model link into a local file (downloading and verifying it when needed)."""

    def resolve(self, ref: str, progress: Callable[[str, float | None], None]) -> str: ...


class ChainRunner:
    """Runs chains on one backend; `control` stops them from any thread."""

    def __init__(self, backend: Backend, recorder: RunRecorder | None = None) -> None:
        self.backend = backend
        self.recorder = recorder
        self.control = RunControl(self)
        self.running = False
        self.generating = False  # True while this runner's answer is being generated

    def plan(self, spec: ChainSpec) -> list[PlannedAnswer]:
        """The answers `spec` would generate (raises PromptSyntaxError before anything runs)."""
        return make_plan(spec, parse_prompt_list(spec.prompts), random.Random(spec.seed))

    def run(self, spec: ChainSpec, source: ModelSource | None = None) -> Iterator[ChainEvent]:
        """Run `spec`, yielding events; `source` downloads the models given as links. Input errors
        (prompt-list syntax, refused links) raise before anything runs, connects or is recorded."""
        for model in spec.models:
            if looks_like_link(model):
                parse_model_link(model)
        self._source = source
        self._resolved: dict[str, str] = {}
        prompts = parse_prompt_list(spec.prompts)
        system = parse_single_field(spec.system)
        previous = parse_single_field(spec.previous)
        rng = random.Random(spec.seed)
        plan = make_plan(spec, prompts, rng)
        self.control.reset()
        run_id = self.recorder.start_run(spec, len(plan)) if self.recorder else None
        state = _Run(spec, run_id, prompts.pre_prompt, system, rng, previous)
        reason = "stopped"  # what a run abandoned by its consumer ends as
        self.running = True
        try:
            yield RunStarted(run_id, len(plan), len(prompts.items), spec.models)
            reason = yield from self._answers(plan, state)
            yield RunFinished(run_id, reason, state.answers, state.failures)
        except ChainStudioError:
            reason = "error"
            raise
        finally:
            self.running = False
            if self.recorder and run_id is not None:
                self.recorder.finish_run(run_id, reason)

    def _answers(self, plan: list[PlannedAnswer], state: "_Run") -> Iterator[ChainEvent]:
        loaded_slot: tuple[int, int] | None = None  # (loop, slot) whose model is in memory
        broken_slot: tuple[int, int] | None = None
        for planned in plan:
            if self.control.stop_all_requested:
                return "stopped"
            slot = (planned.loop, planned.model_slot)
            if slot == broken_slot:
                continue
            if slot != loaded_slot or self.backend.loaded is None:
                failure = yield from self._load(planned, plan, state)
                if failure:
                    broken_slot = slot
                    continue
                loaded_slot = slot
            answer = yield from self._answer(planned, state)
            if answer is None:
                if self.backend.loaded is None:  # the worker crashed: skip this model's other answers
                    broken_slot = slot
                continue
            if STOP_SIGNAL in answer.text:
                return "stop_signal"
        if state.answers == 0 and state.failures:
            return "error"
        return "stopped" if self.control.stop_all_requested else "completed"

    def _fail(self, failure: Failure, state: "_Run") -> Failure:
        state.failures += 1
        if self.recorder and state.run_id is not None:
            self.recorder.record_failure(state.run_id, failure)
        return failure

    def _download(self, ref: str, name: str) -> Iterator[ChainEvent]:
        """Resolve a link in a helper thread, streaming its progress; returns the local path."""
        source = self._source
        if source is None:
            raise DownloadError(f"{name} is a link, and this run has no downloader")
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["path"] = source.resolve(ref, lambda text, fraction: updates.put((text, fraction)))
            except ChainStudioError as exc:
                outcome["error"] = exc
            except Exception as exc:  # report, never crash the run
                outcome["error"] = DownloadError(f"download of {name} failed: {exc}")
            finally:
                updates.put(None)

        threading.Thread(target=work, name=f"download {name}", daemon=True).start()
        while (update := updates.get()) is not None:
            yield ModelDownloading(name, *update)
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return str(outcome["path"])

    def _load(self, planned: PlannedAnswer, plan: list[PlannedAnswer], state: "_Run") -> Iterator[ChainEvent]:
        try:
            path = planned.model
            if looks_like_link(path):
                path = yield from self._download(path, planned.model_name)
                self._resolved[planned.model] = path
            yield ModelLoading(planned.model_name)
            info = self.backend.load(path, state.spec.load)
        except ChainStudioError as exc:
            skipped = sum(1 for p in plan if (p.loop, p.model_slot) == (planned.loop, planned.model_slot))
            yield self._fail(Failure(planned.model_name, str(exc), planned.loop, skipped=skipped), state)
            return True
        yield ModelLoaded(planned.model_name, info)
        return False

    def _answer(self, planned: PlannedAnswer, state: "_Run") -> Iterator[ChainEvent]:
        spec = state.spec
        item = planned.item
        prompt = item.prompt(state.pre_prompt, state.texts if item.collects_answers else None)
        params = answer_params(spec, item, state.rng)
        request = GenerationRequest.chat(prompt, state.system, params, previous=state.previous)
        if spec.reset or spec.learning_top or spec.stepping != "off":
            request = GenerationRequest(request.messages, params=params, fresh_context=spec.reset,
                                        learning_top=spec.learning_top, stepping=spec.stepping,
                                        step_delay=spec.step_delay)
        yield AnswerStarted(planned.index, planned.model_name, item.number, planned.response, planned.loop, prompt, params)
        result: GenerationResult | None = None
        choices: list = []
        try:
            self.generating = True
            for event in self.backend.generate(request):
                if isinstance(event, TokenEvent):
                    if event.choice is not None:
                        choices.append(event.choice)
                    yield AnswerToken(planned.index, event.text, event.token_id, event.choice)
                else:
                    result = event
        except ChainStudioError as exc:
            message = str(exc)
            if isinstance(exc, ContextOverflowError):
                message += " (this answer was skipped)"
            yield self._fail(
                Failure(planned.model_name, message, planned.loop, planned.index, item.number, planned.response),
                state,
            )
            return None
        finally:
            self.generating = False
        assert result is not None
        answer = Answer(
            index=planned.index,
            model=planned.model_name,
            model_path=self._resolved.get(planned.model, planned.model),
            item=item.number,
            response=planned.response,
            loop=planned.loop,
            prompt=prompt,
            messages=request.messages,
            params=params,
            text=result.text,
            prompt_tokens=result.prompt_tokens,
            tokens=result.generated_tokens,
            seconds=result.seconds,
            stop_reason=result.stop_reason,
            seed=result.seed,
            choices=tuple(choices[: result.generated_tokens]),  # a stopped answer keeps what was shown
        )
        if self.recorder and state.run_id is not None:
            self.recorder.record_answer(state.run_id, answer)
        state.add(answer)
        yield AnswerFinished(answer)
        return answer


class _Run:
    """One run's settings and what it carries from answer to answer."""

    def __init__(self, spec: ChainSpec, run_id: int | None, pre_prompt: str, system: str,
                 rng: random.Random, previous: str) -> None:
        self.spec = spec
        self.run_id = run_id
        self.pre_prompt = pre_prompt
        self.system = system
        self.rng = rng
        self.previous = previous
        self.texts: list[str] = []
        self.answers = 0
        self.failures = 0

    def add(self, answer: Answer) -> None:
        self.answers += 1
        self.texts.append(answer.text)
        if self.spec.feedback:
            if self.spec.cumulative and self.previous:
                self.previous = f"{self.previous}\n\n{answer.text}"
            else:
                self.previous = answer.text
