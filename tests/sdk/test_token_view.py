"""The token view a notebook shows for a SampleResult or a context (`_repr_html_`, no widget)."""

from __future__ import annotations

import re

from app.sdk import SampleResult, Token
from app.sdk.context import Context


def test_a_sample_result_draws_each_token_shaded_with_its_id_probability_and_alternatives() -> None:
    alternatives = (Token("Hello", 259, 0.87), Token("Greetings", 260, 0.12))
    result = SampleResult("Hello <b>", (Token("Hello", 259, 0.87, alternatives), Token(" <b>", 7, 0.02)))
    html = result._repr_html_()
    spans = re.findall(r'<span class="cs-token" style="([^"]*)" title="([^"]*)" data-id="(\d+)">([^<]*)</span>', html)
    assert [(token_id, text) for _style, _title, token_id, text in spans] == [("259", "Hello"), ("7", " &lt;b&gt;")]
    (likely_style, likely_title, _, _), (unlikely_style, _, _, _) = spans
    assert "hsl(104," in likely_style and "hsl(2," in unlikely_style  # green when likely, red when not
    assert likely_title == "id 259 · p=0.870\n&#x27;Hello&#x27;: 0.870\n&#x27;Greetings&#x27;: 0.120"
    assert str(result) == "Hello <b>"


def test_a_context_shows_prompted_tokens_grey_and_sampled_ones_shaded() -> None:
    context = Context(name="test")
    context.add([Token("<s>", 1), Token("hi", 5)], "hi")
    context.add([Token("!", 9, 0.5)], "!")
    html = context._repr_html_()
    assert html.count("background:#e8e8e8") == 2 and "id 5 · prompted" in html and "hsl(60," in html
    assert context.as_string() == "hi!"


def test_tokens_round_trip_through_plain_data() -> None:
    token = Token("a", 3, 0.25, (Token("a", 3, 0.25), Token("b", 4, 0.2)), attention=(0.5, 0.5))
    assert Token.from_dict(token.to_dict()) == token
