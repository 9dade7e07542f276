"""Where the studio keeps things: project folders, the per-user data folder and the models folder.

Resolution order for the models folder: an explicit `--models-dir`, then the environment variable
`CHAIN_STUDIO_MODELS_DIR`, then `models/` inside the data folder. The data folder is per-user and is
moved as a whole by `CHAIN_STUDIO_HOME` (tests point it at a temporary folder).

Prompt libraries: the ones shipped with the studio (`user_prompts.txt`, `system_prompts.txt` and
`prompts/` in the install folder) are only read; "Save user prompt" writes to `prompts/` in the data
folder, or to `CHAIN_STUDIO_PROMPTS_DIR`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.core.errors import StorageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL_FILENAME = "chain-studio-demo.gguf"

HOME_ENV = "CHAIN_STUDIO_HOME"
MODELS_DIR_ENV = "CHAIN_STUDIO_MODELS_DIR"
PROMPTS_DIR_ENV = "CHAIN_STUDIO_PROMPTS_DIR"
VOSK_MODEL_ENV = "CHAIN_STUDIO_VOSK_MODEL"
SHIPPED_TOP_LIBRARIES = ("user_prompts.txt", "system_prompts.txt")
SHIPPED_PROMPTS_DIR = PROJECT_ROOT / "prompts"


def _default_data_dir() -> Path:
    """The platform's conventional per-user application data folder."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
        return base / "ChainStudio"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Chain Studio"
    base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "chain-studio"


def _make_folder(path: Path, what: str, elsewhere: str) -> None:
    """Create `path` if needed; a folder that cannot be made (read-only parent, a file in the way)
    is one clear message instead of an OSError traceback from every command. `elsewhere` says how
    to choose another folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {what} {path}: {exc.strerror or exc}; {elsewhere}.") from exc


def data_dir() -> Path:
    """The per-user data folder (journal, settings, logs, downloads by default), created on demand."""
    override = os.environ.get(HOME_ENV)
    path = Path(override).expanduser() if override else _default_data_dir()
    _make_folder(path, "the data folder", f"set {HOME_ENV} to a folder you can write to")
    return path


def models_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding GGUF models, created on demand (see module docstring for the order)."""
    chosen = explicit or os.environ.get(MODELS_DIR_ENV)
    path = Path(chosen).expanduser() if chosen else data_dir() / "models"
    _make_folder(path, "the models folder",
                 f"use --models-dir or {MODELS_DIR_ENV} to choose a folder you can write to")
    return path.resolve()


def logs_dir() -> Path:
    """Folder for worker logs (llama.cpp writes its diagnostics there)."""
    path = data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def code_dir() -> Path:
    """The working folder of the code the models write (files it creates land here)."""
    path = data_dir() / "code"
    path.mkdir(parents=True, exist_ok=True)
    return path


def saved_code_dir() -> Path:
    """Where "Save as .py" writes and "Run saved file" reads: `scripts/` in the code folder, so the
    code can import them."""
    path = code_dir() / "scripts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def vosk_model_dir() -> Path:
    """The Vosk speech-recognition model folder: $CHAIN_STUDIO_VOSK_MODEL, else `vosk-model/` in the
    data folder when a person unzipped one there, else a model the Voice tab downloaded (the first
    by name), else `vosk-model/` (not created: the tab says how to get a model)."""
    override = os.environ.get(VOSK_MODEL_ENV)
    if override:
        return Path(override).expanduser()
    unzipped = data_dir() / "vosk-model"
    if unzipped.exists():
        return unzipped
    downloaded = vosk_models_dir()
    if downloaded.is_dir():
        from app.media.stt import looks_like_model  # imports no speech library

        complete = [folder for folder in sorted(downloaded.iterdir()) if looks_like_model(folder)]
        if complete:  # sorted by name: vosk-model-small-en-… before vosk-model-small-pt-…
            return complete[0]
    return unzipped


def vosk_models_dir() -> Path:
    """Where the Voice tab's verified downloads of Vosk models are unpacked, one folder each."""
    return data_dir() / "vosk-models"


def speech_dir() -> Path:
    """Where spoken answers are written as WAV files (the page plays them from there)."""
    path = data_dir() / "speech"
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_model_path(models: Path | None = None) -> Path:
    """Where the built-in demo model lives inside a models folder."""
    return (models or models_dir()) / DEMO_MODEL_FILENAME


def shipped_library_files() -> list[Path]:
    """The prompt libraries that come with the studio, in the install folder: user_prompts.txt,
    system_prompts.txt, then the files of its `prompts/` by name. The studio never writes them."""
    top = [PROJECT_ROOT / name for name in SHIPPED_TOP_LIBRARIES]
    return [p for p in top if p.is_file()] + sorted(p for p in SHIPPED_PROMPTS_DIR.glob("*.txt") if p.is_file())


def _saved_prompts_path() -> Path:
    override = os.environ.get(PROMPTS_DIR_ENV)
    return Path(override).expanduser() if override else data_dir() / "prompts"


def prompts_dir() -> Path:
    """Where "Save user prompt" writes, created on demand: `prompts/` in the data folder, or
    $CHAIN_STUDIO_PROMPTS_DIR. Not the install folder: it may be read-only or shared, and an update
    replaces it (with the person's prompts)."""
    path = _saved_prompts_path()
    _make_folder(path, "the prompts folder", f"set {PROMPTS_DIR_ENV} to a folder you can write to")
    return path


def library_files() -> list[Path]:
    """The prompt libraries to choose from, each name once: user_prompts.txt and system_prompts.txt
    first, then the others by name. A saved file named like a shipped one is listed in its place
    (it began as a copy of it, see app.store.library.save_prompt)."""
    folder = _saved_prompts_path()  # listing does not create the prompts folder
    saved = {p.name: p for p in sorted(folder.glob("*.txt")) if p.is_file()} if folder.is_dir() else {}
    listed = {p.name: saved.get(p.name, p) for p in shipped_library_files()}
    for name, path in saved.items():
        listed.setdefault(name, path)
    first = [listed.pop(name) for name in SHIPPED_TOP_LIBRARIES if name in listed]
    return first + [listed[name] for name in sorted(listed)]
