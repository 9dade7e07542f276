"""Start an IPython kernel for generated code, inside venvs/jupyter (run as a script by the
kernelspec; it must not import the studio, which is not installed there).

Before the kernel starts: resource limits where the OS has them (file size, address space,
process count, no core dumps). After it starts: stdout and stderr are capped per run (head and
tail kept, with a note), matplotlib figures left open at the end of a run are sent as PNG images,
and the Agg backend's "cannot be shown" warning is silenced (plt.show() must not block or nag).
Plotly figures are sent as a whole HTML page whose plotly.js the studio supplies (offline: no CDN),
next to Plotly's own JSON (which JupyterLab renders). The DataFrames each run made or replaced are
remembered, newest last, for the Code tab's "Open a DataFrame in D-Tale"; D-Tale itself serves on
127.0.0.1 only, whatever host the code asks for.

Settings come from the environment (set by app/execution/kernel.py):
    CHAIN_STUDIO_OUTPUT_HEAD / _TAIL   characters of each stream kept from the start / the end
    CHAIN_STUDIO_MEMORY_BYTES          address-space limit (0: none)
    CHAIN_STUDIO_FILE_BYTES            largest file the code may write (0: none)
    CHAIN_STUDIO_MAX_PROCESSES         process limit for this user (0: none; ignored for root)
    CHAIN_STUDIO_PLOTLY                "1": Plotly figures as HTML that loads plotly.js from PLOTLY_SRC
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections import deque

# Where a Plotly figure's page loads plotly.js from: a name the studio's page replaces with its own
# copy of venvs/jupyter's plotly.min.js (app/execution/printed.py PLOTLY_SRC says the same).
PLOTLY_SRC = "chain-studio-plotly.min.js"
PLOTLY_HEIGHT = 480


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def apply_limits() -> None:
    """Hard limits the code cannot raise again; each is skipped where the OS refuses it."""
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    wanted = {"RLIMIT_CORE": 0}  # a crash must not leave a core file the size of the process
    for limit, variable in (("RLIMIT_FSIZE", "CHAIN_STUDIO_FILE_BYTES"), ("RLIMIT_AS", "CHAIN_STUDIO_MEMORY_BYTES"),
                            ("RLIMIT_NPROC", "CHAIN_STUDIO_MAX_PROCESSES")):
        value = _int_env(variable, 0)
        if value > 0:
            wanted[limit] = value
    for limit, value in wanted.items():
        which = getattr(resource, limit, None)
        if which is None:
            continue
        try:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


class OutputCap:
    """Caps what one stream sends per run: the first `head` characters go through, the last `tail`
    are held back and sent at the end of the run after a note saying how much was cut."""

    def __init__(self, stream, head: int, tail: int) -> None:
        self.stream = stream
        self.write_through = stream.write
        self.head = head
        self.tail = tail
        self.reset()

    def reset(self) -> None:
        self.sent = 0
        self.cut = 0
        self.held: deque[str] = deque()
        self.held_size = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            return self.write_through(text)  # let the stream raise its own TypeError
        room = self.head - self.sent
        if room > 0:
            self.sent += min(room, len(text))
            self.write_through(text[:room])
            rest = text[room:]
        else:
            rest = text
        if rest:
            self._hold(rest)
        return len(text)

    def _hold(self, text: str) -> None:
        if len(text) >= self.tail:
            self.cut += self.held_size + len(text) - self.tail
            self.held.clear()
            self.held.append(text[-self.tail:])
            self.held_size = self.tail
            return
        self.held.append(text)
        self.held_size += len(text)
        while self.held_size > self.tail:
            extra = self.held_size - self.tail
            first = self.held[0]
            if len(first) <= extra:
                self.held.popleft()
                self.held_size -= len(first)
                self.cut += len(first)
            else:
                self.held[0] = first[extra:]
                self.held_size -= extra
                self.cut += extra

    def finish(self) -> None:
        """End of a run: send the note and the held tail."""
        if self.cut:
            self.write_through(
                f"\n[… {self.cut:,} characters not shown: the output was longer than the studio keeps "
                f"({self.head:,} from the start and {self.tail:,} from the end) …]\n"
            )
        if self.held:
            self.write_through("".join(self.held))
        self.reset()


def show_open_figures() -> None:
    """Send every open matplotlib figure as a PNG and close it (what the inline backend does)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    import io

    from IPython.display import Image, display

    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        buffer = io.BytesIO()
        try:
            figure.savefig(buffer, format="png", bbox_inches="tight")
        except Exception as exc:  # a broken figure must not hide the run's own output
            print(f"(figure {number} could not be drawn: {exc})", file=sys.stderr)
            continue
        display(Image(data=buffer.getvalue(), format="png"))
    pyplot.close("all")


class AfterImport(importlib.abc.MetaPathFinder):
    """Calls `callback(module)` once `name` has been imported, whoever imports it and however
    (plotly's renderers exist only once plotly.io._renderers has run)."""

    def __init__(self, name: str, callback) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, callback = spec.loader, self.callback
        run_module = loader.exec_module

        def exec_module(module) -> None:
            run_module(module)
            try:
                callback(module)
            except Exception as exc:  # the import itself worked: say why the extra did not
                print(f"(Chain Studio could not set up {fullname}: {exc})", file=sys.stderr)

        loader.exec_module = exec_module
        return spec


def use_studio_plotly_renderer(renderers_module) -> None:
    """Plotly's default renderer becomes its JSON (for JupyterLab) plus a whole HTML page with
    plotly.js loaded from PLOTLY_SRC (for the studio, which shows it in a sandboxed frame). The
    kernel's own default, the JSON alone, would show nothing in the studio."""
    from plotly.io import to_html
    from plotly.io._base_renderers import MimetypeRenderer

    class StudioRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            page = to_html(fig_dict, include_plotlyjs=PLOTLY_SRC, include_mathjax=False, full_html=True,
                           default_width="100%", default_height=PLOTLY_HEIGHT, validate=False)
            return {"text/html": page}

    renderers = renderers_module.renderers
    renderers["chain_studio"] = StudioRenderer()
    renderers.default = "plotly_mimetype+chain_studio"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def keep_dtale_on_loopback(app_module) -> None:
    """D-Tale serves on the computer's host name (reachable from the network) unless told
    otherwise: its show() is made to serve on 127.0.0.1, as the studio's web apps do."""
    import functools

    original = app_module.show

    @functools.wraps(original)
    def show(*args, **options):
        if str(options.get("host") or "") not in LOOPBACK_HOSTS:
            options["host"] = "127.0.0.1"
        return original(*args, **options)

    app_module.show = show


class FrameTracker:
    """The DataFrame variables of the code's namespace, the ones made or replaced most recently
    last (read by the studio's "Open a DataFrame in D-Tale")."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace
        self.ids: dict[str, int] = {}
        self.order: list[str] = []

    def update(self) -> None:
        pandas = sys.modules.get("pandas")
        if pandas is None:
            return
        current = {name: id(value) for name, value in list(self.namespace.items())
                   if not name.startswith("_") and isinstance(value, pandas.DataFrame)}
        changed = [name for name, ident in current.items() if self.ids.get(name) != ident]
        self.order = [name for name in self.order if name in current and name not in changed] + changed
        self.ids = current

    def newest(self) -> str | None:
        self.update()
        return self.order[-1] if self.order else None


def main() -> None:
    apply_limits()
    warnings.filterwarnings("ignore", message=".*non-interactive, and thus cannot be shown")
    from ipykernel.kernelapp import IPKernelApp

    if os.environ.get("CHAIN_STUDIO_PLOTLY") == "1":
        sys.meta_path.insert(0, AfterImport("plotly.io._renderers", use_studio_plotly_renderer))
    sys.meta_path.insert(0, AfterImport("dtale.app", keep_dtale_on_loopback))
    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    frames = FrameTracker(app.shell.user_ns)
    app.shell.chain_studio_frames = frames  # the studio's D-Tale code finds it through get_ipython()
    head = _int_env("CHAIN_STUDIO_OUTPUT_HEAD", 400_000)
    tail = _int_env("CHAIN_STUDIO_OUTPUT_TAIL", 100_000)
    caps = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        cap = OutputCap(stream, head, tail)
        stream.write = cap.write  # the fd-capture thread writes through this attribute too
        caps.append(cap)

    def before_run(*_args) -> None:
        for cap in caps:
            cap.reset()

    def after_run(*_args) -> None:
        show_open_figures()
        try:
            frames.update()
        except Exception:  # a namespace that cannot be read must not break the run's output
            pass
        for cap in caps:
            cap.finish()

    app.shell.events.register("pre_run_cell", before_run)
    app.shell.events.register("post_run_cell", after_run)
    app.start()


if __name__ == "__main__":
    main()
