"""The page's handlers called directly, without a browser: the run, its preview, the refusal of a
second start, learning mode's branches (live and reopened) and a tab closed mid-answer. The model
is the real demo model on llama.cpp; the journal is the real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pytest

from app.services import Services, start_services
from app.ui import chain_run
from app.ui.app import StudioPage, assemble
from app.ui.panels import history_panel, learning_panel

HELLO = "Hello from the demo model."


@pytest.fixture
def studio(studio_home: Path) -> Iterator[tuple[Services, StudioPage]]:
    services = start_services(studio_home / "models")
    try:
        yield services, assemble(services)
    finally:
        services.close()


def fields(page: StudioPage, **changes: Any) -> dict[Any, Any]:
    """The run's inputs at their defaults, with some fields changed (by panel attribute path)."""
    handles = page.handles
    data = {component: component.value for component in chain_run.run_inputs(handles)}
    data[handles.entries] = []
    named = {"prompt": handles.prompt, "models": handles.models,
             "learning": page.panels["learning"].enabled, "loops": page.panels["settings"].loops,
             "responses": page.panels["settings"].responses}
    for name, value in changes.items():
        data[named[name]] = value
    return data


def run_to_end(services: Services, page: StudioPage, data: dict[Any, Any], session: str = "tab") -> dict[Any, Any]:
    """Every value the run yielded, the last one winning."""
    final: dict[Any, Any] = {}
    for values in chain_run.run_chain(services, page.handles, data, session):
        final.update(values)
    return final


def test_a_run_streams_the_transcript_and_ends_equal_to_the_journal(studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    handles = page.handles
    final = run_to_end(services, page, fields(page, prompt="hi\nhello"))
    assert final[handles.status] == "Run finished."
    entries = final[handles.entries]
    assert [e.title for e in entries[1:]] == [f"chain-studio-demo.gguf · item {i} · response 1 · loop 1" for i in (1, 2)]
    assert [e.prompt for e in entries[1:]] == ["hi", "hello"]  # what was asked, with each answer
    run_id = final[handles.last_run_store]
    stored = services.journal.stored_run(run_id)
    assert stored is not None and [a.text for a in stored.answers] == [e.text for e in entries[1:]]
    assert final[handles.run_done] == 1 and final[handles.start]["interactive"] is True
    assert "› hi" in final[handles.transcript]


def test_the_preview_counts_items_and_answers_before_start(studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    demo = "chain-studio-demo.gguf"
    assert chain_run.plan_preview(services, page.handles, fields(page, prompt="a\nb\nc", models=f"{demo}\n{demo}")) \
        == "3 prompts × 2 models = 6 answers"
    assert chain_run.plan_preview(services, page.handles, fields(page, prompt="one", loops=2)) \
        == "1 prompt × 1 model × 2 loops = 2 answers"
    assert chain_run.plan_preview(services, page.handles, fields(page, prompt="[[unclosed")).startswith("⚠️")


def test_a_second_start_in_the_same_tab_is_refused_and_the_first_run_goes_on(
        studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    running = chain_run.run_chain(services, page.handles, fields(page, prompt="{max_tokens=400} sing ~"), "tab")
    final: dict[Any, Any] = {}
    for values in running:
        final.update(values)
        entries = values.get(page.handles.entries) or []
        if entries and entries[-1].kind == "answer" and entries[-1].text:  # the answer streams
            break
    with pytest.raises(gr.Error, match="A run is going in this tab"):
        chain_run.check_idle(services, "tab")
    chain_run.check_idle(services, "another tab")  # other tabs may start (they wait for the model)
    for values in running:
        final.update(values)
    assert final[page.handles.status] == "Run finished."
    stored = services.journal.stored_run(final[page.handles.last_run_store])
    assert stored is not None and final[page.handles.entries][-1].text == stored.answers[-1].text


def test_closing_the_tab_mid_answer_keeps_the_partial_answer(studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    running = chain_run.run_chain(services, page.handles, fields(page, prompt="sing ~"), "tab")
    shown = ""
    for values in running:
        entries = values.get(page.handles.entries) or []
        shown = entries[-1].text if entries else shown
        if shown.count("la") >= 6:
            break
    running.close()  # what Gradio does when the tab goes away
    run = services.journal.runs()[0]
    stored = services.journal.stored_run(run.id)
    assert stored is not None and len(stored.answers) == 1
    assert stored.answers[0].stop_reason == "stopped" and stored.answers[0].text.startswith(shown)


def test_branches_are_grown_journaled_and_come_back_on_reopen(studio: tuple[Services, StudioPage]) -> None:
    services, page = studio
    learning = page.panels["learning"]
    final = run_to_end(services, page, fields(page, prompt="hi", learning=True))
    branches = final[learning.branches]
    assert [b.label for b in branches] == ["original answer"] and branches[0].text == HELLO
    tiny = next(c.token_id for c in branches[0].choices[3].candidates if c.piece == " tiny")
    grown: dict[Any, Any] = {}
    for values in learning_panel.grow(learning, page.handles, services, "tab", branches, "original answer", 3, tiny,
                                      10, "before sampling"):
        grown.update(values)
    assert grown[page.handles.status].startswith("Branch 1 saved as answer")
    assert [b.text for b in grown[learning.branches]] == [HELLO, "Hello from the tiny model."]
    assert grown[learning.branches][1].label == "branch 1: original answer → position 3 takes ␣tiny"

    run_id = final[page.handles.last_run_store]
    summary = services.journal.runs()[0]
    assert (summary.answers, summary.planned, summary.branches) == (1, 1, 1)  # a branch is not a second answer
    assert history_panel.runs_table(services)[0][3] == "1/1 + 1 branch"
    reopened = learning_panel.show_reopened(learning, services, run_id, "before sampling")
    assert [b.label for b in reopened[learning.branches]] == [b.label for b in grown[learning.branches]]
    shown, _stored = history_panel.replay_run(services, run_id)
    assert shown[0].note == "1 of 1 answer + 1 branch · completed"
    assert shown[2].note == "branch of answer 1 at position 3"
