"""Run a chain: parse the inputs, plan the answers, load models one at a time, generate, stream
events, and hand every finished answer to a recorder (the journal) as it happens."""

from __future__ import annotations

import dataclasses
import functools
import queue
import random
import threading
import time
from typing import TYPE_CHECKING, Callable, Generator, Iterator, Protocol

from app.core.backend import (
    Backend,
    GenerationEvent,
    GenerationRequest,
    GenerationResult,
    LoadedModel,
    TokenEvent,
)
from app.core.branching import BranchPoint, grow_branch
from app.core.chain import (
    ChainSpec,
    PlannedAnswer,
    answer_fresh_context,
    answer_load,
    answer_params,
    answer_template,
    check_constraints,
    escalation_key,
    escalation_threshold,
    is_independent,
    make_plan,
    next_in_line,
    plan_of,
)
from app.core.code_blocks import choose_code
from app.core.code_exec import CodeResult, CodeRunner, feedback_text, is_stop_signal, meets_stop_condition
from app.core.control import RunControl
from app.core.errors import ChainStudioError, ContextOverflowError, DownloadError, SettingsError
from app.core.events import (
    STOP_SIGNAL,
    Answer,
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    BranchFinished,
    ChainEvent,
    CodeFinished,
    CodeStarted,
    EngineConnected,
    Escalation,
    Failure,
    ModelDownloading,
    ModelLoaded,
    ModelLoading,
    ModelLoadProgress,
    RunFinished,
    RunStarted,
)
from app.core.hub_links import looks_like_link, parse_model_link
from app.core.metrics import AnswerMetrics, RunMetrics, metrics_of
from app.core.prompt_list import parse_prompt_list, parse_single_field
from app.core.reasoning import split_reasoning, with_reasoning
from app.core.sampling import LoadParams, SamplingParams

if TYPE_CHECKING:
    from app.engines.ahead import AnswersAhead
    from app.engines.backend import EngineAnswer, RemoteEngine
    from app.engines.members import EngineMember, Engines

LOAD_PROGRESS_SECONDS = 0.1  # ModelLoadProgress events: ten a second at most


class RunRecorder(Protocol):
    """Where runs are kept as they happen (the journal)."""

    def start_run(self, spec: ChainSpec, planned: int, origin: str = "page") -> int: ...

    def record_answer(self, run_id: int, answer: Answer) -> None: ...

    def record_failure(self, run_id: int, failure: Failure) -> None: ...

    def finish_run(self, run_id: int, reason: str) -> None: ...

    def record_code_run(self, run_id: int | None, seq: int | None, source: str, result: CodeResult) -> int: ...

    def next_answer_seq(self, run_id: int) -> int: ...

    def record_branch(self, run_id: int, answer: Answer, parent_seq: int, position: int, token: int) -> None: ...


class ModelSource(Protocol):
    """Turns a model link into a local file (downloading and verifying it when needed)."""

    def resolve(self, ref: str, progress: Callable[[str, float | None], None],
                should_stop: Callable[[], bool] | None = None) -> str:
        """The local path of `ref`; raises DownloadStopped soon after `should_stop()` turns true."""
        ...


class ChainRunner:
    """Runs chains on one backend; `control` stops them from any thread. `code_runner` runs the code
    in answers when a spec turns that on (without one, such a spec is refused). `origin` is what the
    journal says started its runs ("page", "cli", "api"). `engines` are the remote engines its Models
    lines may name (`NAME/model-id`)."""

    def __init__(self, backend: Backend, recorder: RunRecorder | None = None,
                 code_runner: CodeRunner | None = None, origin: str = "page", engines: "Engines | None" = None) -> None:
        self.backend = backend
        self.engines = engines
        self._current: "EngineAnswer | None" = None  # the engine answer being shown, for Stop/Next
        self._ahead: "AnswersAhead | None" = None
        self.origin = origin
        self.recorder = recorder
        self.code_runner = code_runner
        self.control = RunControl(self)
        self.running = False
        self.generating = False  # True while this runner's answer is being generated
        self.running_code = False  # True while an answer's code runs
        self.downloading = False  # True while a model of this runner's run downloads
        self.loading = False  # True while this runner's run loads a model (Stop all ends the load)

    def plan(self, spec: ChainSpec) -> list[PlannedAnswer]:
        """The answers `spec` would generate (raises PromptSyntaxError, or GrammarError for a
        constraint llama.cpp cannot use, before anything runs)."""
        check_constraints(parse_prompt_list(spec.prompts))
        return plan_of(spec)

    def run(self, spec: ChainSpec, source: ModelSource | None = None,
            seeds: dict[int, int] | None = None, origin: str | None = None) -> Iterator[ChainEvent]:
        """Run `spec`, yielding events; `source` downloads the models given as links. `seeds` fixes
        the seed of answers by index (a replay gives each answer the seed it had); `origin` is what
        the journal says started this run (default: the runner's). Input errors (prompt-list
        syntax, refused links, unusable grammars) raise before anything runs, connects or is recorded."""
        for model in spec.models:
            if looks_like_link(model) and self._member(model) is None:
                parse_model_link(model)
        if spec.code.run_code and self.code_runner is None:
            raise SettingsError("code execution is on, but this studio has no code environment")
        self._source = source
        self._resolved: dict[str, str] = {}
        prompts = parse_prompt_list(spec.prompts)
        check_constraints(prompts)
        system = parse_single_field(spec.system)
        previous = parse_single_field(spec.previous)
        rng = random.Random(spec.seed)
        plan = make_plan(spec, prompts, rng)
        # Drawn in plan order up front (random settings, seeds from the run seed): an answer sent
        # ahead to an engine gets the same settings it would get in its turn.
        params = {planned.index: answer_params(spec, planned.item, rng) for planned in plan}
        for index, seed in (seeds or {}).items():
            if index in params:
                params[index] = params[index].with_overrides({"seed": seed})
        self.control.reset()
        run_id = self.recorder.start_run(spec, len(plan), origin or self.origin) if self.recorder else None
        state = _Run(spec, run_id, prompts.pre_prompt, system, rng, previous, params, next_in_line(plan))
        reason = "stopped"  # what a run abandoned by its consumer ends as
        self.running = True
        try:
            remote = tuple(dict.fromkeys(m for m in spec.models if self._member(m) is not None))
            yield RunStarted(run_id, len(plan), len(prompts.items), spec.models, remote)
            reason = yield from self._answers(plan, state)
            yield RunFinished(run_id, reason, state.answers, state.failures,
                              RunMetrics.of(state.metrics) if state.metrics else None)
        except ChainStudioError:
            reason = "error"
            raise
        finally:
            self.running = False
            if self._ahead is not None:
                self._ahead.close()
                self._ahead = None
            if self.recorder and run_id is not None:
                self.recorder.finish_run(run_id, reason)

    def _member(self, ref: str) -> "EngineMember | None":
        """The engine member `ref` names, or None for a local model."""
        return self.engines.member(ref) if self.engines is not None else None

    def _connect(self, plan: list[PlannedAnswer], state: "_Run") -> Generator[ChainEvent, None, set[str]]:
        """Check every engine member once, before the first answer: the engine answers and lists the
        model. Returns the members that failed (all their answers are skipped, with one message);
        then sends the independent engine answers ahead."""
        from app.engines.ahead import AheadEntry, AnswersAhead

        failed: set[str] = set()
        checked: set[str] = set()
        connected: dict[str, "RemoteEngine"] = {}  # member -> its engine, for the answers sent ahead
        for planned in plan:
            member = self._member(planned.model)
            if member is None or planned.model in checked:
                continue
            checked.add(planned.model)
            started = time.monotonic()
            try:
                engine = self.engines.engine(member.engine)  # type: ignore[union-attr]
                engine.check_model(member.model_id)
            except ChainStudioError as exc:
                failed.add(planned.model)
                skipped = sum(1 for p in plan if p.model == planned.model)
                yield self._fail(Failure(member.name, str(exc), planned.loop, skipped=skipped), state)
                continue
            connected[planned.model] = engine
            yield EngineConnected(member.name, member.engine.url, engine.kind, time.monotonic() - started,
                                  member.engine.warning)
        if state.spec.stepping != "off" or not connected:
            return failed
        entries = []
        for planned in plan:
            engine = connected.get(planned.model)
            if engine is None or not is_independent(state.spec, planned.item):
                continue
            model_id = self._member(planned.model).model_id  # type: ignore[union-attr]
            entries.append(AheadEntry(planned.index, engine, model_id,
                                      functools.partial(self._request_only, planned, state)))
        if entries:
            self._ahead = AnswersAhead(entries)
            self._ahead.start()
        return failed

    def _answers(self, plan: list[PlannedAnswer], state: "_Run") -> Generator[ChainEvent, None, str]:
        loaded_slot: tuple[int, int] | None = None  # (loop, slot) whose model is in memory
        broken_slot: tuple[int, int] | None = None
        failed_members = yield from self._connect(plan, state)
        for planned in plan:
            if self.control.stop_all_requested:
                return "stopped"
            slot = (planned.loop, planned.model_slot)
            if slot == broken_slot or planned.model in failed_members:
                continue
            if escalation_key(planned) in state.settled:  # an earlier model was sure of this item
                continue
            if self._member(planned.model) is not None:  # remote: nothing to load ("one model in memory" is local)
                answer = yield from self._answer(planned, state)
                if answer is not None:
                    ending = yield from self._after_answer(answer, state)
                    if ending:
                        return ending
                continue
            load = answer_load(state.spec, planned.item)  # an item's {n_ctx=…} reloads the model
            if slot != loaded_slot or self.backend.loaded is None or self.backend.loaded.load != load:
                failure = yield from self._load(planned, plan, state, load)
                if failure:
                    broken_slot = slot
                    continue
                loaded_slot = slot
            if state.spec.code.run_code and self.code_runner is not None:
                # a kernel warms up while the model writes
                self.code_runner.prepare(state.spec.code.persistent, state.spec.code.offline)
            answer = yield from self._answer(planned, state)
            if answer is None:
                if self.backend.loaded is None:  # the worker crashed: skip this model's other answers
                    broken_slot = slot
                continue
            ending = yield from self._after_answer(answer, state)
            if ending:
                return ending
        if self.control.stop_all_requested:  # a download stopped by Stop all is a stop, not an error
            return "stopped"
        if state.answers == 0 and state.failures:
            return "error"
        return "completed"

    def _after_answer(self, answer: Answer, state: "_Run") -> Generator[ChainEvent, None, str | None]:
        """Run the answer's code (when on), pass the answer on, and say whether the run ends here."""
        ran = None
        # As in Samantha: the code of an answer ended by Stop/Next runs too (what was written is
        # the answer); Stop all ends the run before its code runs.
        if state.spec.code.run_code and not self.control.stop_all_requested:
            ran = yield from self._run_code(answer, state)
        state.add(answer, ran)
        if self.control.stop_all_requested:
            return "stopped"
        if STOP_SIGNAL in answer.text or (ran is not None and is_stop_signal(ran)):
            return "stop_signal"
        if ran is not None and state.spec.code.stop_condition and meets_stop_condition(ran):
            return "stop_condition"
        return None

    def _fail(self, failure: Failure, state: "_Run") -> Failure:
        state.failures += 1
        if self.recorder and state.run_id is not None:
            self.recorder.record_failure(state.run_id, failure)
        return failure

    def _download(self, ref: str, name: str) -> Generator[ChainEvent, None, str]:
        """Resolve a link in a helper thread, streaming its progress; returns the local path. Stop/Next
        and Stop all end the wait (DownloadStopped), and so does abandoning this generator."""
        source = self._source
        if source is None:
            raise DownloadError(f"{name} is a link, and this run has no downloader")
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, object] = {}
        abandoned = threading.Event()  # the consumer went away (Ctrl-C, a closed generator)

        def should_stop() -> bool:
            return abandoned.is_set() or self.control.download_should_stop()

        def work() -> None:
            try:
                outcome["path"] = source.resolve(ref, lambda text, fraction: updates.put((text, fraction)),
                                                 should_stop)
            except ChainStudioError as exc:
                outcome["error"] = exc
            except Exception as exc:  # report, never crash the run
                outcome["error"] = DownloadError(f"download of {name} failed: {exc}")
            finally:
                updates.put(None)

        self.control.download_started()
        self.downloading = True
        try:
            threading.Thread(target=work, name=f"download {name}", daemon=True).start()
            while True:
                try:
                    update = updates.get(timeout=0.5)  # a timeout keeps Ctrl-C prompt on Windows too
                except queue.Empty:
                    continue
                if update is None:
                    break
                yield ModelDownloading(name, *update)
        finally:
            self.downloading = False
            if not outcome:
                abandoned.set()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return str(outcome["path"])

    def _load(self, planned: PlannedAnswer, plan: list[PlannedAnswer], state: "_Run", load: LoadParams
              ) -> Generator[ChainEvent, None, bool]:
        try:
            path = planned.model
            if looks_like_link(path):
                path = yield from self._download(path, planned.model_name)
                self._resolved[planned.model] = path
            yield ModelLoading(planned.model_name)
            info = yield from self._load_model(path, planned.model_name, load)
        except ChainStudioError as exc:
            skipped = sum(1 for p in plan if (p.loop, p.model_slot) == (planned.loop, planned.model_slot)
                          and p.index >= planned.index)  # a reload for an item comes after answers
            yield self._fail(Failure(planned.model_name, str(exc), planned.loop, skipped=skipped), state)
            return True
        yield ModelLoaded(planned.model_name, info)
        return False

    def _load_model(self, path: str, name: str, load: LoadParams) -> Generator[ChainEvent, None, LoadedModel]:
        """Load in a helper thread, streaming the backend's progress as `ModelLoadProgress` events
        (rising, at most one per LOAD_PROGRESS_SECONDS, the last one, 1.0, always); returns what
        loaded. Stop all ends the load (the backend's stop_all), and so does abandoning this generator."""
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["info"] = self.backend.load(path, load, updates.put)
            except BaseException as exc:  # raised again in the run's thread
                outcome["error"] = exc
            finally:
                updates.put(None)

        loader = threading.Thread(target=work, name=f"load {name}", daemon=True)
        self.loading = True
        try:
            loader.start()
            shown, shown_at = 0.0, float("-inf")
            waiting: float | None = None  # a fraction not shown yet (it came too soon after the last)
            while True:
                timeout = 0.5 if waiting is None else max(0.0, shown_at + LOAD_PROGRESS_SECONDS - time.monotonic())
                try:
                    update = updates.get(timeout=timeout)  # a timeout keeps Ctrl-C prompt on Windows too
                except queue.Empty:
                    update = 0.0  # nothing new, only time passed (None is the end)
                if update is None:
                    break
                if update > max(shown, waiting or 0.0):
                    waiting = min(float(update), 1.0)
                now = time.monotonic()
                if waiting is not None and (waiting >= 1.0 or now - shown_at >= LOAD_PROGRESS_SECONDS):
                    yield ModelLoadProgress(name, waiting)
                    shown, shown_at, waiting = waiting, now, None
        finally:
            self.loading = False
            if loader.is_alive():  # the consumer went away mid-load
                self.backend.stop_all()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["info"]  # type: ignore[return-value]

    def _request(self, planned: PlannedAnswer, state: "_Run") -> tuple[str, GenerationRequest]:
        """The prompt and the request of one answer (with what the run has passed on so far)."""
        spec = state.spec
        item = planned.item
        prompt = item.prompt(state.pre_prompt, state.texts if item.collects_answers else None)
        params = state.params[planned.index]
        request = GenerationRequest.chat(prompt, state.system, params, previous=state.previous)
        request = dataclasses.replace(request, fresh_context=answer_fresh_context(spec, item),
                                      learning_top=spec.learning_top,
                                      stepping=spec.stepping, step_delay=spec.step_delay,
                                      template=answer_template(spec, item, planned.model),
                                      grammar=item.constraint.gbnf if item.constraint is not None else "")
        return prompt, request

    def _request_only(self, planned: PlannedAnswer, state: "_Run") -> GenerationRequest:
        return self._request(planned, state)[1]

    def _stream(self, planned: PlannedAnswer, request: GenerationRequest) -> Iterator[GenerationEvent]:
        """The answer's events: from the local model, or from its engine (sent ahead or now)."""
        member = self._member(planned.model)
        if member is None:
            return self.backend.generate(request)
        sent = self._ahead.take(planned.index) if self._ahead is not None else None
        if sent is None:
            sent = self.engines.engine(member.engine).start(member.model_id, request)  # type: ignore[union-attr]
        self._current = sent
        return sent.events()

    def _show_remote(self, answer: "EngineAnswer") -> None:
        """The engine answer now shown (Stop/Next and stepping reach it)."""
        self._current = answer

    def _name(self, planned: PlannedAnswer) -> str:
        """How transcripts name the answer's model: the file name, or `NAME/model-id` for an engine."""
        member = self._member(planned.model)
        return member.name if member is not None else planned.model_name

    def stop_answer(self) -> None:
        """Stop/Next on the answer being generated (local or remote)."""
        current = self._current
        if current is not None:
            current.cancel()
        else:
            self.backend.stop_current()

    def step_answer(self) -> None:
        """Manual stepping: one more token of the answer being generated."""
        current = self._current
        if current is not None:
            current.step()
        else:
            self.backend.step()

    def stop_remote(self) -> bool:
        """Stop all, for remote answers: the one shown and every one sent ahead. True when the answer
        being generated was remote (the local model has nothing to stop)."""
        if self._ahead is not None:
            self._ahead.close()
        current = self._current
        if current is not None:
            current.cancel()
        return current is not None

    def _answer(self, planned: PlannedAnswer, state: "_Run") -> Generator[ChainEvent, None, Answer | None]:
        item = planned.item
        name = self._name(planned)
        prompt, request = self._request(planned, state)
        params = request.params
        yield AnswerStarted(planned.index, name, item.number, planned.response, planned.loop, prompt, params)
        result: GenerationResult | None = None
        streamed: list[TokenEvent] = []
        try:
            stream = self._stream(planned, request)
        except ChainStudioError as exc:
            yield self._fail(Failure(name, str(exc), planned.loop, planned.index, item.number, planned.response), state)
            return None
        try:
            self.generating = True
            for event in stream:
                if isinstance(event, TokenEvent):
                    streamed.append(event)
                    yield AnswerToken(planned.index, event.text, event.token_id, event.choice)
                else:
                    result = event
        except GeneratorExit:
            # The consumer went away mid-answer (a closed browser tab): the model stops, and the
            # part written so far is kept like a Stop/Next would keep it.
            stream.close()  # type: ignore[attr-defined]
            if self._current is not None:
                self._current.cancel()
            if streamed and self.recorder and state.run_id is not None:
                self.recorder.record_answer(state.run_id, self._partial_answer(planned, prompt, request, streamed))
            raise
        except ChainStudioError as exc:
            message = str(exc)
            if isinstance(exc, ContextOverflowError):
                message += " (this answer was skipped)"
            yield self._fail(Failure(name, message, planned.loop, planned.index, item.number, planned.response), state)
            return None
        finally:
            self.generating = False
            self._current = None
        assert result is not None
        reasoning, text = split_reasoning(result.text)  # reasoning is shown and kept, never acted on
        answer = Answer(
            index=planned.index,
            model=name,
            model_path=self._resolved.get(planned.model, planned.model),
            item=item.number,
            response=planned.response,
            loop=planned.loop,
            prompt=prompt,
            messages=request.messages,
            params=params,
            text=text,
            prompt_tokens=result.prompt_tokens,
            tokens=result.generated_tokens,
            seconds=result.seconds,
            stop_reason=result.stop_reason,
            seed=result.seed,
            choices=_choices(streamed)[: result.generated_tokens],  # a stopped answer keeps what was shown
            pieces=_pieces(streamed)[: result.generated_tokens],
            prompt_format=result.prompt_format,
            sent=result.prompt_text,
            reasoning=reasoning,
            notes=result.notes,
            metrics=metrics_of(result, remote=self._member(planned.model) is not None),
        )
        answer = self._gate(planned, answer, state)
        if self.recorder and state.run_id is not None:
            self.recorder.record_answer(state.run_id, answer)
        yield AnswerFinished(answer)
        return answer

    def _gate(self, planned: PlannedAnswer, answer: Answer, state: "_Run") -> Answer:
        """Apply the item's `{escalate_entropy=…}`: an answer sure enough settles the item (later
        models skip it); an unsure one lets it go on to the next model."""
        threshold = escalation_threshold(planned.item)
        if threshold is None:
            return answer
        following = state.next_in_line.get(planned.index)
        entropy = answer.metrics.entropy_mean if answer.metrics is not None else None
        gate = Escalation.decide(threshold, entropy, self._name(following) if following is not None else None)
        if not gate.escalated:
            state.settled.add(escalation_key(planned))
        return dataclasses.replace(answer, escalation=gate)

    def _partial_answer(self, planned: PlannedAnswer, prompt: str, request: GenerationRequest,
                        streamed: list[TokenEvent]) -> Answer:
        """What an abandoned answer had written, as a stopped answer."""
        return Answer(
            index=planned.index, model=self._name(planned),
            model_path=self._resolved.get(planned.model, planned.model), item=planned.item.number,
            response=planned.response, loop=planned.loop, prompt=prompt, messages=request.messages,
            params=request.params, text="".join(e.text for e in streamed), prompt_tokens=0,
            tokens=len(streamed), seconds=0.0, stop_reason="stopped", seed=request.params.seed,
            choices=_choices(streamed), pieces=_pieces(streamed),
        )

    def branch(self, base: BranchPoint, position: int, token: int, learning_top: int,
               load: LoadParams | None = None) -> Iterator[ChainEvent]:
        """Grow a branch of a finished answer (learning mode): keep its tokens before `position`,
        take `token` there and let the model go on. Streams `AnswerToken`s, then `BranchFinished`;
        the branch is journaled as a new answer of the same run, linked to its parent. Stop/Next and
        Stop all end it like an answer."""
        self.control.reset()
        seq = self.recorder.next_answer_seq(base.run_id) if self.recorder else base.seq + 1
        self.running = True
        self.generating = True
        try:
            answer: Answer | None = None
            member = self._member(base.model_path)
            if member is not None:
                from app.engines.branching import grow_remote_branch

                engine = self.engines.engine(member.engine)  # type: ignore[union-attr]
                grown = grow_remote_branch(engine, member, base, position, token, seq, learning_top,
                                           on_start=self._show_remote)
            else:
                grown = grow_branch(self.backend, base, position, token, seq, learning_top, load)
            for event in grown:
                if isinstance(event, TokenEvent):
                    yield AnswerToken(seq, event.text, event.token_id, event.choice)
                else:
                    answer = event
        finally:
            self.generating = False
            self.running = False
            self._current = None
        assert answer is not None
        if self.recorder:
            self.recorder.record_branch(base.run_id, answer, base.seq, position, token)
        yield BranchFinished(answer, base.seq, position, token)

    def _run_code(self, answer: Answer, state: "_Run") -> Generator[ChainEvent, None, CodeResult | None]:
        """Run the code of `answer` (or the person's #IDE code); None when there is none."""
        options = state.spec.code
        code, source = choose_code(answer.text, options.pasted)
        if not code.strip():
            return None
        assert self.code_runner is not None
        yield CodeStarted(answer.index, code, source)
        self.control.code_started()
        self.running_code = True
        try:
            result = self.code_runner.run(code, options.timeout, options.persistent,
                                          should_stop=self.control.code_should_stop, offline=options.offline)
        finally:
            self.running_code = False
        if self.recorder:
            self.recorder.record_code_run(state.run_id, answer.index, source, result)
        yield CodeFinished(answer.index, result, source, hidden=options.hide_output)
        return result


class _Run:
    """One run's settings and what it carries from answer to answer."""

    def __init__(self, spec: ChainSpec, run_id: int | None, pre_prompt: str, system: str,
                 rng: random.Random, previous: str, params: dict[int, SamplingParams],
                 next_in_line: dict[int, PlannedAnswer] | None = None) -> None:
        self.spec = spec
        self.params = params  # each planned answer's settings, by index
        self.next_in_line = next_in_line or {}  # an escalating item's next answer, by index
        self.settled: set[tuple[int, int, int]] = set()  # escalating items an answer was sure of
        self.metrics: list[tuple[AnswerMetrics, float]] = []  # each finished answer's, with its seconds
        self.run_id = run_id
        self.pre_prompt = pre_prompt
        self.system = system
        self.rng = rng
        self.previous = previous
        self.texts: list[str] = []
        self.answers = 0
        self.failures = 0

    def add(self, answer: Answer, code: CodeResult | None = None) -> None:
        """Count a finished answer. What it passes on is the answer followed by what its code printed
        (`feedback_text`): `[[…]]` collects that, and with feedback it becomes the next answer's
        previous response. With "feed back only the interpreter output", what the code printed
        alone becomes the previous response."""
        self.answers += 1
        if answer.metrics is not None:
            self.metrics.append((answer.metrics, answer.seconds))
        shown = with_reasoning(answer.reasoning, answer.text) if self.spec.feed_reasoning else answer.text
        passed = feedback_text(shown, code)
        self.texts.append(passed)
        if code is not None and self.spec.code.feed_output:
            text = feedback_text(shown, code, only_output=True)
        elif self.spec.feedback:
            text = passed
        else:
            return
        if self.spec.cumulative and self.previous:
            self.previous = f"{self.previous}\n\n{text}"
        else:
            self.previous = text


def _choices(streamed: list[TokenEvent]) -> tuple:
    """The learning-mode records of the streamed tokens (none outside learning mode)."""
    return tuple(e.choice for e in streamed if e.choice is not None)


def _pieces(streamed: list[TokenEvent]) -> tuple[tuple[int, str], ...]:
    """The streamed tokens' (id, text), as the journal keeps them for replays."""
    return tuple((e.token_id, e.text) for e in streamed)
