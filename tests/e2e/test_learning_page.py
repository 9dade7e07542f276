"""Learning mode in the page: candidates, stages, unlikely picks and the token view, live and
again after reopening the run from the history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStudio

pytestmark = pytest.mark.e2e


def run_in_learning_mode(page, url: str, prompt: str = "hi") -> None:
    """Open the studio, turn learning mode on and let one answer finish."""
    page.goto(url)
    page.get_by_role("tab", name="Learning").click()
    page.locator("#option-learning input").check()
    page.locator("#user-prompt textarea").fill(prompt)
    page.locator("#start").click()
    page.locator("#status").get_by_text("Run finished.").wait_for(timeout=60_000)


def test_learning_mode_shows_each_token_choice(studio_server: RunningStudio, browser: object,
                                               artifacts_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        run_in_learning_mode(page, studio_server.url)
        page.locator("#token-view .token").first.wait_for(timeout=30_000)
        spans = page.locator("#token-view .token")
        assert spans.count() == 5  # "Hello", " from", " the", " demo", " model."
        assert spans.first.inner_text() == "Hello"
        assert "alternatives: Greetings" in (spans.first.get_attribute("title") or "")
        table = page.locator("#learning-table").inner_text()
        assert "␣model. ✔" in table and "␣studio." in table  # the last token and its alternative
        assert page.locator("#learning-last").inner_text().startswith("Hello 87% · ␣from 87%")
        page.screenshot(path=str(artifacts_dir / "learning.png"), full_page=True)

        page.get_by_role("tab", name="History").click()
        page.locator("#history-refresh").click()
        page.wait_for_function(
            "() => (document.querySelector('#history-runs [data-testid=cell-0-2]') || {}).innerText === 'completed'")
        run_id = page.locator("#history-runs [data-testid=cell-0-0]").inner_text().strip()
        page.locator("#clear").click()
        page.get_by_role("tab", name="Learning").click()
        page.get_by_role("tab", name="History").click()
        page.locator("#history-run-id input").fill(run_id)
        page.locator("#history-reopen").click()
        page.locator("#status").get_by_text(f"Reopened run {run_id}.").wait_for(timeout=30_000)
        page.get_by_role("tab", name="Learning").click()
        page.wait_for_function("() => document.querySelectorAll('#token-view .token').length === 5")
    finally:
        page.close()


def test_next_token_advances_exactly_one_token_per_click(studio_server: RunningStudio, browser: object,
                                                          artifacts_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        page.goto(studio_server.url)
        page.get_by_role("tab", name="Learning").click()
        page.locator("#option-learning input").check()
        page.locator("#stepping").get_by_text("next token").click()
        page.locator("#user-prompt textarea").fill("hi")
        page.locator("#start").click()
        page.get_by_role("tab", name="Transcript").click()
        page.locator("#transcript h4").wait_for(timeout=60_000)  # the answer has begun, with no token yet

        def shown() -> str:
            return page.locator("#transcript p").last.inner_text()

        page.wait_for_timeout(500)
        assert shown() == "…"
        for expected in ("Hello", "Hello from", "Hello from the"):
            page.locator("#next-token").click()
            page.wait_for_function(
                "(t) => { const p = [...document.querySelectorAll('#transcript p')].pop(); return p && p.innerText === t; }",
                arg=expected, timeout=30_000)
            page.wait_for_timeout(400)  # and no further token comes by itself
            assert shown() == expected
        page.screenshot(path=str(artifacts_dir / "stepping.png"), full_page=True)
        page.locator("#stop-all").click()
        page.locator("#status").get_by_text("Run stopped").wait_for(timeout=30_000)
    finally:
        page.close()


def test_branching_from_a_candidate(studio_server: RunningStudio, browser: object, artifacts_dir: Path) -> None:
    import sqlite3

    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        run_in_learning_mode(page, studio_server.url)
        page.locator("#branches").get_by_text("original answer", exact=True).wait_for(timeout=30_000)
        page.locator("#branch-position input").fill("3")  # the token " demo"
        page.wait_for_function("() => (document.querySelector('#branch-token input') || {}).value.includes('tiny')")
        page.locator("#branch-button").click()
        page.locator("#status").get_by_text("Branch 1 saved as answer").wait_for(timeout=60_000)
        page.locator("#branch-text").get_by_text("Hello from the tiny model.").wait_for(timeout=30_000)
        spans = page.locator("#token-view .token")
        assert [spans.nth(i).inner_text() for i in range(spans.count())] == ["Hello", " from", " the", " tiny", " model."]
        page.screenshot(path=str(artifacts_dir / "branch.png"), full_page=True)
        page.locator("#branches").get_by_text("original answer", exact=True).click()  # still reachable
        page.locator("#branch-text").get_by_text("Hello from the demo model.").wait_for(timeout=30_000)


    finally:
        page.close()
    assert studio_server.home is not None
    journal = sqlite3.connect(studio_server.home / "journal.sqlite3")
    branch = journal.execute("SELECT run_id, seq, parent_seq, position FROM branches ORDER BY rowid DESC").fetchone()
    texts = dict(journal.execute("SELECT seq, text FROM answers WHERE run_id = ?", (branch[0],)).fetchall())
    assert branch[3] == 3 and texts[branch[2]] == "Hello from the demo model." and texts[branch[1]] == "Hello from the tiny model."



def test_the_constraint_is_a_visible_stage(studio_server: RunningStudio, browser: object, artifacts_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        run_in_learning_mode(page, studio_server.url, '{choices=["yes", "no"], seed=3} Is it?')
        page.locator("#token-view .token").first.wait_for(timeout=30_000)
        spans = page.locator("#token-view .token")
        answer = "".join(spans.nth(i).inner_text() for i in range(spans.count()))
        assert answer in ("yes", "no")
        tip = spans.first.get_attribute("title") or ""
        assert "0.0% before the constraint, 50.0% after" in tip
        assert tip.index("valid alternatives: ") < tip.index("ruled out by the constraint: Hello 87.1%")
        table = page.locator("#learning-table")  # the last token's candidates
        assert "constr." in table.locator("thead").inner_text()
        assert "constraint" in table.locator("tbody").inner_text()  # the tokens it ruled out say so
        page.screenshot(path=str(artifacts_dir / "constraint-stage.png"), full_page=True)

        page.locator("#user-prompt textarea").fill("{grammar='root ::= missing'} Broken")
        page.locator("#start").click()
        page.locator("#status").get_by_text("Undefined rule identifier 'missing'").wait_for(timeout=30_000)
        assert "item 1 (grammar=root ::= missing)" in page.locator("#status").inner_text()
    finally:
        page.close()


def open_compare_tab(page, url: str, folder: Path, prompt: str) -> None:
    """The page with the demo model and a tiny random model in Models, `prompt`, and the Compare tab open."""
    from app.models.benchmark_model import write_tiny_attention_model

    tiny = write_tiny_attention_model(folder / "tiny.gguf")
    page.goto(url)
    page.locator("#models textarea").fill(f"chain-studio-demo.gguf\n{tiny}")
    page.locator("#user-prompt textarea").fill(prompt)
    page.get_by_role("tab", name="Compare").click()


def test_the_compare_tab_sets_models_side_by_side_and_diffs_two_answers(
        studio_server: RunningStudio, browser: object, artifacts_dir: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        open_compare_tab(page, studio_server.url, tmp_path, "hi")
        page.locator("#compare-next").click()
        result = page.locator("#next-tokens-result")
        result.wait_for(timeout=60_000)
        header = result.locator("table.next-tokens thead").inner_text()
        assert "chain-studio-demo.gguf" in header and "tiny.gguf" in header
        first_row = result.locator("table.next-tokens tbody tr").first.inner_text()
        assert "Hello 87.1%" in first_row
        assert result.locator(".continuation").count() == 2
        assert result.locator(".token.parts").count() == 2  # each model's token where they part
        assert "part at character" in result.locator(".compare-verdict").inner_text()
        page.screenshot(path=str(artifacts_dir / "compare-next-tokens.png"), full_page=True)

        # two answers of one run: "Hello from the demo model." and the demo model's three lines
        page.locator("#models textarea").fill("chain-studio-demo.gguf")
        page.locator("#user-prompt textarea").fill("Say hello\nA poem ^")
        page.locator("#start").click()
        page.locator("#status").get_by_text("Run finished.").wait_for(timeout=60_000)
        run_id = re.match(r"Run (\d+)", page.locator("#transcript h5").last.inner_text()).group(1)  # type: ignore[union-attr]
        page.locator("#diff-a textarea").fill(f"{run_id}:1")
        page.locator("#diff-b textarea").fill(f"{run_id}:2")
        page.locator("#diff-button").click()
        diff = page.locator("#answer-diff")
        diff.wait_for(timeout=30_000)
        assert "They part at token 0: 'Hello' in" in diff.locator(".compare-verdict").inner_text()
        assert diff.locator(".diff-line.removed").first.inner_text() == "-Hello from the demo model."
        assert diff.locator(".diff-tokens").count() == 2 and diff.locator(".token.parts").count() == 2
        page.screenshot(path=str(artifacts_dir / "compare-diff.png"), full_page=True)

        # the run again, each answer with its seed: the same tokens, and the two runs' diff
        page.locator("#diff-a textarea").fill(run_id)
        page.locator("#replay-button").click()
        verdict = page.locator("#diff-result .replay-verdict")
        verdict.wait_for(timeout=60_000)
        replay_id = str(int(run_id) + 1)
        assert verdict.inner_text() == f"Replay of run {run_id} (journaled as run {replay_id}): token-identical, 2 answers."
        assert page.locator("#diff-b textarea").input_value() == replay_id
        assert "2 answers paired by their place in the plan, 0 differ" in page.locator("#run-diff").inner_text()
    finally:
        page.close()


def test_the_grid_runs_every_model_on_every_item_scores_sorts_and_exports(
        studio_server: RunningStudio, browser: object, artifacts_dir: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    try:
        open_compare_tab(page, studio_server.url, tmp_path, "{max_tokens=6} Say hello\n{max_tokens=6} A poem ^")
        page.locator("#grid-run").click()
        grid = page.locator("#grid-view")
        grid.wait_for(timeout=90_000)
        assert page.locator("#grid-table tbody tr").count() == 2
        poem = grid.locator('td[data-model="chain-studio-demo.gguf"][data-item="2"]')
        assert poem.locator(".grid-answer").inner_text().startswith("Roses are red")
        assert "tok/s" in poem.locator(".grid-metrics").inner_text()
        assert grid.locator(".grid-score.unrated").count() == 4
        run_id = page.locator("#grid-id input").input_value()

        # the person's score for one cell, then the judge's for every cell
        page.locator("#grid-rate-item input").fill("2")
        page.locator("#grid-rate-score").get_by_text("4").click()
        page.locator("#grid-rate").click()
        page.wait_for_function("() => document.querySelector('#grid-view td[data-item=\"2\"] .grid-score')"
                               ".innerText.includes('★ 4 (you)')")
        page.locator("#grid-judge-model textarea").fill("chain-studio-demo.gguf")
        page.locator("#grid-judge").click()
        page.locator("#grid-status").get_by_text("3 of 3 scored. Your 1 score kept.").wait_for(timeout=60_000)
        assert grid.locator(".grid-score").filter(has_text="(judge: chain-studio-demo.gguf)").count() == 3
        assert grid.locator(".grid-score").filter(has_text="★ 4 (you)").count() == 1
        assert grid.locator(".grid-score.unrated").count() == 0

        page.locator("#grid-sort input").click()
        page.get_by_role("option", name="mean score").click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts_dir / "grid.png"), full_page=True)
        page.locator("#grid-export-csv").click()
        page.locator("#grid-status").get_by_text(f"Exported run {run_id}").wait_for(timeout=30_000)
        assert page.locator("#grid-file a").first.get_attribute("href")  # a download link

        # reopened from History
        page.locator("#grid-id input").fill("")
        page.get_by_role("tab", name="History").click()
        page.locator("#history-run-id input").fill(run_id)
        page.locator("#history-grid").click()
        page.locator("#grid-status").get_by_text(f"Run {run_id} as a grid.").wait_for(timeout=30_000)
        assert page.locator("#grid-view .grid-score").filter(has_text="judge").count() == 3
    finally:
        page.close()
