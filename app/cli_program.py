"""`python -m app program FILE.py --model MODEL [--jsonl]`: run one prompt program headless.

The studio's API is served for the run alone (loopback, a token made for it), the program runs in
its own process and is journaled like a page run. With `--jsonl`, stdout carries one JSON line per
event (`context`, `prompt`, `token`, `sampled`, `title`, `user_input`, `error`, `result`…) and a
last `{"type": "program_done", ...}` line; what the program prints goes to stderr. Without it, the
program's prints and each sampled answer go to stdout. `user_input()` reads a line of stdin each time;
when stdin has ended, the program's user_input raises with that reason."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from app import settings
from app.cli import emit, fail, warn_if_journal_was_replaced
from app.core.errors import ChainStudioError


def _refuse(message: str) -> int:
    """A program that could not start: exit code 2 (1 is a program that ran and failed)."""
    fail(message)
    return 2


def _read_answer(label: str, interactive: bool) -> str | None:
    if interactive:
        print(label, end=" ", file=sys.stderr, flush=True)
    line = sys.stdin.readline() if sys.stdin else ""
    return line.rstrip("\r\n") if line else None


def cmd_program(path: str, model: str | None, jsonl: bool, files: list[str], seed: int | None,
                time_limit: float, models_dir: str | None) -> int:
    """Run the program at `path`; 0 when it finished, 1 when it failed or was stopped, 2 when it
    could not start."""
    from app.programs.private_api import PrivateApi
    from app.programs.process import ProgramLaunch
    from app.programs.session import ProgramRun
    from app.services import start_services

    program = Path(path)
    try:
        source = program.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _refuse(f"cannot read the program {path}: {getattr(exc, 'strerror', None) or exc}")
    try:
        services = start_services(settings.models_dir(models_dir))
    except ChainStudioError as exc:
        return _refuse(str(exc))
    warn_if_journal_was_replaced(services.journal)
    interactive = bool(sys.stdin) and sys.stdin.isatty()
    done: dict[str, Any] = {"type": "program_done"}
    try:
        with PrivateApi(services) as api:
            launch = ProgramLaunch(source=source, api_url=api.url, token=api.token, model=model,
                                   files=tuple(Path(f) for f in files), seed=seed, time_limit=time_limit)
            run = ProgramRun(services.journal, launch, name=program.name, origin="cli")
            for event in run.events():
                kind = event["type"]
                if kind == "output":
                    (sys.stderr if jsonl else sys.stdout).write(event["text"])
                    (sys.stderr if jsonl else sys.stdout).flush()
                    continue
                if jsonl and kind != "exit":
                    emit(event)
                elif not jsonl:
                    _show(event)
                if kind == "user_input":
                    answer = _read_answer(str(event.get("label", "")), interactive)
                    if answer is None:
                        run.no_input("standard input has ended")
                    else:
                        run.answer(answer)
            done.update(ok=run.outcome == "finished", outcome=run.outcome, run_id=run.run_id, title=run.title,
                        error=run.error or None, folder=str(run.process.folder),
                        sandboxed=run.process.sandboxed)
    except ChainStudioError as exc:
        return _refuse(str(exc))
    except KeyboardInterrupt:
        return 130
    finally:
        services.close()
    if jsonl:
        emit(done)
    elif done.get("error"):
        print(f"error: {done['error']}", file=sys.stderr)
    return 0 if done.get("ok") else 1


def _show(event: dict[str, Any]) -> None:
    """A person's view of an event (without --jsonl): each sampled answer on stdout, titles and
    errors on stderr."""
    kind = event["type"]
    if kind == "sampled":  # whole answers: concurrent contexts' tokens would interleave
        print(str(event.get("text", "")), flush=True)
    elif kind == "title":
        print(f"# {event.get('title', '')}", file=sys.stderr, flush=True)
    elif kind == "error":
        line = event.get("line")
        where = f" (line {line})" if line else ""
        print(f"program error{where}: {event.get('message', '')}", file=sys.stderr, flush=True)
