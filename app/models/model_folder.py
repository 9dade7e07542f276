"""The models folder: which GGUF files it holds, with the demo model written when missing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app import settings
from app.core.errors import ChainStudioError, ModelFileError
from app.models.demo_model import ensure_demo_model
from app.models.gguf_file import GGUFInfo, inspect_gguf


@dataclass(frozen=True)
class ModelFile:
    """A file of the models folder: what its header says, or what is wrong with it."""

    path: Path
    info: GGUFInfo | None
    problem: str = ""  # set when `info` is None


def list_model_files(folder: Path) -> list[Path]:
    """Regular GGUF files directly in `folder`, the demo model first, then by name (case-insensitive).

    Nothing is opened (a FIFO named `x.gguf` would block a reader): entries are only stat-ed, and
    those that are not regular files or cannot be examined are left out."""
    try:
        with os.scandir(folder) as entries:
            found = list(entries)
    except OSError:  # missing, not a folder, or unreadable: no models to offer
        return []
    files = []
    for entry in found:
        if Path(entry.name).suffix.lower() != ".gguf":
            continue
        try:
            if entry.is_file():  # follows symlinks; True only for regular files
                files.append(Path(entry.path))
        except OSError:
            continue
    return sorted(files, key=lambda p: (p.name != settings.DEMO_MODEL_FILENAME, p.name.lower()))


def describe_model_file(path: Path) -> ModelFile:
    """Read a model's header for a list of models. Never raises: one bad file must not break the list."""
    try:
        return ModelFile(path, inspect_gguf(path))
    except ModelFileError as exc:
        return ModelFile(path, None, exc.reason)
    except ChainStudioError as exc:
        return ModelFile(path, None, str(exc))
    except Exception as exc:  # an unforeseen failure on a hostile file is that file's problem only
        return ModelFile(path, None, f"cannot be read ({type(exc).__name__}: {exc})")


def prepare_models_folder(folder: Path) -> Path:
    """Make sure the folder exists and holds the demo model; return the demo model's path."""
    folder.mkdir(parents=True, exist_ok=True)
    return ensure_demo_model(settings.demo_model_path(folder))
