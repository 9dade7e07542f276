"""The API's bearer token: made at first start, kept in `api_token` in the data folder (0600), or
taken from $CHAIN_STUDIO_API_TOKEN. Compared in constant time; never logged."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from app import settings
from app.core.errors import StorageError

TOKEN_ENV = "CHAIN_STUDIO_API_TOKEN"
TOKEN_FILE = "api_token"
TOKEN_PREFIX = "cs-"


def token_path() -> Path:
    return settings.data_dir() / TOKEN_FILE


def api_token() -> str:
    """The token requests must carry: the environment's, else the saved one, else a new one saved
    with owner-only permissions."""
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    path = token_path()
    try:
        if path.exists():
            saved = path.read_text(encoding="utf-8").strip()
            if saved:
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)  # a copy someone loosened: only its owner may read it
                return saved
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        path.chmod(0o600)
        return token
    except OSError as exc:
        raise StorageError(f"cannot keep the API token in {path}: {exc.strerror or exc}") from exc


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an `Authorization` header carries `expected` as its bearer token."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())
