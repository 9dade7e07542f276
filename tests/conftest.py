"""Shared fixtures: every test gets its own data folder; the demo model is written once."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from app.models.demo_model import write_demo_model
from app.models.local_backend import LocalBackend
from app.store.journal import Journal

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the studio's data, models and saved-prompts folders at a temporary folder."""
    home = tmp_path / "studio-home"
    monkeypatch.setenv("CHAIN_STUDIO_HOME", str(home))
    monkeypatch.delenv("CHAIN_STUDIO_MODELS_DIR", raising=False)
    monkeypatch.delenv("CHAIN_STUDIO_PROMPTS_DIR", raising=False)  # saved prompts go to the home above
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    return home


@pytest.fixture
def journal(studio_home: Path) -> Iterator[Journal]:
    """The real journal in the test's data folder, closed afterwards."""
    opened = Journal()
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted demo GGUF, written once per test session."""
    return write_demo_model(tmp_path_factory.mktemp("models") / "chain-studio-demo.gguf")


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One worker-backed backend shared by the tests that only generate (loading is cheap)."""
    shared = LocalBackend(log_dir=tmp_path_factory.mktemp("logs"))
    yield shared
    shared.close()


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """A folder for screenshots and logs of one test (git-ignored)."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
