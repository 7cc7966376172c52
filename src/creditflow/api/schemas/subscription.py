from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from creditflow.api.schemas.billing import MoneyLine
from creditflow.api.schemas.common import CreditsOut, Id, InstantOut, Read, Resource, Request, Text
from creditflow.api.schemas.coupon import DiscountRead
from creditflow.kit.errors import CreditflowError
from creditflow.subscription.price import next_renewal_price, sold_price

Timing = Literal["immediate", "end_of_period"]


class SubscriptionCreate(Request):
    customer: Id
    plan: Id
    term: Id = Field(description="monthly, quarterly or yearly")
    coupon: Id | None = Field(default=None, description="A coupon's code: discounts the first charge, and the "
                                                        "next ones as its duration says")


class ChangeRequest(Request):
    plan: Id
    term: Id
    timing: Timing = "immediate"
    coupon: Id | None = Field(default=None, description="A coupon's code: discounts the change's charge (or, at "
                                                        "the end of the period, the charges after it)")


class ChangeConfirm(ChangeRequest):
    quote: Id | None = None
    unused_value: Literal["balance", "refund", "none"] = Field(
        default="balance", description="Support only, for an immediate downgrade: what becomes of the unused "
                                       "value of the current term")
    reason: Text | None = Field(default=None, description="Support: why (required for an immediate downgrade)")


class CancelRequest(Request):
    at_period_end: StrictBool = True
    refund: Literal["none", "prorated"] = "none"
    reason: Text | None = None


class ScheduledChangeRead(Read):
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]
    effective_at: InstantOut
    amount_due_then: int


class PriceChangeRead(Read):
    price: int = Field(description="The new price per charge of the term, in minor units")
    effective_at: InstantOut = Field(description="The renewal from which it is charged")


class ReplacedChange(Read):
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]


class SubscriptionRead(Resource):
    object: Literal["subscription"] = "subscription"
    customer: str
    plan: str
    term: str
    status: Literal["active", "past_due", "ended"]
    current_term_start: InstantOut
    current_term_end: InstantOut
    credit_period_start: InstantOut
    credit_period_end: InstantOut
    cancel_at_period_end: bool
    canceled_at: InstantOut | None
    ended_at: InstantOut | None
    scheduled_change: ScheduledChangeRead | None
    price: int | None = Field(description="What each renewal of its plan and term charges (minor units, before "
                                          "tax and discounts): the price it was sold at, kept when the catalog's "
                                          "price changes. Null only for an ended subscription from before prices "
                                          "were kept, on a plan no longer in the catalog")
    price_change: PriceChangeRead | None = Field(
        default=None, description="A new price the operator moved it to (`creditflow catalog migrate`), or null")
    replaced_change: ReplacedChange | None = Field(
        default=None, description="In the answer to a change: the scheduled change it replaced, if any; "
                                  "otherwise null")
    discount: DiscountRead | None = Field(default=None, description="The coupon discounting its charges, or null")
    created_at: InstantOut

    @classmethod
    def of(cls, sub, catalog, *, replaced: dict | None = None, discount=None) -> "SubscriptionRead":
        scheduled = None
        if sub.scheduled_plan is not None:
            scheduled = ScheduledChangeRead(
                plan=sub.scheduled_plan, term=sub.scheduled_term, kind=sub.scheduled_kind,
                effective_at=sub.current_term_end, amount_due_then=next_renewal_price(sub, catalog))
        return cls(id=sub.id, customer=sub.customer_id, plan=sub.plan, term=sub.term, status=sub.status,
                   current_term_start=sub.current_term_start, current_term_end=sub.current_term_end,
                   credit_period_start=sub.credit_period_start, credit_period_end=sub.credit_period_end,
                   cancel_at_period_end=sub.cancel_at_period_end, canceled_at=sub.canceled_at, ended_at=sub.ended_at,
                   scheduled_change=scheduled, price=_price_as_sold(sub, catalog),
                   price_change=(PriceChangeRead(price=sub.next_price, effective_at=sub.next_price_from)
                                 if sub.next_price is not None else None),
                   replaced_change=replaced, discount=DiscountRead.of(discount),
                   created_at=sub.created_at)




def _price_as_sold(sub, catalog) -> int | None:
    try:
        return sold_price(sub, catalog)
    except CreditflowError:  # an old ended subscription whose plan or term left the catalog
        return None


class QuoteLine(MoneyLine):
    """A line of a quote, as an invoice's."""


class CreditsAfter(Read):
    subscription: CreditsOut
    total: CreditsOut


class QuoteRead(Resource):
    object: Literal["quote"] = "quote"
    subscription: str
    plan: str
    term: str
    kind: Literal["upgrade", "downgrade"]
    timing: Timing
    amount_due: int
    currency: str
    lines: list[QuoteLine]
    effective_at: InstantOut
    next_renewal_at: InstantOut
    next_renewal_amount: int
    credits_after: CreditsAfter
    expires_at: InstantOut

    @classmethod
    def of(cls, quote) -> "QuoteRead":
        from creditflow.kit.credits import Credits

        return cls(id=quote.id, subscription=quote.subscription_id, plan=quote.plan, term=quote.term,
                   kind=quote.kind, timing=quote.timing, amount_due=quote.amount_due, currency=quote.currency,
                   lines=[QuoteLine(**line) for line in quote.lines], effective_at=quote.effective_at,
                   next_renewal_at=quote.next_renewal_at, next_renewal_amount=quote.next_renewal_amount,
                   credits_after=CreditsAfter(
                       subscription=Credits.parse(quote.credits_after["subscription"]),
                       total=Credits.parse(quote.credits_after["total"])),
                   expires_at=quote.expires_at)
