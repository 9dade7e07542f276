"""XTC, top-n-sigma, DRY, Mirostat and the sampler order, against definitions written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.core.errors import SettingsError
from app.core.sampler_pipeline import SamplerPipeline, dry_penalties
from app.core.sampling import SamplingParams

LOGITS = np.array([3.2, 1.1, 2.7, -0.4, 0.9, 2.9, 0.2, -1.5, 1.8, 0.5], dtype=np.float32)
OPEN = dict(top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, tfs_z=1.0, temperature=1.0)


def stage(pick, name: str) -> dict[int, float]:
    record = next(r for r in pick.stages if r.stage == name)
    return dict(zip(record.token_ids.tolist(), record.probs.tolist(), strict=False))


def softmax(values: dict[int, float]) -> dict[int, float]:
    top = max(values.values())
    weights = {t: math.exp(v - top) for t, v in values.items()}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


def test_xtc_removes_all_top_choices_but_the_least_likely() -> None:
    params = SamplingParams(**OPEN, xtc_probability=1.0, xtc_threshold=0.15)
    pick = SamplerPipeline(params, seed=1).pick(LOGITS, [], record=True)
    probs = softmax({i: float(v) for i, v in enumerate(LOGITS)})
    top_choices = sorted((t for t, p in probs.items() if p >= 0.15), key=lambda t: probs[t])
    expected = {t for t in probs if t not in top_choices[1:]}  # the least likely top choice stays
    assert set(stage(pick, "xtc")) == expected and len(top_choices) >= 2


def test_xtc_does_nothing_with_fewer_than_two_top_choices() -> None:
    params = SamplingParams(**OPEN, xtc_probability=1.0, xtc_threshold=0.9)
    pick = SamplerPipeline(params, seed=1).pick(LOGITS, [], record=True)
    assert set(stage(pick, "xtc")) == set(range(len(LOGITS)))


def test_top_n_sigma_keeps_logits_near_the_best() -> None:
    params = SamplingParams(**OPEN, top_n_sigma=0.8)
    pick = SamplerPipeline(params, seed=1).pick(LOGITS, [], record=True)
    values = [float(v) for v in LOGITS]
    mean = sum(values) / len(values)
    sigma = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    expected = {i for i, v in enumerate(values) if v >= max(values) - 0.8 * sigma}
    assert set(stage(pick, "top_n_sigma")) == expected


def test_dry_penalises_the_token_that_would_extend_a_repeat() -> None:
    context = [1, 2, 3, 4, 1, 2]  # ends with "1 2", which was followed by 3 before
    assert dry_penalties(context, multiplier=0.8, base=1.75, allowed=2) == {3: 0.8 * 1.75 ** 0}
    assert dry_penalties(context, multiplier=0.8, base=1.75, allowed=1) == {3: 0.8 * 1.75 ** 1}
    assert dry_penalties(context, multiplier=0.8, base=1.75, allowed=3) == {}
    params = SamplingParams(**OPEN, dry_multiplier=0.8, dry_allowed_length=2)
    pick = SamplerPipeline(params, seed=1).pick(LOGITS, context, record=True)
    shifted = {i: float(v) - (0.8 if i == 3 else 0.0) for i, v in enumerate(LOGITS)}
    assert stage(pick, "dry") == pytest.approx(softmax(shifted), abs=1e-9)


def test_mirostat_2_truncates_by_surprise_and_steers_mu() -> None:
    params = SamplingParams(**OPEN, mirostat=2, mirostat_tau=2.0, mirostat_eta=0.1)
    pipeline = SamplerPipeline(params, seed=4)
    mu = pipeline.mu
    assert mu == 4.0
    pick = pipeline.pick(LOGITS, [], record=True)
    probs = softmax({i: float(v) for i, v in enumerate(LOGITS)})
    kept = {t for t, p in probs.items() if -math.log2(p) <= mu}
    truncated = stage(pick, "mirostat")
    assert set(truncated) == kept
    observed = -math.log2(truncated[pick.token_id])
    assert pipeline.mu == pytest.approx(mu - 0.1 * (observed - 2.0))


def test_mirostat_1_draws_from_an_estimated_top_k() -> None:
    params = SamplingParams(**OPEN, mirostat=1, mirostat_tau=3.0, mirostat_eta=0.1)
    pipeline = SamplerPipeline(params, seed=2)
    tokens = [pipeline.pick(LOGITS, []).token_id for _ in range(20)]
    assert len(set(tokens)) > 1 and pipeline.mu != 6.0


def test_the_sampler_order_can_be_set() -> None:
    order = ("min_p", "top_k", "tfs_z", "typical_p", "top_p", "xtc", "top_n_sigma")
    params = SamplingParams(temperature=1.0, top_k=3, min_p=0.3, order=order)
    pick = SamplerPipeline(params, seed=1).pick(LOGITS, [], record=True)
    assert [r.stage for r in pick.stages] == ["penalties", "min_p", "top_k", "tfs_z", "typical_p", "top_p",
                                             "temperature"]
    with pytest.raises(SettingsError, match="order must list each of"):
        SamplingParams(order=("top_k", "top_k"))


def test_normal_mode_routes_unsupported_samplers_through_the_pipeline() -> None:
    assert not SamplingParams(temperature=0.8).needs_pipeline
    assert not SamplingParams(temperature=0.8, mirostat=2).needs_pipeline  # llama.cpp has Mirostat
    for extra in ({"xtc_probability": 0.5}, {"top_n_sigma": 1.0}, {"dry_multiplier": 0.8}, {"tfs_z": 0.9},
                  {"order": ("top_p", "top_k", "tfs_z", "typical_p", "min_p", "xtc", "top_n_sigma")}):
        assert SamplingParams(temperature=0.8, **extra).needs_pipeline, extra
