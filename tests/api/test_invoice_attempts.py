"""An invoice carries its payment attempts, in the API's invoice and in its lists."""

from __future__ import annotations

from api_kit import assert_error


def test_a_paid_invoice_shows_its_successful_attempt(any_api):
    api = any_api
    customer, _ = api.subscribed("standard", "monthly")
    invoice = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"][0]
    (attempt,) = invoice["attempts"]
    assert attempt["object"] == "payment_attempt" and attempt["id"].startswith("pay_")
    assert (attempt["status"], attempt["amount"], attempt["currency"]) == ("succeeded", 3000, "usd")
    assert attempt["gateway_reference"]  # what the sandbox answered with
    assert attempt["failure_code"] is None and attempt["failure_message"] is None
    assert attempt["created_at"].endswith("Z") and attempt["completed_at"].endswith("Z")
    assert api.ok("GET", f"/v1/invoices/{invoice['id']}")["attempts"] == invoice["attempts"]


def test_a_declined_payment_is_an_attempt_with_its_reason(any_api):
    api = any_api
    customer = api.customer(payment_method="pm_card_declined")
    assert_error(api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"}),
                 402, "payment_failed")
    (invoice,) = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    assert invoice["status"] == "void"
    (attempt,) = api.ok("GET", f"/v1/invoices/{invoice['id']}")["attempts"]
    assert (attempt["status"], attempt["amount"], attempt["failure_code"]) == ("failed", 900, "card_declined")
    assert attempt["failure_message"]


def test_an_invoice_never_charged_has_no_attempts(any_api):
    api = any_api
    customer = api.customer()
    # An upgrade worth less than the unused time is paid by the credit for it: nothing to charge.
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "yearly"})
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
           {"plan": "ultimate", "term": "monthly", "timing": "immediate"})
    invoices = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    change = next(inv for inv in invoices if inv["purpose"] == "plan_change")
    assert change["amount_paid"] == 0
    assert change["attempts"] == []
