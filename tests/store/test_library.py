"""Saved prompt libraries: in the data folder (or CHAIN_STUDIO_PROMPTS_DIR), never in the install
folder, listed once each next to the shipped ones; nameless or empty saves are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from app import settings
from app.core.errors import ChainStudioError
from app.store.library import library_entries, save_prompt

ROOT = settings.PROJECT_ROOT
NAME_HINT = "give the prompt file a name, e.g. my_prompts"


def shipped_bytes() -> dict[Path, bytes]:
    """Every file the install ships as a prompt library, and the files of its prompts/ folder."""
    files = [ROOT / "user_prompts.txt", ROOT / "system_prompts.txt", *(ROOT / "prompts").iterdir()]
    return {path: path.read_bytes() for path in files if path.is_file()}


@pytest.fixture(autouse=True)
def shipped() -> Iterator[dict[Path, bytes]]:
    """The shipped files' bytes before each test; put back afterwards whatever the test did (a
    failing test, or the code before this fix, must not leave prompts in the install folder)."""
    before = shipped_bytes()
    yield before
    for path in set(shipped_bytes()) - set(before):
        path.unlink()
    for path, data in before.items():
        if path.read_bytes() != data:
            path.write_bytes(data)


def test_saved_prompts_go_to_the_data_folder_by_default(studio_home: Path, shipped: dict[Path, bytes]) -> None:
    assert settings.prompts_dir() == studio_home / "prompts"
    saved = save_prompt(settings.prompts_dir(), "my_prompts", "  Write a haiku\n")
    assert saved == studio_home / "prompts" / "my_prompts.txt"
    assert saved.read_text(encoding="utf-8") == "Write a haiku\n"
    assert saved in settings.library_files()
    assert shipped_bytes() == shipped


def test_chain_studio_prompts_dir_wins(tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch,
                                      shipped: dict[Path, bytes]) -> None:
    monkeypatch.setenv("CHAIN_STUDIO_PROMPTS_DIR", str(tmp_path / "mine"))
    assert settings.prompts_dir() == tmp_path / "mine"
    saved = save_prompt(settings.prompts_dir(), "notes", "one")
    assert saved == tmp_path / "mine" / "notes.txt"
    assert not (studio_home / "prompts").exists()
    assert settings.library_files()[-1] == saved
    assert shipped_bytes() == shipped


def test_saving_under_a_shipped_name_writes_a_copy_in_the_data_folder(
        studio_home: Path, shipped: dict[Path, bytes]) -> None:
    shipped_user = library_entries(ROOT / "user_prompts.txt")
    for name in ("user_prompts", "system_prompts.txt", "exploratory_data_analysis", "brand new"):
        save_prompt(settings.prompts_dir(), name, f"added to {name}")
    assert shipped_bytes() == shipped  # not one byte of the install changed, no file added

    copy = studio_home / "prompts" / "user_prompts.txt"
    assert [e.text for e in library_entries(copy)] == [e.text for e in shipped_user] + ["added to user_prompts"]
    listed = settings.library_files()
    names = [p.name for p in listed]
    assert len(names) == len(set(names))  # each library once
    assert names[:2] == ["user_prompts.txt", "system_prompts.txt"]
    assert listed[:2] == [copy, studio_home / "prompts" / "system_prompts.txt"]  # the copies, in place
    assert studio_home / "prompts" / "exploratory_data_analysis.txt" in listed
    assert ROOT / "prompts" / "exploratory_data_analysis.txt" not in listed
    assert studio_home / "prompts" / "brand new.txt" in listed


def test_the_install_folder_is_refused_even_when_chosen(monkeypatch: pytest.MonkeyPatch,
                                                       shipped: dict[Path, bytes]) -> None:
    monkeypatch.setenv("CHAIN_STUDIO_PROMPTS_DIR", str(ROOT / "prompts"))
    for name in ("user_prompts", "exploratory_data_analysis", "brand new"):
        with pytest.raises(ChainStudioError, match="come with the studio, which are not changed: set CHAIN_STUDIO_"):
            save_prompt(settings.prompts_dir(), name, "text")
    with pytest.raises(ChainStudioError, match="come with the studio"):
        save_prompt(ROOT, "user_prompts", "text")
    assert shipped_bytes() == shipped


@pytest.mark.parametrize("name", ["", "   ", None, "../", "///", ".txt", " . .. "])
def test_a_save_without_a_name_is_refused(name: str | None, studio_home: Path) -> None:
    with pytest.raises(ChainStudioError, match=NAME_HINT):
        save_prompt(settings.prompts_dir(), name, "a prompt worth keeping")  # type: ignore[arg-type]
    assert list((studio_home / "prompts").iterdir()) == []


def test_a_save_without_text_is_refused(studio_home: Path) -> None:
    with pytest.raises(ChainStudioError, match="the user prompt is empty: there is nothing to save"):
        save_prompt(settings.prompts_dir(), "my_prompts", " \n\t")
    assert list((studio_home / "prompts").iterdir()) == []


def test_names_keep_letters_of_any_script_and_lose_path_parts(studio_home: Path) -> None:
    assert save_prompt(settings.prompts_dir(), "../Résumés été", "x").name == "Résumés été.txt"
    assert save_prompt(settings.prompts_dir(), "C:\\tmp\\list.TXT", "x").name == "Ctmplist.txt"
