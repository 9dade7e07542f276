"""The studio's code runner: a ready kernel when code arrives, a fresh one per run by default, web
apps sent to the background, and "Close Python" for all of it.

Fresh-per-run keeps the original's behaviour (every run forgets the last one's variables) without
its cost: a spare kernel starts, and imports the common data libraries, while the model is still
writing, so the code starts in a warm process.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Callable

from app import settings
from app.core.code_apps import AppKind, detect_app
from app.core.code_exec import APP, STOPPED, CodeResult
from app.core.errors import CodeExecutionError
from app.execution.kernel import CodeKernel
from app.execution.sandbox import sandbox_status

PRELOAD = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot")
READY_WAIT = 60.0  # seconds a run waits for a kernel that is still starting


class KernelPool:
    """Implements app.core.code_exec.CodeRunner for one studio process. Runs are serialised: code
    from two tabs takes turns, like the model does."""

    def __init__(self, workdir: Path | None = None, preload: tuple[str, ...] = PRELOAD) -> None:
        self.workdir = workdir
        self.preload = preload
        self._apps = None
        self._lock = threading.Lock()  # guards the kernels below
        self._run_lock = threading.Lock()
        self._current: CodeKernel | None = None  # the persistent kernel, when variables are kept
        self._spare: Future | None = None
        self._spare_offline = False  # the network setting the spare kernel was started with
        self._busy: CodeKernel | None = None  # the kernel running code now
        self._closed = False

    @property
    def apps(self):
        """The web apps the code started (created at first use)."""
        if self._apps is None:
            from app.execution.apps import BackgroundApps

            self._apps = BackgroundApps()
        return self._apps

    def running_apps(self) -> list:
        """The web apps the code started that still run."""
        return self._apps.running() if self._apps is not None else []

    # -- kernels -----------------------------------------------------------------------------------
    def prepare(self, persistent: bool = False, offline: bool = False) -> None:
        """Have a kernel ready for the next run (a spare starts in the background if none is)."""
        with self._lock:
            if self._closed or (persistent and self._current_fits(offline)):
                return
            self._drop_spare_unless(offline)
            if self._spare is None:
                self._spare, self._spare_offline = self._start_spare(offline), offline

    def wait_ready(self, timeout: float = READY_WAIT) -> bool:
        """Block until the spare kernel has started and loaded its libraries (True), or it failed."""
        with self._lock:
            spare = self._spare
        if spare is None:
            return self._current is not None and self._current.alive
        try:
            kernel = spare.result(timeout=timeout)
        except Exception:
            return False
        return kernel.idle_after_preload(timeout)

    def _new_kernel(self, offline: bool) -> CodeKernel:
        """A started kernel in the code folder, with the common libraries imported."""
        if offline and not sandbox_status().available:
            raise CodeExecutionError("\"offline code\" needs the sandbox, which is not available here: "
                                     + sandbox_status().message)
        return CodeKernel(self.workdir or settings.code_dir(), offline=offline).start(self.preload)

    def _start_spare(self, offline: bool) -> Future:
        future: Future = Future()

        def start() -> None:
            try:
                future.set_result(self._new_kernel(offline))
            except BaseException as exc:  # delivered to whoever takes the spare
                future.set_exception(exc)

        threading.Thread(target=start, name="spare kernel", daemon=True).start()
        return future

    def _take_kernel(self, persistent: bool, should_stop: Callable[[], bool] | None,
                     offline: bool) -> CodeKernel | None:
        with self._lock:
            if self._closed:
                raise CodeExecutionError("the code runner is closed")
            if persistent and self._current_fits(offline):
                return self._current
            if self._current is not None:  # variables are no longer kept, or the network changed
                self._retire(self._current)
                self._current = None
            self._drop_spare_unless(offline)
            spare, self._spare = self._spare or self._start_spare(offline), None
        while True:
            try:
                kernel = spare.result(timeout=0.1)
                break
            except TimeoutError:
                if should_stop is not None and should_stop():
                    self._retire_future(spare)
                    return None
        if not kernel.alive:  # died while waiting as a spare
            kernel.shutdown()
            kernel = self._new_kernel(offline)
        if persistent:
            with self._lock:
                self._current = kernel
        return kernel

    def _current_fits(self, offline: bool) -> bool:
        """The persistent kernel runs and has the network setting asked for (caller holds the lock)."""
        return self._current is not None and self._current.alive and self._current.offline == offline

    def _drop_spare_unless(self, offline: bool) -> None:
        """Retire a spare started with the other network setting (caller holds the lock)."""
        if self._spare is not None and self._spare_offline != offline:
            self._retire_future(self._spare)
            self._spare = None

    def _retire_future(self, spare: Future) -> None:
        """Shut down a spare kernel once it has started (it may still be starting)."""
        spare.add_done_callback(lambda f: f.exception() is None and self._retire(f.result()))

    @staticmethod
    def _retire(kernel: CodeKernel) -> None:
        threading.Thread(target=kernel.shutdown, name="kernel shutdown", daemon=True).start()

    def kept_kernel(self) -> CodeKernel | None:
        """The kernel that keeps variables between runs ("Keep variables between runs"), when it runs."""
        with self._lock:
            kernel = self._current
        return kernel if kernel is not None and kernel.alive else None

    # -- running -----------------------------------------------------------------------------------
    def run(self, code: str, timeout: float, persistent: bool = False,
            should_stop: Callable[[], bool] | None = None, offline: bool = False) -> CodeResult:
        """Run `code` in a ready kernel (or, for a web app, in the background). Errors in the code,
        time-outs and kernel deaths come back as results; only a missing environment raises.
        `offline`: the code gets no network (sandbox only)."""
        kind = detect_app(code)
        if kind is not None:
            return self._run_app(code, kind, offline)
        with self._run_lock:
            kernel = self._take_kernel(persistent, should_stop, offline)
            if kernel is None:
                return CodeResult(code=code, status=STOPPED, message="stopped before the code started")
            with self._lock:
                self._busy = kernel
            try:
                result = kernel.run(code, timeout, should_stop)
            finally:
                with self._lock:
                    self._busy = None
                if not persistent or not kernel.alive:
                    with self._lock:
                        if self._current is kernel:
                            self._current = None
                    self._retire(kernel)
                self.prepare(persistent, offline)  # the next run's kernel warms up now
        return result

    def _run_app(self, code: str, kind: AppKind, offline: bool) -> CodeResult:
        started = time.monotonic()
        if offline:
            return CodeResult(code=code, status="error", message=f"the {kind.label} was not started",
                              stderr=f"A {kind.label} needs the network to be opened in the browser: turn "
                                     "\"offline code\" off to run it.\n")
        try:
            app = self.apps.start(code, kind, workdir=self.workdir or settings.code_dir())
        except CodeExecutionError as exc:
            return CodeResult(code=code, status="error", stderr=str(exc), seconds=time.monotonic() - started,
                              message=f"the {kind.label} did not start")
        if app.url:
            text = f"{kind.label} running at {app.url} (Close Python stops it)\n"
        else:
            text = f"{kind.label} started (process {app.pid}) but has not shown a local address yet\n"
        return CodeResult(code=code, status=APP, stdout=text, seconds=time.monotonic() - started, app_url=app.url)

    # -- closing -----------------------------------------------------------------------------------
    def close_python(self) -> int:
        """"Close Python": kill every kernel, app and process the code started. Returns how many
        kernels and apps were stopped. The next run gets a fresh kernel."""
        with self._lock:
            kernels = list({id(k): k for k in (self._current, self._busy) if k is not None}.values())
            spare, self._spare, self._current = self._spare, None, None
        if spare is not None:
            try:
                kernels.append(spare.result(timeout=READY_WAIT))
            except Exception:
                pass
        for kernel in kernels:
            kernel.close()
        return len(kernels) + (self._apps.stop_all() if self._apps is not None else 0)

    def close(self) -> None:
        """Stop everything for good (the studio is shutting down)."""
        self._closed = True
        self.close_python()

