"""The Learning tab's views, from the records the journal keeps."""

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


def test_candidate_rows_mark_the_pick_and_who_removed_the_rest() -> None:
    rows = learning_view.candidate_rows(RECORD)
    assert rows[0][:5] == [1, 259, "Hello ✔", 10.0, 0.87]
    assert rows[1][-1] == "top_p" and rows[2][-1] == "top_k"
    assert len(rows[0]) == len(learning_view.TABLE_HEADERS)
    greedy = learning_view.candidate_rows(UNLIKELY)
    assert greedy[1][2] == "␣again ✔" and greedy[1][6] == ""  # stages not applied stay empty


def test_probability_rows_per_stage() -> None:
    before = learning_view.probability_rows(RECORD, learning_view.BEFORE)
    assert [r["probability"] for r in before] == [0.87, 0.12, 0.0]
    after = learning_view.probability_rows(RECORD, "top_p")
    assert [r["probability"] for r in after] == [1.0, 0.0, 0.0]
    assert [r["pick"] for r in after] == ["chosen", "other", "other"]


def test_unlikely_picks_last_tokens_ranks_and_token_view() -> None:
    records = [RECORD, UNLIKELY]
    assert learning_view.unlikely_picks([RECORD]) == "*Every token so far was the most likely one.*"
    assert learning_view.unlikely_picks(records) == "- position 1: **␣again** (rank 2)"
    assert learning_view.last_tokens(records) == "`Hello` 87% · `␣again` 20%"
    assert learning_view.rank_rows(records) == [{"position": 0, "rank": 1}, {"position": 1, "rank": 2}]
    view = learning_view.token_view(records)
    assert view.count('class="token"') == 2
    assert 'title="id 259 · p 87.0% · rank 1 · alternatives: Greetings 12.0%, &lt;0x00&gt; 0.0%"' in view
    assert ">Hello</span>" in view and "> again</span>" in view
