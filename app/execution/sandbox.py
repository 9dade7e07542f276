"""Where the code the models write may reach: a bubblewrap sandbox on Linux, and the environment
every process of the code gets (built from an allow-list, never inherited wholesale).

In the sandbox (`bwrap`, Debian package `bubblewrap`) the code has:

* its own PID namespace: it cannot see or signal the studio (or read its /proc environ and command
  line), and when the sandbox ends every process in it ends, daemons included;
* the file system read-only, with the code folder writable and a private, empty /tmp and home; the
  studio's data folder (journal, models, settings, logs), the models folder, the home folder
  (~/.ssh, ~/.cache/huggingface, …) and /run/user are not visible at all;
* the network, unless "offline code" is on: then it gets a network namespace of its own with only
  a loopback device (the kernel then talks to the studio over IPC sockets in a bound folder).

Without bubblewrap (macOS, Windows, or not installed) code runs unsandboxed, and
`sandbox_status()` says so for the Code tab.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from app import settings
from app.installer import VENVS

INSTALL_HINT = "sudo apt-get install bubblewrap"
# Variables the code's processes may inherit from the studio (everything else is left out: tokens,
# keys, passwords, database URLs, agent sockets, the studio's own settings).
ALLOWED_VARIABLES = frozenset({
    "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_NUMERIC", "LC_TIME",
    "LC_MONETARY", "TZ", "TERM", "COLUMNS", "LINES", "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC",
    "PATHEXT", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE", "USERNAME", "USER", "LOGNAME",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "TMPDIR", "TEMP", "TMP",
})
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


@dataclass(frozen=True)
class SandboxStatus:
    """Whether code runs sandboxed here, and the sentence the Code tab shows about it."""

    available: bool
    message: str


@functools.lru_cache(maxsize=1)
def sandbox_status() -> SandboxStatus:
    """Checked once per studio process: bubblewrap is installed and can make the namespaces."""
    if not sys.platform.startswith("linux"):
        return SandboxStatus(False, "Code runs unsandboxed on this system: it can read and change what your "
                                    "user account can (see README, Safety).")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(False, "Code runs unsandboxed: bubblewrap is not installed "
                                    f"({INSTALL_HINT}); it can read and change what your user account can.")
    try:
        trial = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "true"],
                               capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxStatus(False, f"Code runs unsandboxed: bubblewrap did not start ({exc}).")
    if trial.returncode != 0:
        reason = trial.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unknown reason"]
        return SandboxStatus(False, f"Code runs unsandboxed: bubblewrap cannot make a sandbox here ({reason[0]}).")
    return SandboxStatus(True, "Code runs in a sandbox (bubblewrap): it cannot see the studio, its data "
                               "folder or your home folder, and only the code folder is writable.")


def code_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the code's processes: the allowed variables of the studio's environment,
    venvs/jupyter first on PATH, and `extra`."""
    env = {name: value for name, value in os.environ.items() if name.upper() in ALLOWED_VARIABLES}
    bin_dir = VENVS / "jupyter" / ("Scripts" if os.name == "nt" else "bin")
    inherited = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(VENVS))]
    env["PATH"] = os.pathsep.join(dict.fromkeys([str(bin_dir), *inherited, *SYSTEM_PATH]))
    env["VIRTUAL_ENV"] = str(VENVS / "jupyter")
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]  # inside the sandbox: an empty private folder
    env.update(extra or {})
    return env


def _base_python_prefix(venv: Path) -> Path | None:
    """The installation venvs/jupyter was made from (its interpreter links there)."""
    try:
        for line in (venv / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).resolve().parent
    except OSError:
        pass
    return None


def _existing(paths: Iterable[Path | None]) -> list[Path]:
    """The paths that exist and this user may look at, once each."""
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            found = path is not None and path.exists()
        except OSError:  # e.g. a folder of another user's
            found = False
        if found and path is not None:
            seen.setdefault(str(path), path)
    return list(seen.values())


def private_paths() -> list[Path]:
    """Folders replaced by an empty, writable one of the sandbox's own (gone when it ends)."""
    return _existing([Path("/tmp"), Path("/var/tmp"), Path.home()])


def hidden_paths() -> list[Path]:
    """Folders replaced by an empty, read-only one: where secrets and the studio's data live."""
    private = {str(p) for p in private_paths()}
    return [p for p in _existing([
        Path("/run/user"), Path("/root"), Path("/home"), settings.data_dir(), settings.models_dir(),
        settings.PROJECT_ROOT,
    ]) if str(p) not in private]


def sandbox_command(command: Sequence[str], writable: Sequence[Path], readable: Sequence[Path] = (),
                    offline: bool = False, workdir: Path | None = None) -> list[str]:
    """`command` wrapped in bubblewrap (see the module docstring). `writable` folders are bound
    read-write at the same path, `readable` ones read-only; both may lie in hidden folders."""
    bwrap = shutil.which("bwrap") or "bwrap"
    venv = VENVS / "jupyter"
    always_readable = [_base_python_prefix(venv), venv, Path(__file__).resolve().parent]
    # Each folder once, with the most permissive use asked for; mounted shallowest first, so a
    # folder inside another (the code folder in the hidden data folder, or the other way round in
    # tests) is mounted on top of it.
    mounts: dict[str, str] = {}
    for kind, paths in (("private", private_paths()), ("hidden", hidden_paths()),
                        ("ro", _existing([*always_readable, *readable])), ("rw", _existing(writable))):
        for path in paths:
            mounts[str(path)] = kind
    order = sorted(mounts, key=lambda p: (len(Path(p).parts), p))
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in order:
        kind = mounts[path]
        if kind in ("private", "hidden"):
            args += ["--tmpfs", path]
        else:
            args += ["--ro-bind" if kind == "ro" else "--bind", path, path]
    for path in order:  # after the mounts inside them, which keep their own mode
        if mounts[path] == "hidden":
            args += ["--remount-ro", path]
    # --cap-drop ALL: run as root, bubblewrap would otherwise leave the code every capability
    # (enough to remount the file system writable).
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
             "--cap-drop", "ALL"]
    # ipykernel ends itself when its parent looks like init (its parent, bubblewrap's, is pid 1
    # in the sandbox); the sandbox ends with the studio instead.
    args += ["--unsetenv", "JPY_PARENT_PID"]
    if offline:
        args.append("--unshare-net")
    if workdir is not None:
        args += ["--chdir", str(workdir)]
    return [*args, "--", *command]
