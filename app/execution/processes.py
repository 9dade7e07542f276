"""Process trees: find and kill everything a process started, including children that left its
process group (a `setsid`, a daemonised server)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil


def descendants(pid: int) -> list[psutil.Process]:
    """Every living process below `pid` (empty when `pid` is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(pid: int, include_root: bool = True, grace: float = 0.0) -> int:
    """Kill `pid` and everything below it; with `grace`, ask politely (SIGTERM) first. Returns how
    many processes were signalled. Children are collected before anything dies, because an orphan
    is re-parented and no longer found under `pid`."""
    victims = descendants(pid)
    if include_root:
        try:
            victims.append(psutil.Process(pid))
        except psutil.Error:
            pass
    if not victims:
        return 0
    if grace > 0:
        for proc in victims:
            _signal(proc, signal.SIGTERM)
        _gone, victims = psutil.wait_procs(victims, timeout=grace)
    for proc in victims:
        _signal(proc, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
    # Wait until they are dead; a zombie counts as dead (orphans wait for init to reap them, which
    # can take seconds in some containers).
    deadline = time.monotonic() + 2
    while any(pid_alive(proc.pid) for proc in victims) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(victims)


def _signal(proc: psutil.Process, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except psutil.Error:
        pass


def new_session_kwargs() -> dict:
    """Popen arguments that give a child its own process group (so signals reach its children)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (zombies count as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False



