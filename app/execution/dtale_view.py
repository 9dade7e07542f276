"""The Code tab's "Open a DataFrame in D-Tale": a DataFrame of the kernel that keeps variables (the
newest one the code made, or one the person names) opened in D-Tale, D-Tale's web page for exploring
a table, served from inside that kernel on 127.0.0.1.

D-Tale runs in the kernel itself (a server thread of `dtale.show`), so it sees the variables as
they are and ends with the kernel ("Close Python", or turning "Keep variables" off). In the sandbox
the kernel shares the computer's loopback, so the browser reaches it; with "offline code" it has a
network of its own, and D-Tale could not be reached: the studio says so instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from app.core.code_exec import OK, CodeResult
from app.core.errors import CodeExecutionError
from app.execution.apps import http_status
from app.execution.pool import KernelPool

START_TIMEOUT_SECONDS = 180.0  # importing D-Tale the first time takes a few seconds on a busy machine
SERVE_WAIT_SECONDS = 30.0  # D-Tale's server thread answers shortly after show() returns
ANSWER_PREFIX = "CHAIN_STUDIO_DTALE "

# Runs in the kernel; WANTED is replaced by the person's variable name (a Python literal) or None.
_KERNEL_CODE = '''\
def _chain_studio_dtale(wanted):
    import json
    import sys

    shell = get_ipython()

    def answer(**fields):
        print("CHAIN_STUDIO_DTALE " + json.dumps(fields))

    pandas = sys.modules.get("pandas")
    if pandas is None:
        return answer(error="the code has not made a DataFrame yet (pandas is not even imported)")
    if wanted:
        if wanted not in shell.user_ns:
            return answer(error="there is no variable named " + wanted)
        value = shell.user_ns[wanted]
        if isinstance(value, pandas.Series):
            value = value.to_frame()
        if not isinstance(value, pandas.DataFrame):
            return answer(error=wanted + " is a " + type(value).__name__ + ", not a DataFrame")
        name = wanted
    else:
        tracker = getattr(shell, "chain_studio_frames", None)
        name = tracker.newest() if tracker is not None else None
        if name is None:
            return answer(error="the code has not made a DataFrame variable yet")
        value = shell.user_ns[name]
    import dtale

    shown = dtale.show(value, host="127.0.0.1", open_browser=False, reaper_on=False, ignore_duplicate=True)
    answer(url=shown._main_url, name=name, rows=int(value.shape[0]), columns=int(value.shape[1]))


try:
    _chain_studio_dtale(WANTED)
finally:
    del _chain_studio_dtale
'''


@dataclass(frozen=True)
class DtaleView:
    """A DataFrame open in D-Tale: its page (on 127.0.0.1), the variable and its size."""

    url: str
    name: str
    rows: int
    columns: int


def dtale_code(name: str | None) -> str:
    """The code run in the kernel for `name` (None or "": the newest DataFrame)."""
    wanted = (name or "").strip()
    if wanted and not wanted.isidentifier():
        raise CodeExecutionError(f"{wanted!r} is not a variable name")
    return _KERNEL_CODE.replace("WANTED", repr(wanted or None))


def open_in_dtale(pool: KernelPool, name: str | None = None, timeout: float = START_TIMEOUT_SECONDS,
                  record: Callable[[CodeResult], None] | None = None,
                  serve_wait: float = SERVE_WAIT_SECONDS) -> DtaleView:
    """Open the DataFrame `name` (or the newest one) of the kept kernel in D-Tale and wait until its
    page answers. Raises CodeExecutionError with what to do when it cannot; `record` gets the run
    (for the journal)."""
    kernel = pool.kept_kernel()
    if kernel is None:
        raise CodeExecutionError("no variables are kept: turn on \"Keep variables between runs\", run code "
                                 "that makes a DataFrame, then open it in D-Tale")
    if kernel.offline:
        raise CodeExecutionError("the code runs offline (a network of its own), so the browser could not reach "
                                 "D-Tale: turn \"offline code\" off and run the code again")
    result = pool.run(dtale_code(name), timeout, persistent=True, offline=False)
    if record is not None:
        record(result)
    answer = next((line[len(ANSWER_PREFIX):] for line in result.stdout.splitlines()
                   if line.startswith(ANSWER_PREFIX)), None)
    if result.status != OK or answer is None:
        detail = (result.stderr.strip().splitlines() or [result.message or result.status])[-1]
        raise CodeExecutionError(f"D-Tale did not start: {detail}")
    fields = json.loads(answer)
    if "error" in fields:
        raise CodeExecutionError(str(fields["error"]))
    url = str(fields["url"])
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":  # what the kernel says is not trusted blindly
        raise CodeExecutionError(f"D-Tale gave an address that is not on this computer: {url}")
    deadline = time.monotonic() + serve_wait
    while http_status(url) is None:
        if time.monotonic() >= deadline:
            raise CodeExecutionError(f"D-Tale started but {url} did not answer within {serve_wait:g} s")
        time.sleep(0.2)
    return DtaleView(url, str(fields["name"]), int(fields["rows"]), int(fields["columns"]))
