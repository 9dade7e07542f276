"""The order and number of a chain's answers, shuffling, and each answer's settings."""

import random

import pytest

from app.core.chain import RANDOM_RANGES, ChainSpec, answer_params, make_plan, shuffled_models
from app.core.errors import SettingsError
from app.core.prompt_list import parse_prompt_list
from app.core.sampling import SamplingParams


def plan_of(spec: ChainSpec):
    return make_plan(spec, parse_prompt_list(spec.prompts), random.Random(spec.seed))


def test_two_models_three_items_two_responses_two_loops() -> None:
    spec = ChainSpec(models=("a.gguf", "b.gguf"), prompts="x\ny\nz", responses=2, loops=2)
    plan = plan_of(spec)
    assert len(plan) == 24
    order = [(p.loop, p.model, p.item.number, p.response) for p in plan]
    expected = [
        (loop, model, item, response)
        for loop in (1, 2)
        for model in ("a.gguf", "b.gguf")
        for response in (1, 2)
        for item in (1, 2, 3)
    ]
    assert order == expected
    assert [p.index for p in plan] == list(range(1, 25))


def test_each_response_repeats_the_whole_prompt_list_as_in_samantha() -> None:
    plan = plan_of(ChainSpec(models=("a", "b"), prompts="P1\nP2", responses=2))
    assert [(p.model, p.item.text, p.response) for p in plan] == [
        ("a", "P1", 1), ("a", "P2", 1), ("a", "P1", 2), ("a", "P2", 2),
        ("b", "P1", 1), ("b", "P2", 1), ("b", "P1", 2), ("b", "P2", 2),
    ]
    assert {p.model_slot for p in plan if p.model == "a"} == {0}  # one load for all of a's answers


def test_single_response_pairs_model_i_with_item_i() -> None:
    spec = ChainSpec(models=("a", "b", "c"), prompts="x\ny", single_response=True, responses=3, loops=4)
    plan = plan_of(spec)
    assert [(p.model, p.item.text) for p in plan] == [("a", "x"), ("b", "y")]


def test_a_model_may_appear_several_times() -> None:
    plan = plan_of(ChainSpec(models=("a", "b", "a"), prompts="x"))
    assert [(p.model, p.model_slot) for p in plan] == [("a", 0), ("b", 1), ("a", 2)]


def test_shuffle_never_repeats_a_model_in_a_row() -> None:
    rng = random.Random(3)
    models = ["a", "b", "c", "d"]
    previous = None
    seen_orders = set()
    for _ in range(50):
        order = shuffled_models(models, rng, previous)
        chain = ([previous] if previous else []) + order
        assert sorted(order) == models
        assert all(x != y for x, y in zip(chain, chain[1:], strict=False))
        seen_orders.add(tuple(order))
        previous = order[-1]
    assert len(seen_orders) > 5  # really shuffled
    assert shuffled_models(["a", "b"], rng, None) == ["a", "b"]  # fewer than 3 distinct: kept


def test_shuffled_plan_is_reproducible_with_a_seed() -> None:
    spec = ChainSpec(models=("a", "b", "c"), prompts="x", loops=5, shuffle=True, seed=11)
    assert [p.model for p in plan_of(spec)] == [p.model for p in plan_of(spec)]


def test_answer_settings_precedence_and_random_ranges() -> None:
    item = parse_prompt_list("{temperature=0.05} x").items[0]
    spec = ChainSpec(models=("a",), random_params=True, sampling=SamplingParams(top_k=7), seed=1)
    params = answer_params(spec, item, random.Random(1))
    assert params.top_k == 7  # from the run
    assert params.temperature == 0.05  # the item's own setting wins over the random draw
    for name, (low, high) in RANDOM_RANGES.items():
        if name != "temperature":
            assert low <= getattr(params, name) <= high
    assert params.seed >= 0  # a run seed gives every answer a seed


def test_spec_refuses_nonsense() -> None:
    with pytest.raises(SettingsError):
        ChainSpec(models=())
    with pytest.raises(SettingsError):
        ChainSpec(models=("a",), loops=0)
