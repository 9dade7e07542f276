"""What a chain run is (`ChainSpec`) and the order of its answers (`make_plan`).

Order, as in Samantha: for each loop, for each model (list order, or shuffled), for each response,
the whole prompt list (items 1..n). Two items and two responses give P1, P2, P1, P2 for a model, so
with feedback the second pass reads the first pass's last answer. With "single response per model",
model i answers item i once; extra models or items are left out.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from app.core.code_exec import CodeOptions
from app.core.constraints import check_grammar
from app.core.errors import GrammarError, SettingsError
from app.core.hub_links import display_name
from app.core.prompt_format import check_format
from app.core.prompt_list import ITEM_SETTINGS, PromptItem, PromptList, parse_prompt_list
from app.core.sampling import SEED_RANDOM, LoadParams, SamplingParams

# Ranges drawn from by "random hyperparameters" (the original's ranges).
RANDOM_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.1, 1.0),
    "tfs_z": (0.1, 1.0),
    "top_p": (0.1, 1.0),
    "min_p": (0.1, 1.0),
    "typical_p": (0.1, 1.0),
    "presence_penalty": (0.0, 0.3),
    "frequency_penalty": (0.0, 0.3),
    "repeat_penalty": (1.0, 1.2),
}
SHUFFLE_ATTEMPTS = 200


@dataclass(frozen=True)
class ChainSpec:
    """Everything that defines a run. `models` are model file paths, in order (repeats allowed)."""

    models: tuple[str, ...]
    prompts: str = ""
    system: str = ""
    previous: str = ""
    responses: int = 1
    loops: int = 1
    single_response: bool = False
    shuffle: bool = False
    feedback: bool = False
    cumulative: bool = False
    reset: bool = False
    random_params: bool = False
    learning_top: int = 0  # learning mode: candidates recorded per token (0 = off)
    stepping: str = "off"  # "off", "delay" (step_delay seconds per token) or "manual" (RunControl.step)
    step_delay: float = 0.0
    seed: int | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    load: LoadParams = field(default_factory=LoadParams)
    code: CodeOptions = field(default_factory=CodeOptions)  # running the code in answers (off by default)
    feed_reasoning: bool = False  # feed an answer's reasoning back to the next model too
    template: str = "auto"  # prompt format (app.core.prompt_format): auto, model, raw or a llama.cpp template
    model_templates: tuple[tuple[str, str], ...] = ()  # (model, format): a model's own choice of format

    def __post_init__(self) -> None:
        if not self.models:
            raise SettingsError("choose at least one model")
        if self.responses < 1 or self.loops < 1:
            raise SettingsError("responses and loops must be 1 or more")
        if self.stepping not in ("off", "delay", "manual"):
            raise SettingsError(f"stepping must be off, delay or manual, not {self.stepping!r}")
        if not 0 <= self.step_delay <= 60:
            raise SettingsError("the delay between tokens must be 0 to 60 seconds")
        if not 0 <= self.learning_top <= 100:
            raise SettingsError("learning mode shows 1 to 100 candidates per token (0 = off)")
        object.__setattr__(self, "template", check_format(self.template))
        object.__setattr__(self, "model_templates", tuple(
            (str(model), check_format(name, f"{model}: template")) for model, name in self.model_templates))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the journal and `runs show`)."""
        data = dataclasses.asdict(self)
        data["models"] = list(self.models)
        data["sampling"] = self.sampling.to_dict()
        return data


@dataclass(frozen=True)
class PlannedAnswer:
    """One answer the run will generate (numbers count from 1)."""

    index: int
    model: str
    item: PromptItem
    response: int
    loop: int
    model_slot: int  # position in this loop's model order: a model's answers share one slot

    @property
    def model_name(self) -> str:
        return display_name(self.model)


def shuffled_models(models: list[str], rng: random.Random, previous: str | None) -> list[str]:
    """A random order in which no model comes twice in a row (nor right after `previous`, the last
    model of the loop before). Needs three or more distinct models; fewer keep their order."""
    if len(set(models)) < 3:
        return list(models)
    order = list(models)
    for _ in range(SHUFFLE_ATTEMPTS):
        rng.shuffle(order)
        chain = ([previous] if previous else []) + order
        if all(a != b for a, b in zip(chain, chain[1:], strict=False)):
            return order
    return order  # repeats in the list can make a perfect order impossible: best effort


def make_plan(spec: ChainSpec, prompts: PromptList, rng: random.Random) -> list[PlannedAnswer]:
    """Every answer of the run, in order."""
    plan: list[PlannedAnswer] = []
    if spec.single_response:
        for slot, (model, item) in enumerate(zip(spec.models, prompts.items, strict=False)):
            plan.append(PlannedAnswer(len(plan) + 1, model, item, 1, 1, slot))
        return plan
    last_model: str | None = None
    for loop in range(1, spec.loops + 1):
        order = shuffled_models(list(spec.models), rng, last_model) if spec.shuffle else list(spec.models)
        for slot, model in enumerate(order):
            for response in range(1, spec.responses + 1):  # each response goes through the whole list
                for item in prompts.items:
                    plan.append(PlannedAnswer(len(plan) + 1, model, item, response, loop, slot))
        last_model = order[-1] if order else last_model
    return plan


def plan_of(spec: ChainSpec) -> list[PlannedAnswer]:
    """The answers `spec` would generate, in order (raises PromptSyntaxError for a bad prompt list
    before anything runs)."""
    return make_plan(spec, parse_prompt_list(spec.prompts), random.Random(spec.seed))


def draw_random_params(rng: random.Random) -> dict[str, float]:
    """One answer's random hyperparameters, rounded to two decimals for reading."""
    return {name: round(rng.uniform(low, high), 2) for name, (low, high) in RANDOM_RANGES.items()}


def answer_template(spec: ChainSpec, item: PromptItem, model: str | None = None) -> str:
    """The prompt format of one answer: the item's `{template=…}` (checked when the prompt list was
    parsed), else the model's, else the run's."""
    given = item.overrides.get("template")
    if given is not None:
        return str(given)
    return dict(spec.model_templates).get(model or "", spec.template)


def answer_params(spec: ChainSpec, item: PromptItem, rng: random.Random) -> SamplingParams:
    """Settings for one answer: the run's, then random draws, then the item's own {…} settings.
    With a run seed, every answer also gets a seed drawn from it, so the whole run repeats."""
    params = spec.sampling
    if spec.random_params:
        params = params.with_overrides(draw_random_params(rng))
    overrides = {k: v for k, v in item.overrides.items() if k not in ITEM_SETTINGS}
    if overrides:
        params = params.with_overrides(overrides)
    if spec.seed is not None and params.seed == SEED_RANDOM:
        params = params.with_overrides({"seed": rng.randrange(2**32)})
    return params


def is_independent(spec: ChainSpec, item: PromptItem) -> bool:
    """Whether an answer's prompt is known before the answers ahead of it finish: no feedback (nor
    code output fed back) and no `[[…]]` collecting earlier answers. Such answers on remote engines
    are sent ahead, concurrently."""
    return (not spec.feedback and not (spec.code.run_code and spec.code.feed_output) and not item.collects_answers
            and escalation_threshold(item) is None)  # an escalated item's later answers wait for the gate


def check_constraints(prompts: PromptList) -> None:
    """Refuse, before a run, an item whose grammar llama.cpp's parser does not accept (GrammarError
    naming the item)."""
    for item in prompts.items:
        if item.constraint is not None:
            try:
                check_grammar(item.constraint.gbnf)
            except GrammarError as exc:
                raise GrammarError(f"item {item.number} ({item.constraint.describe()}): {exc}") from None


def escalation_threshold(item: PromptItem) -> float | None:
    """The item's `{escalate_entropy=…}` in nats, or None when it has none."""
    value = item.overrides.get("escalate_entropy")
    return None if value is None else float(value)


def escalation_key(planned: PlannedAnswer) -> tuple[int, int, int]:
    """What the models of one loop answer in turn when an item escalates: the same item of the same
    response."""
    return planned.loop, planned.response, planned.item.number


def next_in_line(plan: list[PlannedAnswer]) -> dict[int, PlannedAnswer]:
    """For each answer of an escalating item, the answer the item goes on to when its model is
    unsure: the same item and response by the next model of the loop (absent for the last one)."""
    following: dict[int, PlannedAnswer] = {}
    last: dict[tuple[int, int, int], PlannedAnswer] = {}
    for planned in plan:
        if escalation_threshold(planned.item) is None:
            continue
        key = escalation_key(planned)
        earlier = last.get(key)
        if earlier is not None:
            following[earlier.index] = planned
        last[key] = planned
    return following


def answer_load(spec: ChainSpec, item: PromptItem) -> LoadParams:
    """How the model is loaded for one answer: the run's load settings, with the item's `{n_ctx=…}`
    (Samantha's documented item setting; the model reloads when it differs from what is loaded)."""
    n_ctx = item.overrides.get("n_ctx")
    return spec.load if n_ctx is None else dataclasses.replace(spec.load, n_ctx=n_ctx)


def answer_fresh_context(spec: ChainSpec, item: PromptItem) -> bool:
    """Whether one answer starts from a fresh context: the run's "reset", or the item's
    `{reset_model=True}`."""
    return spec.reset or bool(item.overrides.get("reset_model", False))
