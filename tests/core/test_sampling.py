"""Settings: bounds, kinds and messages that name the setting and its allowed range."""

import pytest

from app.core.errors import SettingsError
from app.core.sampling import LOAD_SPECS, MAX_STOP_STRINGS, LoadParams, SamplingParams


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


def test_wrong_kinds_of_stop_and_order_are_refused_with_a_message() -> None:
    with pytest.raises(SettingsError, match="stop must be a list of strings, got 5"):
        SamplingParams(stop=5)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"order must be a list of stage names, got \[1, 2\]"):
        SamplingParams(order=[1, 2])  # type: ignore[list-item]
    with pytest.raises(SettingsError, match="order must be a list of stage names, got 5"):
        SamplingParams(order=5)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"stop must be a list of strings, got \(a number of about 6,021 digits\)"):
        SamplingParams(stop=16**5000)  # type: ignore[arg-type]  # repr() of it would raise ValueError
    with pytest.raises(SettingsError, match="temperature must be a number, got a value holding a huge number"):
        SamplingParams(temperature=[16**5000])  # type: ignore[arg-type]


def test_infinite_and_huge_numbers_are_out_of_range() -> None:
    with pytest.raises(SettingsError, match="seed=inf is out of range: allowed -1 to 4294967295"):
        SamplingParams(seed=float("inf"))
    with pytest.raises(SettingsError, match=r"seed=\(a number of about 302 digits\) is out of range"):
        SamplingParams(seed=10**301)
    with pytest.raises(SettingsError, match="n_ctx=1e999 is out of range: allowed 0 to 1048576"):
        LOAD_SPECS["n_ctx"].check(float("1e999"), written="1e999")


def test_stop_strings_are_bounded() -> None:
    many = [f"<stop {n}>" for n in range(MAX_STOP_STRINGS)]
    assert len(SamplingParams(stop=many).stop) == MAX_STOP_STRINGS  # 10,000 still work
    with pytest.raises(SettingsError, match="stop: 10,001 stop strings given; at most 10,000 are allowed"):
        SamplingParams(stop=many + ["one more"])
    with pytest.raises(SettingsError, match="stop: a stop string of 501 characters .*at most 500 characters"):
        SamplingParams(stop=["x" * 501])
    with pytest.raises(SettingsError, match="stop: the stop strings have 250,500 characters in all; at most 250,000"):
        SamplingParams(stop=[f"{n:03d}" + "y" * 497 for n in range(501)])
