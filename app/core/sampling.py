"""Typed generation and load settings, with bounds and descriptions in one place.

`SamplingParams` is what one generation uses; `LoadParams` is what loading a model uses. Every field
has a `ParamSpec` (kind, bounds, description) so that the prompt-list parser, the CLI `--set` flag
and the UI validate against the same rules and produce the same messages.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from app.core.errors import SettingsError

SEED_RANDOM = -1
"""Seed value meaning 'draw a fresh seed for every generation'."""
MAX_STOP_STRINGS = 10_000
MAX_STOP_LENGTH = 500
MAX_STOP_CHARACTERS = 250_000
"""Bounds of the stop strings: the scanner's automaton grows with their total length (250,000
characters take about a second and 60 MB to compile), while its cost per token does not."""


@dataclass(frozen=True)
class ParamSpec:
    """How one numeric setting is checked and explained."""

    name: str
    kind: type  # int or float
    minimum: float
    maximum: float
    description: str

    def check(self, value: Any, written: str | None = None) -> int | float:
        """Return `value` converted to this setting's kind, or raise SettingsError saying why not.
        `written` is the value as the person typed it, when it was text (shown in messages)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{self.name} must be a number, got {_short_repr(value)}")
        given = written if written is not None else value  # messages show the value as written
        if isinstance(value, float) and math.isinf(value):
            raise self.out_of_range(given)
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise SettingsError(f"{self.name} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if math.isnan(value):
                raise SettingsError(f"{self.name} must be a number, got NaN")
        if not self.minimum <= value <= self.maximum:
            raise self.out_of_range(given)
        return value

    def out_of_range(self, given: Any) -> SettingsError:
        """The error for a value outside the bounds (also for numbers too long to convert)."""
        return SettingsError(
            f"{self.name}={shown_number(given)} is out of range: allowed {_fmt(self.minimum)} to "
            f"{_fmt(self.maximum)} ({self.description})"
        )


def shown_number(value: Any, width: int = 24) -> str:
    """A number (or number text) short enough for a message: huge ones by their digit count.
    (str() of an int beyond 4,300 digits raises ValueError, so its size is estimated instead.)"""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 80:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"({'a negative' if value < 0 else 'a'} number of about {digits:,} digits)"
    text = str(value).strip()
    if len(text) <= width:
        return text
    digits = sum(char.isdigit() for char in text)
    return f"{text[:12]}… (a number of {digits:,} digits)" if digits > width else f"{text[: width - 1]}…"


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


SAMPLING_SPECS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec("max_tokens", int, 0, 1_000_000, "tokens to generate at most; 0 = until the context is full"),
        ParamSpec("temperature", float, 0.0, 5.0, "0 = always the most likely token; higher = more random"),
        ParamSpec("top_k", int, 0, 1_000_000, "keep the k most likely tokens; 0 = keep all"),
        ParamSpec("top_p", float, 0.0, 1.0, "keep the smallest set of tokens whose probabilities reach p"),
        ParamSpec("min_p", float, 0.0, 1.0, "drop tokens less likely than min_p x the top token's probability"),
        ParamSpec("typical_p", float, 0.0, 1.0, "locally typical sampling; 1 = off"),
        ParamSpec("tfs_z", float, 0.0, 1.0, "tail-free sampling; 1 = off"),
        ParamSpec("presence_penalty", float, -2.0, 2.0, "subtracted once from every token already generated"),
        ParamSpec("frequency_penalty", float, -2.0, 2.0, "subtracted per occurrence of a token already generated"),
        ParamSpec("repeat_penalty", float, 0.0, 3.0, "divides the logits of recent tokens; 1 = off"),
        ParamSpec("repeat_last_n", int, 0, 1_000_000, "how many recent tokens the penalties look at"),
        ParamSpec("seed", int, SEED_RANDOM, 2**32 - 1, "random seed; -1 = a new seed each time"),
        ParamSpec("xtc_probability", float, 0.0, 1.0, "XTC: chance per token of excluding the top choices; 0 = off"),
        ParamSpec("xtc_threshold", float, 0.0, 1.0, "XTC: tokens at least this likely count as top choices"),
        ParamSpec("top_n_sigma", float, 0.0, 10.0, "keep logits within n standard deviations of the best; 0 = off"),
        ParamSpec("dry_multiplier", float, 0.0, 5.0, "DRY: strength of the repetition penalty; 0 = off"),
        ParamSpec("dry_base", float, 1.0, 4.0, "DRY: growth of the penalty with the repeated length"),
        ParamSpec("dry_allowed_length", int, 0, 100, "DRY: repeats up to this length are not penalised"),
        ParamSpec("dry_last_n", int, 0, 1_000_000, "DRY: how many recent tokens are searched; 0 = all"),
        ParamSpec("mirostat", int, 0, 2, "Mirostat 1 or 2 replaces top_k...min_p by a target surprise; 0 = off"),
        ParamSpec("mirostat_tau", float, 0.0, 20.0, "Mirostat: target surprise (bits)"),
        ParamSpec("mirostat_eta", float, 0.0, 1.0, "Mirostat: learning rate"),
    )
}
FILTER_STAGES = ("top_k", "tfs_z", "typical_p", "top_p", "min_p", "xtc", "top_n_sigma")
"""The stages whose order can be set (penalties and DRY come first, temperature and the draw last)."""

LOAD_SPECS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec("n_ctx", int, 0, 1_048_576, "context window in tokens; 0 = the model's trained context"),
        ParamSpec("n_threads", int, 0, 1024, "CPU threads; 0 = one per physical core"),
        ParamSpec("n_batch", int, 1, 65_536, "prompt tokens evaluated per batch"),
        ParamSpec("n_gpu_layers", int, -1, 100_000,
                  "layers offloaded to the GPU (-1 = all; needs a GPU build of llama.cpp)"),
        ParamSpec("seed", int, SEED_RANDOM, 2**32 - 1, "random seed of the model context"),
    )
}


@dataclass(frozen=True)
class SamplingParams:
    """Settings for one generation. Defaults are the deterministic preset (greedy decoding)."""

    max_tokens: int = 4000
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 1.0
    min_p: float = 0.0
    typical_p: float = 1.0
    tfs_z: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    seed: int = SEED_RANDOM
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    top_n_sigma: float = 0.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = 0
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    order: tuple[str, ...] = FILTER_STAGES
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name, spec in SAMPLING_SPECS.items():
            object.__setattr__(self, name, spec.check(getattr(self, name)))
        order = (self.order,) if isinstance(self.order, str) else self.order
        if not isinstance(order, (list, tuple)) or not all(isinstance(item, str) for item in order):
            raise SettingsError(f"order must be a list of stage names, got {_short_repr(self.order)}")
        order = tuple(order)
        if len(order) == 1 and "," in order[0]:
            order = tuple(part.strip() for part in order[0].split(","))
        if sorted(order) != sorted(FILTER_STAGES):
            raise SettingsError(f"order must list each of {', '.join(FILTER_STAGES)} once, got "
                                f"{_short_repr(', '.join(order))}")
        object.__setattr__(self, "order", order)
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, (list, tuple)) or not all(isinstance(item, str) for item in stop):
            raise SettingsError(f"stop must be a list of strings, got {_short_repr(self.stop)}")
        stop = tuple(item for item in stop if item)
        _check_stop_strings(stop)
        object.__setattr__(self, "stop", stop)

    @property
    def needs_pipeline(self) -> bool:
        """True when a setting is on that llama-cpp-python's own samplers do not implement (they ignore
        tfs_z and have no XTC, top-n-sigma, DRY or sampler order): the studio's pipeline samples."""
        if self.is_greedy and not self.dry_multiplier:
            return False
        return (self.tfs_z < 1.0 or self.xtc_probability > 0 or self.top_n_sigma > 0
                or self.dry_multiplier > 0 or self.order != FILTER_STAGES)

    @property
    def is_greedy(self) -> bool:
        """True when the most likely token is always taken (temperature 0)."""
        return self.temperature <= 0.0

    def with_overrides(self, overrides: Mapping[str, Any]) -> "SamplingParams":
        """A copy with some fields replaced; unknown names raise SettingsError listing the known ones."""
        known = set(SAMPLING_SPECS) | {"stop", "order"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SettingsError(
                f"unknown setting {', '.join(unknown)}; known settings: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **dict(overrides))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready) of these settings."""
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        data["order"] = list(self.order)
        return data


def _short_repr(value: Any, width: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond 4,300 digits, or a list holding one
        return shown_number(value) if isinstance(value, int) else "a value holding a huge number"
    return text if len(text) <= width else text[: width - 1] + "…"


def _check_stop_strings(stop: tuple[str, ...]) -> None:
    if len(stop) > MAX_STOP_STRINGS:
        raise SettingsError(
            f"stop: {len(stop):,} stop strings given; at most {MAX_STOP_STRINGS:,} are allowed"
        )
    longest = max(stop, key=len, default="")
    if len(longest) > MAX_STOP_LENGTH:
        raise SettingsError(
            f"stop: a stop string of {len(longest):,} characters ({_short_repr(longest, 40)}); each may have "
            f"at most {MAX_STOP_LENGTH} characters"
        )
    total = sum(map(len, stop))
    if total > MAX_STOP_CHARACTERS:
        raise SettingsError(
            f"stop: the stop strings have {total:,} characters in all; at most {MAX_STOP_CHARACTERS:,} "
            "are allowed (use fewer or shorter ones)"
        )


@dataclass(frozen=True)
class LoadParams:
    """Settings that take effect when a model is loaded (changing them means reloading)."""

    n_ctx: int = 4096
    n_threads: int = 0
    n_batch: int = 512
    n_gpu_layers: int = 0
    seed: int = SEED_RANDOM
    load_anyway: bool = False  # load even when the memory estimate exceeds what is free (the system swaps)

    def __post_init__(self) -> None:
        for name, spec in LOAD_SPECS.items():
            object.__setattr__(self, name, spec.check(getattr(self, name)))
