"""The Learning tab's views, from typed token choices (the journal's records come back as the same)."""

from app.core.learning import TokenChoice
from app.ui import learning_view

RECORD = {
    "position": 0, "chosen": 259, "rank": 1, "stages": ["penalties", "top_k", "tfs_z", "typical_p", "top_p",
                                                         "min_p", "temperature"],
    "candidates": [
        [259, "Hello", 10.0, 0.87, [0.87, 0.88, 0.88, 0.88, 1.0, 1.0, 1.0], None],
        [260, "Greetings", 8.0, 0.12, [0.12, 0.12, 0.12, 0.12, 0.0, 0.0, 0.0], "top_p"],
        [3, "<0x00>", 0.0, 0.0, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "top_k"],
    ],
}
UNLIKELY = {"position": 1, "chosen": 262, "rank": 2, "stages": ["penalties"],
            "candidates": [[261, " from", 10.0, 0.8, [0.8], None], [262, " again", 8.0, 0.2, [0.2], None]]}
FIRST, SECOND = TokenChoice.from_record(RECORD), TokenChoice.from_record(UNLIKELY)


def test_records_round_trip_through_the_journal_form() -> None:
    assert TokenChoice.from_record(FIRST.to_record()) == FIRST
    assert FIRST.chosen_candidate.piece == "Hello" and SECOND.chosen_candidate.piece == " again"


def test_the_table_shows_only_the_stages_applied_with_explained_short_headers() -> None:
    greedy = learning_view.candidates_table(SECOND)
    assert greedy.count("<th title") == 5 + 1 + 1  # rank, id, token, logit, p · penalties · removed by
    assert '<th title="after the repeat, frequency and presence penalties">pen.</th>' in greedy
    assert "top-k" not in greedy and "temp." not in greedy  # stages that were off take no column
    full = learning_view.candidates_table(FIRST)
    assert full.count("<th title") == 5 + 7 + 1
    assert '<tr class="chosen"><td>1</td><td>259</td><td>Hello ✔</td>' in full
    assert "<td>top_p</td></tr>" in full and "<td>top_k</td></tr>" in full
    assert "&lt;0x00&gt;" in full  # token text is escaped
    assert learning_view.stage_choices(SECOND) == [learning_view.BEFORE, "penalties"]


def test_probability_rows_per_stage_with_short_labels() -> None:
    before = learning_view.probability_rows(FIRST, learning_view.BEFORE)
    assert [r["probability"] for r in before] == [0.87, 0.12, 0.0]
    after = learning_view.probability_rows(FIRST, "top_p")
    assert [r["probability"] for r in after] == [1.0, 0.0, 0.0]
    assert [r["pick"] for r in after] == ["chosen", "other", "other"]
    long = TokenChoice.from_record({**UNLIKELY, "candidates": [[5, "x" * 40, 1.0, 1.0, [1.0], None]], "chosen": 5})
    assert learning_view.probability_rows(long, learning_view.BEFORE)[0]["token"] == "x" * 11 + "… (5)"


def test_unlikely_picks_last_tokens_ranks_and_token_view() -> None:
    choices = [FIRST, SECOND]
    assert learning_view.unlikely_picks([FIRST]) == "*Every token so far was the most likely one.*"
    assert learning_view.unlikely_picks(choices) == "- position 1: **␣again** (rank 2)"
    assert learning_view.last_tokens(choices) == "`Hello` 87% · `␣again` 20%"
    assert learning_view.rank_rows(choices) == [{"position": 0, "rank": 1}, {"position": 1, "rank": 2}]
    view = learning_view.token_view(choices)
    assert view.count('class="token"') == 2
    assert 'title="id 259 · p 87.0% · rank 1 · alternatives: Greetings 12.0%, &lt;0x00&gt; 0.0%"' in view
    assert ">Hello</span>" in view and "> again</span>" in view
    assert learning_view.candidate_choices(SECOND) == [("␣from (id 261, 80.0%)", 261)]
