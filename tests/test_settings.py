"""Where the studio keeps things."""

from pathlib import Path

import pytest

from app import settings


def test_data_folder_follows_chain_studio_home(studio_home: Path) -> None:
    assert settings.data_dir() == studio_home
    assert studio_home.is_dir()


def test_models_folder_order(tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.models_dir() == (studio_home / "models").resolve()
    monkeypatch.setenv("CHAIN_STUDIO_MODELS_DIR", str(tmp_path / "from-env"))
    assert settings.models_dir() == (tmp_path / "from-env").resolve()
    assert settings.models_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()


def test_default_data_folder_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CHAIN_STUDIO_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = {"linux": tmp_path / "xdg" / "chain-studio"}
    folder = settings.data_dir()
    assert folder.is_relative_to(tmp_path)
    if settings.sys.platform.startswith("linux"):
        assert folder == expected["linux"]


def test_the_vosk_model_folder_falls_back_to_a_downloaded_model(studio_home: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.VOSK_MODEL_ENV, raising=False)
    assert settings.vosk_model_dir() == studio_home / "vosk-model"  # nothing yet: where to unzip one
    for name in ("vosk-model-small-pt-0.3", "vosk-model-small-en-us-0.15", "vosk-model-broken"):
        (settings.vosk_models_dir() / name / ("am" if "broken" not in name else "x")).mkdir(parents=True)
    (settings.vosk_models_dir() / "vosk-model-small-pt-0.3" / "am" / "final.mdl").write_bytes(b"\0")
    assert settings.vosk_model_dir() == settings.vosk_models_dir() / "vosk-model-small-pt-0.3"
    (settings.vosk_models_dir() / "vosk-model-small-en-us-0.15" / "am" / "final.mdl").write_bytes(b"\0")
    assert settings.vosk_model_dir() == settings.vosk_models_dir() / "vosk-model-small-en-us-0.15"
    (studio_home / "vosk-model").mkdir()  # one a person unzipped wins
    assert settings.vosk_model_dir() == studio_home / "vosk-model"
    monkeypatch.setenv(settings.VOSK_MODEL_ENV, "/elsewhere")
    assert settings.vosk_model_dir() == Path("/elsewhere")
