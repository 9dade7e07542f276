"""The API token: made once, kept owner-only, or taken from the environment."""

from __future__ import annotations

import stat

import pytest

from app.api.token import TOKEN_ENV, api_token, token_matches, token_path


def test_a_token_is_made_once_and_kept_owner_only(studio_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    first = api_token()
    assert first.startswith("cs-") and len(first) > 40
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    assert api_token() == first
    token_path().chmod(0o644)  # loosened by someone: tightened again when read
    assert api_token() == first and stat.S_IMODE(token_path().stat().st_mode) == 0o600
    monkeypatch.setenv(TOKEN_ENV, "cs-from-env")
    assert api_token() == "cs-from-env"


@pytest.mark.parametrize("header, ok", [
    ("Bearer cs-x", True), ("bearer cs-x", True), ("Bearer  cs-x ", True),
    ("Bearer cs-y", False), ("cs-x", False), ("Basic cs-x", False), ("", False), (None, False),
])
def test_only_the_bearer_token_matches(header, ok) -> None:
    assert token_matches("cs-x", header) is ok
