"""Field types shared by every schema: credit amounts, instants, lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from creditflow.kit.clock import format_instant, parse_instant
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError

MIN_YEAR, MAX_YEAR = 1970, 2999


class Request(BaseModel):
    """A request body: unknown fields are refused (422), and so is a NUL character in any text
    (PostgreSQL can't store one)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if isinstance(value, list) and any(isinstance(item, str) and "\x00" in item for item in value):
            raise ValueError("must not contain NUL characters")
        return value


class Read(BaseModel):
    """A response object, read by `of` from the attributes of a domain object (a row, a use
    case's result) that have the fields' names.

    A field whose attribute is named otherwise says which with `validation_alias` (the API's
    `customer` is the domain's `customer_id`): that changes only what is read, never the JSON
    written nor the OpenAPI document. An attribute the object lacks takes the field's default.
    Schemas with worked-out fields, or fields from elsewhere than the object, write their own `of`."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)

    @classmethod
    def of(cls, source: Any) -> Self:
        return cls.model_validate(source)


class Resource(Read):
    """An object with an id of its own. Every resource says what it is in `object` (each
    declares it as a one-value Literal, which keeps its place right after `id` in the JSON)."""

    id: str
    object: str


def _credits(value: Any) -> Credits:
    try:
        return Credits.parse(value, "value")
    except CreditflowError as exc:
        raise ValueError(exc.message.replace("value ", "", 1)) from None


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string with a time zone, e.g. 2026-04-10T10:00:00Z")
    try:
        instant = parse_instant(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 instant with a time zone, e.g. 2026-04-10T10:00:00Z") from None
    if not MIN_YEAR <= instant.year <= MAX_YEAR:
        raise ValueError(f"must be between {MIN_YEAR} and {MAX_YEAR}")
    return instant


def _money(value: Any) -> int:
    # Strict: 1000.0, 1e3 (a float in JSON), "1000" and true are refused, never rounded or coerced.
    if type(value) is not int:
        raise ValueError("must be an amount in minor units (cents) as a JSON integer, e.g. 1000 for 10.00")
    return value


MAX_MONEY = 10**12

# Money in a request: an integer count of minor units of the catalog's currency, at most
# `MAX_MONEY`. The bounds come before the validator so that the OpenAPI document shows them.
MoneyIn = Annotated[int, Field(ge=0, le=MAX_MONEY), BeforeValidator(_money)]
PositiveMoneyIn = Annotated[int, Field(gt=0, le=MAX_MONEY), BeforeValidator(_money)]


CREDITS_PATTERN = r"^[0-9]+(\.[0-9]{1,3})?$"

# A credit amount in a request: a decimal string or a JSON number, at most 3 decimals, not negative.
CreditsIn = Annotated[
    Credits,
    BeforeValidator(_credits),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": CREDITS_PATTERN}, {"type": "number", "minimum": 0}],
                    "description": "Credits: a decimal string (or number) with at most 3 fractional digits",
                    "examples": ["73.5"]}),
]

# A credit amount in a response: always a decimal string.
CreditsOut = Annotated[
    Credits,
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,3})?$", "examples": ["8000", "73.5"]}),
]

InstantIn = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-04-10T10:00:00Z"]}),
]

InstantOut = Annotated[
    datetime,
    PlainSerializer(format_instant, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-04-10T10:00:00Z"]}),
]

# In a response, the customer it belongs to: what its domain object calls `customer_id`.
CustomerId = Annotated[str, Field(validation_alias="customer_id")]

# Ids and codes in requests: short non-empty strings.
Id = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(min_length=1, max_length=500)]

T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool


def page(items: list, has_more: bool, convert) -> dict:
    return {"object": "list", "data": [convert(item) for item in items], "has_more": has_more}
