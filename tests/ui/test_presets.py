"""The presets carry the original Samantha's values (its page documents them as inline settings)."""

from app.ui.sampling_controls import DETERMINISTIC_PRESET, STOCHASTIC_PRESET, preset_values

ORIGINAL_STOCHASTIC = ("max_tokens=4000, temperature=0.8, tfs_z=1, top_p=0.95, min_p=0.05, typical_p=1, top_k=40, "
                       "presence_penalty=0, frequency_penalty=0, repeat_penalty=1.1")


def test_the_stochastic_preset_is_the_original_s() -> None:
    for pair in ORIGINAL_STOCHASTIC.split(", "):
        name, value = pair.split("=")
        assert getattr(STOCHASTIC_PRESET, name) == float(value), name


def test_the_deterministic_preset_picks_the_most_likely_token_without_penalties() -> None:
    assert DETERMINISTIC_PRESET.temperature == 0 and DETERMINISTIC_PRESET.repeat_penalty == 1.0
    assert DETERMINISTIC_PRESET.max_tokens == 4000
    names = ["temperature", "repeat_penalty", "stop"]
    assert preset_values(names, STOCHASTIC_PRESET)[:2] == [0.8, 1.1]
