"""A purchase whose payment needs 3-D Secure answers 402 `authentication_required` with the open
invoice and a one-time link; nothing is granted until the customer authenticates there."""

from __future__ import annotations

from urllib.parse import urlsplit

from api_kit import assert_error

from creditflow.customer.service import customer_now
from creditflow.payment.models import PaymentAttempt
from creditflow.purchase import checkout


def _authenticate(api, customer_id: str, invoice_id: str, succeeded: bool = True):
    """What the billing page's authentication step does once the cardholder is done."""
    with api.ctx.db.transaction(readonly=True) as session:
        waiting = checkout.waiting_attempt(session, invoice_id)
        now = customer_now(api.ctx, session, customer_id)
    return checkout.finish_authentication(api.ctx, waiting.id, now, succeeded=succeeded)


def _customer(api, payment_method="pm_card_authenticate"):
    clock = api.clock("2026-03-10T10:00:00Z")
    return api.customer(test_clock=clock["id"], payment_method=payment_method)


def _authentication_required(response) -> dict:
    assert_error(response, 402, "authentication_required")
    body = response.json()
    assert body["invoice"].startswith("inv_")
    assert body["url"].startswith("http://testserver/billing/authenticate/")
    return body


def test_subscribing_answers_402_with_the_open_invoice_and_a_one_time_link(any_api):
    api = any_api
    customer = _customer(api)
    body = _authentication_required(
        api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"}))
    invoice = api.ok("GET", f"/v1/invoices/{body['invoice']}")
    assert invoice["status"] == "open" and invoice["amount_paid"] == 0
    # Nothing started, nothing granted.
    assert_error(api.get(f"/v1/customers/{customer['id']}/subscription"), 404, "not_found")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["subscription"] == "0"
    events = api.ok("GET", f"/v1/events?customer={customer['id']}&type=invoice.payment_action_required")["data"]
    assert [e["data"]["invoice"] for e in events] == [body["invoice"]]
    assert events[0]["data"]["off_session"] is False

    # The link opens the billing page on the invoice's payment page, once.
    path = urlsplit(body["url"]).path
    first = api.client.get(path, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"/billing/invoices/{body['invoice']}/pay"
    assert api.client.get(path, follow_redirects=False).status_code == 404

    # Authenticating completes the purchase with the same payment attempt (never a second charge).
    assert _authenticate(api, customer["id"], body["invoice"]).status == "paid"
    assert api.ok("GET", f"/v1/invoices/{body['invoice']}")["status"] == "paid"
    sub = api.ok("GET", f"/v1/customers/{customer['id']}/subscription")
    assert (sub["plan"], sub["status"]) == ("standard", "active")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["subscription"] == "8000"
    with api.ctx.db.transaction(readonly=True) as session:
        tries = session.query(PaymentAttempt).filter_by(invoice_id=body["invoice"]).all()
    assert [t.status for t in tries] == ["succeeded"]


def test_a_link_is_dead_once_its_invoice_is_paid(api):
    customer = _customer(api)
    body = _authentication_required(
        api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"}))
    _authenticate(api, customer["id"], body["invoice"])
    assert api.client.get(urlsplit(body["url"]).path, follow_redirects=False).status_code == 404
    # A made-up secret for the same invoice is no link either.
    assert api.client.get(f"/billing/authenticate/{body['invoice']}.forged", follow_redirects=False).status_code == 404


def test_an_immediate_upgrade_and_a_top_up_answer_402_and_change_nothing(api):
    customer = _customer(api, payment_method="pm_card_ok")
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_authenticate"})
    credits_before = api.ok("GET", f"/v1/customers/{customer['id']}/credits")

    change = _authentication_required(api.post(f"/v1/subscriptions/{sub['id']}/change",
                                               {"plan": "ultimate", "term": "monthly", "timing": "immediate"}))
    assert api.ok("GET", f"/v1/invoices/{change['invoice']}")["status"] == "open"
    after = api.ok("GET", f"/v1/subscriptions/{sub['id']}")
    assert (after["plan"], after["current_term_start"]) == ("standard", sub["current_term_start"])

    top_up = _authentication_required(api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"}))
    assert api.ok("GET", f"/v1/invoices/{top_up['invoice']}")["status"] == "open"
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits") == credits_before


def test_a_declined_card_is_still_payment_failed(api):
    customer = _customer(api, payment_method="pm_card_declined")
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    assert_error(response, 402, "payment_failed")
    assert "url" not in response.json()
