"""The long-lived objects one studio process shares between its front ends (UI, CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.core.backend import Backend
from app.models.local_backend import LocalBackend
from app.models.model_folder import list_model_files, prepare_models_folder


@dataclass
class Services:
    """What handlers need: the model backend and the models folder."""

    models_dir: Path
    backend: Backend = field(default_factory=LocalBackend)

    def model_files(self) -> list[Path]:
        """GGUF files in the models folder (demo model first)."""
        return list_model_files(self.models_dir)

    def close(self) -> None:
        """Release the model worker."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def start_services(models_dir: Path) -> Services:
    """Services for a studio process, with the demo model present in the models folder."""
    prepare_models_folder(models_dir)
    return Services(models_dir=models_dir)
