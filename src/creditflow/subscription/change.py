"""Plan changes: previews and quotes, immediate upgrades, end-of-period upgrades and
downgrades, the one scheduled change, and support's immediate downgrade.

An immediate change is a purchase (`purchase.change`): its invoice, opened here, is charged
first, and the change is applied by `on_change_paid` in the transaction that records the
successful payment, so a declined card changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.catalog.rules import classify_change
from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import (
    Discount,
    carried_discount,
    check_coupon,
    discount_on,
    get_coupon,
    next_renewal_discount,
    note_on_invoice,
    redeem_on_invoice,
)
from creditflow.credits.grants import PlanGrant, renew_plan_credits
from creditflow.credits.models import CreditLot
from creditflow.customer.billing import bill_to
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now, get_customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import BALANCE_CREDIT, LineDraft, create_invoice
from creditflow.invoicing.tax import price, treatment_for
from creditflow.kit.clock import format_instant
from creditflow.kit.credits import Credits
from creditflow.kit.db.rows import get_or_not_found
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.kit.money import format_money
from creditflow.kit.periods import Period, Term, add_months
from creditflow.payment.models import PaymentAttempt
from creditflow.subscription.calendar import next_due, set_calendar
from creditflow.subscription.models import Quote, Subscription
from creditflow.subscription.options import change_refusal, raise_if, schedule_refusal
from creditflow.subscription.price import sell
from creditflow.subscription.proration import immediate_change_charge, split_term
from creditflow.subscription.repository import get_subscription
from creditflow.subscription.service import drop_scheduled_change
from creditflow.subscription.status import record_change
from creditflow.team.service import refuse_too_many_members

# An immediate change leases the subscription while its payment is in flight; longer than the
# time after which an abandoned payment is reconciled, so the worker never renews under it.
CHANGE_LEASE = timedelta(minutes=15)
UNUSED_VALUE_OPTIONS = ("balance", "refund", "none")


@dataclass(frozen=True)
class ChangeTerms:
    """Everything a preview shows and a confirmation charges (pure data)."""

    plan: str
    term: str
    kind: str
    timing: str
    currency: str
    amount_due: int
    lines: list[dict]
    effective_at: datetime
    next_renewal_at: datetime
    next_renewal_amount: int
    credits_after: dict
    new_price: int
    unused_credit: int
    to_account_balance: int
    discount: Discount | None = None  # a coupon's, on the charge made now


@dataclass(frozen=True)
class ChangeResult:
    subscription: Subscription
    replaced: dict | None = None  # the scheduled change this one replaced


def _plan_change(ctx, session: Session, sub: Subscription, customer: Customer, plan: str, term: str,
                 timing: str, now: datetime, *, support: bool, unused_value: str = "balance",
                 priced_at: datetime | None = None, coupon: str | None = None) -> ChangeTerms:
    """The change as it would be made at `now`, its unused time priced at `priced_at` (a
    quote's instant when one is confirmed: a quote fixes the amount while it lives)."""
    priced_at = priced_at or now
    raise_if(change_refusal(sub))
    target = ctx.catalog.plan_for_sale(plan)
    refuse_too_many_members(ctx, session, sub.customer_id, target.code, now)  # fewer seats than the team fills
    term_def = ctx.catalog.term(term)
    new_price = target.price(term_def)
    decision = classify_change(ctx.catalog, sub.plan, Term(sub.term), target.code, term_def)
    decision.check_timing(timing, support=support)
    if unused_value not in UNUSED_VALUE_OPTIONS:
        raise InvalidRequest(f"unused_value must be one of {', '.join(UNUSED_VALUE_OPTIONS)}", param="unused_value")
    if unused_value != "balance" and not support:
        raise Forbidden("choosing what happens to the unused value is a support action", code="support_only",
                        param="unused_value")
    currency = ctx.catalog.currency
    current = ctx.catalog.plan(sub.plan)
    other_credits = _available_outside_plan(session, sub, now)
    tax = treatment_for(ctx.catalog, bill_to(customer))
    target_of = Target(plan=target.code, term=term_def.value)
    new_coupon = check_coupon(session, coupon, target_of, now) if coupon is not None else None

    if timing == "end_of_period":
        later = next_renewal_discount(session, sub.id, target_of, new_price, new_coupon=new_coupon, used_now=False)
        renewal_amount = price([new_price], tax, discount=later.amount if later else 0).total
        return ChangeTerms(
            plan=target.code, term=term_def.value, kind=decision.kind, timing=timing, currency=currency,
            amount_due=0, lines=[], effective_at=sub.current_term_end, next_renewal_at=sub.current_term_end,
            next_renewal_amount=renewal_amount,
            credits_after={"subscription": str(target.monthly_credits),
                           "total": str(target.monthly_credits + other_credits)},
            new_price=new_price, unused_credit=0, to_account_balance=0,
        )

    split = split_term(sub.term_price, Period(sub.current_term_start, sub.current_term_end), priced_at)
    unused = split.unused if ctx.catalog.policies.proration == "time" else 0
    # Support may choose a refund, or nothing, for the unused value instead of a credit.
    unused_for_charge = unused if unused_value == "balance" else 0
    charge_lines = [{"kind": "new_plan", "description": f"{target.name} plan, {term_def.value}", "amount": new_price}]
    if unused_for_charge:
        charge_lines.append({"kind": "unused_time",
                             "description": f"Unused time on {current.name} ({sub.term}) after "
                                            f"{priced_at.day} {priced_at:%b %Y, %H:%M} UTC",
                             "amount": -unused_for_charge})
    subtotal = max(0, sum(line["amount"] for line in charge_lines))
    discount = (discount_on(new_coupon, subtotal, new=True) if new_coupon is not None
                else carried_discount(session, sub.id, target_of, subtotal, next_term=False))
    priced = price((line["amount"] for line in charge_lines), tax, discount=discount.amount if discount else 0)
    charge = immediate_change_charge(priced.total, customer.balance)
    lines = priced.lines(charge_lines, discount and discount.description)
    if discount is not None and not (discount.new or discount.amount):
        discount = None  # the subscription's coupon had nothing to take off: no period used
    later = next_renewal_discount(session, sub.id, target_of, new_price, new_coupon=new_coupon,
                                  used_now=discount is not None)
    renewal_amount = price([new_price], tax, discount=later.amount if later else 0).total
    if charge.to_account_balance:
        lines.append({"kind": "account_balance", "description": BALANCE_CREDIT, "amount": charge.to_account_balance})
    if charge.balance_applied:
        lines.append({"kind": "account_balance", "description": "Account balance applied",
                      "amount": -charge.balance_applied})
    plan_credits = target.monthly_credits
    if ctx.catalog.policies.plan_credits_on_immediate_change == "carry_over":
        plan_credits = plan_credits + _plan_credits_left(session, sub, now)
    return ChangeTerms(
        plan=target.code, term=term_def.value, kind=decision.kind, timing=timing, currency=currency,
        amount_due=charge.amount_due, lines=lines, effective_at=now,
        next_renewal_at=add_months(now, term_def.months), next_renewal_amount=renewal_amount,
        credits_after={"subscription": str(plan_credits), "total": str(plan_credits + other_credits)},
        new_price=new_price, unused_credit=unused, to_account_balance=charge.to_account_balance,
        discount=discount,
    )


def preview_change(ctx: Context, session: Session, subscription_id: str, *, plan: str, term: str,
                   timing: str = "immediate", support: bool = False, coupon: str | None = None) -> Quote:
    """Price a change without making it; the quote can be confirmed until it expires."""
    sub = get_subscription(session, subscription_id)
    customer = session.get(Customer, sub.customer_id)
    now = customer_now(ctx, session, sub.customer_id)
    terms = _plan_change(ctx, session, sub, customer, plan, term, timing, now, support=support, coupon=coupon)
    quote = Quote(
        id=new_id("quo"), subscription_id=sub.id, customer_id=sub.customer_id, plan=terms.plan,
        term=terms.term, kind=terms.kind, timing=terms.timing, currency=terms.currency,
        amount_due=terms.amount_due, lines=terms.lines, effective_at=terms.effective_at,
        next_renewal_at=terms.next_renewal_at, next_renewal_amount=terms.next_renewal_amount,
        credits_after=terms.credits_after, subscription_version=sub.version,
        expires_at=now + timedelta(seconds=ctx.catalog.policies.quote_ttl_seconds), created_at=now,
    )
    session.add(quote)
    return quote


# FOR NO KEY UPDATE on PostgreSQL (plain FOR UPDATE elsewhere): it still excludes other changes of
# the customer, but not the key-share locks that a spend's ledger inserts take on the customer row
# through their foreign keys. With FOR UPDATE a change holding the customer and waiting for the
# credit account deadlocked with a spend holding the account and waiting for the customer.
CUSTOMER_LOCK = {"key_share": True}


def lock_for_change(ctx: Context, session: Session, subscription_id: str, *, plan: str, term: str, timing: str,
                    quote: str | None, support: bool, unused_value: str, reason: str | None,
                    coupon: str | None = None) -> tuple[Subscription, ChangeTerms, datetime]:
    """Lock the subscription and its customer and price the change as it will be made, checking
    the quote it confirms (if any) and that the change may be made now."""
    sub = get_subscription(session, subscription_id, for_update=True)
    customer = session.get(Customer, sub.customer_id, with_for_update=CUSTOMER_LOCK, populate_existing=True)
    now = customer_now(ctx, session, sub.customer_id)
    quoted = _quote_to_confirm(session, quote, sub, now) if quote is not None else None
    terms = _plan_change(ctx, session, sub, customer, plan, term, timing, now, support=support,
                         unused_value=unused_value, priced_at=quoted.created_at if quoted else None, coupon=coupon)
    if quoted is not None:
        _check_quote(quoted, sub, terms, now)
    if terms.kind == "downgrade" and timing == "immediate" and not (reason and reason.strip()):
        raise InvalidRequest("an immediate downgrade needs a reason", param="reason")
    if timing == "immediate" and sub.lease_owner is not None:
        raise Conflict("the subscription is being renewed or changed; try again shortly", code="subscription_busy")
    return sub, terms, now


def open_immediate_change(ctx: Context, session: Session, sub: Subscription, terms: ChangeTerms, now: datetime, *,
                          unused_value: str, reason: str | None) -> Invoice:
    """The invoice of an immediate change, the subscription leased to it until it is paid."""
    discount = terms.discount
    invoice = create_invoice(
        session, ctx.catalog, customer_id=sub.customer_id, purpose="plan_change",
        discount=discount.amount if discount else 0, discount_description=discount and discount.description,
        subscription_id=sub.id, now=now, bill_to=bill_to(get_customer(session, sub.customer_id)),
        period_start=now, period_end=terms.next_renewal_at,
        details={"subscription": sub.id, "plan": terms.plan, "term": terms.term, "kind": terms.kind,
                 "from": {"plan": sub.plan, "term": sub.term}, "version": sub.version,
                 "to_account_balance": terms.to_account_balance, "unused_credit": terms.unused_credit,
                 "unused_value": unused_value, "reason": reason, "new_price": terms.new_price},
        lines=[LineDraft(line["kind"], line["description"], line["amount"],
                         now if line["kind"] == "new_plan" else None,
                         terms.next_renewal_at if line["kind"] == "new_plan" else None)
               for line in terms.lines if line["kind"] in ("new_plan", "unused_time")],
    )
    if discount is not None and discount.new:
        redeem_on_invoice(session, get_coupon(session, discount.code), discount, invoice, applied_to="change",
                          target=Target(plan=terms.plan, term=terms.term), now=now)
    else:
        note_on_invoice(invoice, discount)
    sub.lease_owner = f"change:{invoice.id}"
    sub.due_at = now + CHANGE_LEASE
    return invoice


def cancel_scheduled_change(ctx: Context, session: Session, subscription_id: str) -> Subscription:
    """Drop the scheduled change; the current plan simply continues."""
    sub = get_subscription(session, subscription_id, for_update=True)
    now = customer_now(ctx, session, sub.customer_id)
    if sub.scheduled_plan is None:
        raise Conflict("no change is scheduled", code="no_scheduled_change")
    drop_scheduled_change(ctx, session, sub, now, reason="canceled")
    return sub


def schedule_change(ctx: Context, session: Session, sub: Subscription, terms: ChangeTerms, now: datetime) -> ChangeResult:
    raise_if(schedule_refusal(sub))
    replaced = None
    if sub.scheduled_plan is not None:
        replaced = {"plan": sub.scheduled_plan, "term": sub.scheduled_term, "kind": sub.scheduled_kind}
    sub.scheduled_plan, sub.scheduled_term, sub.scheduled_kind = terms.plan, terms.term, terms.kind
    sub.scheduled_price = terms.new_price  # sold now, at today's price, for its renewal
    record_change(ctx, session, sub, now=now, event="subscription.change_scheduled", data={
        "subscription": sub.id, "plan": terms.plan, "term": terms.term, "kind": terms.kind,
        "effective_at": format_instant(terms.effective_at), "amount_due_then": terms.next_renewal_amount,
        "replaced": replaced})
    return ChangeResult(sub, replaced)


def _quote_to_confirm(session: Session, quote_id: str, sub: Subscription, now: datetime) -> Quote:
    quote = get_or_not_found(session, Quote, quote_id, noun="quote", param="quote",
                             exists=lambda quote: quote.subscription_id == sub.id, with_for_update=True)
    if quote.used_at is not None:
        raise Conflict("the quote was already used", code="quote_stale", param="quote")
    if now >= quote.expires_at:
        raise Conflict("the quote expired; preview the change again", code="quote_expired", param="quote")
    return quote


def _check_quote(quote: Quote, sub: Subscription, terms: ChangeTerms, now: datetime) -> None:
    """The change priced as of the quote must be the quote: time passing changes nothing (the
    unused time is priced at the quote's instant), a changed subscription or account balance
    makes the quote stale."""
    if (quote.plan, quote.term, quote.timing) != (terms.plan, terms.term, terms.timing):
        raise InvalidRequest("the quote is for a different change", param="quote")
    if quote.subscription_version != sub.version or quote.amount_due != terms.amount_due:
        raise Conflict("the subscription or the account balance changed since the quote; preview the change again",
                       code="quote_stale", param="quote")
    quote.used_at = now


def _available_outside_plan(session: Session, sub: Subscription, now: datetime) -> Credits:
    total = session.scalar(select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
        CreditLot.customer_id == sub.customer_id, CreditLot.kind != "subscription",
        CreditLot.expired_at.is_(None),
        (CreditLot.expires_at.is_(None)) | (CreditLot.expires_at > now),
    ))
    return Credits(int(total.milli if isinstance(total, Credits) else total))


def _plan_credits_left(session: Session, sub: Subscription, now: datetime) -> Credits:
    total = session.scalar(select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
        CreditLot.subscription_id == sub.id, CreditLot.kind == "subscription", CreditLot.expired_at.is_(None),
        (CreditLot.expires_at.is_(None)) | (CreditLot.expires_at > now),
    ))
    return Credits(int(total.milli if isinstance(total, Credits) else total))


def on_change_paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                   now: datetime) -> None:
    """Apply an immediate change: the new plan, and a new term from now."""
    details = invoice.details
    sub = session.get(Subscription, details["subscription"], with_for_update=True, populate_existing=True)
    customer = session.get(Customer, invoice.customer_id, with_for_update=CUSTOMER_LOCK, populate_existing=True)
    carried = Credits(0)
    if ctx.catalog.policies.plan_credits_on_immediate_change == "carry_over":
        carried = _plan_credits_left(session, sub, now)
    before = {"plan": sub.plan, "term": sub.term}
    replaced = None
    if sub.scheduled_plan is not None:  # an immediate change removes any scheduled change
        replaced = {"plan": sub.scheduled_plan, "term": sub.scheduled_term, "kind": sub.scheduled_kind}
    sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = sub.scheduled_price = None
    sub.cancel_at_period_end = False
    sub.canceled_at = None
    sub.plan, sub.term = details["plan"], details["term"]
    sub.term_price = details["new_price"] - invoice.discount
    sell(sub, details["new_price"])
    sub.anchor = now
    set_calendar(sub, term_start_offset=0, credit_offset=0)
    plan = ctx.catalog.plan(sub.plan)
    # Keyed by the change, not the period: a change at the very instant of a grant starts a
    # period with the same start as the one it replaces.
    renew_plan_credits(ctx, session, [PlanGrant(sub.customer_id, sub.id, plan.monthly_credits + carried,
                                                sub.credit_period_end, f"sub:{sub.id}:change:{invoice.id}")], now)
    if details["to_account_balance"]:
        customer.balance += details["to_account_balance"]
    sub.lease_owner = None
    sub.due_at = next_due(sub)
    record_change(ctx, session, sub, now=now, event="subscription.changed", data={
        "subscription": sub.id, "from": before, "to": {"plan": sub.plan, "term": sub.term},
        "kind": details["kind"], "timing": "immediate", "invoice": invoice.id,
        "amount_charged": invoice.amount_paid, "to_account_balance": details["to_account_balance"],
        "replaced_scheduled_change": replaced, "reason": details.get("reason"),
        "summary": f"{before['plan']} -> {sub.plan}, charged {format_money(invoice.amount_paid, invoice.currency)}"})


def on_change_failed(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                     now: datetime) -> None:
    """A declined change changes nothing; the subscription is released for the worker."""
    invoice.status = "void"
    sub = session.get(Subscription, invoice.details["subscription"], with_for_update=True, populate_existing=True)
    if sub is not None and sub.lease_owner == f"change:{invoice.id}":
        sub.lease_owner = None
        sub.due_at = next_due(sub)
