"""A program's own process: `python -m app.sdk.program FILE.py`, started by the studio (page or
`python -m app program`), never inside the studio's process.

The file's top level may `await` (as in PromptIDE) and finds the SDK's names already defined.
Standard output becomes the event channel (app/sdk/host.py); what the program prints, and what its
own child processes write, goes to standard error, which the studio shows as the program's output.
The program ends with a `result` event, or an `error` event naming the line of the program that
failed (the traceback shows the program's own frames only)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from app.sdk import host as host_module


def _take_stdout_for_events() -> None:
    """fd 1 becomes the program's stderr; the original stdout carries the events only."""
    channel = os.dup(1)
    os.dup2(2, 1)
    os.environ[host_module.EVENTS_ENV] = str(channel)
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1, closefd=False)


def program_globals(path: Path) -> dict[str, Any]:
    """The program's module namespace: the SDK's names, as PromptIDE predefines them."""
    import app.sdk as sdk

    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    namespace.update({name: getattr(sdk, name) for name in sdk.__all__})
    return namespace


def _user_frames(error: BaseException, path: Path) -> tuple[str, int | None]:
    """The traceback limited to the program's own file, and the line it failed on."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    line = frames[-1].lineno if frames else getattr(error, "lineno", None)
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(error), error))
    return text, line


def run_program(path: Path) -> None:
    """Run the program: in an event loop when its top level awaits (PromptIDE style), else as a
    plain script (which may start its own loop with asyncio.run, as the Sampler SDK's examples do)."""
    source = path.read_text(encoding="utf-8")
    code = compile(source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    from app.sdk.context import get_context

    get_context()  # the program's own context exists before any task copies the current one
    module = types.ModuleType("__main__")
    module.__dict__.update(program_globals(path))
    sys.modules["__main__"] = module
    if code.co_flags & inspect.CO_COROUTINE:
        async def top_level() -> None:
            await eval(code, module.__dict__)  # the user's own program, in its own process (module docstring)

        asyncio.run(top_level())
    else:
        exec(code, module.__dict__)  # the user's own program, in its own process (module docstring)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m app.sdk.program FILE.py", file=sys.stderr)
        return 2
    path = Path(args[0]).resolve()
    _take_stdout_for_events()
    from app.execution.kernel_boot import apply_limits

    apply_limits()
    channel = host_module.host()
    sys.path.insert(0, str(path.parent))
    try:
        run_program(path)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            channel.emit({"type": "error", "message": f"the program exited with {exit_.code}", "line": None})
            return 1
    except KeyboardInterrupt:
        channel.emit({"type": "error", "message": "the program was interrupted", "line": None})
        return 1
    except BaseException as error:  # the user's program failed: say where, in its own terms
        text, line = _user_frames(error, path)
        sys.stderr.write(text)
        sys.stderr.flush()
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        channel.emit({"type": "error", "message": message, "line": line})
        return 1
    channel.emit({"type": "result", "ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
