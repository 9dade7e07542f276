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
        "Create an English paragraph summarising the ideas in the following sentences:\n\n"
        "O amor é fogo.\n\nA vida é um rio."
    )  # as in Samantha, the final prompt goes without the pre-prompt (or it would ask for Portuguese)
    assert parsed.items[0].prompt(parsed.pre_prompt, None) == (
        "You are a poet who only writes in Portuguese\nCreate a sentence about love"
    )


def test_pre_prompt_and_final_prompt_are_found_anywhere_in_the_field() -> None:
    inline = parse_prompt_list("[Be brief] Say hello\nSay goodbye")
    assert inline.pre_prompt == "Be brief" and texts("[Be brief] Say hello\nSay goodbye") == ["Say hello", "Say goodbye"]
    shared = parse_prompt_list("[Summarise the page:]\n[[Join the summaries:]]\n$$$\nPage 1\n$$$\nPage 2")
    assert shared.pre_prompt == "Summarise the page:"
    assert [(i.text, i.collects_answers) for i in shared.items] == [
        ("Page 1", False), ("Page 2", False), ("Join the summaries:", True)
    ]
    # the final prompt comes last wherever it is written; a pre-prompt may span lines
    first = parse_prompt_list("[[Judge:]]\n[Line one\nline two]\nA\nB")
    assert first.pre_prompt == "Line one\nline two"
    assert [i.text for i in first.items] == ["A", "B", "Judge:"]
    assert first.items[0].prompt(first.pre_prompt, None) == "Line one\nline two\nA"


def test_only_the_first_spans_are_taken_other_brackets_stay() -> None:
    parsed = parse_prompt_list(
        "[Answer with Python]\nPrint xs[0] where xs = [3, 4]\n[[Judge:]]\nKeep [[this]] and [that] as written"
    )
    assert parsed.pre_prompt == "Answer with Python"
    assert [i.text for i in parsed.items] == [
        "Print xs[0] where xs = [3, 4]", "Keep [[this]] and [that] as written", "Judge:"
    ]
    # a [[...]] that is not the first is never taken for the pre-prompt
    assert parse_prompt_list("[[one]] [[two]] [pre] x").pre_prompt == "pre"


def test_list_values_of_settings_are_not_brackets_of_the_list() -> None:
    parsed = parse_prompt_list('{stop=["END"]} Write\n[Be brief]\n{seed=1, stop=["[[x]]"]} [[Judge:]]')
    assert parsed.pre_prompt == "Be brief"
    assert [(i.text, i.overrides) for i in parsed.items] == [
        ("Write", {"stop": ["END"]}), ("Judge:", {"seed": 1, "stop": ["[[x]]"]})
    ]


def test_any_line_break_separates_lines_and_nothing_else_does() -> None:
    assert texts("a\r\nb\rc\n") == ["a", "b", "c"]
    assert texts("a\u2028b") == ["a\u2028b"]  # Samantha splits at line breaks only


def test_dollar_separator_wins_over_lines() -> None:
    assert texts("first line\nstill first $$$ second $$$  $$$ ---gone $$$ third") == [
        "first line\nstill first", "second", "third"
    ]
    assert texts("a\n\n  b  \n---c\n") == ["a", "b"]


def test_empty_list_means_hello_or_the_pre_prompt_alone() -> None:
    assert texts("") == [DEFAULT_PROMPT]
    assert texts("---only a comment\n\n") == [DEFAULT_PROMPT]
    for source in ("[just a pre-prompt]", "[just a pre-prompt]\n$$$", "[just a pre-prompt]\n---ignored"):
        parsed = parse_prompt_list(source)
        assert [item.prompt(parsed.pre_prompt, None) for item in parsed.items] == ["just a pre-prompt"]


def test_summary_without_earlier_items_and_placeholder() -> None:
    parsed = parse_prompt_list("[[Judge these:]]")
    assert [item.text for item in parsed.items] == [DEFAULT_PROMPT, "Judge these:"]  # as Samantha plans it
    assert parsed.items[1].prompt("", None) == f"Judge these:\n\n{ANSWERS_PLACEHOLDER}"


def test_item_settings_are_parsed_as_literals() -> None:
    item = parse_prompt_list('{temperature=0.5, top_k=40, stop=["\\n\\n", "END"], max_tokens=200} Write a poem').items[0]
    assert item.text == "Write a poem"
    assert item.overrides == {"temperature": 0.5, "top_k": 40, "stop": ["\n\n", "END"], "max_tokens": 200}
    assert parse_prompt_list("{seed=7}[[Judge:]]").items[-1].overrides == {"seed": 7}
    assert parse_prompt_list("a\n[[{seed=7} Judge:]]").items[-1].overrides == {"seed": 7}


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
        ("{temperature=0} [pre]", "item 1 ({temperature=0}): the settings block is not followed by a prompt"),
        ("{seed=1} [[{seed=2} Judge:]]", "the final prompt ([[{seed=2} Judge:]]): seed is set twice"),
        ("{reset_model=yes} hi", "value of reset_model: 'yes' is not True or False"),
        ("{n_ctx=-5} hi", "n_ctx=-5 is out of range: allowed 0 to 1048576"),
        ("{stop=two words} hi", "value of stop: 'two words' is not a number"),
        ("{temperature=hot} hi", "value of temperature: 'hot' is not a number"),
        ("{n_ctxx=512} hi", "unknown setting n_ctxx; known settings: choices, dry_allowed_length"),
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


@pytest.mark.parametrize("source", ["[[" * 60_000 + "x", "[ a " * 60_000, "x ]] [[" * 30_000])
def test_unclosed_brackets_do_not_make_parsing_slow(source: str) -> None:
    """Each bracket span is looked for from its first opening only: a field full of brackets that
    never close parses in linear time (lazy regular expressions took minutes on these)."""
    import time

    started = time.perf_counter()
    try:
        parse_prompt_list(source)
    except PromptSyntaxError:
        pass  # an item starting with an unclosed [[ is refused: the time is what counts here
    assert time.perf_counter() - started < 10
