"""The API's error format, `{"error": {"code", "message", "param"}}`, for every failure.

Domain errors say what went wrong (a category and a code); the HTTP status of each category is
decided here (`STATUS_BY_CATEGORY`). Validation errors become 422 `invalid_request` naming the
field (400 `invalid_json` when the body is not a JSON object, 415 `unsupported_media_type` when it
was not sent as JSON); unknown routes 404; and a
database uniqueness race that a service didn't catch is still a 409, not a 500.
"""

from __future__ import annotations

import json
import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditflow.kit.errors import CreditflowError

log = logging.getLogger("creditflow.api")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_body(code: str, message: str, param: str | None = None, **extra) -> dict:
    return {"error": {"code": code, "message": message, "param": param, **extra}}


def error_response(status: int, code: str, message: str, param: str | None = None,
                   headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse(error_body(code, message, param, **extra), status_code=status, headers=headers)


def error_bytes(code: str, message: str, param: str | None = None) -> bytes:
    return json.dumps(error_body(code, message, param), separators=(",", ":")).encode()


# The HTTP status of each category of domain error.
STATUS_BY_CATEGORY = {
    "invalid": 422,
    "unauthorized": 401,
    "payment_failed": 402,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "limited": 429,  # a plan's limit on a feature's jobs (`concurrency_limit`, `daily_limit`, with `resets_at`)
}


def http_status(exc: CreditflowError) -> int:
    """The status a domain error answers with; a category this table doesn't know is a 400
    (still the caller's request, never a 500)."""
    return STATUS_BY_CATEGORY.get(exc.category, 400)


# 422s whose own code the HTTP contract names (a team's spend without its member, a member on a
# customer that is not a team): they answer with it, and with `reason` as the others do.
OWN_422_CODES = frozenset({"member_required", "not_a_team"})


def domain_error_response(exc: CreditflowError, base: str = "") -> JSONResponse:
    status = http_status(exc)
    if status == 422 and exc.code != "invalid_request" and exc.code not in OWN_422_CODES:
        # Every 422 has the code `invalid_request`; the service's finer code goes in `reason`.
        return error_response(422, "invalid_request", exc.message, exc.param, reason=exc.code)
    if exc.code in OWN_422_CODES:
        return error_response(422, exc.code, exc.message, exc.param, reason=exc.code)
    if exc.extra:  # fields beside `error`; a link (`url`) as a path is made absolute with `base`
        extra = {key: f"{base}{value}" if key == "url" and str(value).startswith("/") else value
                 for key, value in exc.extra.items()}
        return JSONResponse({**error_body(exc.code, exc.message, exc.param), **extra}, status_code=status)
    return error_response(status, exc.code, exc.message, exc.param)


def _param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _listed(expected: str) -> str:
    """Pydantic's "'a', 'b' or 'c'" as "a, b or c"."""
    return expected.replace("'", "")


def _own_message(error: dict) -> str:
    """The message a validator of ours gave (a predicate, "must not be negative"), without
    pydantic's "Value error, " prefix."""
    ctx = error.get("ctx") or {}
    message = str(ctx["error"]) if "error" in ctx else str(error.get("msg", ""))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


# What each kind of pydantic error says, in our words: a predicate that follows the field's name.
_PREDICATES = {
    "missing": lambda ctx: "is required",
    "extra_forbidden": lambda ctx: "is not a field of this request",
    "int_type": lambda ctx: "must be an integer",
    "int_parsing": lambda ctx: "must be an integer",
    "int_from_float": lambda ctx: "must be an integer",
    "float_type": lambda ctx: "must be a number",
    "float_parsing": lambda ctx: "must be a number",
    "bool_type": lambda ctx: "must be true or false",
    "bool_parsing": lambda ctx: "must be true or false",
    "string_type": lambda ctx: "must be a string",
    "string_unicode": lambda ctx: "must be text",
    "string_too_short": lambda ctx: ("must not be empty" if ctx.get("min_length") == 1
                                     else f"must be at least {ctx.get('min_length')} characters long"),
    "string_too_long": lambda ctx: f"must be at most {ctx.get('max_length')} characters long",
    "string_pattern_mismatch": lambda ctx: "is not in the expected format",
    "literal_error": lambda ctx: f"must be one of {_listed(str(ctx.get('expected', '')))}",
    "enum": lambda ctx: f"must be one of {_listed(str(ctx.get('expected', '')))}",
    "greater_than": lambda ctx: f"must be more than {ctx.get('gt')}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge')}",
    "less_than": lambda ctx: f"must be less than {ctx.get('lt')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le')}",
    "too_short": lambda ctx: f"must have at least {ctx.get('min_length')} item(s)",
    "too_long": lambda ctx: f"must have at most {ctx.get('max_length')} items",
    "list_type": lambda ctx: "must be a list",
    "dict_type": lambda ctx: "must be an object",
    "model_type": lambda ctx: "must be an object",
    "model_attributes_type": lambda ctx: "must be an object",
    "none_required": lambda ctx: "must be null",
}


def _validation_message(error: dict) -> str:
    """A sentence of ours naming the field ("limit must be at most 100"), never pydantic's
    wording; a validator of ours says its own predicate ("must not be negative")."""
    param = _param(tuple(error.get("loc", ())))
    subject = param or "the request"
    kind = error.get("type", "")
    if kind in _PREDICATES:
        return f"{subject} {_PREDICATES[kind](error.get('ctx') or {})}"
    if kind in ("value_error", "assertion_error") or not str(error.get("msg", "")).startswith("Input "):
        message = _own_message(error)
        if param and (message == param or message.startswith(f"{param} ")):
            return message
        if message[:1].islower():
            return f"{subject} {message}"
    return f"{subject} is not valid"


def _is_json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def validation_error_response(exc: RequestValidationError, content_type: str | None = None,
                              has_body: bool = True) -> JSONResponse:
    """422 naming the field; but a body that is not a JSON object at all is no field's fault:
    415 when it was not sent as JSON, 400 when it is not valid JSON or not an object."""
    errors = exc.errors()
    for error in errors:
        if error.get("type") == "json_invalid":
            return error_response(400, "invalid_json",
                                  "the request body is not valid JSON; send a JSON object")
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if tuple(first.get("loc", ())) == ("body",):
        # The body as a whole is wrong: absent, not sent as JSON, or JSON that is not an object.
        if has_body and not _is_json_type(content_type):
            return error_response(415, "unsupported_media_type",
                                  "the request body must be sent with Content-Type: application/json")
        return error_response(400, "invalid_json", "the request body must be a JSON object")
    return error_response(422, "invalid_request", _validation_message(first), _param(tuple(first.get("loc", ()))))


def exception_response(exc: Exception, method: str, path: str, base: str = "") -> JSONResponse:
    """The answer to an exception a route raised (other than a validation error); the one
    mapping for FastAPI's handlers below and for the credit spend's own path (`api.spend`)."""
    if isinstance(exc, CreditflowError):
        return domain_error_response(exc, base)
    if isinstance(exc, IntegrityError):
        log.warning("uniqueness conflict surfaced to the API: %s", exc.orig)
        return error_response(409, "conflict", "the request conflicts with a concurrent change; retry it")
    if isinstance(exc, DataError):
        # A value the database refuses (a NUL character in a path or query, say): bad input.
        return error_response(422, "invalid_request", "a value in the request is not valid")
    if isinstance(exc, (OperationalError, psycopg.OperationalError)):
        # psycopg's own: a statement sent on the raw cursor (the credit ledger's) that found no
        # database, or a deadlock that outlived its retries.
        log.error("database error: %s", getattr(exc, "orig", exc))
        return error_response(503, "unavailable", "the database is busy or unreachable; retry shortly",
                              headers={"Retry-After": "1"})
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred")


def install(app: FastAPI) -> None:
    async def _mapped(request: Request, exc: Exception):
        settings = getattr(request.app.state, "settings", None)
        base = (getattr(settings, "public_url", None) or str(request.base_url)).rstrip("/")
        return exception_response(exc, request.method, request.url.path, base)

    for kind in (CreditflowError, IntegrityError, DataError, OperationalError, psycopg.OperationalError, Exception):
        app.add_exception_handler(kind, _mapped)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        body = await request.body()
        return validation_error_response(exc, request.headers.get("content-type"), bool(body.strip()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 400: "malformed_request"}
        code = codes.get(exc.status_code, "http_error")
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer when its JSON reading fails otherwise than with a ValueError
            # (a RecursionError on deeply nested arrays, say).
            code, message = "invalid_json", "the request body is not valid JSON; send a JSON object"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


# Error responses every /v1 operation may give, for the OpenAPI document.
COMMON_ERRORS = {
    400: {"model": ErrorResponse, "description": "Malformed request (`invalid_json`: the body is not a JSON object)"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    415: {"model": ErrorResponse, "description": "The body was not sent as `application/json`"},
    422: {"model": ErrorResponse, "description": "A field is wrong (`invalid_request`; `param` names it)"},
    429: {"model": ErrorResponse, "description": "Rate limited (`rate_limited`; see Retry-After)"},
}


PURCHASE_402 = ("`payment_failed` (declined, nothing changed), `payment_pending` (the gateway's answer was lost: "
                "the worker finds out, never charging twice) or `authentication_required` (the card needs 3-D "
                "Secure: `invoice` names the open invoice and `url` a one-time page where the customer "
                "authenticates and the purchase completes)")


def errors(*statuses: int, **descriptions: str) -> dict:
    """`responses=` for an operation: the common errors plus its own statuses."""
    defaults = {
        402: "Payment failed (`payment_failed`), nothing changed",
        403: "Wrong scope (`forbidden`) or a support-only action (`support_only`)",
        404: "No such object (`not_found`)",
        409: "State conflict (the code says which)",
    }
    result = dict(COMMON_ERRORS)
    for status in statuses:
        result[status] = {"model": ErrorResponse,
                          "description": descriptions.get(f"e{status}", defaults.get(status, "Error"))}
    return result
