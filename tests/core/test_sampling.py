"""Settings: bounds, kinds and messages that name the setting and its allowed range."""

import pytest

from app.core.errors import SettingsError
from app.core.sampling import LoadParams, SamplingParams


def test_defaults_are_the_deterministic_preset() -> None:
    params = SamplingParams()
    assert params.is_greedy
    assert (params.top_p, params.min_p, params.typical_p, params.tfs_z) == (1.0, 0.0, 1.0, 1.0)


def test_out_of_range_value_names_key_and_range() -> None:
    with pytest.raises(SettingsError) as caught:
        SamplingParams(top_p=1.5)
    assert "top_p=1.5 is out of range: allowed 0 to 1" in str(caught.value)


def test_unknown_key_lists_known_ones() -> None:
    with pytest.raises(SettingsError) as caught:
        SamplingParams().with_overrides({"temprature": 0.5})
    assert "unknown setting temprature" in str(caught.value)
    assert "temperature" in str(caught.value)


def test_whole_numbers_and_types() -> None:
    assert SamplingParams(top_k=40.0).top_k == 40
    with pytest.raises(SettingsError, match="top_k must be a whole number"):
        SamplingParams(top_k=2.5)
    with pytest.raises(SettingsError, match="temperature must be a number"):
        SamplingParams(temperature="hot")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="temperature must be a number"):
        SamplingParams(temperature=True)


def test_stop_strings_are_a_tuple_of_non_empty_strings() -> None:
    assert SamplingParams(stop=["\n", ""]).stop == ("\n",)
    assert SamplingParams(stop="END").stop == ("END",)  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        SamplingParams(stop=[1])  # type: ignore[list-item]


def test_to_dict_is_plain_data() -> None:
    data = SamplingParams(stop=("a",)).to_dict()
    assert data["stop"] == ["a"] and data["temperature"] == 0.0


def test_load_params_bounds() -> None:
    assert LoadParams(n_ctx=0).n_ctx == 0
    with pytest.raises(SettingsError, match="n_batch=0 is out of range"):
        LoadParams(n_batch=0)
