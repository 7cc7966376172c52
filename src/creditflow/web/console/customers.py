"""A customer as support sees it, and the support actions on them: an immediate downgrade with
support's choice for the unused value, ending the subscription now, refunds with their
eligibility under the refund policy, promo grants. Each asks for a reason and is audited."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter

from creditflow.coupon.service import discount_view
from creditflow.customer.billing import bill_to
from creditflow.invoicing.tax import treatment_for
from creditflow.customer.service import customer_now
from creditflow.credits.promo import grant_promo_credits
from creditflow.refund.service import SUBSCRIPTION_PURPOSES, eligibility, refundable_amount
from creditflow.purchase.refund import create_refund
from creditflow.purchase.change import change_subscription
from creditflow.purchase.cancel import cancel_subscription
from creditflow.subscription.options import unused_value
from creditflow.support import service as support
from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.web import views
from creditflow.web.billing.team import team_section
from creditflow.web.console import queries
from creditflow.web.console.pages import PostedForm, SignedIn, customer_url, minor_units, sentence
from creditflow.web.rendering import Formatter, HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)

UNUSED_VALUE_LABELS = {
    "balance": "Account balance: the unused value pays the customer's next charges",
    "refund": "Refund to the payment method",
    "none": "Nothing: the unused value is forfeited",
}


# --- the customer ------------------------------------------------------------------------------


@router.get("/console/customers/{customer_id}")
def customer(visit: SignedIn, customer_id: str):
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        view = views.billing_page(ctx, db, customer_id, invoice_limit=50, history_limit=20)
        audit = support.list_audit(db, customer_id=customer_id, limit=20)
        events = queries.recent_events(db, customer_id, Formatter(view.customer.currency, view.customer.timezone),
                                       limit=20)
        discount = discount_view(db, view.sub) if view.sub is not None else None
        team = team_section(ctx, db, customer_id)
    sub = view.sub
    return visit.render("console/customer.html", {
        "title": view.customer.email, "page": view, "sub": sub, "audit": audit, "events": events,
        "nav": "customers", "discount": discount, "team": team,
        "customer_fmt": Formatter(view.customer.currency, view.customer.timezone),
        "titles": {inv.id: views.invoice_title(inv) for inv in view.invoices},
        "downgrades": queries.downgrade_options(ctx.catalog, sub),
        "unused": unused_value(sub, view.now), "unused_labels": UNUSED_VALUE_LABELS,
        "promo_reference": f"console_{secrets.token_urlsafe(12)}",
        "tax_label": tax_label(treatment_for(ctx.catalog, bill_to(view.customer))),
    })


def tax_label(treatment) -> str:
    """What the customer's next invoices are taxed, in words."""
    if treatment.reverse_charge:
        return f"Reverse charge ({treatment.place})"
    if treatment.rate is None:
        return "No tax (no rate for the billing country)"
    return f"{treatment.rate}% ({treatment.place}){', included in prices' if treatment.inclusive else ''}"


# --- actions (each with a reason and an audit record) ------------------------------------------


def _live_subscription(ctx, customer_id: str, action: str):
    with ctx.db.transaction(readonly=True) as db:
        sub = views.live_subscription(db, views.get_customer(db, customer_id).id)
    if sub is None:
        raise InvalidRequest(f"the customer has no subscription to {action}")
    return sub


@router.post("/console/customers/{customer_id}/downgrade")
def downgrade_now(visit: SignedIn, form: PostedForm, customer_id: str):
    """An immediate downgrade (a support action), with support's choice for the unused value."""
    ctx, here = visit.ctx, customer_url(customer_id)
    try:
        sub = _live_subscription(ctx, customer_id, "downgrade")
        plan, _, term = form.get("target", "").partition(":")
        target = ctx.catalog.plan(plan)
        term = ctx.catalog.term(term).value
        choice = form.get("unused_value") or "balance"
        if choice not in UNUSED_VALUE_LABELS:
            raise InvalidRequest("choose what happens to the unused value", param="unused_value")
        current = ctx.catalog.plan(sub.plan)
        visit.audited(
            action="subscription.downgrade_now",
            summary=(f"Immediate downgrade from {current.name} ({sub.term}) to {target.name} ({term}); "
                     f"unused value: {choice}"),
            reason=form.get("reason"), customer_id=customer_id,
            details={"subscription": sub.id, "from": {"plan": sub.plan, "term": sub.term},
                     "to": {"plan": target.code, "term": term}, "unused_value": choice},
            work=lambda: change_subscription(ctx, sub.id, plan=target.code, term=term, timing="immediate",
                                             support=True, unused_value=choice,
                                             reason=support.check_reason(form.get("reason"))),
            describe=lambda result: f"now on {target.name} ({term})")
    except CreditflowError as exc:
        return visit.go(here, "error", sentence(exc))
    return visit.go(here, "success", f"Downgraded to {target.name} ({term}) now.")


@router.post("/console/customers/{customer_id}/cancel-now")
def cancel_now(visit: SignedIn, form: PostedForm, customer_id: str):
    """End the subscription at once (a support action), with a refund of the unused time or none."""
    ctx, here = visit.ctx, customer_url(customer_id)
    try:
        sub = _live_subscription(ctx, customer_id, "end")
        refund = form.get("refund") or "none"
        reason = support.check_reason(form.get("reason"))
        visit.audited(
            action="subscription.end_now",
            summary=f"End the {ctx.catalog.plan(sub.plan).name} subscription now; refund: {refund}",
            done=f"Ended the {ctx.catalog.plan(sub.plan).name} subscription now; refund: {refund}",
            reason=reason, customer_id=customer_id, details={"subscription": sub.id, "refund": refund},
            work=lambda: cancel_subscription(ctx, sub.id, at_period_end=False, refund=refund, support=True,
                                             reason=reason, actor=visit.staff.username))
    except CreditflowError as exc:
        return visit.go(here, "error", sentence(exc))
    return visit.go(here, "success", "The subscription has ended; the customer is on Free.")


@router.get("/console/customers/{customer_id}/invoices/{invoice_id}/refund")
def refund_form(visit: SignedIn, customer_id: str, invoice_id: str):
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, customer_id, invoice_id)
        customer = views.get_customer(db, customer_id)
        lines = list(invoice.lines)
        verdict = eligibility(ctx, db, invoice.id)
    return visit.render("console/refund.html", {
        "title": f"Refund invoice {invoice.number:06d}", "customer": customer, "invoice": invoice,
        "lines": lines, "eligibility": verdict, "refundable": refundable_amount(invoice),
        "invoice_title": views.invoice_title(invoice), "nav": "customers",
        "ends_subscription": invoice.purpose in SUBSCRIPTION_PURPOSES,
    })


@router.post("/console/customers/{customer_id}/invoices/{invoice_id}/refund")
def refund(visit: SignedIn, form: PostedForm, customer_id: str, invoice_id: str):
    ctx = visit.ctx
    here = f"/console/customers/{customer_id}/invoices/{invoice_id}/refund"
    try:
        with ctx.db.transaction(readonly=True) as db:
            invoice = views.customer_invoice(db, customer_id, invoice_id)
            number, currency = invoice.number, invoice.currency
            verdict = eligibility(ctx, db, invoice_id)
        amount = minor_units(form.get("amount", ""))
        fmt = Formatter(currency)
        what = fmt.money(amount) if amount is not None else "the full amount"
        result = visit.audited(
            action="invoice.refund", summary=f"Refund {what} on invoice {number:06d}",
            done=f"Refunded {what} on invoice {number:06d}",
            reason=form.get("reason"), customer_id=customer_id,
            details={"invoice": invoice_id, "amount": amount, "policy_eligible": verdict.eligible,
                     "policy": verdict.reason},
            work=lambda: create_refund(ctx, invoice_id, reason=support.check_reason(form.get("reason")),
                                       amount=amount, actor=visit.staff.username),
            describe=lambda r: f"refund {r.id}: {fmt.money(r.amount)} {r.status}")
    except CreditflowError as exc:
        return visit.go(here, "error", sentence(exc))
    return visit.go(customer_url(customer_id), "success",
                    f"Refunded {Formatter(currency).money(result.amount)} on invoice {number:06d}.")


@router.post("/console/customers/{customer_id}/promo")
def promo(visit: SignedIn, form: PostedForm, customer_id: str):
    ctx, here = visit.ctx, customer_url(customer_id)
    try:
        with ctx.db.transaction(readonly=True) as db:
            views.get_customer(db, customer_id)
            now = customer_now(ctx, db, customer_id)
        days = (form.get("expires_in_days") or "").strip()
        expires_at = None
        if days:
            if not days.isdigit() or not 1 <= int(days) <= 3650:
                raise InvalidRequest("expiry must be a whole number of days between 1 and 3650",
                                     param="expires_in_days")
            expires_at = now + timedelta(days=int(days))
        amount = (form.get("amount") or "").strip()
        reason = support.check_reason(form.get("reason"))
        what = f"{_credits_text(amount)} promotional credits" + (f", expiring in {days} days" if days
                                                                 else ", never expiring")
        lot = visit.audited(
            action="credits.promo_grant", summary=f"Grant {what}", done=f"Granted {what}",
            reason=reason, customer_id=customer_id, details={"amount": amount, "expires_in_days": days},
            work=lambda: grant_promo_credits(ctx, customer_id, amount=amount, reason=reason,
                                             expires_at=expires_at, actor=visit.staff.username,
                                             reference=form.get("reference") or None),
            describe=lambda lot: f"lot {lot.id}" + (" (the same form was sent again: granted once)"
                                                    if lot.replayed else ""))
    except CreditflowError as exc:
        return visit.go(here, "error", sentence(exc))
    return visit.go(here, "success",
                    f"Granted {Formatter(ctx.catalog.currency).credits(lot.granted)} promotional credits.")


def _credits_text(amount: str) -> str:
    """"1500" -> "1,500"; what isn't a number is kept as typed (the grant will refuse it)."""
    try:
        return Formatter("usd").credits(amount)
    except CreditflowError:
        return amount
