"""Coupon use cases: create and read, check one for a purchase, redeem it, give it back, and keep a
subscription's discount as its charges are paid.

A purchase with a coupon: `check_coupon` (found, not expired or used up, applicable) and
`discount_of` price it; the purchase opens its invoice with the discount, then `redeem`, in the
same transaction, counts the use with one conditional UPDATE (exact under concurrency: the
database re-checks the limit on the locked row) and records `coupon.redeemed`. If the payment
fails, `release_for_invoice` gives the use back; once the invoice is paid, `on_invoice_paid`
puts the coupon's remaining periods on the subscription.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog
from creditflow.context import Context
from creditflow.coupon import rules
from creditflow.coupon.models import Coupon, CouponRedemption, SubscriptionDiscount
from creditflow.coupon.rules import Target
from creditflow.events.outbox import record_event
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound
from creditflow.kit.ids import new_id
from creditflow.kit.periods import Term, month_boundary

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_REDEMPTIONS = 10**9
MAX_PERIODS = 1200  # a hundred years of monthly charges


@dataclass(frozen=True)
class CouponInput:
    code: str
    duration: str
    percent_off: int | str | None = None
    amount_off: int | None = None
    duration_periods: int | None = None
    plans: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    bundles: tuple[str, ...] = ()
    redeem_by: datetime | None = None
    max_redemptions: int | None = None


@dataclass(frozen=True)
class Discount:
    """A coupon priced on one charge: what the invoice takes off, and how it is recorded."""

    coupon_id: str
    code: str
    amount: int
    description: str
    new: bool  # redeemed with this purchase (else carried by the subscription)

    def details(self, redemption_id: str | None = None) -> dict:
        """What the invoice keeps, so that its payment (or failure) does the rest."""
        return {"id": self.coupon_id, "code": self.code, "new": self.new, "redemption": redemption_id}


@dataclass(frozen=True)
class DiscountView:
    coupon: str  # the code
    ends_after_period: datetime | None  # the end of the last discounted term; None: forever


def create_coupon(ctx: Context, session: Session, data: CouponInput, now: datetime) -> Coupon:
    """A new coupon. Every field is checked against the rules and the catalog (422 naming it)."""
    catalog: Catalog = ctx.catalog
    if not CODE.match(data.code or ""):
        raise InvalidRequest("code must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit",
                             param="code")
    if (data.percent_off is None) == (data.amount_off is None):
        raise InvalidRequest("percent_off or amount_off: exactly one of them is required", param="percent_off")
    percent_bp = rules.parse_percent(data.percent_off) if data.percent_off is not None else None
    if data.amount_off is not None and (type(data.amount_off) is not int or data.amount_off <= 0):
        raise InvalidRequest("amount_off must be a positive integer of minor units", param="amount_off")
    if data.duration not in rules.DURATIONS:
        raise InvalidRequest(f"duration must be one of {', '.join(rules.DURATIONS)}", param="duration")
    if data.duration == "repeating":
        if data.duration_periods is None or not 1 <= data.duration_periods <= MAX_PERIODS:
            raise InvalidRequest(f"duration_periods (1 to {MAX_PERIODS}) is required for a repeating coupon",
                                 param="duration_periods")
    elif data.duration_periods is not None:
        raise InvalidRequest("duration_periods is only for a repeating coupon", param="duration_periods")
    for code in data.plans:
        if code not in catalog.plans:
            raise InvalidRequest(f"plans: unknown plan {code!r}", param="plans")
    for term in data.terms:
        if term not in {t.value for t in Term}:
            raise InvalidRequest(f"terms: unknown term {term!r} (expected monthly, quarterly or yearly)",
                                 param="terms")
    for code in data.bundles:
        if code not in catalog.bundles:
            raise InvalidRequest(f"bundles: unknown bundle {code!r}", param="bundles")
    if data.redeem_by is not None and data.redeem_by <= now:
        raise InvalidRequest("redeem_by must be in the future", param="redeem_by")
    if data.max_redemptions is not None and not 1 <= data.max_redemptions <= MAX_REDEMPTIONS:
        raise InvalidRequest(f"max_redemptions must be between 1 and {MAX_REDEMPTIONS}", param="max_redemptions")
    coupon = Coupon(
        id=new_id("cpn"), code=data.code, code_key=data.code.lower(), percent_off_bp=percent_bp,
        amount_off=data.amount_off, currency=catalog.currency, duration=data.duration,
        duration_periods=data.duration_periods, plans=list(dict.fromkeys(data.plans)),
        terms=list(dict.fromkeys(data.terms)), bundles=list(dict.fromkeys(data.bundles)),
        redeem_by=data.redeem_by, max_redemptions=data.max_redemptions, times_redeemed=0, created_at=now)
    if session.scalar(select(Coupon.id).where(Coupon.code_key == coupon.code_key)) is not None:
        raise Conflict(f"a coupon with code {data.code!r} exists", code="coupon_exists", param="code")
    session.add(coupon)
    try:
        session.flush()
    except IntegrityError:  # created at the same moment by another request
        raise Conflict(f"a coupon with code {data.code!r} exists", code="coupon_exists", param="code") from None
    return coupon


def get_coupon(session: Session, code: str) -> Coupon:
    """The coupon with this code (any case), or 404 `coupon_not_found`."""
    coupon = None
    if isinstance(code, str) and code:
        coupon = session.scalar(select(Coupon).where(Coupon.code_key == code.lower()))
    if coupon is None:
        raise NotFound(f"no coupon with code {str(code)[:64]!r}", code="coupon_not_found", param="coupon")
    return coupon


def check_coupon(session: Session, code: str, target: Target, now: datetime) -> Coupon:
    """The coupon named by a purchase, if it can be redeemed on it now: 404 `coupon_not_found`,
    409 `coupon_expired`, `coupon_exhausted` or `coupon_not_applicable`."""
    coupon = get_coupon(session, code)
    rules.check_redeemable(code=coupon.code, redeem_by=coupon.redeem_by, max_redemptions=coupon.max_redemptions,
                           times_redeemed=coupon.times_redeemed, now=now)
    if not rules.applies_to(coupon.plans, coupon.terms, coupon.bundles, target):
        raise Conflict(f"coupon {coupon.code!r} does not apply to {target.label}", code="coupon_not_applicable",
                       param="coupon")
    return coupon


def describe(coupon: Coupon) -> str:
    off = (f"{rules.format_percent(coupon.percent_off_bp)}% off" if coupon.percent_off_bp is not None
           else "amount off")
    return f"Discount {coupon.code} ({off})"


def discount_on(coupon: Coupon, amount: int, *, new: bool) -> Discount:
    """The coupon priced on a charge of `amount` (never more than it)."""
    off = rules.discount_of(amount, percent_off_bp=coupon.percent_off_bp, amount_off=coupon.amount_off)
    return Discount(coupon.id, coupon.code, off, describe(coupon), new)


def redeem(session: Session, coupon: Coupon, *, customer_id: str, applied_to: str, target: Target, now: datetime,
           amount: int = 0, invoice_id: str | None = None, subscription_id: str | None = None) -> CouponRedemption:
    """Count one use of the coupon, or 409 `coupon_exhausted` / `coupon_expired`. One conditional
    UPDATE: on PostgreSQL the second of two concurrent updates waits for the first and re-checks
    the limit on the row it committed; SQLite runs one write transaction at a time."""
    coupons = Coupon.__table__
    counted = session.execute(
        update(coupons)
        .where(coupons.c.id == coupon.id)
        .where((coupons.c.max_redemptions.is_(None)) | (coupons.c.times_redeemed < coupons.c.max_redemptions))
        .where((coupons.c.redeem_by.is_(None)) | (coupons.c.redeem_by > now))
        .values(times_redeemed=coupons.c.times_redeemed + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(coupon)
    if counted != 1:
        rules.check_redeemable(code=coupon.code, redeem_by=coupon.redeem_by, max_redemptions=coupon.max_redemptions,
                               times_redeemed=coupon.times_redeemed, now=now)
        raise Conflict(f"coupon {coupon.code!r} can't be redeemed", code="coupon_exhausted", param="coupon")
    redemption = CouponRedemption(
        id=new_id("red"), coupon_id=coupon.id, customer_id=customer_id, applied_to=applied_to,
        subscription_id=subscription_id, invoice_id=invoice_id, plan=target.plan, term=target.term,
        bundle=target.bundle, amount=amount, created_at=now)
    session.add(redemption)
    record_event(session, "coupon.redeemed", customer_id=customer_id, now=now, data={
        "coupon": coupon.code, "customer": customer_id, "redemption": redemption.id, "applied_to": applied_to,
        "subscription": subscription_id, "invoice": invoice_id, "amount": amount})
    return redemption


def redeem_on_invoice(session: Session, coupon: Coupon, discount: Discount, invoice, *, applied_to: str,
                      target: Target, now: datetime) -> CouponRedemption:
    """Redeem a coupon for the purchase its invoice (just opened) makes, and note it on the
    invoice so that the payment's outcome keeps or gives back the use."""
    redemption = redeem(session, coupon, customer_id=invoice.customer_id, applied_to=applied_to, target=target,
                        now=now, amount=discount.amount, invoice_id=invoice.id,
                        subscription_id=invoice.subscription_id)
    invoice.details = {**(invoice.details or {}), "coupon": discount.details(redemption.id)}
    return redemption


def note_on_invoice(invoice, discount: Discount | None) -> None:
    """Note a discount the subscription carried (nothing redeemed) on the invoice it priced."""
    if discount is not None:
        invoice.details = {**(invoice.details or {}), "coupon": discount.details()}


def release_for_invoice(session: Session, invoice_id: str, now: datetime) -> None:
    """The purchase failed: its coupon use, if any, is given back."""
    for redemption in session.scalars(select(CouponRedemption).where(
            CouponRedemption.invoice_id == invoice_id, CouponRedemption.released_at.is_(None))).all():
        redemption.released_at = now
        coupons = Coupon.__table__
        session.execute(update(coupons).where(coupons.c.id == redemption.coupon_id, coupons.c.times_redeemed > 0)
                        .values(times_redeemed=coupons.c.times_redeemed - 1)
                        .execution_options(synchronize_session=False))


def on_invoice_paid(session: Session, invoice, now: datetime) -> None:
    """A subscription charge with a discount was paid: a coupon redeemed with it now discounts
    the subscription's next charges as its duration says; one carried uses up a period."""
    noted = (invoice.details or {}).get("coupon")
    if invoice.subscription_id is None or invoice.purpose == "top_up":
        return
    held = session.get(SubscriptionDiscount, invoice.subscription_id, with_for_update=True)
    if not noted:
        if held is not None and held.periods_left == 0 and invoice.purpose == "plan_change":
            session.delete(held)  # a new term began, and the discount was for the one before
        return
    if noted.get("new"):
        coupon = session.get(Coupon, noted["id"])
        left = rules.periods_after_first(coupon.duration, coupon.duration_periods)
        _put(session, invoice.subscription_id, coupon, noted["redemption"], left, now, held)
    elif held is not None and held.coupon_id == noted["id"] and held.periods_left is not None:
        held.periods_left = max(0, held.periods_left - 1)
        held.updated_at = now


def carried_discount(session: Session, subscription_id: str, target: Target, amount: int, *,
                     next_term: bool) -> Discount | None:
    """The discount a subscription's own coupon gives a charge of `amount` for `target`, if any.
    For the next term (`next_term`), a discount whose periods are used up is removed."""
    held = session.get(SubscriptionDiscount, subscription_id)
    if held is None:
        return None
    if held.periods_left == 0:
        if next_term:
            session.delete(held)
        return None
    coupon = session.get(Coupon, held.coupon_id)
    if not rules.applies_to(coupon.plans, coupon.terms, coupon.bundles, target):
        return None
    return discount_on(coupon, amount, new=False)


def put_on_subscription(session: Session, *, subscription_id: str, customer_id: str, target: Target, code: str,
                        now: datetime) -> SubscriptionDiscount:
    """Apply a coupon to a subscription between charges: it discounts the next charges (one for
    `once`, N for `repeating`, all for `forever`), replacing the discount it had."""
    coupon = check_coupon(session, code, target, now)
    redemption = redeem(session, coupon, customer_id=customer_id, applied_to="subscription", target=target,
                        now=now, subscription_id=subscription_id)
    held = session.get(SubscriptionDiscount, subscription_id, with_for_update=True)
    return _put(session, subscription_id, coupon, redemption.id,
                rules.periods_from_next(coupon.duration, coupon.duration_periods), now, held)


def _put(session: Session, subscription_id: str, coupon: Coupon, redemption_id: str, periods_left: int | None,
         now: datetime, held: SubscriptionDiscount | None) -> SubscriptionDiscount:
    if held is None:
        held = SubscriptionDiscount(subscription_id=subscription_id, created_at=now)
        session.add(held)
    held.coupon_id, held.redemption_id, held.periods_left, held.updated_at = coupon.id, redemption_id, periods_left, now
    return held


def discount_view(session: Session, sub) -> DiscountView | None:
    """The discount as a subscription answer shows it: the coupon's code, and when it ends
    (the end of the last term it discounts; None for forever)."""
    held = session.get(SubscriptionDiscount, sub.id)
    if held is None or (held.periods_left == 0 and sub.status == "ended"):
        return None
    coupon = session.get(Coupon, held.coupon_id)
    ends = None
    if held.periods_left is not None:
        # The terms after the current one are of the scheduled change's term, if one is scheduled.
        months = Term(getattr(sub, "scheduled_term", None) or sub.term).months
        ends = month_boundary(sub.anchor, sub.term_end_offset + held.periods_left * months)
    return DiscountView(coupon.code, ends)


def next_renewal_discount(session: Session, subscription_id: str, target: Target, amount: int, *,
                          new_coupon: Coupon | None, used_now: bool) -> Discount | None:
    """What the coupon (one given with a change, else the subscription's own) takes off the
    renewal after a change: `used_now` when the change's own charge used up a period."""
    if new_coupon is not None:
        coupon = new_coupon
        left = (rules.periods_after_first if used_now else rules.periods_from_next)(
            coupon.duration, coupon.duration_periods)
    else:
        held = session.get(SubscriptionDiscount, subscription_id)
        if held is None:
            return None
        coupon = session.get(Coupon, held.coupon_id)
        if not rules.applies_to(coupon.plans, coupon.terms, coupon.bundles, target):
            return None
        left = None if held.periods_left is None else held.periods_left - (1 if used_now else 0)
    if left is not None and left <= 0:
        return None
    return discount_on(coupon, amount, new=False)
