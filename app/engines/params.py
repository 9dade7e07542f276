"""How one answer's `SamplingParams` become the fields of an OpenAI-compatible request.

The OpenAI API's own fields (temperature, top_p, the two penalties, seed, max_tokens, stop) go to
every engine. The studio's other samplers go only to engines known to accept them, under the names
each engine uses (vLLM's `repetition_penalty`, llama-cpp-python's `mirostat_mode`, …). A setting
that is on but cannot be sent is returned by name, so the answer's footer can say so: nothing is
dropped silently. A setting at its neutral value (top_k 0, min_p 0, repeat_penalty 1, …) changes
nothing, so leaving it out is not worth a word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from app.core.sampling import FILTER_STAGES, SEED_RANDOM, SamplingParams

OPENAI_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
OPENAI_MAX_STOP = 4
NEUTRAL: dict[str, Any] = {
    "top_k": 0, "min_p": 0.0, "typical_p": 1.0, "tfs_z": 1.0, "repeat_penalty": 1.0, "xtc_probability": 0.0,
    "top_n_sigma": 0.0, "dry_multiplier": 0.0, "mirostat": 0,
}
DEPENDS_ON = {
    "repeat_last_n": "repeat_penalty", "xtc_threshold": "xtc_probability", "dry_base": "dry_multiplier",
    "dry_allowed_length": "dry_multiplier", "dry_last_n": "dry_multiplier", "mirostat_tau": "mirostat",
    "mirostat_eta": "mirostat",
}
"""Settings that matter only while another one is on."""

_LLAMA_SERVER = {name: name for name in (
    "top_k", "min_p", "typical_p", "repeat_penalty", "repeat_last_n", "mirostat", "mirostat_tau", "mirostat_eta",
    "xtc_probability", "xtc_threshold", "top_n_sigma", "dry_multiplier", "dry_base", "dry_allowed_length")}
DIALECTS: dict[str, dict[str, str]] = {
    "openai": {},
    "ollama": {},
    "lm-studio": {"top_k": "top_k", "repeat_penalty": "repeat_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "llama.cpp": {**_LLAMA_SERVER, "dry_last_n": "dry_penalty_last_n"},
    "llama-cpp-python": {"top_k": "top_k", "min_p": "min_p", "typical_p": "typical_p", "tfs_z": "tfs_z",
                         "repeat_penalty": "repeat_penalty", "mirostat": "mirostat_mode",
                         "mirostat_tau": "mirostat_tau", "mirostat_eta": "mirostat_eta"},
    "chain-studio": {name: name for name in (*NEUTRAL, *DEPENDS_ON)},
}
"""Per engine kind: the studio's setting → the request field that engine reads."""
OWNERS = {"llamacpp": "llama.cpp", "vllm": "vllm", "me": "llama-cpp-python", "library": "ollama",
          "ollama": "ollama", "organization_owner": "lm-studio", "local": "chain-studio"}
"""`owned_by` in an engine's model list → its kind (for engines saved with kind "auto")."""


@dataclass(frozen=True)
class RequestFields:
    """The sampling part of a request body, the seed it carries, and the settings left out."""

    fields: dict[str, Any]
    seed: int
    not_sent: tuple[str, ...]


def kind_from_owner(owned_by: str) -> str:
    """The engine kind an `owned_by` value points at ("openai": only the standard fields)."""
    return OWNERS.get((owned_by or "").strip().lower(), "openai")


def request_fields(params: SamplingParams, kind: str, rng: random.Random | None = None) -> RequestFields:
    """The fields for `params` on an engine of `kind`. A random seed (-1) is drawn here, so the
    answer records the seed the engine used and can be repeated."""
    dialect = DIALECTS.get(kind, {})
    seed = params.seed if params.seed != SEED_RANDOM else (rng or random.Random()).randrange(2**31)
    fields: dict[str, Any] = {name: getattr(params, name) for name in OPENAI_FIELDS}
    fields["seed"] = seed
    if params.max_tokens:
        fields["max_tokens"] = params.max_tokens
    not_sent: list[str] = []
    stop = list(params.stop)
    if stop:
        if not dialect and len(stop) > OPENAI_MAX_STOP:  # the OpenAI API takes four at most
            not_sent.append(f"stop strings beyond the first {OPENAI_MAX_STOP} ({len(stop) - OPENAI_MAX_STOP})")
            stop = stop[:OPENAI_MAX_STOP]
        fields["stop"] = stop
    for name, neutral in NEUTRAL.items():
        value = getattr(params, name)
        on = value != neutral
        if name in dialect:
            fields[dialect[name]] = value
        elif on:
            not_sent.append(f"{name}={value}")
    for name, master in DEPENDS_ON.items():
        value = getattr(params, name)
        if name in dialect and master in dialect:
            fields[dialect[name]] = value
        elif getattr(params, master) != NEUTRAL[master] and master in dialect:
            not_sent.append(f"{name}={value}")
    if params.order != FILTER_STAGES:
        not_sent.append("order (the sampler order)")
    return RequestFields(fields, seed, tuple(not_sent))
