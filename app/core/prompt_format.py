"""Prompt formats: how an answer's messages become the text the model reads.

- "auto": the model's own chat template when its file has one, else raw completion;
- "model": the model's own chat template (refused for a file without one);
- "raw": raw completion, no template: the messages' texts joined as plain text, which the model
  continues (base models, and models whose template does not suit);
- any of llama.cpp's built-in templates by name ("chatml", "llama3", "gemma", …), applied by
  llama.cpp itself.

The names of llama.cpp's built-in templates are listed here so a prompt list can be checked before
anything runs; a test keeps the list equal to what the installed llama.cpp reports.
"""

from __future__ import annotations

import re
from typing import Sequence

from app.core.backend import ChatMessage
from app.core.errors import SettingsError

AUTO = "auto"
MODEL = "model"
RAW = "raw"
ENGINE = "engine"  # a remote engine's chat completion: the server applies its own template
# llama.cpp's llama_chat_builtin_templates(), for the installed version (tests compare).
BUILTIN_TEMPLATES = (
    "bailing", "bailing-think", "bailing2", "chatglm3", "chatglm4", "chatml", "command-r", "deepseek",
    "deepseek-ocr", "deepseek2", "deepseek3", "exaone-moe", "exaone3", "exaone4", "falcon3", "gemma",
    "gigachat", "glmedge", "gpt-oss", "granite", "granite-4.0", "granite-4.1", "grok-2", "hunyuan-dense",
    "hunyuan-moe", "hunyuan-vl", "kimi-k2", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip",
    "llama3", "llama4", "megrez", "minicpm", "mistral-v1", "mistral-v3", "mistral-v3-tekken", "mistral-v7",
    "mistral-v7-tekken", "monarch", "openchat", "orion", "pangu-embedded", "phi3", "phi4", "rwkv-world",
    "seed_oss", "smolvlm", "solar-open", "vicuna", "vicuna-orca", "yandex", "zephyr",
)
FORMATS = (AUTO, MODEL, RAW, *BUILTIN_TEMPLATES)


def check_format(name: object, where: str = "template") -> str:
    """`name` as a prompt format, or SettingsError listing the choices."""
    if not isinstance(name, str) or name.strip().lower() not in FORMATS:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:59] + "…"
        raise SettingsError(f"{where} must be auto, model, raw or one of llama.cpp's {len(BUILTIN_TEMPLATES)} "
                            f"templates (chatml, llama3, gemma, phi3, mistral-v7, deepseek3, …: the list is "
                            f"under Settings → Prompt format and in the README), got {shown}")
    return name.strip().lower()


_MODEL_FORMAT = re.compile(r"^(?P<model>.*?)\s*\{\s*template\s*=\s*(?P<quote>[\"']?)(?P<name>[^\"'{}\s]*)"
                           r"(?P=quote)\s*\}\s*$")


def split_model_line(line: str) -> tuple[str, str | None]:
    """A model line with an optional prompt format for that model: `file.gguf {template="chatml"}`
    gives ("file.gguf", "chatml"); a plain line gives (line, None)."""
    found = _MODEL_FORMAT.match(line.strip())
    if not found:
        return line.strip(), None
    return found["model"].strip(), check_format(found["name"], f"{found['model'].strip()}: template")


def raw_completion(messages: Sequence[ChatMessage]) -> str:
    """Raw completion: the system prompt, the previous response and the prompt item as plain text,
    in order, a blank line between them; the model continues the text."""
    return "\n\n".join(m.content for m in messages if m.content)


def describe(used: str) -> str:
    """How the answer header names a format."""
    return {MODEL: "model's template", RAW: "raw completion", ENGINE: "the engine's chat template"}.get(
        used, f"{used} template")
