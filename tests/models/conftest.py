"""Fixtures of the model tests that download: a loopback stand-in for the Hub and a models folder."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.hub_standin import StandInHub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInHub]:
    started = StandInHub().start()
    monkeypatch.setenv("HF_ENDPOINT", started.endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield started
    started.stop()


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder
