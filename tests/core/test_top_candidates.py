"""The learning-mode fast paths over a whole vocabulary: the top-candidates selection, the float32
log-sum-exp, and logits with a few penalised tokens, each against the plain numpy way."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.learning import describe_pick
from app.core.sampler_pipeline import (
    SamplerPipeline,
    VocabularyLogits,
    apply_penalties,
    log_sum_exp,
    softmax,
    top_indices,
)
from app.core.sampling import SamplingParams


def reference_top(values: np.ndarray, n: int) -> np.ndarray:
    """argpartition + sort, as learning mode did it; among values tied at the n-th place it keeps
    whichever argpartition happened to pick, so the canonical answer (below) is the stable sort."""
    n = min(n, len(values))
    top = np.argpartition(-values, n - 1)[:n]
    return top[np.argsort(-values[top], kind="stable")]


def stable_top(values: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:n]


def check(values: np.ndarray, n: int) -> None:
    got = top_indices(values, n)
    expected = stable_top(values, n)
    assert got.tolist() == expected.tolist()
    old = reference_top(values, n)
    # The same values in the same order as argpartition + sort, and the same tokens wherever no
    # tie straddles the n-th place (there argpartition's pick among equals is arbitrary).
    np.testing.assert_array_equal(values[got], values[old])
    straddles = n < len(values) and np.count_nonzero(values == values[expected[-1]]) > np.count_nonzero(
        values[expected] == values[expected[-1]])
    if not straddles and not np.isnan(values).any():
        assert set(got.tolist()) == set(old.tolist())
        ranks = {float(v): i for i, v in enumerate(values[got])}
        assert [ranks[float(v)] for v in values[old]] == [ranks[float(v)] for v in values[got]]


@pytest.mark.parametrize("size", [5, 300, 5_000, 151_936, 262_144])
@pytest.mark.parametrize("n", [1, 10, 40, 100, 1_000])
def test_top_indices_is_argpartition_and_sort(size: int, n: int) -> None:
    rng = np.random.default_rng(size + n)
    values = (rng.standard_normal(size) * 3).astype(np.float32)
    check(values, n)


@pytest.mark.parametrize("size", [300, 262_144])
def test_top_indices_with_ties(size: int) -> None:
    rng = np.random.default_rng(1)
    # Few distinct values: ties everywhere, also across the cut.
    values = np.round(rng.standard_normal(size) * 2).astype(np.float32)
    for n in (1, 10, 100, 500):
        check(values, n)
        got = top_indices(values, n)
        tied = values[got] == values[got[-1]]
        assert (np.diff(got[tied]) > 0).all()  # equal values: lower id first
    flat = np.zeros(size, dtype=np.float32)
    assert top_indices(flat, 100).tolist() == list(range(100))


@pytest.mark.parametrize("size", [300, 262_144])
def test_top_indices_with_fewer_finite_logits_than_asked(size: int) -> None:
    values = np.full(size, -np.inf, dtype=np.float32)
    values[[7, 3, size - 1]] = [1.0, 2.0, 1.0]
    got = top_indices(values, 10)
    assert got.tolist() == stable_top(values, 10).tolist()
    assert got[:3].tolist() == [3, 7, size - 1] and got[3:].tolist() == [0, 1, 2, 4, 5, 6, 8]
    np.testing.assert_array_equal(values[got], values[reference_top(values, 10)])
    values[[0, 5]] = np.nan  # NaN after everything, as in a sort
    assert top_indices(values, 10).tolist() == stable_top(values, 10).tolist()
    assert top_indices(values, size).tolist() == stable_top(values, size).tolist()


def test_top_indices_when_the_sample_misleads() -> None:
    # The sampled logits (every 64th) are unlike the rest: a few huge ones set the threshold above
    # almost everything, so fewer than n pass it; or the largest ones sit where the sample never
    # looks. The selection must still answer exactly.
    values = np.linspace(0, 1, 262_144, dtype=np.float32)
    values[0:64 * 20:64] = 100.0
    for n in (10, 100, 1_000):
        assert top_indices(values, n).tolist() == stable_top(values, n).tolist()
    values = np.zeros(262_144, dtype=np.float32)
    values[1::64] = np.linspace(5, 10, len(values[1::64]), dtype=np.float32)
    for n in (10, 100, 4_096, 5_000):
        assert top_indices(values, n).tolist() == stable_top(values, n).tolist()


def test_log_sum_exp_in_float32_is_within_a_tenth_of_a_float32_step() -> None:
    rng = np.random.default_rng(3)
    for scale, offset in ((1.0, 0.0), (4.0, 25.0), (3.0, -90.0)):
        values = (rng.standard_normal(262_145) * scale + offset).astype(np.float32)
        top = float(values.max())
        exact = top + np.log(np.exp(values.astype(np.float64) - top).sum())
        # An error e in the log-sum-exp is a relative error e in every probability.
        assert abs(log_sum_exp(values) - exact) < 1e-8 * max(1.0, abs(exact))
    small = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert log_sum_exp(small) == pytest.approx(np.log(np.exp(small.astype(np.float64)).sum()), abs=1e-15)
    assert log_sum_exp(np.full(5000, -np.inf, dtype=np.float32)) == -np.inf


@pytest.mark.parametrize("dominant", [True, False])
def test_penalised_logits_keep_the_full_vector_semantics(dominant: bool) -> None:
    from app.core.sampler_pipeline import penalty_changes

    rng = np.random.default_rng(4)
    raw = (rng.standard_normal(50_000) * 2).astype(np.float32)
    raw[123] = 25.0  # one token holds almost all the mass
    if dominant:  # the penalised tokens hold most of it: their log-sum-exp takes a pass of its own
        recent = [123] + [int(i) for i in np.argsort(-raw)[1:30]] * 2 + [17, 17, 40_000]
    else:  # they hold little: it comes from the raw one, minus their old terms, plus the new
        recent = [int(i) for i in rng.choice(50_000, 60)]
    full = apply_penalties(raw, recent, repeat=1.3, presence=0.4, frequency=0.2)
    vocab = VocabularyLogits(raw).with_changes(*penalty_changes(raw, recent, 1.3, 0.4, 0.2))
    np.testing.assert_array_equal(vocab.full(), full)
    assert vocab.top(100).tolist() == np.argsort(-full, kind="stable")[:100].tolist()
    assert vocab.argmax() == int(np.argmax(full))
    exact = np.log(np.exp(full - full.max()).sum()) + full.max()
    assert abs(vocab.log_total() - exact) < 1e-8 * abs(exact)
    raw_exact = np.log(np.exp(raw.astype(np.float64) - 25.0).sum()) + 25.0
    assert abs(VocabularyLogits(raw).log_total() - raw_exact) < 1e-8 * abs(raw_exact)


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=1),
    SamplingParams(temperature=0.0, repeat_penalty=1.3),
    SamplingParams(temperature=1.0, top_k=0, top_p=0.9, min_p=0.05, seed=1),
])
def test_candidates_on_a_large_vocabulary_match_the_whole_softmax(params: SamplingParams) -> None:
    """What learning mode shows on a 262k vocabulary: the 100 most likely tokens, their probability
    before sampling and after each stage, as the whole-vocabulary float64 softmax gives them."""
    rng = np.random.default_rng(5)
    pipeline = SamplerPipeline(params, seed=2)
    recent: list[int] = []
    for position in range(3):
        logits = (rng.standard_normal(262_144) * 3).astype(np.float32)
        pick = pipeline.pick(logits, recent, record=True, candidates=100)
        choice = describe_pick(logits, pick, [f"t{i}" for i in range(len(logits))], position, 100)
        ids = [c.token_id for c in choice.candidates]
        assert ids[:100] == stable_top(logits, 100).tolist()
        before = softmax(logits)
        assert [c.prob for c in choice.candidates] == pytest.approx(before[ids].tolist(), rel=1e-7, abs=0)
        for index, record in enumerate(pick.stages):
            table = dict(zip(record.token_ids.tolist(), record.probs.tolist(), strict=True))
            shown = [c.stage_probs[index] for c in choice.candidates]
            assert shown == pytest.approx([table.get(t, 0.0) for t in ids], rel=1e-7, abs=1e-300)
        assert choice.chosen_rank == int(np.count_nonzero(logits > logits[choice.chosen])) + 1
        recent.append(choice.chosen)


def test_a_choice_pickles_to_an_equal_choice() -> None:
    """The worker pickles every choice (by columns, made back without the dataclass's __init__):
    what arrives must be the very same value."""
    import pickle
    from dataclasses import astuple

    from app.core.learning import Candidate, TokenChoice

    logits = (np.random.default_rng(6).standard_normal(5_000) * 2).astype(np.float32)
    params = SamplingParams(temperature=0.9, top_k=20, top_p=0.9, seed=4)
    pick = SamplerPipeline(params, seed=1).pick(logits, [], record=True, candidates=30)
    choice = describe_pick(logits, pick, [f"t{i}" for i in range(len(logits))], 3, 30)
    back = pickle.loads(pickle.dumps(choice))
    assert back == choice and repr(back) == repr(choice) and hash(back) == hash(choice)
    assert all(type(c) is Candidate for c in back.candidates)
    plain = [Candidate(c.token_id, c.piece, c.logit, c.prob, c.stage_probs, c.removed_by) for c in choice.candidates]
    assert list(choice.candidates) == plain
    assert [astuple(c) for c in choice.candidates] == [astuple(c) for c in plain]
    assert pickle.loads(pickle.dumps(plain[0])) == plain[0]
    stored = TokenChoice.from_record(choice.to_record())  # made without describe_pick's columns
    assert stored.to_record() == choice.to_record() and pickle.loads(pickle.dumps(stored)) == stored
    empty = TokenChoice(0, 1, 1, (), ())
    assert pickle.loads(pickle.dumps(empty)) == empty
