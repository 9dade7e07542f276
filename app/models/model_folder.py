"""The models folder: which GGUF files it holds, with the demo model written when missing."""

from __future__ import annotations

from pathlib import Path

from app import settings
from app.models.demo_model import ensure_demo_model


def list_model_files(folder: Path) -> list[Path]:
    """GGUF files directly in `folder`, the demo model first, then by name (case-insensitive)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".gguf"]
    return sorted(files, key=lambda p: (p.name != settings.DEMO_MODEL_FILENAME, p.name.lower()))


def prepare_models_folder(folder: Path) -> Path:
    """Make sure the folder exists and holds the demo model; return the demo model's path."""
    folder.mkdir(parents=True, exist_ok=True)
    return ensure_demo_model(settings.demo_model_path(folder))
