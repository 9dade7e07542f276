"""Render chat messages into a prompt with a model's own chat template, inside Jinja's sandbox.

A GGUF's chat template is untrusted text. It runs in `ImmutableSandboxedEnvironment`, which refuses
access to Python internals (a template reaching for `__class__.__mro__` gets a SecurityError), and
within limits the sandbox alone does not set:

* **Integer and repetition size.** Jinja folds constant expressions while it compiles, even in the
  sandbox, so `{% set a = 3 ** 1000000000 %}` would pin a core before the template ever runs and
  `'x' * 2000000000` would take gigabytes. `**`, `*`, `+` and `//` are intercepted operators here:
  Jinja does not fold intercepted operators, and `call_binop` refuses results beyond
  `MAX_INTEGER_BITS` bits or `MAX_OUTPUT_CHARS` items.
* **Time.** Rendering stops after `RENDER_SECONDS` (a timer interrupts the render on POSIX; on other
  systems the parent's limits still end a worker that hangs).
* **Output size.** The rendered prompt may not exceed `MAX_OUTPUT_CHARS` characters.

Models without a template get a plain, readable transcript format.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Sequence

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.core.backend import ChatMessage
from app.core.errors import GenerationError


@dataclass(frozen=True)
class RenderedPrompt:
    """The prompt text and whether the tokenizer should still add the BOS token."""

    text: str
    add_bos: bool


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


MAX_INTEGER_BITS = 4096  # far beyond any count a chat template needs
MAX_OUTPUT_CHARS = 8_000_000  # a prompt of about 2 million tokens: more than any context
RENDER_SECONDS = 5.0


class TemplateLimitError(TemplateError):
    """A chat template went beyond the renderer's limits (size or time)."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with arithmetic and repetition that cannot explode."""

    intercepted_binops = frozenset(["**", "*", "+", "//"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and right * max(1, abs(left).bit_length() - 1) > MAX_INTEGER_BITS:
                raise TemplateLimitError(f"the chat template computes a number larger than {MAX_INTEGER_BITS} bits")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                        and len(sequence) * count > MAX_OUTPUT_CHARS:
                    raise TemplateLimitError("the chat template repeats a text or list beyond the size limit")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and result.bit_length() > MAX_INTEGER_BITS:
            raise TemplateLimitError(f"the chat template computes a number larger than {MAX_INTEGER_BITS} bits")
        if isinstance(result, (str, list, tuple)) and len(result) > MAX_OUTPUT_CHARS:
            raise TemplateLimitError("the chat template builds a text or list beyond the size limit")
        return result


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


_ENV = _environment()


def render_chat(
    messages: Sequence[ChatMessage], template: str | None, bos_token: str, eos_token: str
) -> RenderedPrompt:
    """Apply the model's own `template` to `messages`, ready for the assistant's turn. (A model
    without one is sent raw completion: app.core.prompt_format.)"""
    if not template:
        raise GenerationError("this model's file has no chat template of its own")
    try:
        with _time_limit(RENDER_SECONDS):
            compiled = _ENV.from_string(template)
            parts: list[str] = []
            size = 0
            for part in compiled.generate(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True,
                bos_token=bos_token,
                eos_token=eos_token,
            ):
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateLimitError(f"the chat template writes more than {MAX_OUTPUT_CHARS:,} characters")
                parts.append(part)
            text = "".join(parts)
    except MemoryError:
        raise GenerationError("the model's chat template could not be applied: it needs more memory than the "
                              "model worker may use") from None
    except RecursionError:
        raise GenerationError("the model's chat template could not be applied: it nests too deeply") from None
    except Exception as exc:  # TemplateError, SecurityError, or any error raised inside the template
        raise GenerationError(f"the model's chat template could not be applied: {exc}") from exc
    # Templates that write the BOS token themselves must not get a second one from the tokenizer.
    starts_with_bos = bool(bos_token) and text.startswith(bos_token)
    return RenderedPrompt(text, add_bos=not starts_with_bos)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise TemplateLimitError in the block when it runs longer than `seconds` (POSIX, main thread:
    a real-time timer's signal interrupts even a template stuck in a loop). Elsewhere, no limit."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expired(_signum: int, _frame: object) -> None:
        raise TemplateLimitError(f"the chat template took longer than {seconds:g} s to render")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
