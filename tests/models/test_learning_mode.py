"""Learning mode through the real worker and the demo model."""

from pathlib import Path

import pytest

from app.core.backend import GenerationRequest, TokenEvent
from app.core.sampling import SamplingParams
from app.models.demo_model import SCRIPT_HELLO
from app.models.local_backend import LocalBackend


def learn(backend: LocalBackend, prompt: str, params: SamplingParams, top: int = 5) -> tuple[list[TokenEvent], object]:
    request = GenerationRequest(messages=GenerationRequest.chat(prompt).messages, params=params, learning_top=top)
    events = list(backend.generate(request))
    return [e for e in events if isinstance(e, TokenEvent)], events[-1]


def test_temperature_zero_takes_the_raw_argmax_at_every_step(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    tokens, result = learn(backend, "hi", SamplingParams(temperature=0.0))
    assert result.text == SCRIPT_HELLO
    for event in tokens:
        choice = event.choice
        best = max(choice.candidates, key=lambda c: c.logit)
        assert choice.chosen == event.token_id == best.token_id and choice.chosen_rank == 1
        assert 0.01 <= sorted(c.prob for c in choice.candidates)[-2] <= 0.20  # a real alternative
    assert [e.choice.position for e in tokens] == list(range(len(tokens)))
    assert tokens[0].choice.candidates[1].piece == "Greetings"


@pytest.mark.parametrize("prompt", ["hi", "compute %", "sing ~"])
def test_deterministic_settings_give_the_same_tokens_in_both_modes(backend: LocalBackend, demo_model: Path,
                                                                    prompt: str) -> None:
    backend.load(demo_model)
    params = SamplingParams(temperature=0.0, max_tokens=20, repeat_penalty=1.1)
    normal = list(backend.generate(GenerationRequest.chat(prompt, params=params)))[-1]
    _, learning = learn(backend, prompt, params)
    assert learning.token_ids == normal.token_ids


def test_sampled_picks_come_from_the_distribution_shown(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    params = SamplingParams(temperature=1.5, top_k=5, top_p=0.99, seed=11, max_tokens=40)
    tokens, _ = learn(backend, "sing ~", params, top=8)
    assert any(e.choice.chosen_rank > 1 for e in tokens)  # unlikely picks happen at temperature 1.5
    for event in tokens:
        final = {c.token_id: c.stage_probs[-1] for c in event.choice.candidates if c.removed_by is None}
        assert final.get(event.token_id, 0.0) > 0.0
        assert event.choice.stages == ("penalties", "top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature")
        stages = event.choice.stages
        for rank, candidate in enumerate(event.choice.candidates, start=1):
            if rank > 5 and candidate.token_id != event.token_id:
                assert candidate.removed_by == "top_k"  # top_k=5 keeps the five most likely
            if candidate.removed_by:
                gone_from = stages.index(candidate.removed_by)
                assert all(p == 0.0 for p in candidate.stage_probs[gone_from:])



def test_manual_stepping_gives_one_token_per_step(backend: LocalBackend, demo_model: Path) -> None:
    import threading
    import time

    backend.load(demo_model)
    request = GenerationRequest(messages=GenerationRequest.chat("sing ~").messages,
                                params=SamplingParams(max_tokens=1000), learning_top=3, stepping="manual")
    seen: list = []
    consumer = threading.Thread(target=lambda: seen.extend(backend.generate(request)))
    consumer.start()

    def tokens() -> int:
        return sum(1 for e in seen if isinstance(e, TokenEvent))

    def settle(expected: int) -> None:
        deadline = time.monotonic() + 30
        while tokens() < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # and nothing more arrives on its own
        assert tokens() == expected

    settle(0)
    for expected in (1, 2, 3):
        backend.step()
        settle(expected)
    backend.stop_current()
    consumer.join(30)
    assert seen[-1].stop_reason == "stopped" and seen[-1].generated_tokens == 3


def test_delay_stepping_waits_between_tokens(backend: LocalBackend, demo_model: Path) -> None:
    import time

    backend.load(demo_model)
    request = GenerationRequest(messages=GenerationRequest.chat("hi").messages, params=SamplingParams(),
                                stepping="delay", step_delay=0.1)
    started = time.monotonic()
    result = list(backend.generate(request))[-1]
    assert result.text == SCRIPT_HELLO
    assert time.monotonic() - started >= 0.5  # five tokens, each after its 0.1 s pause


def test_extra_samplers_run_in_both_modes(backend: LocalBackend, demo_model: Path) -> None:
    backend.load(demo_model)
    extra = SamplingParams(temperature=1.2, top_k=0, seed=5, max_tokens=30, xtc_probability=0.5,
                           xtc_threshold=0.05, dry_multiplier=0.8, top_n_sigma=3.0)
    normal = list(backend.generate(GenerationRequest.chat("sing ~", params=extra)))[-1]
    tokens, learning = learn(backend, "sing ~", extra)
    assert normal.token_ids == learning.token_ids  # normal mode samples with the same pipeline
    assert {"dry", "xtc", "top_n_sigma"} <= set(tokens[0].choice.stages)
    mirostat = SamplingParams(temperature=1.0, mirostat=2, mirostat_tau=3.0, seed=5, max_tokens=20)
    assert list(backend.generate(GenerationRequest.chat("hi", params=mirostat)))[-1].generated_tokens > 0
    _, learned = learn(backend, "hi", mirostat)
    assert learned.generated_tokens > 0


def test_candidate_texts_are_the_vocabulary_view(demo_model: Path) -> None:
    """Learning mode reads candidate texts from a lazily made sequence (no list of the whole
    vocabulary in the worker): it must read exactly what the vocabulary view shows, control and
    byte tokens included."""
    from app.core.sampling import LoadParams
    from app.models.worker import ModelSession

    session = ModelSession(str(demo_model), LoadParams(n_ctx=256))
    words = session.vocabulary_words
    assert len(words) == session.llm.n_vocab()
    assert list(words) == session.vocabulary()
    assert words[-1] == session.vocabulary()[-1] and words[1:4] == session.vocabulary()[1:4]
