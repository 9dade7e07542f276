"""What of an answer is read aloud: prose only, one line per block."""

from __future__ import annotations

import pytest

from app.media.speech_text import speakable_text


def test_plain_prose_is_unchanged() -> None:
    assert speakable_text("Hello from the demo model.") == "Hello from the demo model."
    assert speakable_text("no full stop at the end") == "no full stop at the end"


def test_lines_of_a_paragraph_are_joined_and_paragraphs_are_lines() -> None:
    text = "This sentence is wrapped\nover two lines.\n\n\nA second   paragraph\twith  spaces"
    assert speakable_text(text) == "This sentence is wrapped over two lines.\nA second paragraph with spaces"


@pytest.mark.parametrize("fence", ["```", "~~~", "````"])
def test_fenced_code_blocks_are_not_read(fence: str) -> None:
    text = f"Here is the code:\n{fence}python\nprint('hello')\nx = 1\n{fence}\nIt prints hello."
    assert speakable_text(text) == "Here is the code:\nIt prints hello."


def test_fence_of_any_language_or_none_and_indented_in_a_list() -> None:
    text = (
        "Run this:\n```bash\nls -la\n```\nThen this:\n```\nplain\n```\n"
        "1. Install it:\n   ```sh\n   pip install x\n   ```\n2. Use it."
    )
    assert speakable_text(text) == "Run this:\nThen this:\nInstall it:\nUse it."


def test_a_fence_closes_only_with_its_own_character_and_length() -> None:
    text = "Before.\n````\n```\nstill code\n~~~\n````\nAfter."
    assert speakable_text(text) == "Before.\nAfter."


def test_an_unclosed_fence_hides_the_rest() -> None:
    assert speakable_text("Start.\n```python\nprint(1)\nmore code") == "Start."


def test_code_only_leaves_nothing() -> None:
    assert speakable_text("```python\nprint(1)\n```") == ""
    assert speakable_text("`x`.") == ""
    assert speakable_text("   \n\n") == ""


def test_inline_code_is_left_out() -> None:
    assert speakable_text("Call `print()` to show it.") == "Call to show it."
    assert speakable_text("Use ``a `tick` inside`` here.") == "Use here."
    assert speakable_text("The value is `x`.") == "The value is."


def test_special_tokens_are_not_read() -> None:
    text = "<|im_start|>assistant\nHi there.<|im_end|><|endoftext|> <s>[INST] Question [/INST] Answer.</s>"
    assert speakable_text(text) == "assistant Hi there. Question Answer."
    assert speakable_text("<<SYS>>\nBe kind.\n<</SYS>><start_of_turn>model Yes.<end_of_turn><eos>") == "Be kind. model Yes."


def test_think_blocks_are_removed_entirely() -> None:
    assert speakable_text("<think>\nLet me think.\n\nHmm.\n</think>\n\nThe answer is 4.") == "The answer is 4."
    assert speakable_text("Before <THINK>x</THINK> after.") == "Before after."
    # A template that opens the block itself leaves only the closing tag in the answer.
    assert speakable_text("I should add.\n</think>\nFour.") == "Four."
    # An answer cut off while thinking has nothing to read.
    assert speakable_text("<think>still thinking") == ""


def test_html_tags_go_and_comparisons_stay() -> None:
    assert speakable_text('<p>Some <b>bold</b> and <a href="x">a link</a>.</p>') == "Some bold and a link."
    assert speakable_text("| a<br>b | c |\nLine one<br>line two<br/>") == "a b, c.\nLine one line two"
    assert speakable_text("x<y and z>w, and a < b.") == "x<y and z>w, and a < b."
    assert speakable_text("Run <code>rm -rf</code> never. <!-- note -->Done &amp; dusted.") == "Run never. Done & dusted."
    assert speakable_text("<pre>\ncode\n</pre>\nAfter.") == "After."


def test_headings_become_sentences() -> None:
    text = "# Installation\nRun the installer.\n## Usage ##\nOpen it."
    assert speakable_text(text) == "Installation.\nRun the installer.\nUsage.\nOpen it."
    assert speakable_text("Title\n=====\nBody text.\n\nSub\n---\nMore.") == "Title.\nBody text.\nSub.\nMore."
    assert speakable_text("#hashtag is not a heading") == "#hashtag is not a heading"


def test_emphasis_markers_go_and_words_stay() -> None:
    text = "Some **bold**, __strong__, *italic*, _emphasis_ and ~~struck~~ words."
    assert speakable_text(text) == "Some bold, strong, italic, emphasis and struck words."
    assert speakable_text("***both*** and **nested *inner* text**") == "both and nested inner text"
    assert speakable_text("snake_case_name and 2 * 3 * 4") == "snake_case_name and 2 * 3 * 4"
    assert speakable_text(r"Literal \*stars\* and \_under\_.") == "Literal *stars* and _under_."


def test_blockquotes_and_rules() -> None:
    assert speakable_text("> Quoted words\n> go on.\n\n---\nAfter the rule.") == "Quoted words go on.\nAfter the rule."
    assert speakable_text("> > Deeply quoted.") == "Deeply quoted."
    assert speakable_text("Said:\n> Quote.\nMine.") == "Said:\nQuote.\nMine."
    assert speakable_text(">= 3 items") == ">= 3 items"


def test_list_items_are_lines() -> None:
    text = "Shopping:\n- apples\n* pears\n+ plums\n1. first\n2) second\n- [ ] todo\n- [x] done"
    assert speakable_text(text) == "Shopping:\napples.\npears.\nplums.\nfirst.\nsecond.\ntodo.\ndone"


def test_tables_are_read_row_by_row_without_pipes() -> None:
    text = "| Name | Age |\n|:-----|----:|\n| Ann | 30 |\n| Bob | 4 |\n\nEnd."
    assert speakable_text(text) == "Name, Age.\nAnn, 30.\nBob, 4.\nEnd."
    assert speakable_text("Name | Age\n--- | ---\nAnn | 30") == "Name, Age.\nAnn, 30"


def test_links_keep_their_text_images_and_urls_go() -> None:
    assert speakable_text("See [the docs](https://example.com/docs) now.") == "See the docs now."
    assert speakable_text("Logo: ![the logo](logo.png) here.") == "Logo: here."
    assert speakable_text("Visit https://example.com/a?b=1, or www.example.org.") == "Visit, or."
    assert speakable_text("Mail <mailto:a@b.c> or <https://x.y>.") == "Mail or."
    assert speakable_text("A [reference][1] link.[^2]\n\n[1]: https://example.com") == "A reference link."
    assert speakable_text("(see https://example.com)") == "(see)"


def test_a_realistic_answer() -> None:
    answer = (
        "<think>The user wants a function.</think>\n"
        "## Reversing a string\n\n"
        "You can use **slicing**:\n\n"
        "```python\ndef reverse(s):\n    return s[::-1]\n```\n\n"
        "Then call `reverse('abc')`, which returns `'cba'`. See the "
        "[Python docs](https://docs.python.org/3/).<|im_end|>"
    )
    assert speakable_text(answer) == (
        "Reversing a string.\nYou can use slicing:\nThen call, which returns. See the Python docs."
    )
