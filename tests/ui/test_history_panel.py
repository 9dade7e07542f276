"""The page over a damaged journal: a notice at the top, and History → Salvage brings rows back."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from app.services import Services
from app.ui.panels import history_panel
from tests.store.test_journal_damage import damaged_pages, write_journal


@pytest.fixture
def services(studio_home: Path, tmp_path: Path) -> Iterator[Services]:
    """Services started over a journal with three zeroed pages (moved aside at start)."""
    studio_home.mkdir(parents=True, exist_ok=True)
    path = studio_home / "journal.sqlite3"
    write_journal(path)
    path.write_bytes(damaged_pages(path.read_bytes()))
    started = Services(models_dir=tmp_path / "models")
    yield started
    started.close()


def test_the_notice_names_the_set_aside_file_and_the_salvage(services: Services) -> None:
    moved = services.journal.moved_aside
    assert moved is not None
    notice = history_panel.journal_notice(services)
    assert notice.startswith("⚠️ The journal was damaged") and str(moved) in notice
    assert "History → Salvage" in notice
    assert history_panel.set_aside_choices(services) == [(moved.name, str(moved))]


def test_salvage_button_copies_rows_and_hides_what_is_done(services: Services) -> None:
    moved = str(services.journal.moved_aside)
    message, table, choices, section, notice = history_panel.salvage_journal(services, moved)
    assert message.startswith(f"Salvaged from {Path(moved).name} (") and " runs, " in message
    assert len(table) >= 30 and table[-1][0] == 1 and table[-1][3] == "2/2"
    assert choices["choices"] == [] and section["visible"] is False and notice["visible"] is False

    again, *_ = history_panel.salvage_journal(services, moved)
    assert again.startswith("⚠️ ") and "already salvaged" in again


def test_the_page_shows_the_notice_and_the_salvage_section(services: Services) -> None:
    from app.ui.app import build_ui

    page = build_ui(services)
    shown = {block.elem_id: block for block in page.blocks.values() if getattr(block, "elem_id", None)}
    assert shown["journal-notice"].visible and str(services.journal.moved_aside) in shown["journal-notice"].value
    assert shown["history-damaged"].visible and shown["history-salvage"].value == "Salvage readable rows"


def test_a_healthy_journal_shows_no_notice(studio_home: Path, tmp_path: Path) -> None:
    healthy = Services(models_dir=tmp_path / "models")
    try:
        assert history_panel.journal_notice(healthy) == "" and history_panel.set_aside_choices(healthy) == []
    finally:
        healthy.close()
