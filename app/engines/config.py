"""One engine's settings (`EngineConfig`), checked once where they are made: a name the Models line
can use, an http(s) base URL up to and including `/v1`, a concurrency limit and an idle timeout.
The key itself is never part of the config (see `app.engines.store`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.errors import EngineError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
KINDS = ("auto", "openai", "llama.cpp", "llama-cpp-python", "vllm", "ollama", "lm-studio", "chain-studio")
"""What the engine is: which sampling fields it accepts (`app.engines.params`). "auto" reads it from
the engine's model list; "openai" sends only the OpenAI API's own fields."""
MAX_CONCURRENCY = 64
DEFAULT_IDLE_TIMEOUT = 120.0


@dataclass(frozen=True)
class EngineConfig:
    """A remote engine as the studio knows it. `key_env` names an environment variable holding the
    key; `has_key` says a key is saved in the data folder (the key itself never is in this object)."""

    name: str
    url: str
    key_env: str = ""
    has_key: bool = False
    concurrency: int = 1  # answers sent to it at once
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # seconds without a byte before a stream counts as dead
    kind: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        object.__setattr__(self, "url", check_url(self.url))
        if self.key_env and not ENV_NAME_PATTERN.match(self.key_env):
            raise EngineError(f"engine {self.name}: {self.key_env!r} is not an environment variable name")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) \
                or not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise EngineError(f"engine {self.name}: concurrency must be a whole number from 1 to {MAX_CONCURRENCY}")
        if isinstance(self.idle_timeout, bool) or not isinstance(self.idle_timeout, (int, float)) \
                or not 1 <= self.idle_timeout <= 3600:
            raise EngineError(f"engine {self.name}: the idle timeout must be 1 to 3600 seconds")
        object.__setattr__(self, "idle_timeout", float(self.idle_timeout))
        if self.kind not in KINDS:
            raise EngineError(f"engine {self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def host(self) -> str:
        """The host part of the URL (what a redirect must keep)."""
        return urlsplit(self.url).hostname or ""

    @property
    def warning(self) -> str:
        """Why this engine's traffic can be read on the way, or "" when it cannot."""
        if urlsplit(self.url).scheme == "http" and not is_loopback(self.host):
            return (f"{self.name} uses plain http to {self.host}: prompts, answers and its key travel unencrypted; "
                    "use https, or an SSH tunnel to a loopback port")
        return ""

    def to_dict(self) -> dict:
        """What engines.json keeps (never a key)."""
        return {"name": self.name, "url": self.url, "key_env": self.key_env, "concurrency": self.concurrency,
                "idle_timeout": self.idle_timeout, "kind": self.kind}


def check_name(name: str) -> str:
    """An engine name as the Models line uses it (`NAME/model-id`), or EngineError saying why not."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise EngineError(f"engine name {name[:60]!r} must be 1 to 40 letters, digits, - or _, starting with a "
                          "letter or digit (it begins a Models line: NAME/model-id)")
    return name


def check_url(url: str) -> str:
    """The base URL without a trailing slash, or EngineError saying why it is refused."""
    text = (url or "").strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise EngineError(f"{text[:200]!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise EngineError(f"an engine URL must start with http:// or https://, not {text[:200]!r}")
    if not parts.hostname:
        raise EngineError(f"{text[:200]!r} names no host")
    if parts.username or parts.password:
        raise EngineError("an engine URL must not carry a user name or password; give the key separately")
    if parts.query or parts.fragment:
        raise EngineError(f"an engine URL has no query or fragment: {text[:200]!r}")
    if not parts.path.endswith("/v1"):
        example = f"{parts.scheme}://{parts.hostname}{f':{port}' if port else ''}/v1"
        raise EngineError(f"the URL goes up to and including /v1, e.g. {example}")
    return text


def is_loopback(host: str) -> bool:
    """True for this computer's own addresses (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
