"""One Jupyter kernel in venvs/jupyter, driven through jupyter_client: start, run code with a time
limit, interrupt, restart, kill with everything it started.

The kernel is found through a kernelspec written inside venvs/jupyter and a KernelSpecManager that
looks only there: jupyter_client 8 ignores `kernel_cmd`, and its default lookup would find the
studio's own interpreter, so code would silently run in the wrong environment.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import psutil
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from app import settings
from app.core.code_exec import DIED, ERROR, OK, STOPPED, TIMEOUT, CodeOutput, CodeResult
from app.core.errors import CodeExecutionError
from app.execution.processes import kill_tree
from app.execution.sandbox import code_environment, sandbox_command, sandbox_status
from app.installer import VENVS, venv_python
from app.spawn import on_spawner_thread

KERNEL_NAME = "chain-studio"
# The same kernel for the sandbox: interrupted by a message on its control channel, because a
# signal would reach bubblewrap (which does not pass it on), not the kernel.
SANDBOXED_KERNEL_NAME = "chain-studio-sandboxed"
BOOT_SCRIPT = Path(__file__).with_name("kernel_boot.py")
OUTPUT_HEAD = 400_000  # characters of each stream kept from the start of a run's output
OUTPUT_TAIL = 100_000  # … and from its end: about 1 MB in all
RICH_OUTPUT_LIMIT = 5_000_000  # one image or HTML output larger than this is left out, with a note
INTERRUPT_GRACE_SECONDS = 3.0  # after an interrupt, how long a run may take to stop before a restart
READY_TIMEOUT_SECONDS = 60.0
FILE_LIMIT_BYTES = 4 * 2**30
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours in tracebacks and logs


def code_python() -> Path:
    """The interpreter of venvs/jupyter, or a clear error when the environment is not installed."""
    python = venv_python("jupyter")
    if not python.exists():
        raise CodeExecutionError(
            f"the code environment is not installed ({python} is missing): run ./install.sh "
            "(install.bat on Windows)"
        )
    return python


def kernels_dir() -> Path:
    """Where the studio's kernelspec lives: inside venvs/jupyter, next to the interpreter it names."""
    return VENVS / "jupyter" / "share" / "jupyter" / "kernels"


def ensure_kernelspec() -> Path:
    """Write (or refresh) the kernelspecs that start kernel_boot.py with venvs/jupyter's python
    (one interrupted by a signal, one by a message for the sandbox); returns the first's folder."""
    folders = []
    for name, interrupt in ((KERNEL_NAME, "signal"), (SANDBOXED_KERNEL_NAME, "message")):
        spec = {
            "argv": [str(code_python()), str(BOOT_SCRIPT), "-f", "{connection_file}"],
            "display_name": "Chain Studio (venvs/jupyter)",
            "language": "python",
            "interrupt_mode": interrupt,
            "metadata": {"debugger": False},
        }
        folder = kernels_dir() / name
        path = folder / "kernel.json"
        text = json.dumps(spec, indent=2)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        folders.append(folder)
    return folders[0]


class _SandboxedKernelManager(KernelManager):
    """A KernelManager whose kernel command runs inside bubblewrap (`sandbox_prefix` is set per
    kernel: the folders it binds and whether the network is shared)."""

    sandbox_prefix: list[str] = []

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self.sandbox_prefix, *super().format_kernel_cmd(extra_arguments)]


def code_memory_limit() -> int:
    """Address-space limit of the code: three quarters of this computer's memory, at least 2 GiB
    (numpy and friends reserve far more address space than they touch)."""
    return max(2 * 2**30, int(psutil.virtual_memory().total * 0.75))


def kernel_environment() -> dict[str, str]:
    """The kernel's environment, built from an allow-list (sandbox.code_environment: nothing that
    could be a secret or the studio's own setting), with Agg for matplotlib and the limits
    kernel_boot.py applies."""
    code_python()  # a clear message when venvs/jupyter is missing
    env = code_environment()
    env["MPLBACKEND"] = "Agg"  # children the code starts never open windows; kernel_boot sends figures
    env["PYTHONUNBUFFERED"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["CHAIN_STUDIO_OUTPUT_HEAD"] = str(OUTPUT_HEAD)
    env["CHAIN_STUDIO_OUTPUT_TAIL"] = str(OUTPUT_TAIL)
    env["CHAIN_STUDIO_MEMORY_BYTES"] = str(code_memory_limit())
    env["CHAIN_STUDIO_FILE_BYTES"] = str(FILE_LIMIT_BYTES)
    env["CHAIN_STUDIO_PLOTLY"] = "1"  # Plotly figures as HTML the studio can show offline (kernel_boot.py)
    if hasattr(os, "getuid"):
        # the user's processes now, plus room for the code's own; a fork bomb hits the wall
        mine = sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == os.getuid())
        env["CHAIN_STUDIO_MAX_PROCESSES"] = str(mine + 512)
    return env


class _Collector:
    """Gathers one run's outputs with a cap (the kernel caps its streams; this guards the rest)."""

    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.outputs: list[CodeOutput] = []
        self.sizes = {"stdout": 0, "stderr": 0}
        self.truncated = False
        self.error = False
        self.note = ""

    def stream(self, name: str, text: str) -> None:
        if "characters not shown: the output was longer" in text:
            self.truncated = True
        limit = OUTPUT_HEAD + OUTPUT_TAIL + 10_000
        room = limit - self.sizes[name]
        if room <= 0:
            self.truncated = True
            return
        if len(text) > room:
            text, self.truncated = text[:room], True
        self.sizes[name] += len(text)
        (self.stdout if name == "stdout" else self.stderr).append(text)

    def rich(self, data: dict) -> None:
        for mime in ("image/png", "image/jpeg", "image/svg+xml", "text/html", "text/markdown", "text/plain"):
            if mime not in data:
                continue
            value = data[mime]
            value = "".join(value) if isinstance(value, list) else str(value)
            if len(value) > RICH_OUTPUT_LIMIT:
                self.truncated = True
                self.outputs.append(CodeOutput("text/plain", f"[a {mime} output of {len(value):,} characters "
                                                             "was left out: too large to show]"))
            else:
                self.outputs.append(CodeOutput(mime, value))
            return

    def traceback(self, content: dict) -> None:
        self.error = True
        if content.get("ename") == "StdinNotImplementedError":
            self.note = "input() is not available: the code runs without a keyboard (put the values in the code)"
            self.stream("stderr", f"StdinNotImplementedError: {self.note}\n")
            return
        lines = content.get("traceback") or [f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"]
        self.stream("stderr", ANSI_CODES.sub("", "\n".join(lines)) + "\n")

    def result(self, code: str, status: str, seconds: float, message: str = "") -> CodeResult:
        return CodeResult(code=code, status=status, stdout="".join(self.stdout), stderr="".join(self.stderr),
                          outputs=tuple(self.outputs), seconds=seconds, message=message or self.note,
                          truncated=self.truncated)


class CodeKernel:
    """A running kernel. `run` never raises for errors in the code: they come back as results."""

    def __init__(self, workdir: Path | None = None, offline: bool = False) -> None:
        self.workdir = workdir or settings.code_dir()
        self.offline = offline  # in the sandbox: no network (the kernel talks over IPC sockets)
        self.sandboxed = sandbox_status().available
        self._runtime: Path | None = None  # this kernel's connection file (and IPC sockets)
        self.manager: KernelManager | None = None
        self.client = None
        self.runs = 0  # how many runs this kernel has served (a fresh kernel has served none)
        self.closed_by_person = False  # "Close Python" ended it: a run in progress reports "stopped"
        self._preload_id: str | None = None

    # -- life --------------------------------------------------------------------------------------
    def start(self, preload: tuple[str, ...] = ()) -> "CodeKernel":
        """Start the kernel and wait until it answers; `preload` modules are imported at once (into
        sys.modules, not into the code's namespace) so the first run does not pay for them."""
        ensure_kernelspec()
        # A short path of its own per kernel: IPC socket paths must stay under ~100 characters, and
        # the sandbox binds this one folder, not the others' connection files.
        self._runtime = runtime = Path(tempfile.mkdtemp(prefix="chain-studio-kernel-"))
        options: dict[str, Any] = {
            "kernel_spec_manager": KernelSpecManager(kernel_dirs=[str(kernels_dir())], ensure_native_kernel=False),
            "connection_file": str(runtime / "connection.json"),
        }
        if self.sandboxed:
            if self.offline:  # no network in the sandbox: the kernel's sockets are files in `runtime`
                options.update(transport="ipc", ip=str(runtime / "ipc"))
            manager: KernelManager = _SandboxedKernelManager(kernel_name=SANDBOXED_KERNEL_NAME, **options)
            manager.sandbox_prefix = sandbox_command(  # type: ignore[attr-defined]
                [], writable=[self.workdir, runtime], offline=self.offline, workdir=self.workdir)
        else:
            manager = KernelManager(kernel_name=KERNEL_NAME, **options)
        try:
            # stdout/stderr of the process itself go nowhere: what the code prints comes over ZMQ.
            # on the spawner thread: the sandbox ends when the thread that started it ends
            on_spawner_thread(manager.start_kernel, env=kernel_environment(), cwd=str(self.workdir),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            client = manager.blocking_client()
            client.start_channels()
            client.wait_for_ready(timeout=READY_TIMEOUT_SECONDS)
        except CodeExecutionError:
            self._remove_runtime()
            raise
        except Exception as exc:
            _quiet_shutdown(manager)
            self._remove_runtime()
            raise CodeExecutionError(f"the Python kernel did not start: {exc}") from exc
        self.manager, self.client = manager, client
        if preload:
            modules = ", ".join(repr(m) for m in preload)
            self._preload_id = client.execute(
                "import importlib as _cs_i\n"
                f"for _cs_m in ({modules},):\n"
                "    try:\n        _cs_i.import_module(_cs_m)\n    except Exception:\n        pass\n"
                "del _cs_i, _cs_m",
                silent=True, store_history=False, allow_stdin=False,
            )
        return self

    def idle_after_preload(self, timeout: float) -> bool:
        """Wait until the preloading import has finished (a run queued behind it would wait too)."""
        if self._preload_id is None or self.client is None:
            return self.alive
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply.get("parent_header", {}).get("msg_id") != self._preload_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        self._preload_id = None
        return True

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.manager, "provisioner", None)
        return getattr(provisioner, "pid", None) if provisioner else None

    @property
    def alive(self) -> bool:
        return self.manager is not None and self.manager.is_alive()

    def interpreter(self) -> str:
        """`sys.executable` of the kernel (the tests check it is venvs/jupyter's)."""
        result = self.run("import sys; print(sys.executable)", timeout=30)
        return result.stdout.strip()

    def close(self) -> None:
        """"Close Python": end the kernel now; a run in progress ends as stopped."""
        self.closed_by_person = True
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the kernel and everything it started (children that left its process group too)."""
        manager, client = self.manager, self.client
        self.manager = self.client = None
        if client is not None:
            client.stop_channels()
        if manager is not None:
            pid = getattr(manager.provisioner, "pid", None) if manager.provisioner else None
            if pid:
                kill_tree(pid)
            _quiet_shutdown(manager)
        self._remove_runtime()

    def _remove_runtime(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            shutil.rmtree(runtime, ignore_errors=True)

    # -- running -----------------------------------------------------------------------------------
    def run(self, code: str, timeout: float, should_stop: Callable[[], bool] | None = None) -> CodeResult:
        """Run `code`, collecting its outputs, for at most `timeout` seconds. A timeout interrupts the
        code; code that ignores the interrupt gets the kernel killed. A kernel that died says so;
        either way the caller replaces a dead kernel (see `alive`)."""
        client = self.client
        if client is None or not self.alive:
            raise CodeExecutionError("the Python kernel is not running")
        self.runs += 1
        collected = _Collector()
        started = time.monotonic()
        msg_id = client.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=True)
        deadline = started + timeout
        interrupted_at: float | None = None
        outcome, message = OK, ""
        while True:
            now = time.monotonic()
            if interrupted_at is None:
                stop_asked = should_stop is not None and should_stop()
                if stop_asked or now >= deadline:
                    outcome = STOPPED if stop_asked else TIMEOUT
                    message = "stopped" if stop_asked else f"timed out after {_seconds(timeout)} s"
                    self._interrupt()
                    interrupted_at = now
            elif now - interrupted_at >= INTERRUPT_GRACE_SECONDS:
                message += " (it ignored the interrupt, so the kernel was restarted)"
                self.shutdown()
                break
            if self.closed_by_person:
                outcome, message = STOPPED, "stopped: Close Python ended the kernel"
                break
            try:
                msg = client.get_iopub_msg(timeout=0.1)
            except Exception as exc:
                if self.closed_by_person:
                    continue
                if not isinstance(exc, queue.Empty):
                    raise
                if not self.alive:
                    code_ = _exit_code(self.manager)
                    outcome = DIED
                    message = "the Python kernel died" + (f" (exit code {code_})" if code_ is not None else "") + \
                              "; a fresh one is started for the next run"
                    self.shutdown()
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                collected.stream(content.get("name", "stdout"), content.get("text", ""))
            elif kind in ("display_data", "execute_result", "update_display_data"):
                collected.rich(content.get("data", {}))
            elif kind == "error":
                if interrupted_at is None or content.get("ename") != "KeyboardInterrupt":
                    collected.traceback(content)
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if outcome == OK and collected.error:
            outcome = ERROR
        return collected.result(code, outcome, time.monotonic() - started, message)

    def _interrupt(self) -> None:
        try:
            assert self.manager is not None
            self.manager.interrupt_kernel()
        except Exception:  # a kernel that cannot be interrupted is killed after the grace period
            pass


def _seconds(value: float) -> str:
    return f"{value:g}"


def _exit_code(manager: KernelManager | None) -> int | None:
    provisioner = getattr(manager, "provisioner", None)
    process = getattr(provisioner, "process", None)
    return process.poll() if process is not None else None


def _quiet_shutdown(manager: KernelManager) -> None:
    try:
        manager.shutdown_kernel(now=True)
    except Exception:
        pass
    try:
        manager.cleanup_resources()
    except Exception:
        pass

