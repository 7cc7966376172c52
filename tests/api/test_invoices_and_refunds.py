from __future__ import annotations

from api_kit import SUPPORT_KEY, assert_error


def test_invoices_list_and_read(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"])
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    api.advance(clock["id"], "2026-04-10T10:00:00Z")
    listed = api.ok("GET", f"/v1/invoices?customer={customer['id']}")
    assert [i["number"] for i in listed["data"]] == sorted(i["number"] for i in listed["data"])
    first, renewal = listed["data"]
    assert (first["purpose"], renewal["purpose"]) == ("subscription_create", "renewal")
    assert first["object"] == "invoice" and first["id"].startswith("inv_")
    assert (first["status"], first["currency"], first["subtotal"], first["tax"], first["total"]) == (
        "paid", "usd", 3000, 0, 3000)
    assert first["amount_paid"] == 3000 and first["balance_applied"] == 0
    assert first["lines"] == [{"kind": "subscription", "description": "Standard plan, monthly", "amount": 3000,
                               "period_start": "2026-03-10T10:00:00Z", "period_end": "2026-04-10T10:00:00Z"}]
    assert first["created_at"] == "2026-03-10T10:00:00Z"
    assert api.ok("GET", f"/v1/invoices/{renewal['id']}") == renewal
    page = api.ok("GET", f"/v1/invoices?customer={customer['id']}&limit=1")
    assert page["has_more"] is True and page["data"] == [first]
    assert_error(api.get("/v1/invoices/inv_nope"), 404, "not_found")
    assert_error(api.get("/v1/invoices?starting_after=inv_nope"), 404, "not_found", "starting_after")


def test_refund_eligibility_and_refunds_by_support(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"])
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    invoice = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"][0]
    eligibility = api.ok("GET", f"/v1/invoices/{invoice['id']}/refund_eligibility")
    assert eligibility["eligible"] is True and eligibility["reason"]

    body = {"invoice": invoice["id"], "reason": "changed their mind"}
    assert_error(api.post("/v1/refunds", body), 403, "forbidden")
    refund = api.ok("POST", "/v1/refunds", body, key=SUPPORT_KEY)
    assert refund["id"].startswith("ref_") and refund["object"] == "refund"
    assert (refund["invoice"], refund["amount"], refund["currency"], refund["status"]) == (
        invoice["id"], 3000, "usd", "succeeded")
    assert api.ok("GET", f"/v1/invoices/{invoice['id']}")["status"] == "refunded"
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["status"] == "ended"
    assert_error(api.post("/v1/refunds", body, key=SUPPORT_KEY), 409, "already_refunded")
    assert api.ok("GET", f"/v1/invoices/{invoice['id']}/refund_eligibility")["eligible"] is False


def test_refund_errors(api):
    customer, _ = api.subscribed()
    invoice = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"][0]
    assert_error(api.post("/v1/refunds", {"invoice": "inv_nope", "reason": "x"}, key=SUPPORT_KEY), 404, "not_found")
    assert_error(api.post("/v1/refunds", {"invoice": invoice["id"], "reason": "x", "amount": 3001}, key=SUPPORT_KEY),
                 422, "invalid_request", "amount")
    assert_error(api.post("/v1/refunds", {"invoice": invoice["id"], "reason": "x", "amount": "10"}, key=SUPPORT_KEY),
                 422, "invalid_request", "amount")
    assert_error(api.post("/v1/refunds", {"invoice": invoice["id"]}, key=SUPPORT_KEY), 422, "invalid_request",
                 "reason")
    assert_error(api.get("/v1/invoices/inv_nope/refund_eligibility"), 404, "not_found")
    partial = api.ok("POST", "/v1/refunds", {"invoice": invoice["id"], "reason": "goodwill", "amount": 500},
                     key=SUPPORT_KEY)
    assert partial["amount"] == 500
    assert api.ok("GET", f"/v1/invoices/{invoice['id']}")["amount_refunded"] == 500
