"""The client's TypedDicts (client/types.py) name the fields the API answers with.

The client may not import the server, so its types mirror the API's response models by hand.
This keeps the mirror true: every call in client/calls.py is matched to the operation of the
server's /openapi.json it sends to, and the TypedDict it declares to return must have the same
fields as that operation's response schema, and so on down every nested object the client types
(where the client says only `dict`, the fields inside are not compared)."""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, get_args, get_origin, is_typeddict

import pytest

from api_kit import make_api
from creditflow.client import calls
from creditflow.client import types as t


@pytest.fixture
def openapi(sqlite_db) -> dict:
    return make_api(sqlite_db).client.get("/openapi.json").json()


def _calls() -> list[tuple[str, calls.Call[Any], Any]]:
    """Each endpoint of the client: its name, its call (required arguments "x") and the type it
    declares to return."""
    found = []
    for name, build in inspect.getmembers(calls, inspect.isfunction):
        if name.startswith("_") or build.__module__ != calls.__name__:
            continue
        required = [p.name for p in inspect.signature(build).parameters.values() if p.default is p.empty]
        (returns,) = get_args(typing.get_type_hints(build, vars(calls))["return"])
        found.append((name, build(**dict.fromkeys(required, "x")), returns))
    return found


def _response_schema(openapi: dict, call: calls.Call[Any]) -> dict | None:
    for template, operations in openapi["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), call.path):
            responses = operations[call.method.lower()]["responses"]
            answered = responses.get("200") or responses.get("201")
            return answered["content"]["application/json"]["schema"] if answered else None
    raise AssertionError(f"no operation of the API for {call.method} {call.path}")


def _typeddict(annotation: Any) -> Any:
    """The TypedDict an annotation holds (itself, a generic one like Page[Customer], in a list or
    or-None), or None."""
    if is_typeddict(annotation) or is_typeddict(get_origin(annotation)):
        return annotation
    for argument in get_args(annotation):
        if (found := _typeddict(argument)) is not None:
            return found
    return None


def _object(openapi: dict, schema: dict) -> dict | None:
    """The object schema a property's schema holds (by reference, in an array or or-null), or None."""
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "properties" in schema:
        return schema
    for inner in ([schema["items"]] if "items" in schema else []) + schema.get("anyOf", []):
        if (found := _object(openapi, inner)) is not None:
            return found
    return None


def _differences(openapi: dict, typed: Any, schema: dict, where: str) -> list[str]:
    generic = get_origin(typed) or typed
    fields = typing.get_type_hints(generic, vars(t))
    bound = dict(zip(getattr(generic, "__parameters__", ()), get_args(typed)))  # Page[T]: T is bound
    properties = schema["properties"]
    differences = []
    if set(fields) != set(properties):
        differences.append(f"{where}: only in the client {sorted(set(fields) - set(properties))}, "
                           f"only in the API {sorted(set(properties) - set(fields))}")
    for name in sorted(set(fields) & set(properties)):
        annotation = fields[name]
        if get_origin(annotation) is list and get_args(annotation)[0] in bound:
            annotation = bound[get_args(annotation)[0]]
        inner, nested = _typeddict(annotation), _object(openapi, properties[name])
        if inner is not None and nested is not None:
            differences += _differences(openapi, inner, nested, f"{where}.{name}")
        elif inner is not None:
            differences.append(f"{where}.{name}: an object in the client, not in the API")
    return differences


def test_every_call_returns_the_fields_its_operation_answers_with(openapi):
    untyped, differences = [], []
    for name, call, returns in _calls():
        schema = _response_schema(openapi, call)
        if schema is None or _typeddict(returns) is None:
            untyped.append(name)
            continue
        differences += _differences(openapi, returns, _object(openapi, schema), name)
    assert not differences, "\n".join(differences)
    assert untyped == ["delete_webhook_endpoint", "get_catalog"]  # no body (204); the client says only `dict`


def test_a_field_the_client_lacks_is_found(openapi):
    class Shorter(typing.TypedDict):  # t.TestClock without `frozen_time`
        id: str
        object: str

    schema = _object(openapi, {"$ref": "#/components/schemas/TestClockRead"})
    assert _differences(openapi, Shorter, schema, "test_clock") == [
        "test_clock: only in the client [], only in the API ['frozen_time']"]
