"""`python -m app chain | library | runs | journal`: headless chain runs and the journal, as JSON lines or a
readable transcript. Public interface: line types and keys stay stable once published."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from app import settings
from app.cli import emit, fail, model_argument, warn_if_journal_was_replaced
from app.core.chain import RANDOM_RANGES, ChainSpec, answer_params, check_constraints
from app.core.code_exec import CodeOptions, CodeResult
from app.core.errors import ChainStudioError, SettingsError
from app.core.event_lines import EventLines
from app.core.events import (
    STOP_REASON_TEXT,
    Answer,
    AnswerFinished,
    AnswerStarted,
    AnswerToken,
    ChainEvent,
    CodeFinished,
    CodeStarted,
    EngineConnected,
    Failure,
    ModelDownloading,
    ModelLoading,
    ModelLoadProgress,
    RunFinished,
    RunStarted,
)
from app.core.hub_links import looks_like_link, parse_model_link
from app.core.prompt_format import split_model_line
from app.core.prompt_list import parse_library, parse_prompt_list, parse_settings_block
from app.core.sampling import LOAD_SPECS, LoadParams, SamplingParams

if TYPE_CHECKING:
    from app.engines.members import Engines


def _read_text_argument(path: str | None) -> str:
    if path is None:
        return ""
    if path == "-":
        return sys.stdin.read()
    return Path(path).expanduser().read_text(encoding="utf-8")


def split_settings(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--set key=value` pairs -> (sampling overrides, load overrides), checked like prompt lists."""
    sampling: dict[str, Any] = {}
    loading: dict[str, Any] = {}
    for pair in pairs:
        shown = pair if len(pair) <= 60 else pair[:59] + "…"
        key, separator, raw = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise SettingsError(f"--set {shown}: expected key=value, e.g. --set temperature=0.7")
        if key in LOAD_SPECS and key != "seed":
            try:
                number = float(raw)  # a 5,000-digit number reads as inf: refused as out of range
            except ValueError:
                raise SettingsError(f"--set {shown}: {key} must be a number") from None
            given = {key: LOAD_SPECS[key].check(number, written=raw.strip())}
            target = loading
        else:
            given = parse_settings_block(pair, f"--set {shown}")
            target = sampling
        repeated = sorted(set(given) & (set(sampling) | set(loading)))
        if repeated:
            raise SettingsError(f"--set {shown}: {', '.join(repeated)} is already set; give each setting once")
        target.update(given)
    return sampling, loading


def code_options(args: Any) -> CodeOptions:
    """The code-execution flags of `chain` (each one beyond --run-code needs it)."""
    run_code = bool(getattr(args, "run_code", False))
    extras = {"--stop-condition": getattr(args, "stop_condition", False),
              "--feed-code-output": getattr(args, "feed_code_output", False),
              "--hide-code-output": getattr(args, "hide_code_output", False),
              "--keep-variables": getattr(args, "keep_variables", False),
              "--offline-code": getattr(args, "offline_code", False)}
    used = [flag for flag, on in extras.items() if on]
    if used and not run_code:
        raise SettingsError(f"{', '.join(used)} needs --run-code (code execution is off unless you ask for it)")
    return CodeOptions(run_code=run_code, stop_condition=extras["--stop-condition"],
                       feed_output=extras["--feed-code-output"], hide_output=extras["--hide-code-output"],
                       persistent=extras["--keep-variables"], timeout=float(getattr(args, "code_timeout", 60.0)),
                       offline=extras["--offline-code"])


def build_spec(args: Any, engines: "Engines | None" = None) -> ChainSpec:
    """A ChainSpec from the `chain` sub-command's arguments (`engines`: which `NAME/model-id` models
    are remote)."""
    sampling_overrides, load_overrides = split_settings(args.set or [])
    models_dir = getattr(args, "models_dir", None)
    lines = [split_model_line(m) for m in args.model]  # `file.gguf {template="chatml"}`: that model's format
    models = tuple(m if looks_like_link(m) or (engines is not None and engines.member(m) is not None)
                   else str(model_argument(m, models_dir)) for m, _format in lines)
    return ChainSpec(
        models=models,
        model_templates=tuple((model, name) for model, (_m, name) in zip(models, lines, strict=True) if name),
        prompts=_read_text_argument(args.prompts),
        system=args.system or "",
        previous=args.previous or "",
        responses=args.responses,
        loops=args.loops,
        single_response=args.single_response,
        shuffle=args.shuffle,
        feedback=args.feedback,
        cumulative=args.cumulative,
        reset=args.reset,
        random_params=args.random_params,
        seed=args.seed,
        sampling=SamplingParams().with_overrides(sampling_overrides),
        load=LoadParams(**load_overrides, load_anyway=bool(getattr(args, "load_anyway", False))),
        code=code_options(args),
        template=getattr(args, "template", "auto"),
        feed_reasoning=bool(getattr(args, "feed_reasoning", False)),
    )


def cmd_chain(args: Any) -> int:
    """Run a chain headless (or print its plan with --dry-run)."""
    from app.cli_engines import engines_from_args

    try:
        engines = engines_from_args(args)
        spec = build_spec(args, engines)
        check_constraints(parse_prompt_list(spec.prompts))  # syntax errors, unusable grammars: a message
    except (ChainStudioError, OSError) as exc:
        return fail(str(exc) if isinstance(exc, ChainStudioError) else f"cannot read prompts: {exc}")
    if args.dry_run:
        return _print_plan(spec, args.jsonl, engines)

    printer = (_JsonPrinter() if args.jsonl
               else _TranscriptPrinter(show_params=spec.random_params, hide_code=spec.code.hide_output))
    return execute_chain(spec, engines, printer, getattr(args, "models_dir", None)).exit_code


@dataclasses.dataclass
class ChainOutcome:
    """What a headless run did: its exit code (0 done, 1 an error, 130 Ctrl-C), journal id and answers."""

    exit_code: int
    run_id: int | None = None
    answers: list[Answer] = dataclasses.field(default_factory=list)


def execute_chain(spec: ChainSpec, engines: "Engines | None", printer: "_JsonPrinter | _TranscriptPrinter",
                  models_dir: str | None, origin: str = "cli", seeds: dict[int, int] | None = None) -> ChainOutcome:
    """Run `spec` headless, journaled, each event shown by `printer` (`chain`, and `replay` with
    each answer's own seed)."""
    from app.core.runner import ChainRunner
    from app.models.hub import HubDownloader, HubModelSource
    from app.models.local_backend import LocalBackend
    from app.store.journal import Journal

    journal = Journal()  # before the worker starts: a journal that cannot be written stops here
    warn_if_journal_was_replaced(journal)
    backend = LocalBackend()
    code_runner = None
    if spec.code.run_code:
        from app.execution.pool import KernelPool

        code_runner = KernelPool()
    runner = ChainRunner(backend, journal, code_runner, origin=origin, engines=engines)
    source = HubModelSource(HubDownloader(settings.models_dir(models_dir)))
    events = runner.run(spec, source, seeds)
    outcome = ChainOutcome(1)
    reason = "error"
    try:
        # Ctrl-C during a download stops the run like Stop all: the download keeps its bytes for next
        # time and the run ends as "stopped" in the journal.
        with _ctrl_c_calls(runner.control.stop_all, when=lambda: runner.downloading) as pressed:
            for event in events:
                printer.show(event)
                if isinstance(event, RunStarted):
                    outcome.run_id = event.run_id
                elif isinstance(event, AnswerFinished):
                    outcome.answers.append(event.answer)
                elif isinstance(event, RunFinished):
                    reason = event.reason
        if pressed.is_set():
            outcome.exit_code = 130
            return outcome
    except KeyboardInterrupt:
        events.close()  # the journal records the run as stopped
        printer.show(RunFinished(None, "stopped", 0, 0))
        outcome.exit_code = 130
        return outcome
    except ChainStudioError as exc:
        outcome.exit_code = fail(str(exc))
        return outcome
    finally:
        printer.flush()
        backend.close()
        journal.close()
        if code_runner is not None:
            code_runner.close()
    outcome.exit_code = 1 if reason == "error" else 0
    return outcome


def _print_plan(spec: ChainSpec, jsonl: bool, engines: "Engines | None" = None) -> int:
    import random

    from app.core.chain import make_plan
    from app.core.prompt_list import parse_prompt_list as parse

    prompts = parse(spec.prompts)
    rng = random.Random(spec.seed)
    plan = make_plan(spec, prompts, rng)
    if not jsonl:
        print(plan_order(spec, len(prompts.items), len(plan)))
    for planned in plan:
        member = engines.member(planned.model) if engines is not None else None
        name = member.name if member is not None else planned.model_name
        record = {
            "type": "planned",
            "index": planned.index,
            "model": name,
            "item": planned.item.number,
            "response": planned.response,
            "loop": planned.loop,
            "prompt": planned.item.prompt(prompts.pre_prompt, None),
            "params": answer_params(spec, planned.item, rng).to_dict(),
        }
        if jsonl:
            emit(record)
        else:
            print(f"{planned.index:>4}. {name} · item {planned.item.number} · "
                  f"response {planned.response} · loop {planned.loop}: {record['prompt']!r}")
    return 0


def plan_order(spec: ChainSpec, items: int, answers: int) -> str:
    """The dry run's first line: how many answers, and in which order they come."""
    if spec.single_response:
        return f"{answers} answers: single response per model (model i answers item i once)"
    models = f"{len(spec.models)}, shuffled" if spec.shuffle else str(len(spec.models))
    return (f"{answers} answers: for each loop ({spec.loops}), each model ({models}), each response "
            f"({spec.responses}), the whole prompt list (items 1-{items})")


@contextlib.contextmanager
def _ctrl_c_calls(action: Callable[[], None], when: Callable[[], bool] = lambda: True) -> Iterator[threading.Event]:
    """The first Ctrl-C pressed while `when()` holds calls `action` (a clean stop) instead of raising
    KeyboardInterrupt; any other Ctrl-C interrupts as usual. The event says whether it was pressed."""
    pressed = threading.Event()
    installed = (threading.current_thread() is threading.main_thread()
                 and signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    def on_interrupt(signum: int, frame: Any) -> None:
        if pressed.is_set() or not when():
            signal.default_int_handler(signum, frame)
        pressed.set()
        action()

    if installed:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield pressed
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class _ProgressLine:
    """Download progress on stderr: one line redrawn in a terminal, a line per 10% otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_step = -1
        self.open_line = False  # a terminal line redrawn in place, not ended yet

    def end(self) -> None:
        """End a line left open by a download that stopped or failed half-way."""
        if self.open_line:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open_line = False

    def show(self, text: str, fraction: float | None) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
            self.open_line = fraction is None or fraction < 1
            if not self.open_line:
                sys.stderr.write("\n")
        else:
            step = int((fraction or 0) * 10)
            if step == self.last_step:
                return
            self.last_step = step
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


class _JsonPrinter:
    """One JSON object per line, each with a "type" (app/core/event_lines.py); a download's progress
    goes to stderr."""

    def __init__(self) -> None:
        self.progress = _ProgressLine()
        self.events = EventLines()

    def flush(self) -> None:
        for line in self.events.finish():
            emit(line)

    def show(self, event: ChainEvent) -> None:
        for line in self.events.lines(event):
            emit(line)
        if isinstance(event, ModelDownloading):
            self.progress.show(event.text, event.fraction)


class _TranscriptPrinter:
    """A readable transcript: a header per answer, the text as it is written, then a footer.
    With random hyperparameters, the values drawn are shown under each header."""

    def __init__(self, show_params: bool = False, hide_code: bool = False) -> None:
        self.show_params = show_params
        self.hide_code = hide_code
        self.progress = _ProgressLine()
        self.loading = _ProgressLine()

    def flush(self) -> None:
        sys.stdout.flush()

    def show(self, event: ChainEvent) -> None:
        out = sys.stdout
        if isinstance(event, ModelDownloading):
            self.progress.show(event.text, event.fraction)
        elif isinstance(event, RunStarted):
            out.write(f"Run {event.run_id}: {event.planned} answers planned\n")
        elif isinstance(event, ModelLoading):
            out.write(f"\nLoading {event.model}…\n")
            self.loading = _ProgressLine()  # each load counts its tenths from zero
        elif isinstance(event, ModelLoadProgress):
            self.loading.show(f"Loading {event.model}… {event.fraction:.0%}", event.fraction)
        elif isinstance(event, AnswerStarted):
            out.write(f"\n== {event.model} · item {event.item} · response {event.response} · loop {event.loop} ==\n")
            if self.show_params:
                drawn = ", ".join(f"{name}={getattr(event.params, name)}" for name in RANDOM_RANGES)
                out.write(f"({drawn})\n")
        elif isinstance(event, AnswerToken):
            out.write(event.text)
        elif isinstance(event, AnswerFinished):
            a = event.answer
            speed = a.tokens / a.seconds if a.seconds > 0 else 0.0
            out.write(f"\n[{a.prompt_tokens} prompt + {a.tokens} tokens · {a.seconds:.2f} s · "
                      f"{speed:.1f} tok/s · {STOP_REASON_TEXT.get(a.stop_reason, a.stop_reason)}]\n")
            if a.metrics is not None:
                out.write(f"[{a.metrics.describe()}]\n")
            for note in a.notes:
                out.write(f"[note: {note}]\n")
        elif isinstance(event, EngineConnected):
            out.write(f"\n{event.model} answers at {event.url} ({event.kind})\n")
            if event.warning:
                out.write(f"!! {event.warning}\n")
        elif isinstance(event, CodeStarted):
            origin = "your #IDE code" if event.source == "pasted" else "the code"
            out.write(f"\n-- running {origin} of answer {event.index} --\n")
        elif isinstance(event, CodeFinished):
            out.write(code_transcript(event.result, hide_output=event.hidden or self.hide_code))
        elif isinstance(event, Failure):
            out.write(f"\n!! {event.model}: {event.message}\n")
        elif isinstance(event, RunFinished):
            out.write(f"\nRun finished: {event.reason} ({event.answers} answers, {event.failures} failures)\n")
            if event.metrics is not None:
                out.write(f"[{event.metrics.describe()}]\n")
        out.flush()


def code_transcript(result: CodeResult, hide_output: bool = False) -> str:
    """A code run as the readable transcript shows it: outputs (unless hidden), then a footer."""
    parts = []
    if not hide_output:
        if result.stdout:
            parts.append(result.stdout.rstrip("\n"))
        if result.stderr:
            parts.append(result.stderr.rstrip("\n"))
        parts += [o.data if o.mime == "text/plain" else f"[{o.mime} output]" for o in result.outputs]
    footer = f"[code: {result.status} · {result.seconds:.2f} s"
    footer += f" · {result.message}]" if result.message else "]"
    if hide_output:
        footer += " (output hidden)"
    return "\n".join(parts + [footer]) + "\n"


def cmd_library(path: str, jsonl: bool) -> int:
    """One line per entry of a prompt library file: index, first line, items it parses into."""
    try:
        entries = parse_library(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        return fail(f"cannot read {path}: {exc.strerror or exc}", path=path)
    for entry in entries:
        record: dict[str, Any] = {"type": "entry", "index": entry.index, "first_line": entry.first_line}
        try:
            record["items"] = len(parse_prompt_list(entry.text).items)
        except ChainStudioError as exc:
            record["items"], record["error"] = None, str(exc)
        if jsonl:
            emit(record)
        else:
            n = record["items"]
            count = f"{n} item{'' if n == 1 else 's'}" if n is not None else f"error: {record['error']}"
            print(f"{entry.index:>3}. {entry.first_line}  ({count})")
    return 0


def cmd_runs(action: str | None, run_id: int | None, jsonl: bool, limit: int) -> int:
    """`runs`: recent runs; `runs show ID`: one run's answers, as `chain` prints them."""
    from app.store.journal import Journal

    journal = Journal()
    warn_if_journal_was_replaced(journal)
    try:
        if action is None:
            for run in journal.runs(limit):
                reason = run.end_reason or "unfinished"
                if jsonl:
                    emit({"type": "run", "run_id": run.id, "started_at": run.started_at, "reason": reason,
                          "planned": run.planned, "answers": run.answers, "failures": run.failures,
                          "models": run.models, "origin": run.origin})
                else:
                    print(f"{run.id:>5}  {run.started_at[:19]}  {reason:<12} {run.answers}/{run.planned} answers  "
                          f"{', '.join(run.models)}")
            return 0
        if run_id is None:
            return fail("runs show needs a run id (see `python -m app runs`)")
        found = journal.run(run_id)
        if found is None:
            return fail(f"no run with id {run_id}", run_id=run_id)
        summary, spec, answers, failures = found
        if jsonl:
            emit({"type": "run_started", "run_id": summary.id, "planned": summary.planned,
                  "started_at": summary.started_at, "spec": spec, "models": summary.models})
            for failure in failures:
                emit({"type": "failure", **failure})
            code_by_seq = {c["seq"]: c for c in journal.code_runs(summary.id)}
            for answer in answers:
                record = {"type": "answer", **{k: v for k, v in answer.items() if k != "messages"}}
                if answer["index"] in code_by_seq:
                    record["code"] = CodeResult.from_record(code_by_seq[answer["index"]]).to_record()
                emit(record)
            emit({"type": "run_finished", "run_id": summary.id, "reason": summary.end_reason or "unfinished",
                  "answers": summary.answers, "failures": summary.failures})
        else:
            print(f"Run {summary.id} · {summary.started_at[:19]} · {summary.end_reason or 'unfinished'}")
            for answer in answers:
                print(f"\n== {answer['model']} · item {answer['item']} · response {answer['response']} · "
                      f"loop {answer['loop']} ==\n{answer['text']}\n[{answer['prompt_tokens']} prompt + "
                      f"{answer['tokens']} tokens · {answer['seconds']:.2f} s]")
            for failure in failures:
                print(f"\n!! {failure['model']}: {failure['message']}")
        return 0
    finally:
        journal.close()


def cmd_journal_salvage(path: str, jsonl: bool) -> int:
    """`journal salvage PATH`: copy the readable rows of a damaged journal into the data folder's
    journal; one line says what came back (a "salvaged" JSON object with --jsonl)."""
    from app.store.journal import Journal

    journal = Journal()
    warn_if_journal_was_replaced(journal)
    try:
        report = journal.salvage(Path(path))
    except ChainStudioError as exc:
        return fail(str(exc), path=path)
    finally:
        journal.close()
    if jsonl:
        emit({"type": "salvaged", "path": str(report.source), "method": report.method, "copied": report.copied,
              "renumbered": report.renumbered, "left_out": report.left_out,
              "damaged_regions": report.damaged_regions})
    else:
        print(report.describe())
    return 0


def cmd_download(links: list[str], models_dir: str | None, testing: bool) -> int:
    """Download each link into the models folder (or reuse a verified copy); exit 1 on any refusal
    or failure, 130 on Ctrl-C (the bytes received are kept: the same command resumes). One JSON line
    per link on stdout, progress on stderr."""
    from app.core.errors import DownloadError, DownloadStopped, LinkError
    from app.models.hub import HubDownloader

    try:
        parsed = [parse_model_link(link) for link in links]  # refuse before any connection
    except LinkError as exc:
        return fail(str(exc))
    downloader = HubDownloader(settings.models_dir(models_dir))
    progress = _ProgressLine()
    status = 0
    stop = threading.Event()
    try:
        with _ctrl_c_calls(stop.set):
            for link, model in zip(links, parsed, strict=False):
                try:
                    path = downloader.fetch(model, lambda p: progress.show(p.describe(), p.fraction), testing=testing,
                                            should_stop=stop.is_set)
                except DownloadStopped as exc:
                    progress.end()
                    fail(str(exc), link=link)
                    return 130
                except DownloadError as exc:
                    progress.end()
                    status = fail(str(exc), link=link)
                    continue
                emit({"type": "downloaded", "link": link, "path": str(path), "bytes": path.stat().st_size})
    except KeyboardInterrupt:  # a second Ctrl-C: the download was stopped on the way out
        progress.end()
        return 130
    return status
