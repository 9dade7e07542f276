"""The prompt-list language, rule by rule."""

import pytest

from app.core.errors import PromptSyntaxError
from app.core.prompt_list import (
    ANSWERS_PLACEHOLDER,
    DEFAULT_PROMPT,
    parse_library,
    parse_prompt_list,
    parse_single_field,
)


def texts(source: str) -> list[str]:
    return [item.text for item in parse_prompt_list(source).items]


def test_readme_example_pre_prompt_ignored_item_and_summary() -> None:
    source = (
        "[You are a poet who only writes in Portuguese]\n"
        "Create a sentence about love\n"
        "Create a sentence about life\n"
        "---Create a sentence about time (this one is ignored)\n"
        "[[Create an English paragraph summarising the ideas in the following sentences:]]"
    )
    parsed = parse_prompt_list(source)
    assert parsed.pre_prompt == "You are a poet who only writes in Portuguese"
    assert [i.text for i in parsed.items] == [
        "Create a sentence about love",
        "Create a sentence about life",
        "Create an English paragraph summarising the ideas in the following sentences:",
    ]
    summary = parsed.items[-1]
    assert summary.collects_answers and summary.number == 3
    assert summary.prompt(parsed.pre_prompt, ["O amor é fogo.", "A vida é um rio."]) == (
        "You are a poet who only writes in Portuguese\n"
        "Create an English paragraph summarising the ideas in the following sentences:\n\n"
        "O amor é fogo.\n\nA vida é um rio."
    )
    assert parsed.items[0].prompt(parsed.pre_prompt, None) == (
        "You are a poet who only writes in Portuguese\nCreate a sentence about love"
    )


def test_dollar_separator_wins_over_lines() -> None:
    assert texts("first line\nstill first $$$ second $$$  $$$ ---gone $$$ third") == [
        "first line\nstill first", "second", "third"
    ]
    assert texts("a\n\n  b  \n---c\n") == ["a", "b"]


def test_empty_list_means_hello() -> None:
    assert texts("") == [DEFAULT_PROMPT]
    assert texts("---only a comment\n\n") == [DEFAULT_PROMPT]
    assert texts("[just a pre-prompt]") == [DEFAULT_PROMPT]


def test_summary_without_earlier_items_and_placeholder() -> None:
    parsed = parse_prompt_list("[[Judge these:]]")
    assert len(parsed.items) == 1
    assert parsed.items[0].prompt("", None) == f"Judge these:\n\n{ANSWERS_PLACEHOLDER}"


def test_item_settings_are_parsed_as_literals() -> None:
    item = parse_prompt_list('{temperature=0.5, top_k=40, stop=["\\n\\n", "END"], max_tokens=200} Write a poem').items[0]
    assert item.text == "Write a poem"
    assert item.overrides == {"temperature": 0.5, "top_k": 40, "stop": ["\n\n", "END"], "max_tokens": 200}
    assert parse_prompt_list("{seed=7}[[Judge:]]").items[0].overrides == {"seed": 7}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ok\n{temperature=} hi", "item 2 ({temperature=} hi): malformed settings {temperature=}"),
        ("{temperature 0.5} hi", "malformed settings {temperature 0.5}: expected key=value pairs"),
        ("{temprature=0.5} hi", "item 1 ({temprature=0.5} hi): unknown setting temprature"),
        ("{top_p=1.5} hi", "item 1 ({top_p=1.5} hi): top_p=1.5 is out of range: allowed 0 to 1"),
        ("{top_k=-3} hi", "top_k=-3 is out of range: allowed 0 to"),
        ("{temperature=0.5 hi", "the settings block starting with '{' is never closed"),
        ("a\nb\n[[Summarise:", "item 3 ([[Summarise:): '[[' is never closed"),
        ("{stop=__import__('os')} hi", "value of stop: "),
        ("{temperature=[1, [2]]} hi", "value of temperature"),
        ("{temperature=0} [pre]", "a [pre-prompt] cannot carry settings"),
        ("{temperature=0}", "the settings block is not followed by a prompt"),
    ],
)
def test_malformed_lists_name_the_item_and_the_problem(source: str, message: str) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list(source)
    assert message in str(caught.value)


def test_values_are_never_evaluated(tmp_path) -> None:
    marker = tmp_path / "evaluated"
    with pytest.raises(PromptSyntaxError):
        parse_prompt_list(f"{{stop=open({str(marker)!r}, 'w')}} hi")
    assert not marker.exists()


def test_single_fields_take_the_first_part_not_ignored() -> None:
    assert parse_single_field("---old system $$$ You are kind. $$$ You are rude.") == "You are kind."
    assert parse_single_field("---ignored entirely") == ""
    assert parse_single_field("  plain text\nwith lines ") == "plain text\nwith lines"
    assert parse_single_field("") == ""


def test_library_entries_split_on_their_own_line() -> None:
    entries = parse_library("first\nsecond\n$-$-$\n\n$-$-$\nthird $-$-$ not a separator\n")
    assert [e.text for e in entries] == ["first\nsecond", "third $-$-$ not a separator"]
    assert [e.index for e in entries] == [1, 2]
    assert entries[0].first_line == "first"


def test_shipped_libraries_parse() -> None:
    from app.settings import PROJECT_ROOT

    files = [PROJECT_ROOT / "user_prompts.txt", PROJECT_ROOT / "system_prompts.txt"]
    files += sorted((PROJECT_ROOT / "prompts").glob("*.txt"))
    for path in files:
        entries = parse_library(path.read_text(encoding="utf-8"))
        assert entries, path
        for entry in entries:
            assert parse_prompt_list(entry.text).items, (path, entry.index)


def test_a_setting_given_twice_is_refused() -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list("first\n{temperature=0, temperature=5} second")
    assert str(caught.value) == (
        "item 2 ({temperature=0, temperature=5} second): temperature is set twice in "
        "{temperature=0, temperature=5}; give each setting once"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1" * 5000, "seed=111111111111… (a number of 5,000 digits) is out of range"),  # beyond int()'s 4,300 digits
        ("-" + "9" * 5000, "seed=-99999999999… (a number of 5,000 digits) is out of range"),
        ("1" * 100, "seed=111111111111… (a number of 100 digits) is out of range"),
        ("0x" + "f" * 5000, "seed=(a number of about 6,021 digits) is out of range"),
        ("1" * 400 + ".0", "seed=inf is out of range"),
        ("99999999999", "seed=99999999999 is out of range"),
    ],
)
def test_huge_numbers_are_out_of_range_not_not_a_number(value: str, shown: str) -> None:
    with pytest.raises(PromptSyntaxError) as caught:
        parse_prompt_list(f"{{seed={value}}} hi")
    message = str(caught.value)
    assert message.startswith("item 1 ({seed=")
    assert f"{shown}: allowed -1 to 4294967295 (random seed" in message
    assert len(message) < 300
