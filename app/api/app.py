"""The API's routes put together: the bearer-token check in front of every one, OpenAI-shaped
JSON errors (never a traceback), and two ways to serve them: inside the page's server (Gradio's
FastAPI app) or alone (`python -m app serve`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api import chain_route, openai_routes, sample_route, studio_routes
from app.api.engine import ApiEngine
from app.api.errors import ApiError, unexpected
from app.api.token import token_matches
from app.core.errors import ChainStudioError
from app.services import Services

API_PREFIXES = ("/v1/", "/api/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in ("/v1", "/api")


def build_router(services: Services, token: str) -> APIRouter:
    """Every API route, each refusing a request without `Authorization: Bearer <token>` (401)."""

    async def require_token(request: Request) -> None:
        if not token_matches(token, request.headers.get("authorization")):
            raise ApiError(401, "missing or wrong API token: send `Authorization: Bearer <token>` "
                                "(the token is in the page's API panel and in api_token in the data folder)",
                           code="invalid_api_key")

    engine = ApiEngine(services)
    router = APIRouter(dependencies=[Depends(require_token)])
    router.include_router(openai_routes.build(engine))
    router.include_router(studio_routes.build(engine))
    router.include_router(sample_route.build(engine))
    router.include_router(chain_route.build(engine))
    return router


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One sentence for the first problem of a request body, and the field it names."""
    errors = exc.errors()
    if not errors:
        return "the request body is not valid", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if first.get("type") == "model_attributes_type" and tuple(first.get("loc", ())) == ("body",):
        return "the request body must be a JSON object, sent with Content-Type: application/json", None
    where = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(where) or None
    message = str(first.get("msg", "is not valid"))
    if first.get("type") == "missing":
        return f"{field} is required", field
    if first.get("type") == "extra_forbidden":
        return f"{field} is not a field of this request", field
    return (f"{field}: {message}" if field else message), field


def add_error_handlers(app: FastAPI) -> None:
    """ApiError, a bad body and any bug become JSON errors on API paths; other paths (the page's)
    keep their server's own handling."""
    from fastapi.exception_handlers import request_validation_exception_handler

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def bad_body(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        if not is_api_path(request.url.path):
            return await request_validation_exception_handler(request, exc)
        message, field = _validation_message(exc)
        return JSONResponse(ApiError(400, message, field).body(), status_code=400)

    async def studio_error(request: Request, exc: Exception) -> JSONResponse:
        from app.api.errors import from_studio_error

        assert isinstance(exc, ChainStudioError)
        error = from_studio_error(exc)
        return JSONResponse(error.body(), status_code=error.status)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, bad_body)
    app.add_exception_handler(ChainStudioError, studio_error)


def install(server_app: FastAPI, services: Services, token: str) -> None:
    """Add the API to the page's server, its routes ahead of the page's (whose catch-all routes
    would otherwise answer /api/… first). Called before the server accepts a connection."""
    before = len(server_app.router.routes)
    server_app.include_router(build_router(services, token))
    added = server_app.router.routes[before:]
    server_app.router.routes[:] = added + server_app.router.routes[:before]
    add_error_handlers(server_app)


def standalone_app(services: Services, token: str) -> FastAPI:
    """The API alone, for `python -m app serve` (no page)."""
    app = FastAPI(title="Chain Studio API", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(build_router(services, token))
    add_error_handlers(app)

    @app.exception_handler(Exception)
    async def bug(_request: Request, exc: Exception) -> JSONResponse:
        error = unexpected(exc)
        return JSONResponse(error.body(), status_code=error.status)

    return app
