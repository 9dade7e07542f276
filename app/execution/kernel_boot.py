"""Start an IPython kernel for generated code, inside venvs/jupyter (run as a script by the
kernelspec; it must not import the studio, which is not installed there).

Before the kernel starts: resource limits where the OS has them (file size, address space,
process count, no core dumps). After it starts: stdout and stderr are capped per run (head and
tail kept, with a note), matplotlib figures left open at the end of a run are sent as PNG images,
and the Agg backend's "cannot be shown" warning is silenced (plt.show() must not block or nag).

Settings come from the environment (set by app/execution/kernel.py):
    CHAIN_STUDIO_OUTPUT_HEAD / _TAIL   characters of each stream kept from the start / the end
    CHAIN_STUDIO_MEMORY_BYTES          address-space limit (0: none)
    CHAIN_STUDIO_FILE_BYTES            largest file the code may write (0: none)
    CHAIN_STUDIO_MAX_PROCESSES         process limit for this user (0: none; ignored for root)
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import deque


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


def main() -> None:
    apply_limits()
    warnings.filterwarnings("ignore", message=".*non-interactive, and thus cannot be shown")
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
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
        for cap in caps:
            cap.finish()

    app.shell.events.register("pre_run_cell", before_run)
    app.shell.events.register("post_run_cell", after_run)
    app.start()


if __name__ == "__main__":
    main()
