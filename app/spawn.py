"""Start child processes from one long-lived thread.

On Linux a child can ask to be killed when its parent goes away (PR_SET_PDEATHSIG: the model
worker does, and bubblewrap's --die-with-parent does for the code sandbox). The kernel sends that
signal when the *thread* that started the child ends, not only the process. Requests arrive on
short-lived threads (page handlers, the spare-kernel starter), so every such child is started
here, by a thread that lives as long as the studio.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process-spawner")


def on_spawner_thread(start: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call `start(*args, **kwargs)` (something that starts a process) on the spawner thread and
    return its result (its exception is raised here)."""
    return _SPAWNER.submit(start, *args, **kwargs).result()
