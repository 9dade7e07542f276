"""Sub-command implementations for `python -m app` (the argument parsing is in `__main__`).

Machine-readable output is one JSON object per line on stdout; messages for people go to stderr.
Exit codes: 0 success, 1 a refused input or failed operation, 2 wrong usage.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from app import settings
from app.core.errors import ChainStudioError


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record, ensure_ascii=False), flush=True)


def fail(message: str, **record: Any) -> int:
    """Report a refused input: a JSON line with "error" on stdout, the message on stderr."""
    emit({"error": message, **record})
    print(f"error: {message}", file=sys.stderr)
    return 1


def warn_if_journal_was_replaced(journal: Any) -> None:
    """One line on stderr when a damaged journal was moved aside and a fresh one started."""
    if journal.notice:
        print(f"warning: {journal.notice}", file=sys.stderr)


def model_argument(path: str, models_dir: str | None) -> Path:
    """A path as given, or a file name inside the models folder when no such path exists."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    in_folder = settings.models_dir(models_dir) / given
    return in_folder if in_folder.exists() else given


def cmd_info(path: str, models_dir: str | None) -> int:
    """`info PATH`: the GGUF header as one JSON line, without loading the model."""
    from app.models.gguf_file import inspect_gguf

    target = model_argument(path, models_dir)
    try:
        info = inspect_gguf(target)
    except ChainStudioError as exc:
        return fail(str(exc), path=str(target))
    emit(info.to_dict())
    return 0


def cmd_demo_model(path: str | None, models_dir: str | None, keep_existing: bool = False) -> int:
    """`demo-model [PATH]`: write the scripted demo model (a folder gets the standard file name)."""
    from app.models.demo_model import write_demo_model

    if path is None:
        target = settings.demo_model_path(settings.models_dir(models_dir))
    else:
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / settings.DEMO_MODEL_FILENAME
    started = time.perf_counter()
    if keep_existing and target.exists():
        emit({"path": str(target.resolve()), "bytes": target.stat().st_size, "seconds": 0.0, "kept": True})
        return 0
    try:
        written = write_demo_model(target)
    except OSError as exc:
        return fail(f"cannot write {target}: {exc.strerror or exc}", path=str(target))
    emit({"path": str(written.resolve()), "bytes": written.stat().st_size,
          "seconds": round(time.perf_counter() - started, 4)})
    return 0


def cmd_ui(port: int, listen: bool, password: str | None, open_browser: bool, models_dir: str | None,
           allowed_hosts: list[str] | None = None, allowed_origins: list[str] | None = None) -> int:
    """`ui`: start the studio in the browser."""
    from app.services import start_services
    from app.ui.server import bind_address, launch

    try:
        bind_address(listen, password or None)  # refuse before any work is done
    except ChainStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        services = start_services(settings.models_dir(models_dir))
    except ChainStudioError as exc:  # e.g. a read-only data folder: the journal cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Chain Studio: models folder {services.models_dir}", file=sys.stderr)
    warn_if_journal_was_replaced(services.journal)
    try:
        launch(services, port=port, listen=listen, password=password, open_browser=open_browser,
               extra_hosts=allowed_hosts or (), extra_origins=allowed_origins or ())
    except ChainStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
