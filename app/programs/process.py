"""Running one program: its own process (the studio's Python, `python -m app.sdk.program`), in the
code sandbox where there is one, reaching the model only through the local API with the token in
its environment.

Everything the program sees is in its folder: a copy of its source (`program.py`) and the files
given to it (`files/`, read with `read_file`). The events it sends (app/sdk/host.py) and what it
prints come back as one stream of dicts; Stop and the time limit end its whole process tree."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from app import settings
from app.core.errors import CodeExecutionError, SettingsError
from app.execution.processes import kill_tree
from app.execution.sandbox import code_environment, sandbox_command, sandbox_status
from app.sdk.host import FILES_ENV, MAX_FILE_BYTES, MAX_FILES_BYTES
from app.spawn import on_spawner_thread

DEFAULT_TIME_LIMIT_SECONDS = 600.0
MAX_TIME_LIMIT_SECONDS = 24 * 3600.0
OUTPUT_LIMIT_CHARS = 200_000  # of printed output kept per run; the rest is counted, not kept
PROGRAM_FILE = "program.py"


@dataclass(frozen=True)
class ProgramLaunch:
    """What to run and how: the source, the API it reaches, the files it may read."""

    source: str
    api_url: str  # http://127.0.0.1:PORT (the API's routes are under it)
    token: str
    model: str | None = None
    files: tuple[Path, ...] = ()
    seed: int | None = None
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS
    folder: Path | None = None  # default: a new folder under code/programs in the data folder
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.time_limit <= MAX_TIME_LIMIT_SECONDS:
            raise SettingsError(f"the program time limit must be more than 0 and at most {MAX_TIME_LIMIT_SECONDS:.0f} s")


def check_files(files: tuple[Path, ...]) -> None:
    """The files given to a program: each readable, at most 5 MiB, 50 MiB in all, names distinct."""
    total = 0
    names: set[str] = set()
    for path in files:
        if not path.is_file():
            raise SettingsError(f"{path} is not a file that can be given to the program")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SettingsError(f"{path.name} is {size / 2**20:.1f} MiB: a program's files may be at most "
                                f"{MAX_FILE_BYTES // 2**20} MiB each")
        total += size
        if path.name in names:
            raise SettingsError(f"two files are named {path.name}: read_file() finds files by name")
        names.add(path.name)
    if total > MAX_FILES_BYTES:
        raise SettingsError(f"the program's files add up to {total / 2**20:.1f} MiB: at most "
                            f"{MAX_FILES_BYTES // 2**20} MiB in all")


def new_program_folder() -> Path:
    base = settings.code_dir() / "programs"
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for number in range(1000):
        folder = base / (f"{stamp}-{number}" if number else stamp)
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise CodeExecutionError(f"cannot make a folder for the program in {base}")


def _environment(launch: ProgramLaunch, files_dir: Path) -> dict[str, str]:
    from app.execution.kernel import code_memory_limit
    from app.sdk.connection import TOKEN_ENV, URL_ENV
    from app.sdk.context import MODEL_ENV, SEED_ENV

    env = code_environment({
        URL_ENV: launch.api_url, TOKEN_ENV: launch.token, FILES_ENV: str(files_dir),
        "PYTHONPATH": str(settings.PROJECT_ROOT), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "CHAIN_STUDIO_MEMORY_BYTES": str(code_memory_limit()), "MPLBACKEND": "Agg",
    })
    env.pop("VIRTUAL_ENV", None)
    if launch.model:
        env[MODEL_ENV] = launch.model
    if launch.seed is not None:
        env[SEED_ENV] = str(launch.seed)
    env.update(launch.extra_env)
    return env


class ProgramProcess:
    """One running program. `events()` yields its events as dicts, then `{"type": "exit", ...}`."""

    def __init__(self, launch: ProgramLaunch) -> None:
        check_files(launch.files)
        self.launch = launch
        self.folder = launch.folder or new_program_folder()
        files_dir = self.folder / "files"
        files_dir.mkdir(parents=True, exist_ok=True)
        for path in launch.files:
            shutil.copyfile(path, files_dir / path.name)
        program = self.folder / PROGRAM_FILE
        program.write_text(launch.source, encoding="utf-8")
        command = [sys.executable, "-m", "app.sdk.program", str(program)]
        self.sandboxed = sandbox_status().available
        if self.sandboxed:
            readable = [settings.PROJECT_ROOT / "app", Path(sys.prefix), Path(sys.base_prefix)]
            command = sandbox_command(command, writable=[self.folder], readable=readable, workdir=self.folder)
        self._events: queue.Queue[dict] = queue.Queue()
        self._stopped_because = ""
        self._output_chars = 0
        self._output_dropped = 0
        self.started = time.monotonic()
        try:
            self.process = on_spawner_thread(
                subprocess.Popen, command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.folder, env=_environment(launch, files_dir), start_new_session=True)
        except OSError as exc:
            raise CodeExecutionError(f"the program could not start: {exc}") from exc
        self._readers = [threading.Thread(target=self._read_events, daemon=True, name="program-events"),
                         threading.Thread(target=self._read_output, daemon=True, name="program-output")]
        for reader in self._readers:
            reader.start()

    # -- reading ----------------------------------------------------------------------------------

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue  # not an event line (the channel is the program's own: nothing else writes it)
            if isinstance(event, dict) and isinstance(event.get("type"), str):
                self._events.put(event)

    def _read_output(self) -> None:
        assert self.process.stderr is not None
        for raw in iter(lambda: self.process.stderr.read1(65536), b""):  # type: ignore[union-attr]
            text = raw.decode("utf-8", "replace")
            room = OUTPUT_LIMIT_CHARS - self._output_chars
            if room <= 0:
                self._output_dropped += len(text)
                continue
            self._output_chars += min(room, len(text))
            self._events.put({"type": "output", "text": text[:room]})
            if len(text) > room:
                self._output_dropped += len(text) - room

    def events(self) -> Iterator[dict]:
        """The program's events as they come; the last one is `{"type": "exit", "code", "reason"}`
        (reason: "finished", "failed", "stopped" or "time_limit")."""
        deadline = self.started + self.launch.time_limit
        while True:
            try:
                yield self._events.get(timeout=0.05)
                continue
            except queue.Empty:
                pass
            if time.monotonic() > deadline and self.process.poll() is None:
                self.stop("time_limit")
            if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
        while not self._events.empty():
            yield self._events.get()
        if self._output_dropped:
            yield {"type": "output", "text": f"\n[{self._output_dropped} more characters of output not kept]\n"}
        code = self.process.returncode
        reason = self._stopped_because or ("finished" if code == 0 else "failed")
        yield {"type": "exit", "code": code, "reason": reason, "seconds": round(time.monotonic() - self.started, 3)}

    # -- talking to it ------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (OSError, ValueError):
            pass  # the program has ended: nobody is waiting for the answer

    def answer(self, text: str) -> None:
        """The person's answer to the program's pending user_input."""
        self._send({"text": text})

    def no_input(self, why: str) -> None:
        """Tell the program no answer will come (its user_input raises with `why`)."""
        self._send({"none": why})

    def stop(self, reason: str = "stopped") -> None:
        """End the program and everything it started (its generation ends with its connection)."""
        if self.process.poll() is None:
            self._stopped_because = reason
            kill_tree(self.process.pid, grace=0.0)
