from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_serializer

from creditflow.api.schemas.common import CreditsIn, CreditsOut, Id, InstantIn, InstantOut, Read, Request, Text
from creditflow.api.schemas.pricing import Options
from creditflow.credits.holds import DEFAULT_TTL_SECONDS
from creditflow.credits.inputs import MAX_REFERENCE, MAX_TTL_SECONDS

Reference = Field(min_length=1, max_length=MAX_REFERENCE, description="The host app's id for this job")


Member = Field(default=None, description="On a team: the member who spends (required there, refused elsewhere)")


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
    customer: str
    available: CreditsOut
    held: CreditsOut
    by_kind: ByKind
    lots: list[LotRead]

    @classmethod
    def of(cls, balance) -> "BalanceRead":
        return cls(customer=balance.customer_id, available=balance.available, held=balance.held,
                   by_kind=ByKind(**balance.by_kind),
                   lots=[LotRead(id=lot.id, kind=lot.kind, granted=lot.granted, remaining=lot.remaining,
                                 expires_at=lot.expires_at) for lot in balance.lots])


class DrawRead(Read):
    lot: str
    kind: str
    amount: CreditsOut


def _draws(draws) -> list[DrawRead]:
    return [DrawRead(lot=d.lot_id, kind=d.kind, amount=d.amount) for d in draws]


class SpendRead(Read):
    id: str
    object: Literal["credit_spend"] = "credit_spend"
    customer: str
    reference: str
    amount: CreditsOut
    feature: str
    status: Literal["spent", "refunded"]
    draws: list[DrawRead]
    balance: CreditsOut = Field(description="Available credits right after the spend")
    created_at: InstantOut
    queue: Literal["fast", "relaxed"] | None = Field(
        default=None, description="For a feature the plan limits: `relaxed` past the daily fast jobs")

    @classmethod
    def of(cls, spend) -> "SpendRead":
        return cls(id=spend.id, customer=spend.customer_id, reference=spend.reference, amount=spend.amount,
                   feature=spend.feature, status=spend.status, draws=_draws(spend.draws), balance=spend.balance,
                   created_at=spend.created_at, queue=getattr(spend, "queue", None))


class SpendRefundRead(Read):
    object: Literal["credit_refund"] = "credit_refund"
    customer: str
    reference: str
    amount: CreditsOut
    returned: list[DrawRead]
    expired: CreditsOut = Field(description="Of `amount`, what belonged to lots that have expired since")
    balance: CreditsOut
    refunded_at: InstantOut

    @classmethod
    def of(cls, result) -> "SpendRefundRead":
        return cls(customer=result.customer_id, reference=result.reference, amount=result.amount,
                   returned=_draws(result.returned), expired=result.expired, balance=result.balance,
                   refunded_at=result.refunded_at)


class HoldRead(Read):
    id: str
    object: Literal["hold"] = "hold"
    customer: str
    reference: str
    amount: CreditsOut
    feature: str
    status: Literal["held", "settled", "released", "expired"]
    settled_amount: CreditsOut | None
    expires_at: InstantOut
    created_at: InstantOut
    queue: Literal["fast", "relaxed"] | None = Field(
        default=None, description="For a feature the plan limits: `relaxed` past the daily fast jobs")

    @classmethod
    def of(cls, hold) -> "HoldRead":
        return cls(id=hold.id, customer=hold.customer_id, reference=hold.reference, amount=hold.amount,
                   feature=hold.feature, status=hold.status, settled_amount=hold.settled, expires_at=hold.expires_at,
                   created_at=hold.created_at, queue=getattr(hold, "queue", None))


class GrantedLotRead(Read):
    id: str
    object: Literal["credit_lot"] = "credit_lot"
    customer: str
    kind: str
    granted: CreditsOut
    remaining: CreditsOut
    expires_at: InstantOut | None
    reason: str | None
    created_at: InstantOut

    @classmethod
    def of(cls, lot) -> "GrantedLotRead":
        return cls(id=lot.id, customer=lot.customer_id, kind=lot.kind, granted=lot.granted, remaining=lot.remaining,
                   expires_at=lot.expires_at, reason=lot.reason, created_at=lot.created_at)


class EntryRead(Read):
    id: str
    object: Literal["credit_entry"] = "credit_entry"
    kind: Literal["grant", "spend", "expire", "refund", "hold", "release", "settle"]
    amount: CreditsOut
    lot: str | None
    reference: str | None
    member: str | None = Field(default=None, description="On a team: the member whose spend or hold it is")
    created_at: InstantOut

    @classmethod
    def of(cls, entry, members: dict[str, str] | None = None) -> "EntryRead":
        return cls(id=entry.id, kind=entry.kind, amount=entry.amount, lot=entry.lot_id, reference=entry.reference,
                   member=(members or {}).get(entry.reference), created_at=entry.created_at)


class TopUpRead(Read):
    object: Literal["top_up"] = "top_up"
    customer: str
    bundle: str
    credits: CreditsOut
    invoice: str
    lot: str
    amount_paid: int
    currency: str
    created_at: InstantOut

    @classmethod
    def of(cls, top_up) -> "TopUpRead":
        return cls(customer=top_up.customer_id, bundle=top_up.bundle, credits=top_up.credits,
                   invoice=top_up.invoice_id, lot=top_up.lot_id, amount_paid=top_up.amount_paid,
                   currency=top_up.currency, created_at=top_up.created_at)
