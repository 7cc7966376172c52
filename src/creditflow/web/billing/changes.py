"""Plan changes: upgrading and downgrading, now or at the end of the period, through a quote
the customer reviews; cancelling a scheduled change; subscribing from Free; cancelling at the
end of the period and resuming."""

from __future__ import annotations

from urllib.parse import quote as quote_path, urlencode

from fastapi import APIRouter
from starlette.responses import Response

from creditflow.customer.service import customer_now
from creditflow.catalog.rules import classify_change
from creditflow.subscription.change import cancel_scheduled_change, preview_change
from creditflow.purchase.change import change_subscription
from creditflow.purchase.cancel import cancel_subscription
from creditflow.subscription.options import cancel_refusal, change_refusal, schedule_refusal
from creditflow.subscription.service import resume_subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.kit.errors import Conflict, CreditflowError, NotFound
from creditflow.kit.periods import Term, add_months
from creditflow.web import views
from creditflow.coupon.rules import Target
from creditflow.web.billing.coupons import promotion, sentence
from creditflow.web.billing.pages import CSRF_CHECKED, HOME, PostedForm, Visit, Visitor
from creditflow.web.messages import plain
from creditflow.web.rendering import Formatter, HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
REVIEW_AGAIN = ("This review was open for a while, or your subscription changed since. Nothing changed; "
                "here is the change again, as it stands now.")


# --- plan changes ------------------------------------------------------------------------------


@router.get("/billing/change")
def change_start(visit: Visitor, plan: str = "", term: str = ""):
    """Upgrade, step 1: when it should take effect (Immediate is the default)."""
    catalog = visit.ctx.catalog
    sub = visit.live_sub()
    if (refused := change_refusal(sub)) is not None:  # e.g. past due: the page says why, as the cards do
        return visit.go(HOME, "error", refused.sentence)
    target, term_value = catalog.plan_for_sale(plan), catalog.term(term).value
    decision = classify_change(catalog, sub.plan, sub.term, target.code, term_value)
    return visit.render("billing/change_timing.html", {
        "title": f"{decision.kind.capitalize()} to {target.name}", "sub": sub, "kind": decision.kind,
        "target": target, "term": term_value, "term_label": views.TERM_LABELS[term_value],
        "price": target.price(Term(term_value)), "current": catalog.plan(sub.plan),
        "end_of_period_blocked": (refusal.sentence if (refusal := schedule_refusal(sub)) else None),
    })


@router.post("/billing/change/quote")
def change_quote(visit: Visitor, form: PostedForm):
    """Price the change (a quote) and show it for review; with a promotion code typed on the
    review, price it again with the code (a code that can't be used is shown by the field)."""
    coupon = (form.get("coupon") or "").strip()[:64]
    try:
        sub = visit.live_sub()
        quote = visit.ctx.db.run(lambda db: preview_change(
            visit.ctx, db, sub.id, plan=form.get("plan", ""), term=form.get("term", ""),
            timing=form.get("timing") or "immediate", coupon=coupon or None))
    except CreditflowError as exc:
        if coupon and exc.code.startswith("coupon_") and form.get("quote"):
            return visit.go(f"/billing/change/review/{quote_path(form.get('quote'))}?"
                            + urlencode({"coupon": coupon, "coupon_error": exc.code}))
        return visit.failed(exc)
    return visit.go(f"/billing/change/review/{quote.id}" + (f"?{urlencode({'coupon': coupon})}" if coupon else ""))


@router.get("/billing/change/review/{quote_id}")
def change_review(visit: Visitor, quote_id: str, coupon: str = "", coupon_error: str = ""):
    catalog = visit.ctx.catalog
    with visit.ctx.db.transaction(readonly=True) as db:
        quote = views.customer_quote(db, visit.customer_id, quote_id)
        sub = views.live_subscription(db, visit.customer_id)
    if sub is None or sub.id != quote.subscription_id:
        raise NotFound("no such quote", param="quote")
    target = catalog.plan(quote.plan)
    replaces = None
    if quote.timing == "end_of_period" and sub.scheduled_plan:
        replaces = f"{catalog.plan(sub.scheduled_plan).name} ({views.TERM_LABELS[sub.scheduled_term].lower()})"
    return visit.render("billing/change_review.html", {
        "title": f"Review your {quote.kind}", "quote": quote, "sub": sub, "target": target,
        "term_label": views.TERM_LABELS[quote.term], "unit": views.TERM_UNITS[quote.term],
        "current": catalog.plan(sub.plan), "current_term_label": views.TERM_LABELS[sub.term],
        "features": [catalog.features[f].label for f in sorted(target.features) if f in catalog.features],
        "replaces": replaces, "used": quote.used_at is not None,
        "promo": {"code": coupon[:64], "error": sentence(coupon_error) if coupon_error else None,
                  "applied": "" if coupon_error else coupon[:64]},
        "promo_form": {"method": "post", "action": "/billing/change/quote",
                       "hidden": {"plan": quote.plan, "term": quote.term, "timing": quote.timing, "quote": quote.id}},
    })


@router.post("/billing/change/confirm")
def change_confirm(visit: Visitor, form: PostedForm):
    """Make the reviewed change at the quoted price (charged now for an immediate upgrade)."""
    catalog = visit.ctx.catalog
    with visit.ctx.db.transaction(readonly=True) as db:
        quote = views.customer_quote(db, visit.customer_id, form.get("quote", ""))
    what = f"{catalog.plan(quote.plan).name} ({views.TERM_LABELS[quote.term].lower()})"
    try:
        result = change_subscription(visit.ctx, quote.subscription_id, plan=quote.plan, term=quote.term,
                                     timing=quote.timing, quote=quote.id, coupon=form.get("coupon") or None)
    except CreditflowError as exc:
        if exc.code in ("quote_expired", "quote_stale"):
            return _requote(visit, quote, exc, coupon=form.get("coupon") or None)
        return visit.failed(exc)
    fmt = visit.formatter()
    if quote.timing == "immediate":
        text = f"You're now on {what}. We charged {fmt.money(quote.amount_due)}."
        if quote.amount_due == 0:
            text = f"You're now on {what}. Nothing was charged: your credit covered it."
    else:
        text = (f"Your {quote.kind} to {what} is scheduled for {fmt.date(quote.effective_at)}. "
                "Nothing was charged today.")
        if result.replaced:
            old = catalog.plan(result.replaced["plan"]).name
            text += f" It replaces the change to {old} that was scheduled."
    return visit.done(text)


def _requote(visit: Visit, quote, stale: CreditflowError, *, coupon: str | None = None) -> Response:
    """The quote went stale: price the same change again and show it, saying why."""
    try:
        fresh = visit.ctx.db.run(lambda db: preview_change(
            visit.ctx, db, quote.subscription_id, plan=quote.plan, term=quote.term, timing=quote.timing,
            coupon=coupon))
    except CreditflowError as exc:
        return visit.failed(exc)
    # A scheduled change charges nothing now: its review has no price to expire, only details
    # that may have moved on.
    text = plain(stale) if quote.timing == "immediate" else REVIEW_AGAIN
    return visit.go(f"/billing/change/review/{fresh.id}" + (f"?{urlencode({'coupon': coupon})}" if coupon else ""),
                    "error", text)


@router.post("/billing/scheduled-change/cancel", dependencies=CSRF_CHECKED)
def scheduled_change_cancel(visit: Visitor):
    """Drop the scheduled change; the current plan continues."""
    catalog = visit.ctx.catalog
    try:
        sub = visit.live_sub()
        dropped = catalog.plan(sub.scheduled_plan).name if sub.scheduled_plan else None
        sub = visit.ctx.db.run(lambda db: cancel_scheduled_change(visit.ctx, db, sub.id))
    except CreditflowError as exc:
        return visit.failed(exc)
    return visit.done(f"The scheduled change to {dropped} is cancelled. You stay on {catalog.plan(sub.plan).name}.")


# --- subscribing from Free ---------------------------------------------------------------------


@router.get("/billing/subscribe")
def subscribe_review(visit: Visitor, plan: str = "", term: str = "", coupon: str = ""):
    ctx, catalog = visit.ctx, visit.ctx.catalog
    target, term_value = catalog.plan_for_sale(plan), catalog.term(term).value
    with ctx.db.transaction(readonly=True) as db:
        if views.live_subscription(db, visit.customer_id) is not None:
            raise Conflict("You already have a subscription; change it from the billing page.",
                           code="subscription_exists")
        customer = views.get_customer(db, visit.customer_id)
        now = customer_now(ctx, db, visit.customer_id)
        promo = promotion(ctx, db, customer, coupon, Target(plan=target.code, term=term_value),
                          target.price(Term(term_value)))
    return visit.render("billing/subscribe_review.html", {
        "title": f"Subscribe to {target.name}", "target": target, "term": term_value,
        "term_label": views.TERM_LABELS[term_value], "unit": views.TERM_UNITS[term_value],
        "price": target.price(Term(term_value)), "now": now,
        "charge": promo.charge, "promo": promo,
        "promo_form": {"method": "get", "action": "/billing/subscribe",
                       "hidden": {"plan": target.code, "term": term_value}},
        "renews_at": add_months(now, Term(term_value).months), "has_payment_method": bool(customer.payment_method),
        "features": [catalog.features[f].label for f in sorted(target.features) if f in catalog.features],
    }, customer=customer)


@router.post("/billing/subscribe")
def subscribe_confirm(visit: Visitor, form: PostedForm):
    catalog = visit.ctx.catalog
    try:
        sub = subscribe(visit.ctx, visit.customer_id, form.get("plan", ""), form.get("term", ""),
                        form.get("coupon") or None)
    except CreditflowError as exc:
        return visit.failed(exc)
    plan = catalog.plan(sub.plan)
    return visit.done(f"Welcome to {plan.name}! Your {Formatter(catalog.currency).credits(plan.monthly_credits)} "
                      "plan credits are ready.")


# --- cancelling and resuming -------------------------------------------------------------------


@router.get("/billing/cancel")
def cancel_review(visit: Visitor):
    catalog = visit.ctx.catalog
    sub = visit.live_sub()
    if (refused := cancel_refusal(sub)) is not None:  # the use case would refuse: say why, offer nothing
        return visit.go(HOME, "error", refused.sentence)
    return visit.render("billing/cancel.html", {
        "title": "Cancel your subscription", "sub": sub, "plan": catalog.plan(sub.plan),
        "free_daily": catalog.free.daily_credits,
        "scheduled": catalog.plan(sub.scheduled_plan) if sub.scheduled_plan else None,
    })


@router.post("/billing/cancel", dependencies=CSRF_CHECKED)
def cancel_confirm(visit: Visitor):
    """Cancel at the end of the period: the plan and its credits stay until then."""
    try:
        sub = cancel_subscription(visit.ctx, visit.live_sub().id, at_period_end=True)
    except CreditflowError as exc:
        return visit.failed(exc)
    fmt = visit.formatter()
    return visit.done(f"Your subscription is cancelled. You keep {visit.ctx.catalog.plan(sub.plan).name} and its "
                      f"credits until {fmt.date(sub.current_term_end)}, and won't be charged again.")


@router.post("/billing/resume", dependencies=CSRF_CHECKED)
def resume(visit: Visitor):
    try:
        sub_id = visit.live_sub().id
        sub = visit.ctx.db.run(lambda db: resume_subscription(visit.ctx, db, sub_id))
    except CreditflowError as exc:
        return visit.failed(exc)
    return visit.done(f"Your subscription is back on. It renews on {visit.formatter().date(sub.current_term_end)}.")
