"""Saved engines: `engines.json` in the data folder holds their settings; `engine_keys.json` (owner
read/write only, 0600) holds the keys typed into the page. A key named by an environment variable
is read from the environment when a request is made and never written anywhere. Nothing here logs
or returns a key except `key_for`, whose caller sends it to its own engine only."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from app import settings
from app.core.errors import EngineError, StorageError
from app.engines.config import EngineConfig, check_name

ENGINES_FILE = "engines.json"
KEYS_FILE = "engine_keys.json"


def environment_key(config: EngineConfig) -> str:
    """The key in the environment variable `config` names ("" when it names none or it is unset)."""
    return os.environ.get(config.key_env, "").strip() if config.key_env else ""


class EngineStore:
    """The engines the page and the CLI share. `folder` defaults to the data folder."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self._folder or settings.data_dir()

    def engines(self) -> list[EngineConfig]:
        """Every saved engine, in the order they were added; a saved entry that no longer checks out
        (edited by hand) is left out rather than breaking the list."""
        keys = self._keys()
        found = []
        for entry in self._read(self.folder / ENGINES_FILE).get("engines", []):
            try:
                found.append(EngineConfig(**{**entry, "has_key": entry.get("name") in keys}))
            except (EngineError, TypeError):
                continue
        return found

    def get(self, name: str) -> EngineConfig | None:
        """The saved engine called `name`, if any."""
        return next((engine for engine in self.engines() if engine.name == name), None)

    def save(self, config: EngineConfig, key: str | None = None) -> EngineConfig:
        """Add or replace an engine. `key`: a new key to keep (None keeps the saved one, "" removes it)."""
        with self._lock:
            engines = [e.to_dict() for e in self.engines() if e.name != config.name]
            keys = self._keys()
            if key is not None:
                keys.pop(config.name, None)
                if key.strip():
                    keys[config.name] = key.strip()
            self._write_keys(keys)
            engines.append(config.to_dict())
            self._write(self.folder / ENGINES_FILE, {"engines": engines})
        saved = self.get(config.name)
        assert saved is not None
        return saved

    def remove(self, name: str) -> bool:
        """Forget an engine and its key; False when there was none of that name."""
        name = check_name(name)
        with self._lock:
            engines = [e.to_dict() for e in self.engines()]
            kept = [e for e in engines if e["name"] != name]
            keys = self._keys()
            had_key = keys.pop(name, None) is not None
            if had_key:
                self._write_keys(keys)
            if len(kept) == len(engines):
                return had_key
            self._write(self.folder / ENGINES_FILE, {"engines": kept})
        return True

    def key_for(self, config: EngineConfig) -> str:
        """The key to send to `config`'s engine: its environment variable's, else the saved one, else ""."""
        if config.key_env:
            return environment_key(config)
        return self._keys().get(config.name, "")

    def _keys(self) -> dict[str, str]:
        path = self.folder / KEYS_FILE
        data = self._read(path)
        if data and path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy someone loosened: only its owner may read it
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def _write_keys(self, keys: dict[str, str]) -> None:
        path = self.folder / KEYS_FILE
        try:
            if not keys:
                path.unlink(missing_ok=True)
                return
            partial = path.with_suffix(".partial")
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump(keys, out)
            partial.chmod(0o600)
            partial.replace(path)
        except OSError as exc:
            raise StorageError(f"cannot keep the engine keys in {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}; fix or delete the file") from exc
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        try:
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            partial.replace(path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
