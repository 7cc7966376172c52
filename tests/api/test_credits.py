from __future__ import annotations

import pytest

from api_kit import SUPPORT_KEY, assert_error


def _spend(api, customer_id, amount, feature="standard_models", reference="job-1"):
    return api.post(f"/v1/customers/{customer_id}/credits/spend",
                    {"amount": amount, "feature": feature, "reference": reference})


def test_balance_of_a_free_customer_includes_today(any_api):
    api = any_api
    customer = api.customer(payment_method=None)
    balance = api.ok("GET", f"/v1/customers/{customer['id']}/credits")
    assert balance["object"] == "credit_balance" and balance["customer"] == customer["id"]
    assert (balance["available"], balance["held"]) == ("100", "0")
    assert balance["by_kind"] == {"free": "100", "subscription": "0", "top_up": "0", "promo": "0"}
    assert balance["lots"][0]["kind"] == "free" and balance["lots"][0]["remaining"] == "100"


def test_spend_is_exact_idempotent_by_reference_and_refundable(any_api):
    api = any_api
    customer, _ = api.subscribed()
    cid = customer["id"]
    spent = [api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                    {"amount": "73.5", "feature": "pro_models", "reference": f"job-{i}"}) for i in range(4)]
    first = spent[0]
    assert first["object"] == "credit_spend" and first["reference"] == "job-0" and first["amount"] == "73.5"
    assert first["draws"][0]["kind"] == "subscription" and first["draws"][0]["amount"] == "73.5"
    assert spent[-1]["balance"] == "7706"
    assert api.ok("POST", f"/v1/customers/{cid}/credits/spend",
                  {"amount": 73.5, "feature": "pro_models", "reference": "job-0"}) == first
    assert_error(_spend(api, cid, "74", "pro_models", "job-0"), 409, "reference_reused", "reference")

    refunded = api.ok("POST", f"/v1/customers/{cid}/credits/refund", {"reference": "job-0"})
    assert refunded["amount"] == "73.5" and refunded["balance"] == "7779.5"
    assert_error(api.post(f"/v1/customers/{cid}/credits/refund", {"reference": "job-0"}), 409, "already_refunded")
    assert_error(api.post(f"/v1/customers/{cid}/credits/refund", {"reference": "nope"}), 404, "not_found")
    assert api.ok("GET", f"/v1/customers/{cid}/credits")["available"] == "7779.5"


def test_spend_refusals(api):
    free = api.customer(payment_method=None)
    assert_error(_spend(api, free["id"], "101"), 402, "insufficient_credits")
    assert_error(_spend(api, free["id"], "1", "pro_models"), 403, "subscription_required")
    assert_error(_spend(api, free["id"], "1", "telepathy"), 422, "invalid_request", "feature")
    basic, _ = api.subscribed(plan="basic")
    assert_error(_spend(api, basic["id"], "1", "private_generations"), 403, "feature_not_in_plan")
    assert_error(_spend(api, "cus_nope", "1"), 404, "not_found")
    assert api.ok("GET", f"/v1/customers/{free['id']}/credits")["available"] == "100"
    assert api.ok("GET", f"/v1/customers/{free['id']}/credits/ledger")["data"] == []


@pytest.mark.parametrize("amount", ["1.2345", "-1", -1, "NaN", "Infinity", "1e400", True, None, "", "abc", [1]])
def test_bad_amounts_are_422_naming_amount(api, amount):
    customer = api.customer(payment_method=None)
    assert_error(_spend(api, customer["id"], amount), 422, "invalid_request", "amount")


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1.0005"])
def test_non_finite_json_numbers_are_422(api, raw):
    customer = api.customer(payment_method=None)
    body = b'{"amount": ' + raw + b', "feature": "standard_models", "reference": "r"}'
    response = api.post(f"/v1/customers/{customer['id']}/credits/spend", content=body,
                        headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_request", "amount")


def test_holds_settle_release_and_expire(any_api):
    api = any_api
    clock = api.clock("2026-03-10T10:00:00Z")
    customer = api.customer(test_clock=clock["id"], payment_method=None)
    cid = customer["id"]
    body = {"amount": "40", "feature": "standard_models", "reference": "h1", "ttl_seconds": 600}
    hold = api.ok("POST", f"/v1/customers/{cid}/credits/holds", body)
    assert hold["id"].startswith("hold_") and hold["object"] == "hold"
    assert (hold["amount"], hold["status"], hold["expires_at"]) == ("40", "held", "2026-03-10T10:10:00Z")
    assert api.ok("GET", f"/v1/customers/{cid}/credits")["held"] == "40"
    assert api.ok("GET", f"/v1/holds/{hold['id']}") == hold
    assert_error(api.post(f"/v1/holds/{hold['id']}/settle", {"amount": "41"}), 422, "invalid_request", "amount")
    settled = api.ok("POST", f"/v1/holds/{hold['id']}/settle", {"amount": "25.5"})
    assert settled["status"] == "settled" and settled["settled_amount"] == "25.5"
    assert_error(api.post(f"/v1/holds/{hold['id']}/release"), 409, "hold_settled")

    released = api.ok("POST", f"/v1/customers/{cid}/credits/holds", {**body, "reference": "h2"})
    assert api.ok("POST", f"/v1/holds/{released['id']}/release")["status"] == "released"

    expiring = api.ok("POST", f"/v1/customers/{cid}/credits/holds", {**body, "reference": "h3"})
    api.advance(clock["id"], "2026-03-10T10:11:00Z")
    assert api.ok("GET", f"/v1/holds/{expiring['id']}")["status"] == "expired"
    assert_error(api.post(f"/v1/holds/{expiring['id']}/settle", {"amount": "1"}), 409, "hold_expired")
    balance = api.ok("GET", f"/v1/customers/{cid}/credits")
    assert (balance["available"], balance["held"]) == ("74.5", "0")
    assert_error(api.get("/v1/holds/hold_nope"), 404, "not_found")


def test_promo_grants_by_support(api):
    customer = api.customer(payment_method=None)
    body = {"amount": "250", "kind": "promo", "expires_at": "2031-01-01T00:00:00Z", "reason": "apology"}
    lot = api.ok("POST", f"/v1/customers/{customer['id']}/credits/grants", body, key=SUPPORT_KEY)
    assert lot["id"].startswith("lot_") and lot["object"] == "credit_lot"
    assert (lot["kind"], lot["granted"], lot["remaining"], lot["expires_at"]) == (
        "promo", "250", "250", "2031-01-01T00:00:00Z")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["promo"] == "250"
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/grants", {**body, "reason": ""},
                          key=SUPPORT_KEY), 422, "invalid_request", "reason")
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/grants",
                          {**body, "expires_at": "2031-01-01T00:00:00"}, key=SUPPORT_KEY), 422, "invalid_request",
                 "expires_at")
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/grants", {**body, "kind": "top_up"},
                          key=SUPPORT_KEY), 422, "invalid_request", "kind")


def test_ledger_lists_entries_in_order_with_paging(api):
    customer, _ = api.subscribed()
    cid = customer["id"]
    for i in range(3):
        api.ok("POST", f"/v1/customers/{cid}/credits/spend",
               {"amount": "1", "feature": "standard_models", "reference": f"r{i}"})
    ledger = api.ok("GET", f"/v1/customers/{cid}/credits/ledger")
    kinds = [entry["kind"] for entry in ledger["data"]]
    assert kinds == ["grant", "spend", "spend", "spend"]
    entry = ledger["data"][1]
    assert entry["object"] == "credit_entry" and entry["amount"] == "1" and entry["reference"] == "r0"
    assert entry["lot"].startswith("lot_") and entry["created_at"].endswith("Z")
    page = api.ok("GET", f"/v1/customers/{cid}/credits/ledger?limit=2&starting_after={ledger['data'][0]['id']}")
    assert [e["id"] for e in page["data"]] == [e["id"] for e in ledger["data"][1:3]] and page["has_more"] is True


def test_top_ups(any_api):
    api = any_api
    customer, _ = api.subscribed()
    top_up = api.ok("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"})
    assert top_up["object"] == "top_up" and top_up["bundle"] == "credits_1000" and top_up["credits"] == "1000"
    assert top_up["invoice"].startswith("inv_") and top_up["lot"].startswith("lot_")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["top_up"] == "1000"

    free = api.customer()
    assert_error(api.post(f"/v1/customers/{free['id']}/top_ups", {"bundle": "credits_1000"}), 409,
                 "subscription_required")
    assert_error(api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_9"}), 422,
                 "invalid_request", "bundle")


def test_declined_top_up_is_402_and_grants_nothing(api):
    clock = api.clock()
    customer = api.customer(test_clock=clock["id"], payment_method="pm_card_ok_then_declined")
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    assert_error(api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"}), 402,
                 "payment_failed")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["top_up"] == "0"
