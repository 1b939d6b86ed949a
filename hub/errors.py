"""Domain errors that carry their meaning, rendered as RFC 9457 problem details in one handler."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

PROBLEM_JSON = "application/problem+json"


class HubError(Exception):
    """Base of the hub's domain errors: a status, a short title, and a human detail."""

    status = 400
    title = "Bad request"
    type_suffix = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(HubError):
    """Also what a caller gets for something that exists but is not theirs to see."""

    status = 404
    title = "Not found"
    type_suffix = "not-found"


class NotAuthenticated(HubError):
    status = 401
    title = "Not authenticated"
    type_suffix = "not-authenticated"


class Forbidden(HubError):
    status = 403
    title = "Forbidden"
    type_suffix = "forbidden"


class Conflict(HubError):
    status = 409
    title = "Conflict"
    type_suffix = "conflict"


class InvalidInput(HubError):
    status = 422
    title = "Invalid input"
    type_suffix = "invalid-input"


class TooManyRequests(HubError):
    status = 429
    title = "Too many requests"
    type_suffix = "too-many-requests"


def problem(
    status: int, title: str, detail: str, type_suffix: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://interaction-hub.example/problems/{type_suffix}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_response(request: Request, error: HubError) -> JSONResponse:
    """The problem details response for a domain error, with the headers its status calls for."""
    response = problem(
        error.status, error.title, error.detail, error.type_suffix, request.url.path, **error.extra
    )
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(request: Request, error: HubError) -> JSONResponse:
        return problem_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return problem(
            422,
            "Invalid input",
            "The request does not match what this endpoint takes.",
            "invalid-input",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}
        title = titles.get(error.status_code, "Error")
        response = problem(
            error.status_code,
            title,
            str(error.detail),
            title.lower().replace(" ", "-"),
            request.url.path,
        )
        response.headers.update(error.headers or {})
        if error.status_code == 405:
            # Allow names every method the path takes (RFC 9110), not only one route's.
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response


def allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return sorted(methods)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; invalid input also lists its errors.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
# The refusals any operation may give besides its own answers, and when.
COMMON_REFUSALS = {
    "400": "The body cannot be read as its Content-Type says (not UTF-8, not a form).",
    "401": "No credential, or one that is not valid (anymore).",
    "403": "The credential is valid, but not for this.",
    "404": "Nothing by that name, or nothing the caller may see.",
    "409": "What it acts on is not in a state that allows this now, or a request with the "
    "same Idempotency-Key is still running.",
    "413": "The body is larger than the hub takes.",
    "422": "The request does not match what this operation takes.",
    "429": "Too many requests from this agency key; Retry-After says when to try again.",
}


def describe_problems(app: FastAPI) -> None:
    """The API description says what the hub answers when it refuses: every error answer is
    problem details (``application/problem+json``, not FastAPI's default), and each operation
    lists the refusals it can give — 401 and 403 where it takes a credential, 404 where it
    names something by id, 409 where it changes something, 400, 413 and 422 where it takes
    input, 429 where an agency key may call."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            for item in document.get("paths", {}).values():
                for method, operation in item.items():
                    _add_refusals(document, method, operation)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _add_refusals(document: dict[str, Any], method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    parameters = operation.get("parameters", [])
    refusals = set()
    if schemes:
        refusals |= {"401", "403"}
    if any(parameter.get("in") == "path" for parameter in parameters) or _names_by_id(
        document, operation
    ):
        refusals.add("404")
    if method in ("post", "put", "patch", "delete"):
        refusals.add("409")
    if "requestBody" in operation:
        refusals |= {"400", "413", "422"}
    if parameters:
        refusals.add("422")
    if "agencyKey" in schemes:
        refusals.add("429")
    for status in sorted(refusals):
        responses.setdefault(status, {"description": COMMON_REFUSALS[status]})
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = problem_content


def _names_by_id(document: dict[str, Any], operation: dict[str, Any]) -> bool:
    """Whether a query parameter or the body names something by its id (a UUID)."""
    named: Any = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
    named.append(operation.get("requestBody", {}))
    seen: set[str] = set()
    while named:
        node = named.pop()
        if isinstance(node, list):
            named.extend(node)
        elif isinstance(node, dict):
            if node.get("format") == "uuid":
                return True
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                named.append(document["components"]["schemas"][ref.rsplit("/", 1)[-1]])
            named.extend(node.values())
    return False
