"""The card on file, paying an open invoice, and 3-D Secure on the billing page.

- Adding or replacing the card: with Stripe, the page confirms a SetupIntent with Stripe.js, so
  the card number goes from the browser to Stripe only; creditflow then attaches the payment
  method it made. With the sandbox, a test card form maps the usual test card numbers to the
  sandbox's test payment methods. Either way a subscription in dunning is retried at once.
- A purchase whose payment needs authentication lands on its invoice's payment page: the
  sandbox's own authentication step (Complete or Fail), or Stripe.js's `confirmCardPayment`.
  Completing it settles that same payment attempt; failing or leaving it leaves the invoice open,
  payable later from the same page.
- The one-time link an API purchase answers with opens a billing session for the invoice's
  customer, straight onto that page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from creditflow.customer.service import customer_now
from creditflow.kit.errors import CreditflowError, NotFound, PaymentFailed
from creditflow.payment.attempts import last_failure
from creditflow.purchase import checkout, open_invoice
from creditflow.purchase.checkout import AuthenticationRequired, Outcome
from creditflow.purchase.payment_method import set_card_from_setup, set_payment_method, start_card_setup
from creditflow.web import views
from creditflow.web.billing.pages import HOME, PostedForm, Visit, Visitor
from creditflow.web.messages import plain
from creditflow.web.rendering import SECURITY_HEADERS, HTMLErrorRoute, error_page
from creditflow.web.site import Web, current_web

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)

# The sandbox's test cards, by the numbers payment processors use for them.
TEST_CARDS = {
    "4242424242424242": "pm_card_ok",
    "4000000000000002": "pm_card_declined",
    "4000002500003155": "pm_card_authenticate",
}
CARD_PAGE = "/billing/card"


def _next_page(raw: str | None) -> str:
    """Where to go once the card is saved: a page of the billing area, never elsewhere."""
    parts = urlsplit(raw or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/billing") or raw.startswith("//"):
        return HOME
    return raw


def card_page_for(next_page: str) -> str:
    return f"{CARD_PAGE}?next={quote(next_page, safe='')}"


def _uses_stripe_js(visit: Visit) -> bool:
    return hasattr(visit.ctx.gateway, "start_card_setup")


def _with_stripe_js(response: Response, js_url: str, api_origin: str) -> Response:
    """The page's Content-Security-Policy, opened to Stripe.js and the Stripe API it talks to."""
    js_origin = "{0.scheme}://{0.netloc}".format(urlsplit(js_url))
    response.headers["Content-Security-Policy"] = (
        SECURITY_HEADERS["Content-Security-Policy"].replace("default-src 'none';", "default-src 'none'; "
                                                            f"script-src 'self' {js_origin}; "
                                                            f"connect-src {api_origin}; "
                                                            f"frame-src {js_origin} https://hooks.stripe.com;"))
    return response


# --- the card on file --------------------------------------------------------------------------


@router.get(CARD_PAGE)
def card(visit: Visitor, next: str | None = None):
    """Add or replace the card: Stripe.js Elements with Stripe, a test card form with the sandbox."""
    with visit.ctx.db.transaction(readonly=True) as db:
        customer = views.get_customer(db, visit.customer_id)
    data = {"title": "Replace card" if customer.payment_method else "Add a card", "next": _next_page(next),
            "card": customer.card, "setup": None, "test_cards": TEST_CARDS, "error": None}
    if not _uses_stripe_js(visit):
        return visit.render("billing/card.html", data, customer=customer)
    try:
        data["setup"] = start_card_setup(visit.ctx, visit.customer_id)
    except CreditflowError as exc:
        return visit.failed(exc)
    setup = data["setup"]
    return _with_stripe_js(visit.render("billing/card.html", data, customer=customer), setup.js_url, setup.api_origin)


@router.post(CARD_PAGE)
def card_save(visit: Visitor, form: PostedForm):
    """The sandbox's test card form, or the SetupIntent Stripe.js confirmed in the browser."""
    next_page = _next_page(form.get("next"))
    with visit.ctx.db.transaction(readonly=True) as db:
        before = views.live_subscription(db, visit.customer_id)
        was_past_due = before is not None and before.status == "past_due"
    try:
        if form.get("setup_intent"):
            customer = set_card_from_setup(visit.ctx, visit.customer_id, form["setup_intent"])
        else:
            number = "".join(form.get("number", "").split())
            if number not in TEST_CARDS:
                with visit.ctx.db.transaction(readonly=True) as db:
                    customer = views.get_customer(db, visit.customer_id)
                return visit.render("billing/card.html", {
                    "title": "Replace card" if customer.payment_method else "Add a card", "next": next_page,
                    "card": customer.card, "setup": None, "test_cards": TEST_CARDS,
                    "error": "This isn't one of the sandbox's test cards: use 4242 4242 4242 4242 (pays), "
                             "4000 0000 0000 0002 (declines) or 4000 0025 0000 3155 (asks for 3-D Secure).",
                    "number": form.get("number", "")[:40]}, status=422, customer=customer)
            customer = set_payment_method(visit.ctx, visit.customer_id, TEST_CARDS[number])
    except CreditflowError as exc:
        return visit.go(card_page_for(next_page), "error", plain(exc))
    text = f"Your card ending in {customer.card['last4']} is saved." if customer.card else "Your card is saved."
    with visit.ctx.db.transaction(readonly=True) as db:
        sub = views.live_subscription(db, visit.customer_id)
        failure = last_failure(db, visit.customer_id) if sub and sub.status == "past_due" else None
    if sub is not None and sub.status == "past_due":
        text += (" We tried your overdue payment again and it didn't go through"
                 + (": your bank asks you to authenticate it." if getattr(failure, "failure_code", None)
                    == "authentication_required" else ".")
                 + " You can pay it below.")
    elif sub is not None and was_past_due:
        text += " Your overdue payment went through: your subscription is active again."
    return visit.go(next_page, "success", text)


# --- paying an open invoice, and 3-D Secure ----------------------------------------------------


@router.get("/billing/authenticate/{token}")
def open_authentication_link(request: Request, token: str, web: Annotated[Web, Depends(current_web)]):
    """The one-time link of a payment awaiting authentication (from the API's 402 answer): a
    billing session for its customer, on the invoice's payment page."""
    ctx = web.ctx
    try:
        with ctx.db.transaction() as db:
            invoice = checkout.redeem_authentication_link(ctx, db, token)
            customer_id, invoice_id = invoice.customer_id, invoice.id
    except NotFound:
        return error_page(404, "This link has expired or has already been used, or the payment it was for is "
                               "no longer waiting. Please open the billing page again from the app.")
    session = web.billing_sessions.start()
    session.customer, session.return_url = customer_id, None
    return Visit(web, request, session).go(_pay_page(invoice_id))


def _pay_page(invoice_id: str) -> str:
    return f"/billing/invoices/{invoice_id}/pay"


@router.get("/billing/invoices/{invoice_id}/pay")
def pay_page(visit: Visitor, invoice_id: str):
    """Pay an open invoice: the authentication step of the payment waiting for it, or a Pay
    button (after adding a card when there is none)."""
    with visit.ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, visit.customer_id, invoice_id)
        customer = views.get_customer(db, visit.customer_id)
        if invoice.status != "open":
            return visit.go(HOME, "success" if invoice.status == "paid" else "error",
                            "This invoice is paid." if invoice.status == "paid" else "This invoice is no longer open.")
        refusal = open_invoice.payable_refusal(db, invoice)
        waiting = checkout.waiting_attempt(db, invoice.id)
        title = views.invoice_title(invoice)
        now = customer_now(visit.ctx, db, visit.customer_id)
    if waiting is not None and (waiting.payment_method != customer.payment_method or refusal is not None):
        waiting = None  # the card changed since (paying charges the new one), or it no longer applies
    if waiting is None and refusal is None and not customer.payment_method:
        return visit.go(card_page_for(_pay_page(invoice_id)), "error", "Add a card to pay this invoice.")
    data = {"title": "Confirm your payment" if waiting else "Pay invoice", "invoice": invoice,
            "invoice_title": title, "waiting": waiting, "refusal": refusal, "secret": None, "stripe": None}
    if waiting is not None and hasattr(visit.ctx.gateway, "authentication_secret"):
        data["secret"] = visit.ctx.gateway.authentication_secret(waiting.gateway_reference)
        if data["secret"] is None:  # no longer waiting (done in another tab, say): record what became of it
            outcome = checkout.finish_authentication(visit.ctx, waiting.id, now)
            if outcome.status != "requires_action":
                return _after(visit, outcome)
        data["stripe"] = {"key": visit.ctx.gateway.publishable_key, "js_url": visit.ctx.gateway.js_url}
        response = visit.render("billing/pay.html", data, customer=customer)
        return _with_stripe_js(response, visit.ctx.gateway.js_url, visit.ctx.gateway.api_origin)
    return visit.render("billing/pay.html", data, customer=customer)


@router.post("/billing/invoices/{invoice_id}/pay")
def pay(visit: Visitor, invoice_id: str, form: PostedForm):
    """Charge the open invoice again, with the card on file (on-session: it may ask for 3-D Secure)."""
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, visit.customer_id, invoice_id)
        now = customer_now(ctx, db, visit.customer_id)
    try:
        outcome = open_invoice.pay_open_invoice(ctx, invoice.id, now)
    except AuthenticationRequired:
        return visit.go(_pay_page(invoice.id))
    except CreditflowError as exc:
        return visit.failed(exc)
    return _after(visit, outcome)


@router.post("/billing/invoices/{invoice_id}/cancel")
def cancel_purchase(visit: Visitor, invoice_id: str, form: PostedForm):
    """Give up a purchase left unpaid (its authentication failed or was left): nothing of it
    happens, its invoice is voided."""
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, visit.customer_id, invoice_id)
        now = customer_now(ctx, db, visit.customer_id)
    try:
        open_invoice.cancel_purchase(ctx, invoice.id, now)
    except CreditflowError as exc:
        return visit.failed(exc)
    return visit.done("The purchase is cancelled. Nothing was charged.")


@router.post("/billing/invoices/{invoice_id}/authenticate")
def authenticate(visit: Visitor, invoice_id: str, form: PostedForm):
    """The end of the authentication step: the sandbox's Complete or Fail, or Stripe.js done
    (the gateway is then asked what became of the payment)."""
    ctx = visit.ctx
    with ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, visit.customer_id, invoice_id)
        waiting = checkout.waiting_attempt(db, invoice.id)
        now = customer_now(ctx, db, visit.customer_id)
        refusal = open_invoice.payable_refusal(db, invoice)
    if waiting is None:
        return visit.go(HOME, "error", "This payment is no longer waiting for authentication.")
    if refusal is not None:  # what it would buy no longer applies: its page says so, and closes it
        return visit.go(_pay_page(invoice.id))
    succeeded = {"complete": True, "fail": False}.get(form.get("result", ""))
    outcome = checkout.finish_authentication(ctx, waiting.id, now, succeeded=succeeded)
    return _after(visit, outcome)


def _after(visit: Visit, outcome: Outcome) -> Response:
    """The page after a payment's outcome, saying what it did."""
    if outcome.status == "requires_action":
        return visit.go(_pay_page(outcome.invoice_id), "error", "The payment still needs your authentication.")
    if outcome.status == "void":
        return visit.go(HOME, "error", f"{outcome.failure_message} This invoice was closed; nothing was charged.")
    if outcome.status == "unknown":
        return visit.go(HOME, "error", plain(PaymentFailed("pending", code="payment_pending")))
    if outcome.status == "failed":
        if outcome.failure_code in ("authentication_failed", "superseded"):
            return visit.go(HOME, "error", "The payment wasn't authenticated, so nothing was charged and nothing "
                                           "changed. The invoice stays open: you can pay it from this page.")
        return visit.go(HOME, "error", f"We couldn't take the payment: {outcome.failure_message or 'it failed.'} "
                                       "The invoice stays open.")
    return visit.done(_paid_message(visit, outcome.invoice_id))


def _paid_message(visit: Visit, invoice_id: str) -> str:
    catalog, fmt = visit.ctx.catalog, visit.formatter()
    with visit.ctx.db.transaction(readonly=True) as db:
        invoice = views.customer_invoice(db, visit.customer_id, invoice_id)
        details, purpose, paid = dict(invoice.details), invoice.purpose, invoice.amount_paid
    charged = f"We charged {fmt.money(paid)}."
    if purpose == "subscription_create":
        return f"Payment received. Welcome to {catalog.plan(details['plan']).name}! {charged}"
    if purpose == "plan_change":
        plan = catalog.plan(details["plan"]).name
        return f"Payment received. You're now on {plan} ({views.TERM_LABELS[details['term']].lower()}). {charged}"
    if purpose == "top_up":
        return f"Payment received. Added {fmt.credits(details['credits'])} credits. {charged}"
    return f"Payment received: your subscription is active again. {charged}"
