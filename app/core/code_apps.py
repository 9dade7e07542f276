"""Recognise code that starts a web app (Streamlit, Dash, Gradio, Flask, a plain http.server).

Such code serves until it is stopped, so run in the Jupyter kernel it would hold the kernel forever;
the studio starts it in the background instead (app/execution/apps.py). Detection is deliberately
conservative: it reads the syntax tree (so words in strings and comments never count) and asks for
the framework's import *and* the call that starts serving, except for Streamlit, whose scripts are
only ever meant for `streamlit run`. Anything unsure is left to the kernel.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import Enum


class AppKind(Enum):
    """The kind of web app a piece of code starts; the value names the framework."""

    STREAMLIT = "streamlit"
    DASH = "dash"
    GRADIO = "gradio"
    FLASK = "flask"
    HTTP_SERVER = "http.server"

    @property
    def label(self) -> str:
        """A name for people: "Streamlit app", "web server"."""
        return _LABELS[self]


_LABELS = {
    AppKind.STREAMLIT: "Streamlit app",
    AppKind.DASH: "Dash app",
    AppKind.GRADIO: "Gradio app",
    AppKind.FLASK: "Flask app",
    AppKind.HTTP_SERVER: "web server",
}


@dataclass
class _Usage:
    """What a module imports and which methods it calls (the receiver name when it is a plain name)."""

    imports: set[str] = field(default_factory=set)
    module_names: set[str] = field(default_factory=set)
    method_calls: list[tuple[str, str | None]] = field(default_factory=list)
    function_calls: set[str] = field(default_factory=set)

    def calls(self, *methods: str) -> bool:
        """True when one of `methods` is called on something other than an imported module, so
        `subprocess.run(...)` or `asyncio.run(...)` never look like `app.run(...)`."""
        return any(attr in methods and receiver not in self.module_names
                   for attr, receiver in self.method_calls)


class _Reader(ast.NodeVisitor):
    def __init__(self) -> None:
        self.usage = _Usage()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.usage.imports.add(alias.name.split(".")[0])
            self.usage.module_names.add(alias.asname or alias.name.split(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.usage.imports.add(node.module.split(".")[0])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = func.value.id if isinstance(func.value, ast.Name) else None
            self.usage.method_calls.append((func.attr, receiver))
        elif isinstance(func, ast.Name):
            self.usage.function_calls.add(func.id)
        self.generic_visit(node)


def _python_source(code: str) -> str | None:
    """The code with IPython's line magics and shell escapes (`%pip ...`, `!ls`) blanked out, so a
    notebook-style cell still parses; None for a cell magic (`%%writefile app.py` writes a file, it
    does not run one)."""
    lines = code.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        return None
    kept = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            kept.append(line[: len(line) - len(stripped)] + "pass")
        else:
            kept.append(line)
    return "\n".join(kept)


def detect_app(code: str) -> AppKind | None:
    """The kind of web app `code` starts, or None for code the kernel can run (including code that
    does not parse: the kernel reports its syntax error better)."""
    source = _python_source(code)
    if source is None:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    reader = _Reader()
    reader.visit(tree)
    usage = reader.usage
    if "streamlit" in usage.imports:
        return AppKind.STREAMLIT
    if "gradio" in usage.imports and usage.calls("launch"):
        return AppKind.GRADIO
    # before Flask: a Dash app may import flask to hand Dash its own server
    if "dash" in usage.imports and usage.calls("run", "run_server"):
        return AppKind.DASH
    if "flask" in usage.imports and usage.calls("run"):
        return AppKind.FLASK
    if usage.calls("serve_forever") or "serve_forever" in usage.function_calls:
        return AppKind.HTTP_SERVER
    return None
