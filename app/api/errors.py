"""Errors as the API answers them: OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
with a status that says whose fault it is. No traceback ever reaches a response."""

from __future__ import annotations

import logging
from typing import Any

from app.core.errors import (
    ChainStudioError,
    ContextOverflowError,
    DownloadError,
    GrammarError,
    LinkError,
    ModelFileError,
    ModelLoadError,
    PromptSyntaxError,
    SettingsError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refused request: the status, a message for the caller, and the field it is about."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def from_studio_error(exc: ChainStudioError, param: str | None = None) -> ApiError:
    """The status and code a studio error becomes."""
    message = str(exc)
    if isinstance(exc, GrammarError):
        return ApiError(400, message, param or "response_format", "invalid_response_format")
    if isinstance(exc, ContextOverflowError):
        return ApiError(400, message, param or "messages", "context_length_exceeded")
    if isinstance(exc, SettingsError):
        return ApiError(400, message, param or field_named(message))
    if isinstance(exc, (PromptSyntaxError, LinkError)):
        return ApiError(400, message, param)
    if isinstance(exc, ModelFileError):
        return ApiError(400, message, "model", "model_not_usable")
    if isinstance(exc, ModelLoadError):
        return ApiError(503, message, "model", "model_not_loaded", kind="server_error")
    if isinstance(exc, DownloadError):
        return ApiError(502, message, "model", "download_failed", kind="server_error")
    return ApiError(500, message, param, kind="server_error")


def field_named(message: str) -> str | None:
    """Settings messages start with the setting's name ("temperature must be …", "top_k=-1 is …")."""
    import re

    found = re.match(r"[a-z][a-z0-9_]*\b", message)
    return found.group(0) if found else None


def unexpected(exc: BaseException) -> ApiError:
    """A bug: logged with its traceback on the studio's side, one line to the caller."""
    log.exception("API request failed", exc_info=exc)
    return ApiError(500, f"the studio failed to answer: {type(exc).__name__}", kind="server_error")
