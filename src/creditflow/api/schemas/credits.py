from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_serializer

from creditflow.api.schemas.common import (CreditsIn, CreditsOut, CustomerId, Id, InstantIn, InstantOut, Read,
                                          Request, Resource, Text)
from creditflow.api.schemas.pricing import Options
from creditflow.credits.holds import DEFAULT_TTL_SECONDS
from creditflow.credits.inputs import MAX_REFERENCE, MAX_TTL_SECONDS

Reference = Field(min_length=1, max_length=MAX_REFERENCE, description="The host app's id for this job")


Member = Field(default=None, description="On a team: the member who spends (required there, refused elsewhere)")

Queue = Field(default=None, description="For a feature the plan limits: `relaxed` past the daily fast jobs")


class SpendCreate(Request):
    amount: CreditsIn | None = Field(default=None, description="Credits to spend; or `options` instead")
    options: Options | None = None
    feature: Id
    reference: str = Reference
    member: Id | None = Member


class SpendRefundCreate(Request):
    reference: str = Reference


class HoldCreate(Request):
    amount: CreditsIn | None = Field(default=None, description="Credits to reserve; or `options` instead")
    options: Options | None = None
    feature: Id
    reference: str = Reference
    ttl_seconds: StrictInt = Field(default=DEFAULT_TTL_SECONDS, ge=1, le=MAX_TTL_SECONDS)
    member: Id | None = Member


class HoldSettle(Request):
    amount: CreditsIn


class GrantCreate(Request):
    amount: CreditsIn
    kind: Literal["promo"] = "promo"
    expires_at: InstantIn | None = None
    reason: Text
    reference: str | None = Field(default=None, min_length=1, max_length=MAX_REFERENCE,
                                  description="Makes a retried grant return the first one")


class TopUpCreate(Request):
    bundle: Id
    reference: str | None = Field(default=None, min_length=1, max_length=MAX_REFERENCE,
                                  description="Makes a retried purchase return the first one")
    coupon: Id | None = Field(default=None, description="A coupon's code: discounts the bundle's price")


class LotRead(Read):
    id: str = Field(description="the lot's id; today's free credits have theirs before any of them is used")
    kind: Literal["free", "subscription", "top_up", "promo", "earned"]
    granted: CreditsOut
    remaining: CreditsOut
    expires_at: InstantOut | None


class ByKind(Read):
    free: CreditsOut
    subscription: CreditsOut
    top_up: CreditsOut
    promo: CreditsOut
    earned: CreditsOut | None = Field(default=None, description="Credits received by transfers; only for a "
                                                                "customer who has some")

    @model_serializer(mode="wrap")
    def _without_empty_earned(self, handler):
        data = handler(self)
        if data.get("earned") is None:
            data.pop("earned", None)
        return data


class BalanceRead(Read):
    object: Literal["credit_balance"] = "credit_balance"
    customer: CustomerId
    available: CreditsOut
    held: CreditsOut
    by_kind: ByKind
    lots: list[LotRead]


class DrawRead(Read):
    lot: str = Field(validation_alias="lot_id")
    kind: str
    amount: CreditsOut


class _CreditsTaken(Resource):
    """What a spend and a hold have in common: a hold is a spend set aside until it is settled."""

    customer: CustomerId
    reference: str
    amount: CreditsOut
    feature: str


class SpendRead(_CreditsTaken):
    object: Literal["credit_spend"] = "credit_spend"
    status: Literal["spent", "refunded"]
    draws: list[DrawRead]
    balance: CreditsOut = Field(description="Available credits right after the spend")
    created_at: InstantOut
    queue: Literal["fast", "relaxed"] | None = Queue


class HoldRead(_CreditsTaken):
    object: Literal["hold"] = "hold"
    status: Literal["held", "settled", "released", "expired"]
    settled_amount: CreditsOut | None = Field(validation_alias="settled")
    expires_at: InstantOut
    created_at: InstantOut
    queue: Literal["fast", "relaxed"] | None = Queue


class SpendRefundRead(Read):
    object: Literal["credit_refund"] = "credit_refund"
    customer: CustomerId
    reference: str
    amount: CreditsOut
    returned: list[DrawRead]
    expired: CreditsOut = Field(description="Of `amount`, what belonged to lots that have expired since")
    balance: CreditsOut
    refunded_at: InstantOut


class GrantedLotRead(Resource):
    object: Literal["credit_lot"] = "credit_lot"
    customer: CustomerId
    kind: str
    granted: CreditsOut
    remaining: CreditsOut
    expires_at: InstantOut | None
    reason: str | None
    created_at: InstantOut


class EntryRead(Resource):
    object: Literal["credit_entry"] = "credit_entry"
    kind: Literal["grant", "spend", "expire", "refund", "hold", "release", "settle"]
    amount: CreditsOut
    lot: str | None = Field(validation_alias="lot_id")
    reference: str | None
    member: str | None = Field(default=None, description="On a team: the member whose spend or hold it is")
    created_at: InstantOut

    @classmethod
    def of(cls, entry, members: dict[str, str] | None = None) -> "EntryRead":
        """The entry, with the member whose job it is (`members` maps a job's reference to its member)."""
        return super().of(entry).model_copy(update={"member": (members or {}).get(entry.reference)})


class TopUpRead(Read):
    object: Literal["top_up"] = "top_up"
    customer: CustomerId
    bundle: str
    credits: CreditsOut
    invoice: str = Field(validation_alias="invoice_id")
    lot: str = Field(validation_alias="lot_id")
    amount_paid: int
    currency: str
    created_at: InstantOut
