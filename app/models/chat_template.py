"""Render chat messages into a prompt with a model's own chat template, inside Jinja's sandbox.

A GGUF's chat template is untrusted text: it runs in `ImmutableSandboxedEnvironment`, which refuses
access to Python internals (a template reaching for `__class__.__mro__` gets a SecurityError).
Models without a template get a plain, readable transcript format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

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


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


_ENV = _environment()


def plain_transcript(messages: Sequence[ChatMessage]) -> str:
    """Fallback format for models that ship no chat template."""
    parts = []
    for message in messages:
        if message.role == "system":
            parts.append(f"{message.content}\n\n")
        else:
            parts.append(f"{message.role.capitalize()}: {message.content}\n")
    parts.append("Assistant:")
    return "".join(parts)


def render_chat(
    messages: Sequence[ChatMessage], template: str | None, bos_token: str, eos_token: str
) -> RenderedPrompt:
    """Apply `template` (or the plain fallback) to `messages`, ready for the assistant's turn."""
    if not template:
        return RenderedPrompt(plain_transcript(messages), add_bos=True)
    try:
        text = _ENV.from_string(template).render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except Exception as exc:  # TemplateError, SecurityError, or any error raised inside the template
        raise GenerationError(f"the model's chat template could not be applied: {exc}") from exc
    # Templates that write the BOS token themselves must not get a second one from the tokenizer.
    starts_with_bos = bool(bos_token) and text.startswith(bos_token)
    return RenderedPrompt(text, add_bos=not starts_with_bos)
