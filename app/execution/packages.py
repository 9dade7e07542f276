"""The "missing package" action: code that ended with `ModuleNotFoundError: No module named 'X'`
gets a button in the Code tab that installs X's package into venvs/jupyter. Never automatic: the
person presses it, sees pip's output, and the journal keeps it as a code run.

pip runs with the registry this machine is set up for (pip's own configuration and PIP_*
variables), with constraints.txt, so a new package cannot move a package the studio was tested with
(pip says so instead), and inside the sandbox where there is one: a package's build scripts see
venvs/jupyter (writable) but not the home folder or the studio's data.

Standard library only at import: the transcript uses `missing_module` without starting anything.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from typing import Callable

from app.core.code_exec import ERROR, OK, TIMEOUT, CodeResult
from app.installer import CONSTRAINTS, VENVS, venv_python

INSTALL_TIMEOUT_SECONDS = 20 * 60.0
# Import names whose package on the registry is called something else.
PACKAGE_FOR_IMPORT = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "pymupdf",
    "Crypto": "pycryptodome",
    "serial": "pyserial",
    "jwt": "pyjwt",
    "magic": "python-magic",
    "OpenSSL": "pyopenssl",
    "attr": "attrs",
    "Levenshtein": "levenshtein",
    "sentence_transformers": "sentence-transformers",
    "pandas_profiling": "ydata-profiling",
    "wx": "wxpython",
    "win32api": "pywin32",
    "win32con": "pywin32",
    "telegram": "python-telegram-bot",
    "Bio": "biopython",
    "mpl_toolkits": "matplotlib",
    "google.protobuf": "protobuf",
}
# Modules pip cannot bring: they come with Python or the system (the button says what to do instead).
NOT_FROM_PIP = {
    "tkinter": "tkinter comes with the system's Python (on Debian/Ubuntu: sudo apt-get install python3-tk)",
    "_tkinter": "tkinter comes with the system's Python (on Debian/Ubuntu: sudo apt-get install python3-tk)",
    "distutils": "distutils is gone from Python 3.12; use setuptools",
}
_MISSING = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z_][A-Za-z0-9_.]*)'")
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# Variables pip needs to reach the registry this machine uses (the code's own environment has none).
_PIP_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                  "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def missing_module(result: CodeResult) -> str | None:
    """The module whose absence ended the run (`import X` failed), or None. A missing submodule of
    an installed package ("No module named 'sklearn.foo'") is not a missing package: None."""
    if result.status != ERROR:
        return None
    names = _MISSING.findall(result.stderr)
    if not names:
        return None
    name = names[-1]
    if "." in name and name not in PACKAGE_FOR_IMPORT:
        return None
    return name


def package_for(module: str) -> str:
    """The registry's name for the package that provides `module` (sklearn -> scikit-learn)."""
    if module in PACKAGE_FOR_IMPORT:
        return PACKAGE_FOR_IMPORT[module]
    top = module.split(".")[0]
    return PACKAGE_FOR_IMPORT.get(top, top)


def not_from_pip(module: str) -> str | None:
    """Why pip cannot install `module`, or None when it can try."""
    return NOT_FROM_PIP.get(module.split(".")[0])


def check_package_name(package: str) -> str:
    """`package` when it is a plain registry name (never an option, a path or a URL)."""
    if not _PACKAGE_NAME.fullmatch(package or ""):
        raise ValueError(f"not a package name: {package!r}")
    return package


def pip_install_command(package: str) -> list[str]:
    """The command line that installs `package` into venvs/jupyter."""
    command = [str(venv_python("jupyter")), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--progress-bar", "off", "--prefer-binary"]
    if CONSTRAINTS.exists():
        command += ["-c", str(CONSTRAINTS)]
    return [*command, check_package_name(package)]


def pip_environment() -> dict[str, str]:
    """pip's environment: the code's (an allow-list) plus what pip needs to reach the registry."""
    from app.execution.sandbox import code_environment

    extra = {name: value for name, value in os.environ.items()
             if name.startswith("PIP_") or name in _PIP_VARIABLES}
    return code_environment(extra)


def sandboxed_pip(command: list[str]) -> list[str]:
    """`command` in the sandbox where there is one, with venvs/jupyter writable and the
    constraints readable."""
    from app.execution.sandbox import sandbox_command, sandbox_status

    if not sandbox_status().available:
        return command
    return sandbox_command(command, writable=[VENVS / "jupyter"], readable=[CONSTRAINTS])


def install_package(package: str, on_output: Callable[[str], None] | None = None,
                    timeout: float = INSTALL_TIMEOUT_SECONDS) -> CodeResult:
    """Run pip for `package`; `on_output(text so far)` is called as pip prints. The result's code is
    the pip command, its stdout pip's output; status OK when pip succeeded."""
    command = pip_install_command(package)
    shown = " ".join(["pip", *command[command.index("install"):]])
    started = time.monotonic()
    try:
        process = subprocess.Popen(sandboxed_pip(command), env=pip_environment(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(VENVS / "jupyter"))
    except OSError as exc:
        return CodeResult(code=shown, status=ERROR, stderr=f"pip did not start: {exc}\n",
                          message="pip did not start")
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(raw.decode("utf-8", errors="replace"))
        lines.put(None)

    threading.Thread(target=read, name="pip output", daemon=True).start()
    output: list[str] = []
    ended = False
    while not ended:
        if time.monotonic() - started > timeout:
            process.kill()
            process.wait()
            return CodeResult(code=shown, status=TIMEOUT, stdout="".join(output),
                              seconds=time.monotonic() - started, message=f"pip took more than {timeout:g} s")
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            ended = True
        else:
            output.append(line)
            if on_output is not None:
                on_output("".join(output))
    code = process.wait()
    status = OK if code == 0 else ERROR
    message = "" if code == 0 else f"pip ended with exit code {code}"
    return CodeResult(code=shown, status=status, stdout="".join(output), seconds=time.monotonic() - started,
                      message=message)
