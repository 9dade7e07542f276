"""The numpy sampler pipeline (learning-mode tests of every stage come with learning mode)."""

import numpy as np

from app.core.sampler_pipeline import (
    SamplerPipeline,
    apply_penalties,
    softmax,
    tail_free_keep,
    top_k_keep,
    top_p_keep,
)
from app.core.sampling import SamplingParams

LOGITS = np.array([2.0, 1.0, 0.5, 3.0, -1.0, 0.0], dtype=np.float32)


def test_greedy_is_argmax() -> None:
    pick = SamplerPipeline(SamplingParams(temperature=0.0), seed=1).pick(LOGITS, [])
    assert pick.token_id == 3


def test_stages_are_recorded_and_sum_to_one() -> None:
    params = SamplingParams(temperature=0.7, top_k=4, top_p=0.9, seed=5)
    pick = SamplerPipeline(params, seed=5).pick(LOGITS, [], record=True)
    assert [s.stage for s in pick.stages] == [
        "penalties", "top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature"
    ]
    for stage in pick.stages:
        assert abs(float(stage.probs.sum()) - 1.0) < 1e-6
    assert len(pick.stages[1].token_ids) == 4
    assert pick.token_id in pick.stages[-1].token_ids.tolist()


def test_same_seed_same_draws() -> None:
    params = SamplingParams(temperature=1.5, top_k=0)

    def sequence(seed: int) -> list[int]:
        pipeline = SamplerPipeline(params, seed=seed)
        return [pipeline.pick(LOGITS, []).token_id for _ in range(20)]

    assert sequence(9) == sequence(9)
    assert len(set(sequence(9))) > 1  # really random draws, not the argmax every time


def test_top_k_and_top_p_keep_counts() -> None:
    assert sorted(top_k_keep(LOGITS, 2).tolist()) == [0, 3]
    probs = np.sort(softmax(LOGITS))[::-1]
    assert top_p_keep(probs, 0.5) == 1 + int(probs[0] < 0.5)


def test_tail_free_cuts_the_tail_and_one_keeps_all() -> None:
    probs = np.sort(softmax(np.array([5.0, 4.9, 1.0, 0.9, 0.8, 0.7])))[::-1]
    assert tail_free_keep(probs, 1.0) == len(probs)
    assert tail_free_keep(probs, 0.5) < len(probs)


def test_penalties_follow_llama_cpp() -> None:
    out = apply_penalties(np.array([2.0, -2.0, 1.0]), [0, 1, 1], repeat=2.0, presence=0.5, frequency=0.25)
    assert np.allclose(out, [2.0 / 2 - 0.25 - 0.5, -2.0 * 2 - 0.5 - 0.5, 1.0])
