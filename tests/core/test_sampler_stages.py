"""Every stage of the learning-mode pipeline against a reference written independently here, in
plain Python, from each method's definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.core.learning import describe_pick
from app.core.sampler_pipeline import SamplerPipeline
from app.core.sampling import SamplingParams

# float32, as llama.cpp hands logits over; the reference starts from the very same values.
LOGITS = [float(np.float32(v)) for v in (3.2, 1.1, 2.7, -0.4, 0.9, 2.9, 0.2, -1.5, 1.8, 0.5, -0.9, 1.4)]


def softmax(values: dict[int, float]) -> dict[int, float]:
    top = max(values.values())
    weights = {t: math.exp(v - top) for t, v in values.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def descending(probs: dict[int, float]) -> list[int]:
    return sorted(probs, key=lambda t: (-probs[t], t))


def reference(params: SamplingParams) -> list[tuple[str, dict[int, float]]]:
    """The survivors and probabilities after each stage, by definition."""
    logits = dict(enumerate(LOGITS))
    stages = [("penalties", softmax(logits))]
    # top_k: the k most likely.
    kept = descending(softmax(logits))[: params.top_k] if params.top_k > 0 else list(logits)
    current = {t: logits[t] for t in kept}
    stages.append(("top_k", softmax(current)))
    # tail-free: weights from the absolute second differences of the sorted probabilities,
    # normalised; keep tokens until their cumulative weight passes z.
    probs = softmax(current)
    order = descending(probs)
    ps = [probs[t] for t in order]
    if params.tfs_z < 1 and len(ps) > 2:
        second = [abs((ps[i] - ps[i + 1]) - (ps[i + 1] - ps[i + 2])) for i in range(len(ps) - 2)]
        total = sum(second)
        weights = [w / total for w in second]
        keep = len(ps)
        cumulative = 0.0
        for i, w in enumerate(weights):
            cumulative += w
            if cumulative > params.tfs_z and i >= 1:
                keep = i
                break
        current = {t: current[t] for t in order[:keep]}
    stages.append(("tfs_z", softmax(current)))
    # locally typical: closeness of each token's surprise to the entropy; keep the most typical
    # tokens until their probability mass passes p.
    probs = softmax(current)
    entropy = -sum(p * math.log(p) for p in probs.values())
    by_typicality = sorted(probs, key=lambda t: abs(-math.log(probs[t]) - entropy))
    if params.typical_p < 1:
        kept, mass = [], 0.0
        for t in by_typicality:
            kept.append(t)
            mass += probs[t]
            if mass > params.typical_p:
                break
        current = {t: current[t] for t in kept}
    stages.append(("typical_p", softmax(current)))
    # nucleus: the smallest set of the most likely tokens whose mass reaches p.
    probs = softmax(current)
    kept, mass = [], 0.0
    for t in descending(probs):
        kept.append(t)
        mass += probs[t]
        if mass >= params.top_p:
            break
    current = {t: current[t] for t in kept}
    stages.append(("top_p", softmax(current)))
    # min_p: drop tokens less likely than min_p times the most likely one.
    probs = softmax(current)
    top = max(probs.values())
    current = {t: current[t] for t in current if probs[t] >= params.min_p * top}
    stages.append(("min_p", softmax(current)))
    # temperature: logits divided by T.
    stages.append(("temperature", softmax({t: v / params.temperature for t, v in current.items()})))
    return stages


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=0.7, top_k=8, tfs_z=0.95, typical_p=0.9, top_p=0.8, min_p=0.05),
        SamplingParams(temperature=1.3, top_k=0, tfs_z=1.0, typical_p=0.5, top_p=0.95, min_p=0.2),
        SamplingParams(temperature=0.5, top_k=3, tfs_z=0.5, typical_p=1.0, top_p=1.0, min_p=0.0),
    ],
)
def test_each_stage_matches_its_definition(params: SamplingParams) -> None:
    pick = SamplerPipeline(params, seed=1).pick(np.array(LOGITS, dtype=np.float32), [], record=True)
    expected = reference(params)
    assert [s.stage for s in pick.stages] == [name for name, _ in expected]
    for record, (name, probs) in zip(pick.stages, expected, strict=False):
        got = dict(zip(record.token_ids.tolist(), record.probs.tolist(), strict=False))
        assert set(got) == set(probs), name
        for token, p in probs.items():
            assert got[token] == pytest.approx(p, abs=1e-9), (name, token)
        assert abs(sum(got.values()) - 1.0) < 1e-6, name
    assert pick.token_id in dict(zip(pick.stages[-1].token_ids.tolist(), pick.stages[-1].probs.tolist(), strict=False))


def test_temperature_zero_picks_the_raw_argmax() -> None:
    logits = np.array(LOGITS, dtype=np.float32)
    pick = SamplerPipeline(SamplingParams(temperature=0.0, top_k=3), seed=1).pick(logits, [], record=True)
    choice = describe_pick(logits, pick, [f"t{i}" for i in range(len(LOGITS))], position=0, k=5)
    assert choice.chosen == int(np.argmax(logits)) and choice.chosen_rank == 1
    assert choice.stages == ("penalties",)


def test_candidates_report_who_removed_them() -> None:
    logits = np.array(LOGITS, dtype=np.float32)
    params = SamplingParams(temperature=0.7, top_k=4, top_p=0.8)
    pick = SamplerPipeline(params, seed=3).pick(logits, [], record=True)
    choice = describe_pick(logits, pick, [f"t{i}" for i in range(len(LOGITS))], position=7, k=6)
    by_id = {c.token_id: c for c in choice.candidates}
    ranked = [c.token_id for c in choice.candidates]
    assert ranked[:6] == sorted(range(len(LOGITS)), key=lambda t: -LOGITS[t])[:6]
    assert by_id[ranked[4]].removed_by == "top_k" and by_id[ranked[5]].removed_by == "top_k"
    survivors = [c for c in choice.candidates if c.removed_by is None]
    assert abs(sum(c.stage_probs[-1] for c in survivors) - 1.0) < 1e-6
    assert choice.chosen in [c.token_id for c in survivors]
    assert sum(c.prob for c in choice.candidates) < 1.0  # before sampling: over the whole vocabulary
