"""Which chain members are remote: a Models line `NAME/model-id` whose NAME is an engine the
studio knows (saved in the page or with `python -m app engines add`, or given to one CLI run with
`--engine NAME=URL`). The model id is everything after the first slash, so ids with slashes of
their own (`meta-llama/Llama-3.1-70B-Instruct`) work. `Engines` also keeps one `RemoteEngine` per
engine, shared by every run."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.engines.backend import RemoteEngine
from app.engines.config import NAME_PATTERN, EngineConfig
from app.engines.store import EngineStore, environment_key


@dataclass(frozen=True)
class EngineMember:
    """A chain member on an engine."""

    engine: EngineConfig
    model_id: str

    @property
    def name(self) -> str:
        """How transcripts name it: `NAME/model-id`."""
        return f"{self.engine.name}/{self.model_id}"


class Engines:
    """The engines one studio (or one CLI run) knows: `extra` ones first (the CLI's `--engine`), then
    the saved ones."""

    def __init__(self, store: EngineStore | None = None, extra: tuple[EngineConfig, ...] = ()) -> None:
        self.store = store
        self.extra = {config.name: config for config in extra}
        self._engines: dict[str, tuple[EngineConfig, str, RemoteEngine]] = {}
        self._lock = threading.Lock()

    def configs(self) -> list[EngineConfig]:
        """Every engine known, the CLI's first."""
        saved = [c for c in (self.store.engines() if self.store else []) if c.name not in self.extra]
        return [*self.extra.values(), *saved]

    def config(self, name: str) -> EngineConfig | None:
        if name in self.extra:
            return self.extra[name]
        return self.store.get(name) if self.store else None

    def member(self, ref: str) -> EngineMember | None:
        """The engine member `ref` names, or None for a local model (a path, a file name, a link)."""
        name, slash, model_id = (ref or "").strip().partition("/")
        if not slash or not model_id.strip() or not NAME_PATTERN.match(name) or "://" in ref:
            return None
        config = self.config(name)
        return EngineMember(config, model_id.strip()) if config else None

    def engine(self, config: EngineConfig) -> RemoteEngine:
        """The shared `RemoteEngine` of `config` (made again when its settings or key changed)."""
        # An engine given for one run never gets a saved key: that key belongs to the saved URL.
        key = (self.store.key_for(config) if self.store and config.name not in self.extra
               else environment_key(config))
        with self._lock:
            known = self._engines.get(config.name)
            if known and known[0] == config and known[1] == key:
                return known[2]
            if known:
                known[2].close()
            made = RemoteEngine(config, key)
            self._engines[config.name] = (config, key, made)
            return made

    def forget(self, name: str) -> None:
        """Close and drop the shared engine `name` (after it was removed or changed)."""
        with self._lock:
            known = self._engines.pop(name, None)
        if known:
            known[2].close()
