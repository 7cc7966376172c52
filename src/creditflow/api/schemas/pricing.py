"""Schemas of priced generations: estimates, entitlements, transfers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from creditflow.api.schemas.common import CreditsIn, CreditsOut, Id, InstantOut, Read, Resource, Request
from creditflow.credits.inputs import MAX_REFERENCE

Options = Annotated[dict[str, Any], Field(
    max_length=32, description="The job's options as the catalog prices them, e.g. "
                               "{\"resolution\": \"2k\", \"count\": 4, \"enhancer\": true}; left out: their defaults",
    examples=[{"resolution": "2k", "count": 4, "enhancer": True}])]


class EstimateCreate(Request):
    feature: Id
    options: Options = Field(default_factory=dict)
    member: Id | None = Field(default=None, description="On a team: the member who would run the job (required "
                                                        "there, refused elsewhere)")


class EstimateLine(Read):
    what: str
    amount: CreditsOut = Field(description="May be negative: the line that takes a job off inside an unlimited "
                                           "window")


class EstimateRead(Read):
    object: Literal["credit_estimate"] = "credit_estimate"
    feature: str
    amount: CreditsOut = Field(description="What the job costs now; \"0\" inside an unlimited window")
    lines: list[EstimateLine] = Field(description="They add up to `amount`")
    unlimited: bool = Field(description="True inside an unlimited window: the job is free")
    options: dict[str, Any] = Field(description="The options as priced, defaults filled in")


class EntitlementRead(Read):
    feature: str
    allowed: bool
    reason: str | None = Field(description="Why not, when not allowed: `subscription_required` or "
                                           "`feature_not_in_plan`")
    unlimited_until: InstantOut | None = Field(description="The end of the unlimited window the customer is in")
    concurrent_limit: int | None = Field(description="Jobs that may run at once (open holds); null: no limit")
    running: int = Field(description="Jobs running now (open holds)")
    fast_per_day: int | None = Field(description="Fast jobs per local day; null: no limit")
    fast_used_today: int
    resets_at: InstantOut | None = Field(description="The next local midnight, when the daily count starts again")
    relaxed: bool = Field(description="Past the daily limit, jobs run on the relaxed queue instead of being refused")


class EntitlementsRead(Read):
    object: Literal["entitlements"] = "entitlements"
    customer: str
    features: list[EntitlementRead]

    @classmethod
    def of(cls, customer_id: str, entitlements) -> "EntitlementsRead":
        return cls(customer=customer_id, features=entitlements)


class TransferCreate(Request):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: Id = Field(alias="from", description="The customer who pays")
    receiver: Id = Field(alias="to", description="The customer who receives the credits")
    amount: CreditsIn
    feature: Id = Field(description="What the credits pay for (drawn from the sender as a spend of it)")
    reference: str = Field(min_length=1, max_length=MAX_REFERENCE,
                           description="Makes the transfer happen once; a replay returns it")


class TransferRead(Resource):
    object: Literal["credit_transfer"] = "credit_transfer"
    reference: str
    sender: str = Field(serialization_alias="from")
    receiver: str = Field(serialization_alias="to")
    amount: CreditsOut
    feature: str
    lot: str = Field(validation_alias="lot_id", description="The receiver's lot of kind `earned` (never expires)")
    created_at: InstantOut


class OptionRead(Read):
    name: str
    kind: Literal["choice", "count", "add_on"]
    choices: dict[str, str] | None = Field(default=None, description="choice: each choice's multiplier")
    default: str | int | bool | None = Field(default=None, description="choice or count: taken when left out")
    min: int | None = None
    max: int | None = None
    add: CreditsOut | None = Field(default=None, description="add-on: credits added when asked for")


class CostRead(Read):
    base: CreditsOut
    options: list[OptionRead]

    @classmethod
    def of(cls, cost) -> "CostRead | None":
        from creditflow.catalog.pricing import Choice, Count

        if cost is None:
            return None
        options = []
        for option in cost.options:
            if isinstance(option, Choice):
                options.append(OptionRead(name=option.name, kind="choice", default=option.default,
                                          choices={k: format(v.normalize(), "f") for k, v in option.choices.items()}))
            elif isinstance(option, Count):
                options.append(OptionRead(name=option.name, kind="count", default=option.default, min=option.min,
                                          max=option.max))
            else:
                options.append(OptionRead(name=option.name, kind="add_on", default=False, add=option.add))
        return cls(base=cost.base, options=options)


class LimitsRead(Read):
    concurrent: int | None
    fast_per_day: int | None
    relaxed: bool
