"""`python -m app engines …`: the remote engines the page and the CLI share (list, add, remove, and
the models one lists), and the `--engine NAME=URL` option of `chain` for one run's engines.

Keys are never taken on the command line (a shell history keeps them): `--key-stdin` reads one
line from standard input, `--key-env VAR` names an environment variable read at each request."""

from __future__ import annotations

import sys
from typing import Any

from app.cli import emit, fail
from app.core.errors import ChainStudioError, EngineError
from app.engines.config import DEFAULT_IDLE_TIMEOUT, EngineConfig
from app.engines.members import Engines
from app.engines.store import EngineStore


def engines_from_args(args: Any) -> Engines:
    """The saved engines plus the `--engine NAME=URL` ones of this run (which win over a saved
    engine of the same name, keeping its other settings)."""
    store = EngineStore()
    extra = []
    for given in getattr(args, "engine", None) or []:
        name, equals, url = given.partition("=")
        if not equals:
            raise EngineError(f"--engine {given}: write NAME=URL, e.g. gpu=http://10.0.0.5:8080/v1")
        saved = store.get(name.strip())
        concurrency = getattr(args, "engine_concurrency", None) or (saved.concurrency if saved else 1)
        key_env = getattr(args, "engine_key_env", None) or (saved.key_env if saved else "")
        extra.append(EngineConfig(name.strip(), url, key_env=key_env, concurrency=concurrency,
                                  idle_timeout=saved.idle_timeout if saved else DEFAULT_IDLE_TIMEOUT,
                                  kind=saved.kind if saved else "auto"))
    return Engines(store, tuple(extra))


def engine_record(config: EngineConfig) -> dict[str, Any]:
    """An engine as a JSON line: its settings and where its key comes from, never the key."""
    key = f"from ${config.key_env}" if config.key_env else ("saved" if config.has_key else "none")
    return {"type": "engine", "name": config.name, "url": config.url, "key": key,
            "concurrency": config.concurrency, "idle_timeout": config.idle_timeout, "kind": config.kind,
            "warning": config.warning}


def cmd_engines(args: Any) -> int:
    """List, add or remove saved engines, or list one engine's models."""
    store = EngineStore()
    try:
        if args.engines_action == "add":
            key = None
            if args.key_stdin:
                key = sys.stdin.readline().strip()
                if not key:
                    return fail("--key-stdin: standard input gave no key")
            config = EngineConfig(args.name, args.url, key_env=args.key_env or "", concurrency=args.concurrency,
                                  idle_timeout=args.idle_timeout, kind=args.kind)
            saved = store.save(config, key)
            emit(engine_record(saved))
            if saved.warning:
                print(f"warning: {saved.warning}", file=sys.stderr)
            return 0
        if args.engines_action == "remove":
            if not store.remove(args.name):
                return fail(f"no saved engine is called {args.name!r}")
            emit({"type": "engine_removed", "name": args.name})
            return 0
        if args.engines_action == "models":
            engines = Engines(store)
            config = engines.config(args.name)
            if config is None:
                return fail(f"no saved engine is called {args.name!r}; add it with: python -m app engines add "
                            f"{args.name} URL")
            engine = engines.engine(config)
            for model in engine.models(refresh=True):
                emit({"type": "engine_model", "engine": config.name, "id": model.id, "owned_by": model.owned_by,
                      "member": f"{config.name}/{model.id}"})
            return 0
        for config in store.engines():
            emit(engine_record(config))
        return 0
    except ChainStudioError as exc:
        return fail(str(exc))
